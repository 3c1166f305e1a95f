"""Why the ActivationStore is safetensors shards: one shuffled training epoch read from each format.

    python benchmarks/store_read.py [--rows 500000] [--d 64] [--batch-size 4096] [--repeats 3]

Writes the same random activations as recprobe's safetensors shards (ActivationWriter) and as an Arrow dataset
saved by Hugging Face ``datasets`` (memory-mapped), then times what the SAE trainer does: one epoch of shuffled
[batch, d] float32 torch batches. Prints the median seconds of each and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recprobe.activations.store import ActivationStore, ActivationWriter, Rows


def epoch_safetensors(store: ActivationStore, batch_size: int, seed: int) -> int:
    rows = 0
    for x in store.batches("train", batch_size, torch.Generator().manual_seed(seed)):
        rows += len(x)
    return rows


def epoch_arrow(dataset, batch_size: int, seed: int) -> int:
    rows = 0
    order = np.random.default_rng(seed).permutation(len(dataset))
    for start in range(0, len(order), batch_size):
        x = dataset[order[start:start + batch_size]]["activations"]
        rows += len(x)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import datasets

    data = torch.randn(args.rows, args.d)
    with tempfile.TemporaryDirectory() as tmp:
        writer = ActivationWriter(Path(tmp) / "st", args.d, {})
        writer.append("train", Rows(data, torch.arange(args.rows), torch.zeros(args.rows, dtype=torch.long)))
        store = ActivationStore(writer.close())
        datasets.Dataset.from_dict({"activations": data.numpy()}).save_to_disk(Path(tmp) / "arrow")
        arrow = datasets.load_from_disk(Path(tmp) / "arrow").with_format("torch")
        timings = {"safetensors shards": [], "Arrow (datasets)": []}
        for seed in range(args.repeats):
            for name, run in (("safetensors shards", lambda s=seed: epoch_safetensors(store, args.batch_size, s)),
                              ("Arrow (datasets)", lambda s=seed: epoch_arrow(arrow, args.batch_size, s))):
                started = time.perf_counter()
                assert run() == args.rows
                timings[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(t) for name, t in timings.items()}
    print(f"{args.rows:,} vectors x {args.d}, shuffled batches of {args.batch_size}, {args.repeats} epochs each")
    for name, seconds in medians.items():
        print(f"{name:20s} {seconds:8.2f} s/epoch (median)")
    print(f"Arrow / safetensors = {medians['Arrow (datasets)'] / medians['safetensors shards']:.1f}x")


if __name__ == "__main__":
    main()
