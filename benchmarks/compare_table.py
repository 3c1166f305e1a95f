"""Every basis against its controls over seeds (``recprobe compare``), timed, with its peak memory.

    recprobe train-sae --run RUN --seeds 5 [--arch topk,batchtopk,matryoshka] [--epochs 10]   # the ladder
    python benchmarks/compare_table.py RUN [RUN ...] [--max-cases 10000]

For each run: ``compare_run`` (which writes RUN/compare.json), its wall time and the process's peak resident
memory, then one row per metric: each basis's mean over seeds with its 95% interval, and the best trained
architecture minus its best control, per seed, with its interval and whether that excludes 0. Markdown, ready
for docs/results.md.
"""

from __future__ import annotations

import argparse
import resource
import time

from recprobe.concepts.cases import SAMPLED_CASES
from recprobe.runs.compare import compare_run


def cell(summary: dict | None) -> str:
    if not summary or summary.get("mean") is None:
        return "-"
    if summary.get("low") is None:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} [{summary['low']:.3f}, {summary['high']:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--max-cases", type=int, default=SAMPLED_CASES)
    args = parser.parse_args()
    for run in args.runs:
        started = time.perf_counter()
        result = compare_run(run, max_cases=args.max_cases)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        bases = list(result["bases"])
        print(f"\n### {run}: {result['cases']['n']:,} {result['cases']['kind']} cases, seeds {result['seeds']}, "
              f"labels {result['labels']}; {seconds:.0f} s, peak memory {peak:.2f} GB\n")
        print("| metric | " + " | ".join(bases) + " | trained - best control | excludes 0 |")
        print("|---" * (len(bases) + 3) + "|")
        for metric, entry in result["metrics"].items():
            gap = entry.get("trained_minus_best_control")
            verdict = "-" if gap is None else ("yes" if gap["excludes_zero"] else "no")
            gap_cell = "-" if gap is None else f"{gap['arch']}: {cell(gap)}"
            print(f"| {metric} | " + " | ".join(cell(entry.get(b)) for b in bases) + f" | {gap_cell} | {verdict} |")


if __name__ == "__main__":
    main()
