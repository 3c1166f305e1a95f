"""recprobe's TopK SAE trainer against SAELens and EleutherAI sparsify on the same activations.

    pip install -e ".[peers]"   # sae-lens and eai-sparsify beside recprobe and torch 2.13 (make bench does it)
    python benchmarks/sae_peers.py [--rows 500000] [--d 64] [--latents 1024] [--k 8] [--batch-size 4096]
                                   [--epochs 5] [--lr 2e-3] [--threads 2] [--repeats 3] [--breakdown]
                                   [--device cuda --only limit torch-limit recprobe sparsify]

Every trainer sees the same synthetic activations (sparse sums of 8 of 2,048 random unit directions plus noise)
in batches of the same size, for the same number of epochs, with Adam at the same learning rate, on the same
number of CPU threads (or on one GPU with ``--device cuda``, each trainer's batches already on it):
- recprobe: ``train_sae`` over an ActivationStore on disk, exactly as ``recprobe train-sae`` runs it, including
  its per-epoch dev evaluation and checkpoint selection;
- SAELens: ``SAETrainer`` with a ``TopKTrainingSAE`` (its own training loop, batches from memory);
- sparsify: a ``SparseCoder`` stepped as sparsify's ``Trainer`` steps it (FVU + AuxK loss, unit-norm decoder,
  parallel gradient removed), batches from memory;
- the device's limit for the workload: one dense encoder matmul plus top-k per sample, nothing else, by
  recprobe's kernels (``torch-limit``: by torch's ``addmm`` and ``topk``, slower on CPU).
It prints the median samples per second of each, the held-out FVU, each as a fraction of the limit, and the
median over repeats of recprobe's speed over each. ``--breakdown`` profiles one recprobe run instead and prints
where a training step's time goes, op by op (torch.profiler's self CPU time, per step).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

import torch

from recprobe.activations.store import ActivationStore, ActivationWriter, Rows
from recprobe.sae import SAEConfig, SAETrainConfig, train_sae
from recprobe.sae.faithfulness import reconstruction_metrics
from recprobe.sae.sparse import select


def synthetic(n: int, d: int, seed: int, atoms: int = 2048, active: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    dictionary = torch.nn.functional.normalize(torch.randn(atoms, d, generator=torch.Generator().manual_seed(0)), dim=1)
    picked = torch.randint(atoms, (n, active), generator=generator)
    weights = torch.empty(n, active).exponential_(generator=generator)
    return torch.einsum("na,nad->nd", weights, dictionary[picked]) + 0.05 * torch.randn(n, d, generator=generator)


def synchronised(device: str) -> float:
    """perf_counter once the device has finished its queued work (a GPU runs ahead of the Python that feeds it)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def shuffled(x: torch.Tensor, batch_size: int, epochs: int, seed: int) -> Iterator[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=generator).split(batch_size):
            if len(rows) == batch_size:
                yield x[rows]


def run_recprobe(store: ActivationStore, args) -> tuple[float, float]:
    config = SAEConfig(d_in=args.d, n_latents=args.latents, scale=None, k=args.k, seed=0)
    train = SAETrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device)
    started = synchronised(args.device)
    sae, _ = train_sae(store, config, train, progress=False)
    seconds = synchronised(args.device) - started
    return seconds, reconstruction_metrics(sae.to(args.device), store, "dev", device=args.device)["fvu"]


