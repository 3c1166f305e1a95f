"""Peak memory of capture, SAE training and case recording over a store of 10 million 64-dim vectors, of the
de-biasing sweep over 100,000 users and 8,192 latents, and of a full ranking over a 200,000-item catalog.

    python benchmarks/memory.py [--rows 10000000] [--d 64] [--folder /tmp/recprobe-memory] [--stage sweep]
        [--sweep-users 100000] [--latents 8192] [--rank-users 20000] [--items 200000]

Each stage runs in a fresh process and prints its peak resident set size (ru_maxrss), so one stage's memory
never hides another's:
- capture: ``recprobe.activations.capture`` runs a sequential ProbeTarget (mean of the history's item embeddings) over
  every train position of a synthetic split (100 positions per user), writing the ActivationStore;
- train: ``train_sae`` makes one pass over that store (1,024 latents, k = 8, batch 4,096), with the dev
  evaluation and checkpoint selection it always does;
- cases: ``record_cases`` runs the target and the trained SAE over every user's test position (100,000 users),
  keeping each case's history, top prediction and sparse activations, as ``recprobe interpret`` does;
- sweep: ``debias_sweep`` (``recprobe debias --sweep``, cohens-d selection, every method at its default
  strengths, 3 random seeds) over ``--sweep-users`` users with 20 train items each, through an untrained TopK SAE
  of ``--latents`` latents (memory does not depend on the weights);
- rank: ``evaluate_ranking`` (``recprobe evaluate``'s kernel) ranks ``--rank-users`` users' held-out items among
  ``--items`` items, each user with 20 seen items masked, random 64-dim users and items scored by dot product.
The target is synthetic because the stages' memory does not depend on the model, only on the row count; a
real model would take hours to capture 10M rows on 2 CPU cores. The store needs rows * d * 4 bytes on disk.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from recprobe.target import Batch

POSITIONS_PER_USER = 100
N_ITEMS = 1000


class MeanPool:
    """A sequential ProbeTarget: a user is the mean of their history's item embeddings."""

    name, n_items, max_history = "benchmark:meanpool", N_ITEMS, 20

    def __init__(self, d: int):
        self.d_model = d
        self.items = torch.nn.Embedding(N_ITEMS + 1, d, padding_idx=N_ITEMS,
                                        _weight=torch.randn(N_ITEMS + 1, d, generator=torch.Generator().manual_seed(0)))

    @torch.no_grad()
    def represent(self, batch: Batch) -> torch.Tensor:
        return self.items(batch.history).sum(1) / batch.lengths.clamp(min=1)[:, None]

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return reps @ self.items.weight[:N_ITEMS].T

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.score(self.represent(batch), batch)

    def item_embeddings(self) -> torch.Tensor:
        return self.items.weight[:N_ITEMS]


def synthetic_split(n_users: int, positions: int = POSITIONS_PER_USER):
    from recprobe.data.split import Catalog, Split

    rng = np.random.default_rng(0)
    per_user = positions + 1  # position 0 has no history, so it is not captured
    return Split(
        name="synthetic", user_ids=np.arange(n_users).astype(str), item_ids=np.arange(N_ITEMS).astype(str),
        train_users=np.repeat(np.arange(n_users, dtype=np.int64), per_user),
        train_items=rng.integers(N_ITEMS, size=n_users * per_user, dtype=np.int64),
        train_times=np.arange(n_users * per_user, dtype=np.int64),
        dev_items=rng.integers(N_ITEMS, size=n_users, dtype=np.int64),
        test_items=rng.integers(N_ITEMS, size=n_users, dtype=np.int64),
        catalog=Catalog([f"item {i}" for i in range(N_ITEMS)], [{} for _ in range(N_ITEMS)]))


def stage_capture(args) -> str:
    from recprobe.activations.capture import capture

    store = capture(MeanPool(args.d), synthetic_split(args.rows // POSITIONS_PER_USER), args.folder,
                    parts=("train", "dev"), positions="all", batch_size=4096, progress=False)
    return f"{store.n_rows('train'):,} train + {store.n_rows('dev'):,} dev rows"


def stage_train(args) -> str:
    from recprobe.activations.store import ActivationStore
    from recprobe.sae import SAEConfig, SAETrainConfig, save_sae, train_sae

    store = ActivationStore(args.folder)
    sae, result = train_sae(store, SAEConfig(d_in=store.d, n_latents=1024, scale=None, k=8),
                            SAETrainConfig(epochs=1, batch_size=4096, lr=2e-3), progress=False)
    save_sae(sae, f"{args.folder}-sae", store.provenance)
    return f"1 epoch over {store.n_rows('train'):,} rows, dev FVU {result.history[-1]['dev_fvu']:.3f}"


def stage_cases(args) -> str:
    from recprobe.concepts.cases import record_cases
    from recprobe.sae import load_sae

    split = synthetic_split(args.rows // POSITIONS_PER_USER)
    cases = record_cases(MeanPool(args.d), load_sae(f"{args.folder}-sae")[0], split)
    return f"{len(cases):,} test users' cases"


def stage_sweep(args) -> str:
    from recprobe.sae import SAEConfig
    from recprobe.sae.topk import TopKSAE
    from recprobe.steering.sweep import debias_sweep

    split = synthetic_split(args.sweep_users, positions=20)
    sae = TopKSAE(SAEConfig(d_in=args.d, n_latents=args.latents, scale=None, k=8)).eval()
    result = debias_sweep(MeanPool(args.d), sae, split, None, selections=("cohens-d",))
    return f"{split.n_users:,} users x {args.latents:,} latents, {len(result['rows'])} rows"


def stage_rank(args) -> str:
    from recprobe.ranking.metrics import evaluate_ranking

    generator = torch.Generator().manual_seed(0)
    items = torch.randn(args.items, args.d, generator=generator)
    users = torch.randn(args.rank_users, args.d, generator=generator)
    rng = np.random.default_rng(0)
    seen = (np.arange(0, 20 * args.rank_users + 1, 20), rng.integers(0, args.items, 20 * args.rank_users))
    found = evaluate_ranking(lambda batch: users[batch] @ items.T, rng.integers(0, args.items, args.rank_users), seen,
                             args.items)
    return f"{args.rank_users:,} users x {args.items:,} items, NDCG@10 {found['NDCG@10']:.6f}"


STAGES = {"capture": stage_capture, "train": stage_train, "cases": stage_cases, "sweep": stage_sweep, "rank": stage_rank}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--folder", default="/tmp/recprobe-memory")
    parser.add_argument("--sweep-users", type=int, default=100_000)
    parser.add_argument("--latents", type=int, default=8192)
    parser.add_argument("--rank-users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--stage", choices=STAGES, help="run one stage in this process (used by the driver)")
    args = parser.parse_args()
    if args.stage:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        what = STAGES[args.stage](args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"{args.stage:8s} peak RSS {peak / 2**20:5.2f} GiB (after imports {baseline / 2**20:4.2f} GiB)  "
              f"{time.perf_counter() - started:6.0f} s  {what}", flush=True)
        return
    for stage in STAGES:
        subprocess.run([sys.executable, __file__, "--stage", stage, "--rows", str(args.rows), "--d", str(args.d),
                        "--folder", args.folder, "--sweep-users", str(args.sweep_users), "--latents", str(args.latents),
                        "--rank-users", str(args.rank_users), "--items", str(args.items)],
                       check=True)


if __name__ == "__main__":
    main()
