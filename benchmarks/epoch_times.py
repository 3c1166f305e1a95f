"""Seconds per training epoch of each built-in model on a dataset (default: Grocery), this machine.

    python benchmarks/epoch_times.py [--dataset grocery] [--epochs 3]

Prints the median training seconds per epoch (evaluation excluded) and the full dev evaluation time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from recprobe.data import load_dataset
from recprobe.models import MODELS, TrainConfig, build_model, evaluate_model, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="grocery")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    split = load_dataset(args.dataset)
    print(f"{args.dataset}: {split.summary()}  torch threads: {torch.get_num_threads()}")
    print(f"{'model':10s} {'s/epoch (median)':>17s} {'dev eval s':>11s}")
    for name in args.models.split(","):
        model = build_model(name, split)
        # patience = epochs: every epoch runs, whatever dev says
        result = fit(model, split, TrainConfig(epochs=args.epochs, patience=args.epochs, device=args.device),
                     progress=False)
        per_epoch = statistics.median(h["seconds"] for h in result.history)
        t0 = time.perf_counter()
        evaluate_model(model, split, "dev", device=args.device)
        print(f"{name:10s} {per_epoch:17.2f} {time.perf_counter() - t0:11.2f}", flush=True)


if __name__ == "__main__":
    main()
