"""Why a basis passes Table 7 or fails it: how strongly its latents fire, apart from where they point.

    recprobe steer --run RUN --table7 --every            # after interpreting the SAE and its controls
    python benchmarks/table7_push.py RUN --pushes 2.5,5

The paper's rule scales a latent's own value z: -10x and +10x move the representation by -11 z and +9 z along the
latent's direction, so a basis whose latents fire more strongly pushes further. This runs the same concepts, cases
and rule (``recprobe.runs.table7_every``) once as the paper does and once per fixed push c, where every basis
moves by -11 c and +9 c: the same distance, so what is left to differ is the direction. Per basis it prints the
pass share with its Wilson interval, the concepts whose +10x reaches 90% and whose -10x reaches 10%, the median
hit share at -10x / 1x / +10x, the share of concepts whose +10x raises their items at all, and the median of each
concept's mean firing value.

Last, the rule once more with each latent pushed along its encoder row (rescaled to its decoder row's norm)
instead of its decoder row: a concept is read from the cases its encoder row picks, so if the trained SAE failed
because its decoder points elsewhere, this would pass more of its concepts; beside it, the median cosine between
the measured concepts' encoder and decoder rows. An untrained SAE's encoder is its decoder (cosine 1), so its row
does not change; the raw dimensions have no encoder rows and are left out.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from recprobe.concepts.cases import SAMPLED_CASES, sampled_cases
from recprobe.runs.run import open_run
from recprobe.runs.table7_every import (
    concepts_kind,
    interpreted_bases,
    measure_basis,
    trained_minus_best_control,
)
from recprobe.steering.table7 import PASS_DOWN, PASS_UP


def summary(found: dict) -> str:
    rows = found["latents"]
    share = found["share"]
    if not rows:
        return f"{0:>4} measured"
    down, unedited, up = (np.array([row[key] for row in rows]) for key in ("down", "unedited", "up"))
    firing = np.median([row["mean_value"] for row in rows])
    return (f"{len(rows):>4} measured {found['passed']:>3} pass {share['mean']:.3f} [{share['low']:.3f}, "
            f"{share['high']:.3f}]  +10x>={PASS_UP} {int((up >= PASS_UP).sum()):>3}  -10x<={PASS_DOWN} "
            f"{int((down <= PASS_DOWN).sum()):>3}  median -10x/1x/+10x {np.median(down):.2f}/{np.median(unedited):.2f}/"
            f"{np.median(up):.2f}  raised {np.mean(up > unedited):.2f}  firing {firing:.2f}")


class AlongEncoder:
    """A basis that encodes as ``basis`` does and is steered along its encoder rows, each at its decoder row's norm."""

    def __init__(self, basis):
        self.basis, self.n_latents = basis, basis.n_latents
        rows, decoder = basis.W_enc.detach().float().T, basis.W_dec.detach().float()
        self.W_dec = rows / rows.norm(dim=1, keepdim=True) * decoder.norm(dim=1, keepdim=True)  # noqa: N815 (the SAE's name)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.basis.encode(x)

    def cosine(self, latents: list[int]) -> float:
        """The median cosine between these latents' encoder and decoder rows (1 for a tied basis)."""
        if not latents:
            return float("nan")
        decoder = self.basis.W_dec[latents].detach().float()
        return float(torch.nn.functional.cosine_similarity(self.W_dec[latents], decoder, dim=1).median())


def report(per_basis: dict, along: dict[str, AlongEncoder] | None = None) -> None:
    for basis, found in per_basis.items():
        cosine = (f"  encoder.decoder cosine {along[basis].cosine([row['latent'] for row in found['latents']]):.2f}"
                  if along else "")
        print(f"  {basis:15s} {summary(found)}{cosine}")
    gap = trained_minus_best_control(per_basis)
    if gap["trained_minus_best_control"] is not None:
        g = gap["trained_minus_best_control"]
        print(f"  trained minus the best control ({gap['best_control']}): {g['mean']:+.3f} "
              f"[{g['low']:+.3f}, {g['high']:+.3f}]: {gap['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--pushes", default="2.5,5", help="fixed pushes c, comma-separated")
    parser.add_argument("--max-cases", type=int, default=SAMPLED_CASES)
    args = parser.parse_args()
    started = time.perf_counter()
    run = open_run(args.run)
    bases = interpreted_bases(run)
    kind = concepts_kind(run, bases)
    cases = sampled_cases(run.split, kind, run.target.max_history, args.max_cases)
    print(f"{run.root}: {len(cases[0]):,} cases ({kind}), bases {', '.join(bases)}")
    for push in [None, *(float(c) for c in args.pushes.split(","))]:
        print(f"\n{'own value z (the paper)' if push is None else f'fixed push c = {push:g}'}")
        report({basis: measure_basis(run, basis, cases, push=push) for basis in bases})
    print("\nown value z, along each latent's encoder row")
    along = {basis: AlongEncoder(run.basis(basis)) for basis in bases if not basis.startswith("raw")}
    report({basis: measure_basis(run, basis, cases, encoder=steered) for basis, steered in along.items()}, along)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
