"""Why our raw dimensions reach C >= 0.8 more often than the paper's: measure it.

    python benchmarks/raw_baseline_gap.py runs/ml-100k-sasrec [--shares 0.5,0.25,0.1,0.05]

The BaseModel row treats dimension j as a latent with activation max(x_j, 0): it is active on about half of
the cases, so verification contrasts its strongest cases with cases from the other side of the dimension.
Here dimension j is active only on the cases where x_j is in its top ``share`` (the quantile taken over the
run's train activations), so its non-activated cases are ordinary cases, as an SAE latent's are. Each share
goes through the same pipeline (test cases, metadata describer, embedding verifier, N = 5); share 0.5 is close
to the BaseModel row. One markdown row per share.
"""

from __future__ import annotations

import argparse

import torch

from recprobe.concepts.cases import record_cases
from recprobe.concepts.interpret import build_stages, interpret_latent, summarize
from recprobe.runs import Run


class TopShareDimensions:
    """Dimension j as a latent firing where x_j is above its (1 - share) quantile, with activation x_j - q_j."""

    def __init__(self, thresholds: torch.Tensor):
        self.thresholds = thresholds
        self.n_latents = self.k = len(thresholds)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x - self.thresholds).clamp(min=0), torch.arange(x.shape[1]).expand(len(x), -1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--shares", default="0.5,0.25,0.1,0.05")
    args = parser.parse_args()
    run = Run.open(args.run)
    train = torch.cat(list(run.activations().batches("train", 65536)))
    print("| share of cases a dimension fires on | scored | C = 1.0 | C >= 0.9 | C >= 0.8 | mean C (baseline) |")
    print("|---|---|---|---|---|---|")
    for share in (float(s) for s in args.shares.split(",")):
        basis = TopShareDimensions(torch.quantile(train, 1 - share, dim=0))
        cases = record_cases(run.target, basis, run.split)
        describe, verify, _ = build_stages("metadata", "embedding", "smollm2", cases, run.split.catalog, run.split.name, "max")
        records = [interpret_latent(j, cases, describe, verify, 5, 0) for j in range(basis.n_latents)]
        s = summarize(records, basis.n_latents)
        c = s["concepts"]
        print(f"| {share:g} | {c['all']} of {basis.n_latents} | {c['C=1.0']} | {c['C>=0.9']} | {c['C>=0.8']} | "
              f"{s['mean_confidence']:.2f} ({s['mean_baseline_confidence']:.2f}) |")


if __name__ == "__main__":
    main()
