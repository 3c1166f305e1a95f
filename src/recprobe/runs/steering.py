"""The steering and de-biasing stages of a run folder, written to ``<run>/steering/``:

    steering/latent-<j>.json   one latent's effect at the asked scales, for both kinds of concept items
    steering/table7.json       paper Table 7: the most confident concepts at -10x, 1x, +10x
    steering/table7-every.json its rule over every confident concept, the SAE and its controls (runs/table7_every.py)
    steering/debias.json       popularity-tracking latents rescaled: top-10 popularity, coverage, HR@10 before/after
    steering/debias-sweep.json every de-biasing method over a range of strengths: accuracy and beyond-accuracy
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recprobe.concepts.cases import record_cases
from recprobe.concepts.highlights import Highlights
from recprobe.concepts.interpret import most_confident
from recprobe.errors import ConfigError, RunFolderError
from recprobe.hashing import file_hash
from recprobe.io import write_json
from recprobe.runs.layout import CONCEPTS_FILE
from recprobe.runs.lock import run_lock
from recprobe.runs.options import DebiasOptions, SweepOptions, stage_options
from recprobe.runs.provenance import read_made_from
from recprobe.runs.run import Run, open_run
from recprobe.schemas import Result, Table7Result
from recprobe.steering.debias import DEBIAS_LATENTS, applicable_selections, popularity_latents, top10_report
from recprobe.steering.edit import LatentEdit
from recprobe.steering.effects import LatentEffects
from recprobe.steering.steer import decoder_items, decoder_scores, steering_effect, user_top
from recprobe.steering.sweep import debias_sweep

TABLE7_SCALES = (-10.0, 1.0, 10.0)
MIN_TEST_USERS = 10  # steering is measured over the test users a latent fires on: fewer make a meaningless row
MAX_CONCEPT_SHARE = 0.1  # a concept whose items are more of the catalog is in most top-10s whatever is steered
TABLE7, DEBIAS, DEBIAS_SWEEP = "table7.json", "debias.json", "debias-sweep.json"


def latent_file(latent: int) -> str:
    return f"latent-{latent}.json"


class SteeringRun:
    """A run's target, split, SAE and cases, loaded once. Each result is written under the run's lock and
    records the SAE it was made with."""

    def __init__(self, run: Run | str | Path):
        self.opened = open_run(run)
        self.target, self.split, self.sae = self.opened.target, self.opened.split, self.opened.sae()
        self.cases = self.opened.cases()
        self.folder = self.opened.layout.steering
        self._highlights: Highlights | None = None

    def _write(self, name: str, record: dict[str, Any], command: str) -> None:
        with run_lock(self.opened.root, command):
            write_json(self.folder / name, {**record, "made_from": result_made_from(self.opened, name)})

    @property
    def highlights(self) -> Highlights:
        if self._highlights is None:
            descriptions = {r["latent"]: r.get("description") for r in self.opened.concepts()}
            self._highlights = Highlights(self.cases, self.split.catalog, LatentEffects(self.target, self.sae, self.split),
                                          descriptions)
        return self._highlights

    def concept_items(self, latent: int) -> tuple[str | None, np.ndarray]:
        return self.highlights.concept_items(latent)

    def effect(self, latent: int, scales: Sequence[float]) -> dict[str, Any]:
        """Both variants of concept items: the metadata feature's items and the decoder direction's top items."""
        LatentEdit(latent, scale=1.0).check(self.sae.n_latents)
        feature, items = self.concept_items(latent)
        record: dict[str, Any] = {"latent": latent, "feature": feature,
                                  "metadata": steering_effect(self.target, self.sae, self.split, latent, items, scales)}
        scores = decoder_scores(self.target, self.sae, latent)
        if scores is not None:  # None: the item embeddings are not in the representation's space
            record["decoder"] = steering_effect(self.target, self.sae, self.split, latent, decoder_items(scores), scales)
        return record

    def user_top(self, user: str, edits: Sequence[LatentEdit] = ()) -> list[str]:
        """One user's (raw id) top 10 raw item ids with ``edits`` applied: what `recprobe steer --user` prints and
        the explorer's sliders show. Reads the run, writes nothing."""
        from recprobe.runs.explain import index_of

        items = user_top(self.target, self.sae, self.split, index_of(self.split.user_ids, user, "user"), edits)
        return [str(self.split.item_ids[i]) for i in items]

    def steer(self, latent: int, scales: Sequence[float] | float) -> dict[str, Any]:
        """``recprobe steer --latent``: the latent at each of ``scales`` (and 1x), written to steering/."""
        scales = [scales] if isinstance(scales, numbers.Real) else list(scales)
        for scale in scales:
            LatentEdit(latent, scale=scale).check(self.sae.n_latents)
        record = self.effect(latent, sorted({1.0, *scales}))
        self._write(latent_file(latent), record, "steer")
        return record

    def table7(self, count: int = 3, max_share: float = MAX_CONCEPT_SHARE) -> dict[str, Any]:
        """The ``count`` most confident concepts (from concepts.jsonl; ties broken by AUROC, then by how many
        cases they fire on) whose concept items are at most ``max_share`` of the catalog, each at -10x, 1x, +10x.
        Concepts whose latent fires on most users or whose decoder raises other items are skipped, and listed."""
        records = self.opened.concepts()
        if not most_confident(records):
            raise RunFolderError(f"{self.opened.root} has no interpreted concepts; run `recprobe interpret --run "
                                 f"{self.opened.root}` first")

        def small_concept(latent: int) -> bool:
            items = self.concept_items(latent)[1]
            return 0 < items.sum() <= max_share * self.split.n_items

        one_per_user = self.cases.n_users == self.cases.n_cases  # test cases already: no need to record them
        test_cases = self.cases if one_per_user else record_cases(self.target, self.sae, self.split)
        test_users = test_cases.users_per_latent(self.sae.n_latents)

        def too_few_test_users(latent: int) -> str | None:
            found = int(test_users[latent])
            return (f"fires on {found} test users; steering is measured over the test users it fires on, and fewer than "
                    f"{MIN_TEST_USERS} make no row") if found < MIN_TEST_USERS else None

        chosen, skipped = self.highlights.pick(records, count, keep=small_concept, also=too_few_test_users)
        rows = [{**self.effect(r["latent"], TABLE7_SCALES), "description": r["description"], "confidence": r["confidence"]}
                for r in chosen]
        table = {"max_share": max_share, "scales": list(TABLE7_SCALES), "latents": rows, "skipped": skipped}
        self._write(TABLE7, table, "steer")
        return table

    def table7_every(self) -> dict[str, Any]:
        """Table 7's rule over every confident concept of every interpreted basis, the SAE against its controls
        (``recprobe steer --table7 --every``; ``recprobe.runs.table7_every``)."""
        from recprobe.runs.table7_every import table7_every_run

        return table7_every_run(self.opened)

    def debias(self, options: DebiasOptions | None = None, **fields: Any) -> dict[str, Any]:
        """Scale the ``n_latents`` latents (default ``DEBIAS_LATENTS``, at most the SAE's) whose activation most
        tracks *un*popular predictions by ``niche_scale`` and the ``n_latents`` that most track popular ones by
        ``popular_scale`` (0 ablates, 1 leaves them); ``options`` or its fields by name: ``DebiasOptions``."""
        o = stage_options(DebiasOptions, options, fields)
        n_latents = (min(DEBIAS_LATENTS, self.sae.n_latents) if o.n_latents is None
                     else latent_count(o.n_latents, self.sae.n_latents))
        niche_scale, popular_scale = o.niche_scale, o.popular_scale
        for scale in (niche_scale, popular_scale):
            LatentEdit(0, scale=scale).check(self.sae.n_latents)  # refuse a bad scale even when no latent qualifies
        ranked = popularity_latents(self.cases, self.split.item_popularity(), self.sae.n_latents)
        niche = [(j, rho) for j, rho in ranked[::-1] if rho < 0][:n_latents]
        popular = [(j, rho) for j, rho in ranked if rho > 0][:n_latents]
        edits = [LatentEdit(j, scale=niche_scale) for j, _ in niche] + [LatentEdit(j, scale=popular_scale) for j, _ in popular]
        edits = [edit for edit in edits if edit.scale != 1.0]
        for edit in edits:
            edit.check(self.sae.n_latents)
        report = {"n_latents": n_latents, "niche_scale": niche_scale, "popular_scale": popular_scale,
                  "niche": [{"latent": int(j), "spearman": float(rho)} for j, rho in niche],
                  "popular": [{"latent": int(j), "spearman": float(rho)} for j, rho in popular],
                  "before": top10_report(self.target, self.sae, self.split, []),
                  "after": top10_report(self.target, self.sae, self.split, edits)}
        report["change"] = {key: report["after"][key] / before - 1 if (before := report["before"][key]) else None
                            for key in report["before"]}
        self._write(DEBIAS, report, "debias")
        return report

    def debias_sweep(self, options: SweepOptions | None = None, **fields: Any) -> dict[str, Any]:
        """``recprobe.steering.sweep`` over this run: SAE de-biasing by each selection rule (default: every rule
        that applies to the target) with ``n_latents`` latents (default ``N_LATENTS``, at most half those that
        fire on enough users), its random-latent control, IPR and P-Calibration, one row per method and strength;
        ``options`` or its fields by name: ``SweepOptions``."""
        o = stage_options(SweepOptions, options, fields)
        selections = applicable_selections(self.target) if o.selections is None else o.selections
        given = None if o.n_latents is None else latent_count(o.n_latents, self.sae.n_latents)
        result = debias_sweep(self.target, self.sae, self.split, self.cases, selections=selections,
                              strengths=o.strengths, n_latents=given, seeds=o.seeds)
        self._write(DEBIAS_SWEEP, result, "debias")
        return result


def latent_count(given: int, available: int) -> int:
    """The count of latents de-biasing edits, as given: from 1 to the SAE's size."""
    if not 1 <= given <= available:
        raise ConfigError(f"--latents {given}: give a count from 1 to {available}, the SAE's number of latents")
    return given


def result_made_from(run: Run, name: str) -> dict[str, str]:
    """What a steering result is made from: the recommender, dataset, SAE and cases; Table 7 also the concepts
    it picked from (a new interpretation makes it stale)."""
    made_from = run.cases_made_from()
    if name == TABLE7:
        concepts = run.layout.concepts() / CONCEPTS_FILE
        made_from["concepts"] = file_hash(concepts) if concepts.is_file() else "none"
    return made_from


def read_result(run: Run, name: str, rebuild: str) -> dict[str, Any] | None:
    """A steering result of the run, None when absent; refused when made with another SAE, cases or (Table 7)
    concepts."""
    schema = Table7Result if name == TABLE7 else Result
    return read_made_from(run.layout.steering / name, result_made_from(run, name), f"{rebuild} --run {run.root}", schema)
