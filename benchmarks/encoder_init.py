"""Dead latents and the encoder's starting scale: recprobe's TopK SAE with W_enc = W_dec^T (unit-norm rows, the
default) against ``SAEConfig(encoder_scale=...)``, and sparsify's SparseCoder, on sae_peers' data.

    python benchmarks/encoder_init.py [--rows 1000000] [--d 128] [--latents 16384] [--k 32] [--epochs 3]
                                      [--trainers recprobe,recprobe-scaled,sparsify] [--encoder-scale 0.577]

Prints each trainer's held-out FVU, the share of latents that never fire on the held-out vectors, and, for
recprobe, each epoch's dev FVU (the checkpoint kept is the lowest).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from sae_peers import fvu, synthetic, train_sparsify, workload_arguments

from recprobe.activations.store import ActivationStore, ActivationWriter, Rows
from recprobe.sae import SAEConfig, SAETrainConfig, train_sae
from recprobe.sae.faithfulness import reconstruction_metrics


def run_recprobe(store: ActivationStore, args, encoder_scale: float) -> str:
    config = SAEConfig(d_in=args.d, n_latents=args.latents, scale=None, k=args.k, seed=0, encoder_scale=encoder_scale)
    sae, result = train_sae(store, config, SAETrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr),
                            progress=False)
    held_out = reconstruction_metrics(sae, store, "dev")
    epochs = ", ".join(f"{h['dev_fvu']:.4f}" for h in result.history)
    return f"held-out FVU {held_out['fvu']:.4f}  never fire {held_out['dead_fraction']:.1%}  (dev FVU by epoch: {epochs})"


def run_sparsify(train: torch.Tensor, held_out: torch.Tensor, args) -> str:
    sae = train_sparsify(train, args)
    with torch.no_grad():
        out = sae(held_out)
    fired = torch.zeros(args.latents, dtype=torch.bool)
    fired[out.latent_indices[out.latent_acts > 0]] = True
    return f"held-out FVU {fvu(held_out, out.sae_out):.4f}  never fire {1 - fired.float().mean():.1%}"


def main() -> None:
    parser = workload_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.set_defaults(rows=1_000_000, d=128, latents=16_384, k=32, epochs=3, device="cpu")
    parser.add_argument("--encoder-scale", type=float, default=3 ** -0.5, help="nn.Linear's (sparsify's) row norm")
    parser.add_argument("--trainers", default="recprobe,recprobe-scaled,sparsify")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, held_out = synthetic(args.rows, args.d, seed=1), synthetic(args.rows // 10, args.d, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        writer = ActivationWriter(tmp, args.d, {"benchmark": "encoder_init"})
        for split, x in (("train", train), ("dev", held_out)):
            writer.append(split, Rows(x, torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long)))
        store = ActivationStore(writer.close())
        runners = {"recprobe": lambda: run_recprobe(store, args, 1.0),
                   "recprobe-scaled": lambda: run_recprobe(store, args, args.encoder_scale),
                   "sparsify": lambda: run_sparsify(train, held_out, args)}
        print(f"{args.rows:,} x {args.d} vectors, {args.latents} latents, k={args.k}, batch {args.batch_size}, "
              f"{args.epochs} epochs, lr {args.lr}; recprobe-scaled starts W_enc at x{args.encoder_scale:.3f}")
        for name in args.trainers.split(","):
            started = time.perf_counter()
            line = runners[name]()
            print(f"{name:16s} {line}  [{time.perf_counter() - started:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
