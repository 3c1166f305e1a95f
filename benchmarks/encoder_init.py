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
from sae_peers import shuffled, synthetic

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
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    sae = SparseCoder(args.d, SparseCoderConfig(num_latents=args.latents, k=args.k))
    optimiser = torch.optim.Adam(sae.parameters(), lr=args.lr)
    since_fired = torch.zeros(args.latents, dtype=torch.long)
    for x in shuffled(train, args.batch_size, args.epochs, 0):  # as benchmarks/sae_peers.py steps it
        out = sae(x, dead_mask=since_fired > len(train))
        (out.fvu + 1 / 32 * out.auxk_loss).backward()
        sae.set_decoder_norm_to_unit_norm()
        sae.remove_gradient_parallel_to_decoder_directions()
        optimiser.step()
        optimiser.zero_grad()
        since_fired += len(x)
        since_fired[out.latent_indices.flatten()] = 0
    with torch.no_grad():
        out = sae(held_out)
    fired = torch.zeros(args.latents, dtype=torch.bool)
    fired[out.latent_indices[out.latent_acts > 0]] = True
    fvu = float((held_out - out.sae_out).pow(2).sum() / (held_out - held_out.mean(0)).pow(2).sum())
    return f"held-out FVU {fvu:.4f}  never fire {1 - fired.float().mean():.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--latents", type=int, default=16_384)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
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
