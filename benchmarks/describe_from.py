"""Does a latent described by what the model does steer better? Table 7 over every concept, with the metadata
describer counting other items than each case's history.

    recprobe quickstart --out runs/qs
    recprobe interpret --run runs/qs --basis frozen-decoder && recprobe interpret --run runs/qs --basis frozen-encoder
    python benchmarks/describe_from.py runs/qs --items history predictions both decoder

For each choice, RUN is copied to RUN-describe-CHOICE (RUN itself is never written; an earlier copy is replaced),
every basis RUN has interpreted is interpreted again there with the same kind of cases, and Table 7's rule runs
over every confident concept (``recprobe steer --table7 --every``). What the describer counts, per choice:

- ``history``: each case's shown history and the model's top-1 item (recprobe's default, the paper's case text);
- ``predictions``: the model's top 10 at each case, the history's items masked;
- ``both``: the two together;
- ``decoder``: no case at all: the 20 items the latent's decoder direction raises most, against the catalog (an
  output-centric description, as Gur-Arieh et al. 2025 propose for LLM SAEs);
- ``decades``: the default's items, with an integer attribute of many values (a release year) cut into decades
  as the attribute metrics cut it, for the describer and for Table 7's concept items alike ("release_year:
  1940-1949" names the 1940s' films, not 1946's).

The verifier and the confidence C stay as they are (the case's history and top-1), so a description must still
predict where its latent fires. Prints, per choice and basis, the concepts at C >= 0.8, those measured, those
that pass, the pass share with its Wilson interval, and the trained SAE minus the best control.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

import recprobe.concepts.highlights as highlights
import recprobe.concepts.interpret as interpret
import recprobe.concepts.labelers as labelers
from recprobe.concepts.attributes import bucketed
from recprobe.concepts.cases import CaseSet, case_rows, ranked_cases
from recprobe.concepts.labelers import MetadataDescriber, item_features, log_odds
from recprobe.runs.interpret import interpret_run
from recprobe.runs.options import InterpretOptions
from recprobe.runs.run import Run, open_run
from recprobe.runs.table7_every import concepts_kind, interpreted_bases, table7_every_run
from recprobe.steering.effects import LatentEffects
from recprobe.steering.steer import top_items

CHOICES = ("history", "predictions", "both", "decoder", "decades")
PREDICTED = 10
DECODER_ITEMS = 20


@torch.no_grad()
def top_predictions(run: Run, cases: CaseSet, n: int = PREDICTED) -> np.ndarray:
    """[len(cases), n] the model's top n items at each case, the history's items masked."""
    users, positions = cases.users, cases.positions
    if positions is None:  # one case per test user, at test time
        test_users, test_positions = case_rows(run.split, "test", run.target.max_history).rows()
        positions = test_positions[np.searchsorted(test_users, users)]
    order = np.lexsort((positions, users))
    top = np.empty((len(cases), n), dtype=np.int64)
    for chunk, batch, seen in ranked_cases(run.target, run.split, users[order], positions[order]):
        top[order[chunk]] = top_items(run.target, run.target.represent(batch).float(), batch, seen, n).numpy()
    return top


def predictions_describer(run: Run, with_history: bool) -> type[MetadataDescriber]:
    class PredictionsDescriber(MetadataDescriber):
        def case_items(self, cases: CaseSet, rows: np.ndarray) -> np.ndarray:
            if not hasattr(self, "_top"):
                self._top = top_predictions(run, cases)
            predicted = self._top[rows].ravel()
            return np.concatenate([MetadataDescriber.case_items(cases, rows), predicted]) if with_history else predicted
    return PredictionsDescriber


def decoder_describer(run: Run, basis: str) -> type[MetadataDescriber]:
    effects = LatentEffects(run.target, run.basis(basis), run.split)

    class DecoderDescriber(MetadataDescriber):
        def contrasted(self, latent: int, rows: list[int]) -> list[tuple[str, float]]:
            if not hasattr(self, "_catalog_counts"):
                self._catalog_counts = Counter()
                for item in range(len(self.catalog)):
                    self._catalog_counts.update(item_features(self.catalog, item))
            focus: Counter = Counter()
            for item in effects.items(latent).topk(DECODER_ITEMS).indices.tolist():
                focus.update(item_features(self.catalog, item))
            scores = log_odds(focus, self._catalog_counts)
            return sorted(((f, s) for f, s in scores.items() if s > 0), key=lambda fs: (-fs[1], fs[0]))
    return DecoderDescriber


@contextmanager
def describing_with(describer: type[MetadataDescriber]) -> Iterator[None]:
    """The metadata describer the interpret stage and Table 7's highlights build, for the block's duration."""
    saved = interpret.MetadataDescriber, highlights.MetadataDescriber
    interpret.MetadataDescriber = highlights.MetadataDescriber = describer
    try:
        yield
    finally:
        interpret.MetadataDescriber, highlights.MetadataDescriber = saved


@contextmanager
def years_in_decades(catalog) -> Iterator[None]:
    """Every item's attribute values as the attribute metrics read them (``recprobe.concepts.attributes.bucketed``:
    an integer attribute of more than ``MAX_VALUES`` values cut into decades), wherever the describer and Table 7
    read an item's features, for the block's duration."""
    distinct: dict[str, set[str]] = {}
    for attributes in catalog.attributes:
        for name, values in attributes.items():
            distinct.setdefault(name, set()).update(values)
    read_as = {f"{name}: {value}": f"{name}: {cut}" for name, values in distinct.items()
               for value, cut in zip(sorted(values), bucketed(sorted(values)), strict=True)}
    saved = labelers.item_features
    labelers.item_features = lambda catalog, item: {read_as.get(f, f) for f in saved(catalog, item)}
    try:
        yield
    finally:
        labelers.item_features = saved


def describer_for(run: Run, choice: str, basis: str) -> type[MetadataDescriber]:
    if choice == "decoder":
        return decoder_describer(run, basis)
    if choice in ("history", "decades"):
        return MetadataDescriber
    return predictions_describer(run, with_history=choice == "both")


def measure(source: Path, choice: str) -> dict:
    copy = source.with_name(f"{source.name}-describe-{choice}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    run = open_run(copy)
    bases = interpreted_bases(run)
    kind = concepts_kind(run, bases)
    with years_in_decades(run.split.catalog) if choice == "decades" else nullcontext():
        for basis in bases:
            with describing_with(describer_for(run, choice, basis)):
                interpret_run(run, InterpretOptions(basis=basis, cases=kind, overwrite=True), progress=False)
        # Table 7 falls back to the describer's most enriched attribute where a description names none: the
        # cases' items of this choice (their history for ``decoder``, which reads no case)
        with describing_with(describer_for(run, "history" if choice == "decoder" else choice, "sae")):
            return table7_every_run(run, bases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--items", nargs="+", choices=CHOICES, default=list(CHOICES))
    args = parser.parse_args()
    for choice in args.items:
        start = time.perf_counter()
        result = measure(args.run, choice)
        print(f"\n{choice} ({time.perf_counter() - start:.0f} s)")
        for basis, found in result["bases"].items():
            share = found["share"]
            print(f"  {basis:<15} {found['confident']:>4} at C >= 0.8 {found['measured']:>4} measured "
                  f"{found['passed']:>3} pass {share['mean']:.3f} [{share['low']:.3f}, {share['high']:.3f}]")
        gap = result["trained_minus_best_control"]
        print(f"  trained minus the best control ({result['best_control']}): {gap['mean']:+.3f} "
              f"[{gap['low']:+.3f}, {gap['high']:+.3f}]: {result['verdict']}")


if __name__ == "__main__":
    main()
