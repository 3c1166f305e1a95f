"""One full-ranking pass with its top 10, by recprobe's kernels and by torch's own ops, at growing catalogs.

    python benchmarks/ranking_pass.py [--catalogs 3706,49113,200000] [--users 1024] [--d 64] [--threads 2]
                                      [--repeats 7]

A pass is what every ranking stage does per batch of users (evaluate, faithfulness, steering, Table 7, the
sweep): score every item (random d-dim users and items, dot product), mask 20 seen items per user, count each
held-out item's rank, and take the top 10 in order. recprobe: ``ranks_and_top`` (its target ranks counted a few
rows at a time, the top 10 by ``recprobe.topk.top_k``). torch: the same scores and mask, the rank counted over the
whole [users, items] block and ``topk``. Both must give the same ranks and the same top 10 (checked). The users
per batch shrink past ``SCORE_ENTRIES`` scores as ``scored_batch_size`` shrinks them. Prints the median milliseconds per pass
and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from recprobe.ranking.metrics import SeenItems, ranks_and_top, scored_batch_size, seen_items


def torch_pass(scores: torch.Tensor, targets: torch.Tensor, seen: SeenItems) -> tuple[torch.Tensor, torch.Tensor]:
    target_scores = scores.gather(1, targets[:, None])
    seen.hide(scores)
    scores.scatter_(1, targets[:, None], target_scores)
    return (scores >= target_scores).sum(1), scores.topk(10, dim=1).indices


def recprobe_pass(scores: torch.Tensor, targets: torch.Tensor, seen: SeenItems) -> tuple[torch.Tensor, torch.Tensor]:
    return ranks_and_top(scores, targets, seen, 10)


def median_ms(one_pass, reps: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, seen: SeenItems,
              repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first warms
        started = time.perf_counter()
        one_pass(reps @ items.T, targets, seen)
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", default="3706,49113,200000", help="item counts, comma-separated")
    parser.add_argument("--users", type=int, default=1024)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'items':>8s} {'users':>6s} {'torch ms':>9s} {'recprobe ms':>12s} {'recprobe is':>12s}")
    for n_items in (int(n) for n in args.catalogs.split(",")):
        users = scored_batch_size(args.users, n_items)
        generator = torch.Generator().manual_seed(0)
        reps, items = torch.randn(users, args.d, generator=generator), torch.randn(n_items, args.d, generator=generator)
        rng = np.random.default_rng(0)
        seen = seen_items(np.arange(0, 20 * users + 1, 20), rng.integers(0, n_items, 20 * users), np.arange(users))
        targets = torch.from_numpy(rng.integers(0, n_items, users))
        ours, theirs = recprobe_pass(reps @ items.T, targets, seen), torch_pass(reps @ items.T, targets, seen)
        if not (torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])):
            raise SystemExit(f"{n_items} items: the two passes disagree")
        torch_ms = median_ms(torch_pass, reps, items, targets, seen, args.repeats)
        our_ms = median_ms(recprobe_pass, reps, items, targets, seen, args.repeats)
        print(f"{n_items:8,d} {users:6,d} {torch_ms:9.1f} {our_ms:12.1f} {torch_ms / our_ms:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
