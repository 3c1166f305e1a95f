"""Cases: what a describer and a verifier see, and what the SAE did with it.

A case is a user's history up to some position of their sequence (at most ``SHOWN_HISTORY`` items shown, oldest
first), the original model's top-1 prediction there (the history's items masked) and the SAE's activations on
the representation, kept sparse as the k (value, latent) pairs TopK chose. Two kinds of case sets:

- ``test``: one case per user, at test time (the paper's);
- ``all``: for sequential targets, a case at every position of every user's train-then-dev sequence that has
  a history (the test case is the last), as many as the vectors the SAE was trained on.

Levels turn activations into the 0-10 scale prompts use; per latent, ``sample_latent`` draws disjoint
construction, verification and non-activated cases, each from a distinct user.

Past a budget (``concepts.budget``), a case set keeps each latent's strongest cases and a uniform reservoir
instead of every case, with the counts that need every case (``population``); negatives, backgrounds and
AUROCs are then drawn from the reservoir (``uniform_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from recprobe.batches import PositionPlan, position_batches
from recprobe.concepts.budget import BudgetedRecorder, CaseBudget, Population
from recprobe.data.split import Split, last_window
from recprobe.errors import ConfigError
from recprobe.io import atomic_write
from recprobe.parallel import DataParallel
from recprobe.ranking.metrics import SeenItems, scored_batch_size, seen_prefix
from recprobe.target import Batch, ProbeTarget

SHOWN_HISTORY = 9
LevelMode = Literal["max", "quantile"]
CaseKind = Literal["test", "all"]
SAMPLED_CASES = 10_000  # cases a sampling stage draws once (seeded) and measures every basis on
CASE_KINDS = ("auto", "test", "all")
PLAN_BATCHES = 64  # case recording reads its plan this many batches at a time


@dataclass
class CaseSet:
    users: np.ndarray  # [n] int64 user index (a user has several cases in an ``all`` set)
    history: np.ndarray  # [n, SHOWN_HISTORY] int64 items, oldest first, padded with -1
    predicted: np.ndarray  # [n] int64: the original model's top-1 item, seen items masked
    values: np.ndarray  # [n, k] float32 latent values (0 = chosen by TopK but not fired)
    indices: np.ndarray  # [n, k] int64 latent ids
    positions: np.ndarray | None = None  # [n] int64 items of the user's test-time sequence before the case
    made_from: dict[str, str] = field(default_factory=dict)  # the recommender, dataset and SAE, as fingerprints
    uniform: np.ndarray | None = None  # [n] bool: the reservoir's rows, when a budget kept only some cases
    population: Population | None = None  # every recorded case's counts, when a budget kept only some

    def __len__(self) -> int:
        return len(self.users)

    @property
    def complete(self) -> bool:
        """Whether every recorded case is here (no budget was reached)."""
        return self.population is None

    @property
    def n_cases(self) -> int:
        """How many cases were recorded (more than ``len`` when a budget kept only some)."""
        return len(self) if self.population is None else self.population.n_cases

    @property
    def n_users(self) -> int:
        return len(np.unique(self.users)) if self.population is None else self.population.n_users

    def uniform_rows(self) -> np.ndarray:
        """The rows that are a uniform sample of every recorded case: all of them, for a complete set."""
        return np.arange(len(self)) if self.uniform is None else np.flatnonzero(self.uniform)

    def fired_count(self, latent: int) -> int:
        """How many recorded cases ``latent`` fired on."""
        if self.population is None:
            return len(self.fired(latent)[0])
        return int(self.population.fired[latent]) if 0 <= latent < len(self.population.fired) else 0

    @cached_property
    def by_latent(self) -> LatentIndex:
        """Every fired (case, value) pair grouped by latent, built once: per-latent work is then O(its cases)."""
        return LatentIndex.build(self.values, self.indices)

    def fired(self, latent: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, values) of the cases where ``latent`` fired, strongest first (ties by row)."""
        return self.by_latent.of(latent)

    def activation(self, latent: int) -> np.ndarray:
        """[n] activation of one latent in every case (0 where it did not fire). O(cases): prefer ``fired``."""
        rows, values = self.fired(latent)
        out = np.zeros(len(self), dtype=np.float32)
        out[rows] = values
        return out

    def subset(self, rows: np.ndarray) -> CaseSet:
        """The cases at ``rows``, a complete set of its own."""
        positions = self.positions[rows] if self.positions is not None else None
        return CaseSet(self.users[rows], self.history[rows], self.predicted[rows], self.values[rows],
                       self.indices[rows], positions=positions, made_from=self.made_from)

    def firing_share(self, n_latents: int) -> np.ndarray:
        """[n_latents] the share of the recorded cases each latent fires on (of the users, with one case per user)."""
        if self.population is not None:
            return _padded(self.population.fired, n_latents) / self.population.n_cases
        fired = self.values > 0
        return np.bincount(self.indices[fired], minlength=n_latents) / max(len(self), 1)

    def users_per_latent(self, n_latents: int) -> np.ndarray:
        """[n_latents] how many distinct users' recorded cases each latent fires on."""
        if self.population is not None:
            return _padded(self.population.users, n_latents)
        fired = self.values > 0
        users = np.broadcast_to(self.users[:, None], fired.shape)[fired]
        pairs = np.unique(np.stack([self.indices[fired], users]), axis=1)
        return np.bincount(pairs[0], minlength=n_latents)

    def strongest(self, latent: int) -> np.ndarray:
        """The rows where ``latent`` fired, strongest first (ties by row), each user's strongest only."""
        return one_per_user(self.fired(latent)[0], self.users)

    def save(self, path: str | Path) -> None:
        names = ("users", "history", "predicted", "values", "indices") + (("positions",) if self.positions is not None else ())
        tensors = {name: np.ascontiguousarray(getattr(self, name)) for name in names}
        if self.population is not None and self.uniform is not None:
            tensors |= {"uniform": self.uniform.astype(np.uint8), "population_fired": self.population.fired,
                        "population_users": self.population.users,
                        "population_counts": np.array([self.population.n_cases, self.population.n_users])}
        atomic_write(path, lambda p: save_file(tensors, p, metadata=self.made_from))

    @classmethod
    def load(cls, path: str | Path) -> CaseSet:
        """The case set ``save`` wrote; ValueError when the file is not safetensors or its columns are not one
        (missing, extra, of other lengths or shapes)."""
        try:
            with safe_open(path, framework="numpy") as f:
                tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
                made_from = dict(f.metadata() or {})
        except SafetensorError as error:
            raise ValueError(f"not a readable safetensors file: {error}") from None
        budget = {"uniform", "population_fired", "population_users", "population_counts"}
        required = {"users", "history", "predicted", "values", "indices"}
        names = set(tensors)
        if not required <= names or names - required - budget - {"positions"} or names & budget not in (set(), budget):
            raise ValueError(f"its tensors are {sorted(names)}")
        n = len(tensors["users"])
        if (any(len(tensors[name]) != n for name in names - budget | ({"uniform"} & names))
                or tensors["values"].shape != tensors["indices"].shape or tensors["history"].shape != (n, SHOWN_HISTORY)
                or ("population_counts" in names and tensors["population_counts"].shape != (2,))):
            raise ValueError("its columns have different lengths or shapes")
        population = None
        if budget <= names:
            n_cases, n_users = (int(count) for count in tensors.pop("population_counts"))
            population = Population(n_cases, n_users, tensors.pop("population_fired"), tensors.pop("population_users"))
        uniform = tensors.pop("uniform").astype(bool) if "uniform" in tensors else None
        return cls(**tensors, made_from=made_from, uniform=uniform, population=population)


