"""``recprobe compare``: every basis of a run against its controls, over seeds, on the same cases and labels
(``<run>/compare.json``).

Bases, per seed ``s`` of the ladder (``recprobe.runs.ladder``): each architecture's trained SAE; its controls,
the same SAE untrained (seed ``s``, never trained), with a frozen decoder and with a frozen encoder; and the
raw dimensions. The seed also draws which users are held out, so every interval covers both the SAE's seed
and the data's. Families of metrics (``recprobe.concepts.probing``, ``recprobe.concepts.grounding``):

- ``probing/<labels>@k<k>``: k-sparse probing AUROC on held-out users. Labels: ``history`` (an attribute value
  among the case's shown history: broad), ``current`` (the item at this position), ``next`` (the item the user
  took next), ``predicted`` (the model's top-1 there): narrow; ``current-item``, ``next-item``,
  ``predicted-item``: that item itself, one label per item among the 100 most frequent there: the narrowest;
  ``user`` (the user's own attributes). With every-position cases, also ``pooled-history`` and
  ``pooled-user``: each user's cases averaged into one row;
- ``output/concentration``, ``steering/success``, ``steering/shift``: each ``predicted`` label's best direction
  pushed through the model's ``score()``;
- ``hard_negatives/hard`` and ``hard_negatives/random``: each ``history`` label's best direction on held-out
  users' cases, against the nearest non-firing cases of the same time window, and against random ones;
  ``hard_negatives/current-item-hard`` and ``-random``: the same for each ``current-item`` label.

Each metric's ``trained_minus_best_control`` is, per seed, a trained SAE's value minus the highest value of every
control (the raw dimensions, random directions, and every architecture's untrained and frozen SAEs),
summarised over seeds, for the architecture whose mean gap is largest (``gaps`` holds every architecture's):
training found something only where its interval excludes 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recprobe.batches import phase_batches
from recprobe.concepts.attributes import (
    item_identity,
    item_names,
    item_value_matrix,
    items_carry,
    scorable,
    user_labels,
)
from recprobe.concepts.cases import SAMPLED_CASES, case_batches, case_times, sampled_cases, shown_history
from recprobe.concepts.grounding import (
    best_directions,
    hard_negative_gaps,
    push,
    random_directions,
    time_windows,
)
from recprobe.concepts.probing import KS, held_out_users, k_sparse_probe, pool_by_user
from recprobe.errors import RunFolderError
from recprobe.io import write_json
from recprobe.progress import stage_bar
from recprobe.runs.ladder import Rung, ladder_hash, load_rung, trained_rungs
from recprobe.runs.lock import locked
from recprobe.runs.provenance import read_made_from
from recprobe.runs.run import Run, open_run
from recprobe.sae.train import initial_sae
from recprobe.stats import excludes_zero, interval

PUSH_USERS = 256  # users whose representations are pushed for the output and steering metrics
RAW, RANDOM = "raw", "random-direction"
POOLED = ("history", "user")  # the label families also probed per user, pooled over the user's cases
HARD_NEGATIVE_FAMILIES = {"history": "", "current-item": "current-item-"}  # label family -> metric name prefix
MIN_SCORED_LABELS = 10  # a hard-negative metric over fewer scorable labels is left unscored, not a mean of a few


@dataclass
class Basis:
    name: str
    arch: str | None  # None for the raw dimensions
    role: str  # "trained" or "control"
    features: Callable[[torch.Tensor], np.ndarray]  # representations [n, d] -> [n, D]
    directions: Callable[[np.ndarray], torch.Tensor]  # columns [L] -> their directions [L, d] in representation space


def sae_basis(name: str, arch: str, role: str, sae) -> Basis:
    return Basis(name, arch, role, lambda reps: sae.dense_latents(reps).detach().numpy(),
                 lambda columns: sae.W_dec.detach()[torch.from_numpy(columns)])


def raw_basis(d: int) -> Basis:
    return Basis(RAW, None, "control", lambda reps: reps.numpy(), lambda columns: torch.eye(d)[torch.from_numpy(columns)])


@dataclass
class Cases:
    """The sampled cases: who, their representations, and the labels of each family."""

    kind: str
    users: np.ndarray
    positions: np.ndarray  # [n] how many of the user's items come before each case
    windows: np.ndarray  # [n] the time window of each case (``grounding.time_windows``)
    reps: torch.Tensor
    labels: dict[str, tuple[list[str], np.ndarray]]  # family -> (names, [n, L] bool)
    carriers: np.ndarray  # [n_items, L] which items carry each ``predicted`` label


@torch.no_grad()
def sample_cases(run: Run, max_cases: int = SAMPLED_CASES, seed: int = 0) -> Cases:
    """Every position of a sequential target's sequences (each user at test time for a general one), a seeded
    sample of at most ``max_cases``, with their representations and label families."""
    target, split = run.target, run.split
    kind = "all" if target.max_history else "test"
    users, positions = sampled_cases(split, kind, target.max_history, max_cases, seed)
    reps, predicted = zip(*case_batches(target, split, users, positions), strict=True)
    names, per_item = item_value_matrix(split.catalog)
    offsets, items = split.sequences("test")
    following = split.test_items[users].copy()  # after the whole train-then-dev sequence: the test item
    inside = positions < np.diff(offsets)[users]
    following[inside] = items[offsets[users[inside]] + positions[inside]]
    history = shown_history(split, users, positions)
    current = items[offsets[users] + positions - 1]  # the last item before the case (every case has one)
    top1 = np.concatenate(predicted)  # the model's top-1 item at each case
    families = {"history": items_carry(history, per_item), "current": items_carry(current, per_item),
                "next": items_carry(following, per_item), "predicted": items_carry(top1, per_item)}
    labels = {family: (names, hot) for family, hot in families.items()}
    named = item_names(split.catalog, split.item_ids)
    for family, which in (("current", current), ("next", following), ("predicted", top1)):
        labels[f"{family}-item"] = item_identity(which, named)
    user_names, user_hot = user_labels(users, split.user_attributes)
    if user_names:
        labels["user"] = (user_names, user_hot)
    kept = {family: scorable(hot) for family, (_, hot) in labels.items()}
    labels = {family: ([n for n, k in zip(names_, kept[family], strict=True) if k], hot[:, kept[family]])
              for family, (names_, hot) in labels.items()}
    windows = time_windows(case_times(split, users, positions))
    return Cases(kind, users, positions, windows, torch.cat(reps), labels, per_item[:, kept["predicted"]])


def bases_for_seed(run: Run, rungs: list[Rung], seed: int) -> list[Basis]:
    """Raw dimensions, then per architecture its trained SAE and controls of this seed (those in the ladder)."""
    store = run.activations()
    out = [raw_basis(run.target.d_model)]
    for arch in sorted({r.arch for r in rungs if r.seed == seed}, key=lambda a: (a != "topk", a)):
        mine = {r.variant: r for r in rungs if r.seed == seed and r.arch == arch}
        if "trained" not in mine:
            continue
        trained = load_rung(run, mine["trained"])
        out.append(sae_basis(arch, arch, "trained", trained))
        untrained = initial_sae(store, trained.config).eval()
        out.append(sae_basis(f"{arch}/untrained", arch, "control", untrained))
        for variant in ("frozen-decoder", "frozen-encoder"):
            if variant in mine:
                out.append(sae_basis(f"{arch}/{variant}", arch, "control", load_rung(run, mine[variant])))
    return out


def measure(basis: Basis, cases: Cases, run: Run, seed: int, ks=KS) -> dict[str, float]:
    """Every metric of one basis for one seed."""
    test = held_out_users(cases.users, seed=seed)
    features = basis.features(cases.reps)
    out: dict[str, float] = {}
    for family, (_, labels) in cases.labels.items():
        for k, auc in k_sparse_probe(features, labels, test, ks).items():
            out[f"probing/{family}@k{k}"] = finite_mean(auc)
        if cases.kind == "all" and family in POOLED:
            pooled, held, users = pool_by_user(features, labels, cases.users)
            kept = scorable(held)
            for k, auc in k_sparse_probe(pooled, held[:, kept], held_out_users(users, seed=seed), ks).items():
                out[f"probing/pooled-{family}@k{k}"] = finite_mean(auc)
    out |= grounded(basis, features, cases, run, test, seed)
    return out


def grounded(basis: Basis | None, features: np.ndarray | None, cases: Cases, run: Run, test: np.ndarray,
             seed: int) -> dict[str, float]:
    """The output, steering and hard-negative metrics of ``basis`` (its ``features`` of the cases); with
    ``basis`` None, the output and steering metrics of seeded random directions."""
    out: dict[str, float] = {}
    names, predicted = cases.labels["predicted"]
    if names:
        if basis is None:
            directions = random_directions(len(names), cases.reps.shape[1], seed)
        else:
            chosen = best_directions(features, predicted, ~test)
            directions = basis.directions(chosen.columns) * torch.from_numpy(chosen.signs).float()[:, None]
        split = run.split
        sample = np.random.default_rng(seed).choice(split.n_users, min(PUSH_USERS, split.n_users), replace=False)
        batch = phase_batches(split, "test", run.target.max_history)(np.sort(sample))
        reps = run.target.represent(batch).float()
        pushes = push(run.target, batch, reps, directions, cases.carriers)
        out |= {"output/concentration": float(pushes.concentration.mean()),
                "steering/success": float(pushes.success.mean()),
                "steering/shift": float((pushes.raised_share - pushes.lowered_share).mean())}
    for family, prefix in HARD_NEGATIVE_FAMILIES.items():
        names, labels = cases.labels.get(family, ([], None))
        if names and basis is not None:
            hard, random = hard_negatives(features, labels, cases, test, seed)
            out |= {f"hard_negatives/{prefix}hard": scored_mean(hard),
                    f"hard_negatives/{prefix}random": scored_mean(random)}
    return out


def hard_negatives(features: np.ndarray, labels: np.ndarray, cases: Cases, test: np.ndarray,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label, its best direction (chosen on the training users) against hard and random negatives on the
    ``test`` users' cases (``grounding.hard_negative_gaps``)."""
    chosen = best_directions(features, labels, ~test)
    scores = features[test][:, chosen.columns] * chosen.signs
    return hard_negative_gaps(scores, labels[test], cases.reps[test].numpy(), cases.users[test], seed,
                              cases.windows[test])


def finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values; NaN (left out of the intervals) when there is none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def scored_mean(values: np.ndarray) -> float:
    """The mean over the labels that could be scored (finite), NaN when fewer than ``MIN_SCORED_LABELS`` could: on
    a large catalog few items are the current one of enough held-out users among the sampled cases, and a mean of
    one or two labels says nothing about a basis (``--max-cases`` raises the sample)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) >= MIN_SCORED_LABELS else float("nan")


def summarise(per_seed: list[dict[str, dict[str, float]]], roles: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    """metric -> basis -> interval over seeds, plus each architecture's gap to the best of all controls (per
    seed) and the largest of those gaps as ``trained_minus_best_control``."""
    metrics: dict[str, Any] = {}
    names = sorted({m for seed in per_seed for values in seed.values() for m in values})
    for metric in names:
        entry: dict[str, Any] = {}
        for basis in roles:
            values = [seed[basis][metric] for seed in per_seed if metric in seed.get(basis, {})]
            if values:
                entry[basis] = interval(values)
        gaps = {}
        controls = [b for b, (role, _) in roles.items() if role == "control"]  # every control, of every arch
        for arch in sorted({a for role, a in roles.values() if role == "trained"}):
            differences = []
            for seed in per_seed:
                found = [seed[b][metric] for b in controls if np.isfinite(seed.get(b, {}).get(metric, np.nan))]
                if np.isfinite(seed.get(arch, {}).get(metric, np.nan)) and found:  # controls measurable this seed
                    differences.append(seed[arch][metric] - max(found))
            if differences:
                gaps[arch] = interval(differences)
        if gaps:
            best = max(gaps, key=lambda a: gaps[a]["mean"])  # the architecture that gains most over the controls
            entry["trained_minus_best_control"] = {**gaps[best], "arch": best,
                                                   "excludes_zero": excludes_zero(gaps[best])}
            entry["gaps"] = {arch: {**gap, "excludes_zero": excludes_zero(gap)} for arch, gap in gaps.items()}
        metrics[metric] = entry
    return metrics


def verdict(gap: dict[str, Any]) -> str:
    if gap["excludes_zero"]:
        return "trained ahead" if gap["mean"] > 0 else "control ahead"
    return "no difference shown"


def headline(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per metric with a gap: the best trained architecture's mean, the control with the highest mean, the gap
    (trained minus the best control per seed) with its interval, and the verdict; what `compare` prints and the
    report shows."""
    rows = []
    for metric, entry in result["metrics"].items():
        gap = entry.get("trained_minus_best_control")
        if gap is None or gap["mean"] is None:
            continue
        controls = {b: v for b, v in entry.items() if result["bases"].get(b, {}).get("role") == "control"
                    and isinstance(v, dict) and v.get("mean") is not None}
        best = max(controls, key=lambda b: controls[b]["mean"]) if controls else None
        rows.append({"metric": metric, "arch": gap["arch"], "trained": entry[gap["arch"]]["mean"], "control": best,
                     "control_mean": controls[best]["mean"] if best else None, "gap": gap, "verdict": verdict(gap)})
    return rows