def run_saelens(train: torch.Tensor, held_out: torch.Tensor, args) -> tuple[float, float]:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=args.d, d_sae=args.latents, k=args.k, device=args.device))
    steps = args.epochs * (len(train) // args.batch_size)
    config = SAETrainerConfig(total_training_samples=steps * args.batch_size, train_batch_size_samples=args.batch_size,
                              lr=args.lr, lr_end=args.lr, device=args.device)
    trainer = SAETrainer(cfg=config, sae=sae, data_provider=shuffled(train, args.batch_size, args.epochs, 0))
    started = synchronised(args.device)
    trainer.fit()
    seconds = synchronised(args.device) - started
    with torch.no_grad():
        return seconds, fvu(held_out, sae(held_out))


def train_sparsify(train: torch.Tensor, args):
    """A ``SparseCoder`` stepped as sparsify's ``Trainer.fit`` steps one SAE."""
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    sae = SparseCoder(args.d, SparseCoderConfig(num_latents=args.latents, k=args.k), device=args.device)
    optimiser = torch.optim.Adam(sae.parameters(), lr=args.lr)
    since_fired = torch.zeros(args.latents, dtype=torch.long, device=args.device)
    for x in shuffled(train, args.batch_size, args.epochs, 0):
        out = sae(x, dead_mask=since_fired > len(train))
        (out.fvu + 1 / 32 * out.auxk_loss).backward()
        sae.set_decoder_norm_to_unit_norm()
        sae.remove_gradient_parallel_to_decoder_directions()
        optimiser.step()
        optimiser.zero_grad()
        since_fired += len(x)
        since_fired[out.latent_indices.flatten()] = 0
    return sae


def run_sparsify(train: torch.Tensor, held_out: torch.Tensor, args) -> tuple[float, float]:
    started = synchronised(args.device)
    sae = train_sparsify(train, args)
    seconds = synchronised(args.device) - started
    with torch.no_grad():
        return seconds, fvu(held_out, sae(held_out).sae_out)


def run_limit(train: torch.Tensor, args, kernels: str = "recprobe") -> tuple[float, float]:
    """The encoder matmul and top-k alone, by recprobe's kernels (``select``: the bias folded into the matmul,
    the rows in chunks, the two-round top-k; the faster floor) or by torch's (``addmm`` and ``topk``)."""
    weight = torch.randn(args.latents, args.d, device=args.device).T  # column-major, as the SAE stores W_enc
    bias = torch.zeros(args.latents, device=args.device)
    pre = torch.empty(args.batch_size, args.latents, device=args.device) if kernels == "torch" else None  # reused
    started = synchronised(args.device)
    for x in shuffled(train, args.batch_size, args.epochs, 0):
        if kernels == "recprobe":
            select(x, weight, bias, args.k)
        else:
            torch.addmm(bias, x, weight, out=pre[:len(x)]).topk(args.k, dim=-1, sorted=False)
    return synchronised(args.device) - started, float("nan")


def breakdown(store: ActivationStore, train: torch.Tensor, samples: int, args, rows: int = 10) -> None:
    """The ops that take a recprobe training step's time, in ms per step, beside the limit's step. On a GPU,
    the kernels' time too: a step whose host time exceeds its kernel time is bound by the Python feeding it."""
    from torch.profiler import ProfilerActivity, profile

    on_gpu = torch.device(args.device).type == "cuda"
    run_recprobe(store, args)  # warm: the first pass pays for allocations and lazy imports
    with profile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * on_gpu) as profiler:
        run_recprobe(store, args)
    ops = profiler.key_averages()
    steps = next(op.count for op in ops if op.key == "_TopKEncode")  # one sparse encoding per training step
    host = sum(op.self_cpu_time_total for op in ops) / 1e3 / steps
    if on_gpu:  # the kernels alone: an op's device time is its kernels' again
        ops = [op for op in ops if op.device_type == torch.autograd.DeviceType.CUDA]
    clock = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    total = sum(getattr(op, clock) for op in ops) / 1e3 / steps
    print(f"recprobe: {total:.2f} ms of {'kernel' if on_gpu else 'op'} time per step ({steps} steps, profiled)"
          + (f", {host:.2f} ms of host op time" if on_gpu else "") + f"; the top {rows}:")
    for op in sorted(ops, key=lambda op: getattr(op, clock), reverse=True)[:rows]:
        ms = getattr(op, clock) / 1e3 / steps
        print(f"  {op.key[:40]:40s} {ms:7.3f} ms  {ms / total:6.1%}  ({op.count / steps:.1f} calls per step)")
    seconds, _ = run_limit(train.to(args.device), args)
    limit_ms = seconds * 1e3 / (samples // args.batch_size)
    print(f"the {args.device} limit's step (encoder matmul + top-k alone, not profiled): {limit_ms:.3f} ms")


def device_name(args) -> str:
    if torch.device(args.device).type == "cuda":
        return f"on one {torch.cuda.get_device_name(args.device)}"
    return f"{args.threads} CPU threads"


def workload_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The data, SAE and training options every trainer here shares (benchmarks/encoder_init.py reuses them)."""
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--latents", type=int, default=1024)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (also on a GPU run: the data loading's)")
    return parser


def main() -> None:
    parser = workload_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: every trainer on one GPU (SAELens needs its "
                                                         "own install there)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["limit", "recprobe", "sparsify", "saelens"])
    parser.add_argument("--breakdown", action="store_true", help="profile recprobe's step instead of timing the peers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first Adam in a process imports torch._dynamo (~2 s)
    train, held_out = synthetic(args.rows, args.d, seed=1), synthetic(args.rows // 10, args.d, seed=2)
    on_device = train.to(args.device), held_out.to(args.device)  # the peers' batches come from memory
    samples = args.epochs * (len(train) // args.batch_size) * args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        writer = ActivationWriter(tmp, args.d, {"benchmark": "sae_peers"})
        for split, x in (("train", train), ("dev", held_out)):
            writer.append(split, Rows(x, torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long)))
        store = ActivationStore(writer.close())
        if args.breakdown:
            return breakdown(store, train, samples, args)
        runners: dict[str, Callable[[], tuple[float, float]]] = {
            "limit": lambda: run_limit(on_device[0], args),
            "torch-limit": lambda: run_limit(on_device[0], args, kernels="torch"),
            "recprobe": lambda: run_recprobe(store, args),
            "sparsify": lambda: run_sparsify(*on_device, args),
            "saelens": lambda: run_saelens(*on_device, args),
        }
        results = {}
        for _ in range(args.repeats):  # interleaved, so a noisy spell hits every trainer alike
            for name in args.only:
                seconds, held_out_fvu = runners[name]()
                results.setdefault(name, []).append((samples / seconds, held_out_fvu))
                print(f"  {name:11s} {samples / seconds:10,.0f} samples/s  held-out FVU {held_out_fvu:.4f}", flush=True)
    print(f"\n{args.rows:,} x {args.d} vectors, {args.latents} latents, k={args.k}, batch {args.batch_size}, "
          f"{args.epochs} epochs, lr {args.lr}, {device_name(args)}; medians of {args.repeats} interleaved runs")
    print(f"{'trainer':11s} {'samples/s':>12s} {'held-out FVU':>13s} {'of limit':>13s} {'recprobe is':>12s}")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        share = rate / statistics.median(r for r, _ in results["limit"]) if "limit" in results else float("nan")
        # the ratio within each repeat, then its median: robust to a noisy spell that slows one repeat
        ratio = statistics.median(ours / theirs for (ours, _), (theirs, _) in zip(results["recprobe"], runs, strict=True))
        print(f"{name:11s} {rate:12,.0f} {statistics.median(f for _, f in runs):13.4f} {share:13.0%} {ratio:11.2f}x")

if __name__ == "__main__":
    main()