def _padded(counts: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    out[: min(n, len(counts))] = counts[:n]
    return out


def case_rows(split: Split, kind: CaseKind, max_history: int) -> PositionPlan:
    """The cases of ``kind``: ``test``, each user at test time (after train and dev); ``all``, every position with
    at least one item of history, of targets that read histories only."""
    lengths = np.diff(split.train_offsets) + 1  # train items, then the dev item
    users = np.arange(split.n_users)
    if kind == "test":
        return PositionPlan.of(users, lengths, np.ones_like(lengths))
    if kind != "all":
        raise ConfigError(f"--cases must be one of {', '.join(CASE_KINDS)}, got {kind!r}")
    if not max_history:
        raise ConfigError("--cases all needs a target that reads histories: one that reads user ids only has one "
                          "representation per user; use --cases test")
    return PositionPlan.of(users, np.ones_like(lengths), lengths)  # positions 1 .. lengths


def describe_kind(kind: CaseKind) -> str:
    """The cases of ``kind`` in words, for tables and reports."""
    return "each test user at test time" if kind == "test" else "every position of the sequences"


def sampled_cases(split: Split, kind: CaseKind, max_history: int, max_cases: int = SAMPLED_CASES,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(users, positions) of the cases of ``kind``, all of them or a seeded sample of ``max_cases`` in plan order:
    what every basis is measured on where a stage measures on a sample (``compare``, Table 7 over every concept)."""
    plan = case_rows(split, kind, max_history)
    rows = np.arange(len(plan))
    if len(plan) > max_cases:
        rows = np.sort(np.random.default_rng(seed).choice(len(plan), max_cases, replace=False))
    return plan.at(rows)

@dataclass(frozen=True)
class LatentIndex:
    """The fired pairs of a case set as CSR by latent: latent l's rows are ``rows[offsets[l]:offsets[l + 1]]``,
    strongest first, ties by row (one sort of the n * k pairs)."""

    offsets: np.ndarray  # [n_latents + 1]
    rows: np.ndarray
    values: np.ndarray

    @classmethod
    def build(cls, values: np.ndarray, indices: np.ndarray) -> LatentIndex:
        fired = values > 0
        rows = np.broadcast_to(np.arange(len(values))[:, None], values.shape)[fired]
        latents, strength = indices[fired], values[fired]
        order = np.lexsort((rows, -strength, latents))
        n_latents = int(indices.max()) + 1 if indices.size else 0
        counts = np.bincount(latents, minlength=n_latents)
        return cls(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), rows[order], strength[order])

    def of(self, latent: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= latent < len(self.offsets) - 1:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        part = slice(self.offsets[latent], self.offsets[latent + 1])
        return self.rows[part], self.values[part]


def case_times(split: Split, users: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """[n] the time of each case: when the user took the last item before it (a case after the dev item, whose
    time a split does not keep, takes the user's last train time)."""
    if not len(split.train_times):
        return np.zeros(len(users), dtype=np.int64)
    offsets = split.train_offsets
    train_length = np.diff(offsets)[users]
    last = offsets[users] + np.minimum(positions, train_length) - 1
    return np.where(train_length > 0, split.train_times[np.maximum(last, 0)], 0)


def ranked_cases(target: ProbeTarget, split: Split, users: np.ndarray, positions: np.ndarray,
                 batch_size: int = 1024) -> Iterator[tuple[slice, Batch, SeenItems]]:
    """Per batch of the cases (users[i], positions[i]): its rows of ``users``, the target's batch (the history
    before that position) and the items to mask when ranking there (the history's), at most ``batch_size``
    cases at once (fewer for a large catalog: ``scored_batch_size``)."""
    offsets, items = split.sequences("test")
    done = 0
    for batch in position_batches(split, users, positions, target.max_history,
                                  scored_batch_size(batch_size, split.n_items)):
        chunk = slice(done, done + len(batch.users))
        done = chunk.stop
        yield chunk, batch, seen_prefix(offsets, items, users[chunk], positions[chunk])


@torch.no_grad()
def case_batches(target: ProbeTarget, split: Split, users: np.ndarray, positions: np.ndarray,
                 batch_size: int = 1024) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Per batch of cases, the representation [B, d] and the original model's top-1 prediction there, the
    history's items masked (no [n_cases, n_items] matrix is ever held)."""
    for _, batch, seen in ranked_cases(target, split, users, positions, batch_size):
        reps = target.represent(batch)
        yield reps.float(), seen.hide(target.score(reps, batch).float()).argmax(1).numpy().astype(np.int64)


def shown_history(split: Split, users: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """[n, SHOWN_HISTORY] the items before each case, oldest first, padded with -1."""
    offsets, items = split.sequences("test")
    history, _ = last_window(offsets, items, users, offsets[users] + positions, SHOWN_HISTORY, split.pad_item)
    return np.where(history == split.pad_item, -1, history)


@torch.no_grad()
def record_cases(target: ProbeTarget, sae, split: Split, *, kind: CaseKind = "test", batch_size: int = 1024,
                 budget: CaseBudget | None = None, parallel: DataParallel | None = None) -> CaseSet | None:
    """The cases of ``kind``, computed batch by batch; past ``budget`` (default ``CaseBudget()``), each latent's
    strongest cases and a uniform reservoir of the rest, so memory does not grow with the cases. With
    ``parallel`` (torchrun), each process records a contiguous block of batches and rank 0 joins them into the
    set one process makes; the other ranks return None."""
    plan = case_rows(split, kind, target.max_history)
    parallel = parallel or DataParallel()
    batches = parallel.block(-(-len(plan) // batch_size))
    start, stop = batches.start * batch_size, min(batches.stop * batch_size, len(plan))
    recorder = BudgetedRecorder(sae.n_latents, budget or CaseBudget(), start_row=start, expected=stop - start)
    step = batch_size * PLAN_BATCHES
    for block in range(start, stop, step):  # the plan's rows a block at a time: no per-case array of the whole
        users, positions = plan.rows(block, min(block + step, stop))
        done = 0
        for reps, predicted in case_batches(target, split, users, positions, batch_size):
            values, indices = sae.encode(reps)
            chunk = slice(done, done + len(predicted))
            recorder.add(users[chunk], positions[chunk], predicted, values.numpy(), indices.numpy())
            done += len(predicted)
    recorders = parallel.gather_to_main(recorder)
    if recorders is None:
        return None
    for later in recorders[1:]:
        recorders[0].absorb(later)
    kept, uniform, population = recorders[0].finish()
    return CaseSet(kept.users, shown_history(split, kept.users, kept.positions), kept.predicted, kept.values,
                   kept.indices, positions=kept.positions, uniform=uniform, population=population)


def scorable_share(cases: CaseSet, n_latents: int, n: int) -> float:
    """The share of latents active on at least 2N distinct users' cases: those ``sample_latent`` can score."""
    return float((cases.users_per_latent(n_latents) >= 2 * n).mean())


def levels(cases: CaseSet, mode: LevelMode = "max") -> np.ndarray:
    """[n, k] levels 0..10 aligned with ``cases.values``: 0 for no activation; otherwise ``max``:
    ceil(10 a / max a of that latent), or ``quantile``: the global decile of a among all positive
    activations (what the reference code did)."""
    values, indices = cases.values, cases.indices
    fired = values > 0
    out = np.zeros(values.shape, dtype=np.int64)
    if not fired.any():
        return out
    if mode == "max":
        peak = np.zeros(int(indices.max()) + 1)
        np.maximum.at(peak, indices[fired], values[fired])
        out[fired] = np.ceil(10 * values[fired] / peak[indices[fired]]).astype(np.int64)
    elif mode == "quantile":  # deciles of the uniform sample's activations (the strongest cases are over-kept)
        sample = values[cases.uniform_rows()]
        sample = sample[sample > 0] if (sample > 0).any() else values[fired]
        edges = np.quantile(sample, np.linspace(0.1, 0.9, 9))
        out[fired] = np.searchsorted(edges, values[fired], side="left") + 1
    else:
        raise ValueError(f"level mode must be 'max' or 'quantile', got {mode!r}")
    return np.clip(out, 1, 10) * fired


@dataclass
class LatentSample:
    """The cases a latent is described and verified on. ``status`` is "insufficient" when fewer than 2N
    distinct users' cases activate it, or fewer than 2N other users have a case where it is silent: such a
    latent is reported, never padded."""

    latent: int
    status: Literal["ok", "insufficient"]
    n_active: int  # cases
    construction: list[int]  # case rows, N of the top 2N by activation
    verification: list[int]  # the other N of the top 2N
    negatives: list[int]  # N random cases where the latent is 0, verified beside the N activated ones
    calibration: list[int]  # N more non-activated cases, for verifiers that calibrate on construction cases
    active_users: int = 0


def one_per_user(rows: np.ndarray, users: np.ndarray) -> np.ndarray:
    """``rows`` with each user's first row kept, in their order."""
    _, first = np.unique(users[rows], return_index=True)
    return rows[np.sort(first)]


def sample_latent(cases: CaseSet, latent: int, n: int = 5, seed: int = 0) -> LatentSample:
    """Top 2N cases by activation, one per user, split at random into N for construction and N for
    verification, plus N random non-activated cases of other users (and N more for calibration); every case
    from a distinct user, so no user fills a latent's examples; the same seed and latent give the same sample."""
    fired_rows, _ = cases.fired(latent)
    n_active, ranked = cases.fired_count(latent), cases.strongest(latent)
    if len(ranked) < 2 * n:
        return LatentSample(latent, "insufficient", n_active, [], [], [], [], active_users=len(ranked))
    rng = np.random.default_rng([seed, latent])
    top = rng.permutation(ranked[: 2 * n])
    negatives = silent_cases(cases, np.sort(fired_rows), set(cases.users[top].tolist()), 2 * n, rng)
    if len(negatives) < 2 * n:  # nearly every user activates it: too few others to verify against
        return LatentSample(latent, "insufficient", n_active, [], [], [], [], active_users=len(ranked))
    return LatentSample(latent, "ok", n_active, sorted(top[:n].tolist()), sorted(top[n:].tolist()),
                        sorted(negatives[:n].tolist()), sorted(negatives[n:].tolist()), active_users=len(ranked))


def silent_cases(cases: CaseSet, fired_rows: np.ndarray, excluded_users: set[int], count: int,
                 rng: np.random.Generator, tries: int = 64) -> np.ndarray:
    """Up to ``count`` random rows of the uniform sample (``uniform_rows``: every case, below a budget) where
    the latent is silent (not in the sorted ``fired_rows``), each of a distinct user outside ``excluded_users``.
    Rejection sampling, O(count) draws while silent cases are common; an exact scan when they are rare."""
    chosen, users = [], set(excluded_users)
    candidates = cases.uniform_rows()
    for row in candidates[rng.integers(0, len(candidates), size=tries * count)]:
        user = int(cases.users[row])
        position = np.searchsorted(fired_rows, row)
        if user in users or (position < len(fired_rows) and fired_rows[position] == row):
            continue
        chosen.append(int(row))
        users.add(user)
        if len(chosen) == count:
            return np.array(chosen, dtype=np.int64)
    silent = np.zeros(len(cases), dtype=bool)
    silent[candidates] = True
    silent[fired_rows] = False
    inactive = np.flatnonzero(silent & ~np.isin(cases.users, list(excluded_users)))
    return one_per_user(rng.permutation(inactive), cases.users)[:count]
