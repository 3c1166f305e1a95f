"""Table 7 over every confident concept of every interpreted basis of a run (``recprobe steer --table7 --every``),
written to ``<run>/steering/table7-every.json``: per basis, how many of its concepts at C >= 0.8 pass the
paper's steering rule (``recprobe.steering.table7``), with a Wilson 95% interval, and the trained SAE's share
minus the best control's with Newcombe's interval. One rule for every basis, on the same cases: those the
concepts were read from (each test user at test time, or every position of the sequences), a seeded sample of
at most ``max_cases``. A concept is measured when it names items (at most ``max_share`` of the catalog) and its
latent fires on cases of at least ``MIN_TEST_USERS`` users; the others are counted by reason, not dropped
silently. Beside each measured concept, its output grounding: whether the 20 items its decoder direction raises
most carry the concept more often than the catalog does (a random direction's expectation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recprobe.concepts.cases import SAMPLED_CASES, CaseKind, sampled_cases
from recprobe.concepts.highlights import Highlights
from recprobe.concepts.records import read_records
from recprobe.concepts.similarity import CONFIDENT
from recprobe.errors import ConfigError, RunFolderError
from recprobe.hashing import file_hash
from recprobe.io import read_json, write_json
from recprobe.runs.layout import BASES, CONCEPTS_FILE, SETTINGS, SUMMARY
from recprobe.runs.lock import locked
from recprobe.runs.provenance import read_made_from
from recprobe.runs.run import Run, open_run
from recprobe.runs.steering import MAX_CONCEPT_SHARE, MIN_TEST_USERS
from recprobe.schemas import ConceptSettings, read_checked
from recprobe.stats import excludes_zero, proportion, proportion_gap
from recprobe.steering.effects import LatentEffects
from recprobe.steering.table7 import DOWN, UP, concept_hits, passes

TABLE7_EVERY = "table7-every.json"
MIN_CONFIDENCE = CONFIDENT
REBUILD = "recprobe steer --table7 --every"


def interpreted_bases(run: Run) -> list[str]:
    """The bases whose concepts folder (the default one) is finished."""
    return [basis for basis in BASES if (run.layout.concepts(basis=basis) / SUMMARY).is_file()]


def made_from(run: Run, bases: Sequence[str]) -> dict[str, str]:
    """The run's SAE, each basis's concepts and the kind of cases steered: a new SAE or interpretation makes the
    table stale. (A table from before it steered the concepts' own cases lacks the kind and says so: its
    cases were each test user's at test time.)"""
    found = {**run.cases_made_from(), "steered_cases": "/".join(sorted(set(concept_kinds(run, bases).values())))}
    for basis in bases:
        concepts = run.layout.concepts(basis=basis) / CONCEPTS_FILE
        found[f"concepts-{basis}"] = file_hash(concepts) if concepts.is_file() else "none"
    return found


def concept_kinds(run: Run, bases: Sequence[str]) -> dict[str, str]:
    """The kind of cases each basis's concepts were read from ("none" for a basis not interpreted)."""
    kinds = {}
    for basis in bases:
        folder = run.layout.concepts(basis=basis)
        kinds[basis] = (read_checked(folder / SETTINGS, ConceptSettings, run.interpret_command(folder, basis))["cases"]
                        if (folder / SETTINGS).is_file() else "none")
    return kinds


def concepts_kind(run: Run, bases: Sequence[str]) -> CaseKind:
    """The kind of cases the bases' concepts were read from: one for all of them, or a comparison of unlike cases."""
    kinds = concept_kinds(run, bases)
    if len(set(kinds.values())) > 1:
        raise RunFolderError(f"{run.root}: the bases' concepts were read from different cases "
                             f"({', '.join(f'{b}: {k}' for b, k in kinds.items())}); interpret every basis with the same "
                             "--cases (`recprobe interpret --run RUN --basis B --cases K --overwrite`)")
    return next(iter(kinds.values()))


def measure_basis(run: Run, basis: str, cases: tuple[np.ndarray, np.ndarray], max_share: float = MAX_CONCEPT_SHARE,
                  push: float | None = None, encoder=None) -> dict[str, Any]:
    """Every confident concept of one basis through Table 7's rule, over ``cases`` (users, positions); ``push``:
    see ``recprobe.steering.table7.concept_hits``; ``encoder``: what encodes and steers instead of the basis
    itself (a diagnostic's variant of it, such as one pushed along other directions)."""
    folder = run.layout.concepts(basis=basis)
    confident = [r for r in run.concepts(folder) if (r.get("confidence") or 0) >= MIN_CONFIDENCE]
    encoder = run.basis(basis) if encoder is None else encoder
    highlights = Highlights(run.cases(folder, basis=basis), run.split.catalog, LatentEffects(run.target, encoder, run.split),
                            {r["latent"]: r.get("description") for r in confident})
    unmeasured: Counter[str] = Counter()
    items = {}
    for record in confident:
        feature, mask = highlights.concept_items(record["latent"])
        if not mask.any():
            unmeasured["names no items"] += 1
        elif mask.sum() > max_share * run.split.n_items:
            unmeasured[f"its items are over {max_share:.0%} of the catalog"] += 1
        else:
            items[record["latent"]] = mask
    hits = concept_hits(run.target, encoder, run.split, items, cases, push)
    rows = []
    for record in confident:
        found = hits.get(record["latent"])
        if found is None:
            continue
        if found["n_users"] < MIN_TEST_USERS:
            unmeasured[f"fires on cases of fewer than {MIN_TEST_USERS} users"] += 1
            continue
        decoder_share, catalog_share = highlights.decoder_shares(record["latent"], items[record["latent"]])
        rows.append({"latent": record["latent"], "description": record.get("description"),
                     "confidence": record["confidence"], **found, "passes": passes(found["down"], found["up"]),
                     "decoder_share": decoder_share, "catalog_share": catalog_share})
    passed = sum(row["passes"] for row in rows)
    grounded = sum(row["decoder_share"] > row["catalog_share"] for row in rows)
    return {"confident": len(confident), "measured": len(rows), "passed": passed, "share": proportion(passed, len(rows)),
            "grounded": grounded, "grounded_share": proportion(grounded, len(rows)), "unmeasured": dict(unmeasured),
            "latents": rows}


@locked("steer")
def table7_every_run(run: Run | str | Path, bases: Sequence[str] | None = None,
                     max_cases: int = SAMPLED_CASES) -> dict[str, Any]:
    """Table 7's rule over every confident concept of each basis (default: every interpreted one), on the cases
    their concepts were read from (at most ``max_cases`` of them, a seeded sample shared by every basis)."""
    if max_cases < 1:
        raise ConfigError(f"--max-cases: give at least 1 case to steer, got {max_cases}")
    run = open_run(run)
    bases = list(bases or interpreted_bases(run))
    if "sae" not in bases or len(bases) < 2:
        raise RunFolderError(f"{run.root}: Table 7 over every concept needs the SAE's concepts and at least one control's "
                             f"(interpreted: {', '.join(bases) or 'none'}); run `recprobe interpret --run {run.root}` and "
                             f"`recprobe interpret --run {run.root} --basis untrained` (or raw, frozen-decoder, "
                             "frozen-encoder) first")
    kind = concepts_kind(run, bases)
    cases = sampled_cases(run.split, kind, run.target.max_history, max_cases)
    per_basis = {basis: measure_basis(run, basis, cases) for basis in bases}
    result = {"scales": [DOWN, UP], "min_confidence": MIN_CONFIDENCE, "max_share": MAX_CONCEPT_SHARE,
              "min_users": MIN_TEST_USERS, "cases": kind, "n_cases": len(cases[0]), "max_cases": max_cases,
              "bases": per_basis, **trained_minus_best_control(per_basis),
              "grounded": trained_minus_best_control(per_basis, "grounded_share")}
    write_json(run.layout.steering / TABLE7_EVERY, {**result, "made_from": made_from(run, bases)})
    return result


def trained_minus_best_control(per_basis: dict[str, dict[str, Any]], share: str = "share") -> dict[str, Any]:
    """The SAE's ``share`` (the pass share, or ``grounded_share``) minus that of the control with the highest one,
    and whether its interval excludes 0."""
    controls = {basis: found[share] for basis, found in per_basis.items() if basis != "sae" and found["measured"]}
    if not controls or not per_basis["sae"]["measured"]:
        return {"best_control": None, "trained_minus_best_control": None, "verdict": "not measurable"}
    best = max(controls, key=lambda basis: controls[basis]["mean"])
    gap = proportion_gap(per_basis["sae"][share], controls[best])
    verdict = ("trained ahead" if gap["low"] > 0 else "control ahead") if excludes_zero(gap) else "no difference"
    return {"best_control": best, "trained_minus_best_control": gap, "verdict": verdict}


def verdict_lines(found: dict[str, Any]) -> list[str]:
    """The table's two verdicts in words, pass share and decoder grounding, as the CLI, quickstart and report say
    them (a table from before grounding has only the first)."""
    lines = []
    for name, verdict in (("pass share", found), ("decoder grounded", found.get("grounded"))):
        if verdict is None:
            continue
        gap = verdict["trained_minus_best_control"]
        lines.append(f"{name}: no control measurable, nothing to compare" if gap is None else
                     f"{name}, trained minus the best control ({verdict['best_control']}): {gap['mean']:+.3f} "
                     f"[{gap['low']:+.3f}, {gap['high']:+.3f}]: {verdict['verdict']}")
    return lines


def missing_controls(found: dict[str, Any]) -> list[str]:
    """The controls a table left out."""
    return [basis for basis in BASES if basis != "sae" and basis not in found["bases"]]


def read_table7_every(run: Run) -> dict[str, Any] | None:
    """The run's table, None when absent; refused when made from another SAE or other concepts, and when a basis's
    concepts file has damaged lines (its hash no longer matches the table's, but the table is not what is wrong)."""
    path = run.layout.steering / TABLE7_EVERY
    if not path.is_file():
        return None
    bases = list(read_json(path).get("bases", {}))
    for basis in bases:
        folder = run.layout.concepts(basis=basis)
        damaged = len(read_records(folder).damaged)
        if damaged:
            raise RunFolderError(f"{folder / CONCEPTS_FILE} has {damaged} damaged line(s), so {TABLE7_EVERY}, made from "
                                 f"it, cannot be checked; `{run.interpret_command(folder, basis, overwrite=False)}` "
                                 "moves them aside and completes it")
    return read_made_from(path, made_from(run, bases), f"{REBUILD} --run {run.root}")
