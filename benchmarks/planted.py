"""Planted ground truth: does training find the true directions, and do the controls not?

    python benchmarks/planted.py [--n 100000] [--d 64] [--m 512] [--s 8] [--latents 1024] [--k 8]
                                 [--epochs 10] [--seeds 1] [--arch topk,batchtopk,matryoshka] [--json FILE]

Vectors are sums of s of m known unit directions (Zipf-like popularity, exponential weights, noise; see
``recprobe.planted``), written to an ActivationStore and trained on exactly as ``recprobe train-sae`` trains.
For each architecture, the trained SAE, its frozen-decoder and frozen-encoder controls (same width, k, data,
seed) and the untrained SAE: the share of true directions some decoder row matches at cosine >= 0.9, mean
over seeds. ``--json`` writes ``{"<arch>[/<control>]": {"recovered": share}}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from recprobe.planted import plant, recovered_share, to_store
from recprobe.runs.ladder import FREEZE
from recprobe.sae import SAEConfig, SAETrainConfig, train_sae
from recprobe.sae.train import initial_sae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--m", type=int, default=512)
    parser.add_argument("--s", type=int, default=8)
    parser.add_argument("--latents", type=int, default=1024)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--arch", default="topk,batchtopk,matryoshka")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    shares: dict[str, list[float]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            planted = plant(args.n, args.d, args.m, args.s, seed=seed)
            store = to_store(planted.vectors, Path(tmp) / f"seed{seed}")
            for arch in args.arch.split(","):
                for variant, freeze in FREEZE.items():
                    config = SAEConfig(d_in=args.d, n_latents=args.latents, scale=None, k=args.k, arch=arch,
                                       freeze=freeze, seed=seed)
                    sae, _ = train_sae(store, config, SAETrainConfig(epochs=args.epochs, batch_size=256, lr=2e-3),
                                       progress=False)
                    name = arch if variant == "trained" else f"{arch}/{variant}"
                    shares.setdefault(name, []).append(recovered_share(sae.W_dec, planted.directions))
                untrained = initial_sae(store, SAEConfig(d_in=args.d, n_latents=args.latents, scale=None, k=args.k,
                                                         arch=arch, seed=seed))
                shares.setdefault(f"{arch}/untrained", []).append(recovered_share(untrained.W_dec, planted.directions))
                print(f"seed {seed} {arch}: " + ", ".join(f"{n} {v[-1]:.3f}" for n, v in shares.items()
                                                         if n.split("/")[0] == arch), flush=True)
    result = {name: {"recovered": round(statistics.mean(values), 4), "per_seed": values} for name, values in shares.items()}
    print(f"\nshare of {args.m} true directions recovered at cosine >= 0.9 ({args.n:,} vectors, d {args.d}, "
          f"{args.s} active; {args.latents} latents, k {args.k}; {args.epochs} epochs; {args.seeds} seed(s); "
          f"{time.perf_counter() - started:.0f} s)")
    for arch in args.arch.split(","):
        trained = result[arch]["recovered"]
        controls = {n: r["recovered"] for n, r in result.items() if n.startswith(f"{arch}/")}
        ratios = ", ".join(f"{n.split('/')[1]} {v:.3f} ({trained / v:.1f}x)" if v else f"{n.split('/')[1]} {v:.3f}"
                           for n, v in controls.items())
        print(f"  {arch:<11} trained {trained:.3f}; {ratios}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