def compare_made_from(run: Run) -> dict[str, str]:
    """What a comparison is made from: the run's recommender and data, its activations and every SAE of its ladder."""
    return {**run.made_from(), "activations": run.activations().content, "saes": ladder_hash(run)}


def read_compare(run: Run) -> dict[str, Any] | None:
    """The run's compare.json (None when absent), refused when made from other activations or another ladder."""
    return read_made_from(run.layout.compare, compare_made_from(run), f"recprobe compare --run {run.root}")


@locked("compare")
def compare_run(run: Run | str | Path, *, max_cases: int = SAMPLED_CASES, ks=KS,
                on_seed: Callable[[int, list[str]], None] | None = None, progress: bool = True) -> dict[str, Any]:
    """Measure every basis of the ladder on every seed and write ``<run>/compare.json``; returns what it wrote."""
    run = open_run(run)
    rungs = trained_rungs(run.layout.saes)
    if not rungs:
        raise RunFolderError(f"{run.root} has no SAE ladder to compare; train one with "
                             f"`recprobe train-sae --run {run.root} --seeds 5`")
    started = time.perf_counter()
    cases = sample_cases(run, max_cases)
    seeds = sorted({r.seed for r in rungs})
    per_seed, roles = [], {}
    with stage_bar(progress) as bar:
        task = bar.add_task("compare", total=len(seeds), unit="seeds")
        for seed in seeds:
            values = {}
            for basis in bases_for_seed(run, rungs, seed):
                bar.update(task, description=f"compare: seed {seed}, {basis.name}")
                roles[basis.name] = (basis.role, basis.arch)
                values[basis.name] = measure(basis, cases, run, seed, ks)
            roles[RANDOM] = ("control", None)
            values[RANDOM] = grounded(None, None, cases, run, held_out_users(cases.users, seed=seed), seed)
            per_seed.append(values)
            bar.advance(task)
            if on_seed is not None:
                on_seed(seed, list(values))
    result = {"metrics": summarise(per_seed, roles), "seeds": seeds, "cases": {"kind": cases.kind, "n": len(cases.users)},
              "labels": {family: len(names) for family, (names, _) in cases.labels.items()},
              "bases": {name: {"role": role, "arch": arch} for name, (role, arch) in roles.items()},
              "ks": list(ks), "made_from": compare_made_from(run),
              "seconds": round(time.perf_counter() - started, 1)}
    write_json(run.layout.compare, result)
    return result
