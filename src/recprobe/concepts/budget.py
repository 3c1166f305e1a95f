"""A case budget: what case recording keeps when a run has more cases than memory should hold.

Recording streams batch by batch and keeps, at every moment, only

- each latent's ``top`` strongest cases, one per user (what a latent is described and verified on, its report
  page and its representative items): a row leaves once ``top`` other users' cases beat it for every latent
  it fired on, and a later batch can only bring stronger rivals, so the final set is exact;
- a uniform reservoir of ``reservoir`` cases (each case gets a seeded random key from its row number alone, the
  smallest keys stay): what negatives, hard negatives, backgrounds and attribute AUROCs are drawn from.

Counts that need every case (how many cases and distinct users each latent fires on, how many cases and users
there were) are summed as the batches pass. The cases sit in a buffer of twice ``reservoir + top * n_latents``
rows, allocated once and pruned to the budget when full, so memory is bounded whatever the number of cases;
below the budget every case is kept and the set is complete, as before.

Processes under torchrun each record a contiguous block of the cases; ``absorb`` joins their recorders in order
into the one a single process would have made (the keys and the strongest cases do not depend on who recorded
them, and a user whose cases straddle two blocks is counted once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_TOP = 64  # >= 2N for every N interpret takes in practice; the report shows at most 10
DEFAULT_RESERVOIR = 1_000_000


@dataclass(frozen=True)
class CaseBudget:
    top: int = DEFAULT_TOP  # each latent's strongest cases kept, one per user
    reservoir: int = DEFAULT_RESERVOIR  # a uniform sample of every case
    seed: int = 0

    def __post_init__(self) -> None:
        if self.top < 1 or self.reservoir < 1:
            raise ValueError(f"a case budget keeps at least one case of each kind, got top={self.top}, "
                             f"reservoir={self.reservoir}")


def default_budget(n: int) -> CaseBudget:
    """The budget interpret keeps for N cases per set: each latent's top 2N at least."""
    return CaseBudget(top=max(DEFAULT_TOP, 2 * n))


@dataclass(frozen=True)
class Population:
    """What every recorded case said, kept when only a budget of them is: the number of cases and users, and
    per latent the cases and distinct users it fired on."""

    n_cases: int
    n_users: int
    fired: np.ndarray  # [n_latents] cases each latent fired on
    users: np.ndarray  # [n_latents] distinct users whose cases it fired on


def uniform_keys(rows: np.ndarray, seed: int) -> np.ndarray:
    """[n] a key uniform in [0, 1) per case, a function of its row number and the seed only (SplitMix64), so
    any batching and any split between processes gives every case the same key."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64(seed + 1) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53


@dataclass
class Kept:
    """The columns of the cases kept so far (``rows``: their position among every recorded case)."""

    rows: np.ndarray
    users: np.ndarray
    positions: np.ndarray
    predicted: np.ndarray
    values: np.ndarray
    indices: np.ndarray
    keys: np.ndarray  # the reservoir's random key of each row

    @classmethod
    def empty(cls, k: int) -> Kept:
        return cls(*(np.empty(0, dtype=np.int64) for _ in range(4)), np.empty((0, k), dtype=np.float32),
                   np.empty((0, k), dtype=np.int64), np.empty(0))

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[np.ndarray]:
        return [getattr(self, name) for name in self.__dataclass_fields__]

    def take(self, rows: np.ndarray | slice) -> Kept:
        return Kept(*(column[rows] for column in self.columns()))


class KeptBuffer:
    """The kept cases in arrays allocated once and filled in place: appending a batch copies only the batch,
    and no small array is left between the large transient ones of the scoring (which fragments the heap, so
    that the process's memory would grow with every batch)."""

    def __init__(self, size: int, like: Kept):
        self.size, self.filled = size, 0
        self.arrays = Kept(*(np.empty((size, *column.shape[1:]), dtype=column.dtype) for column in like.columns()))

    def view(self) -> Kept:
        return self.arrays.take(slice(0, self.filled))

    def fits(self, count: int) -> bool:
        return self.filled + count <= self.size

    def append(self, cases: Kept) -> None:
        for mine, theirs in zip(self.arrays.columns(), cases.columns(), strict=True):
            mine[self.filled:self.filled + len(cases)] = theirs
        self.filled += len(cases)

    def compact(self, rows: np.ndarray) -> None:
        """Keep only ``rows`` (sorted), moved to the front."""
        for column in self.arrays.columns():
            column[: len(rows)] = column[rows]
        self.filled = len(rows)

    def grown(self, size: int) -> KeptBuffer:
        out = KeptBuffer(size, self.arrays)
        out.append(self.view())
        return out


@dataclass
class BudgetedRecorder:
    """Takes the cases batch by batch, in the order of their users (a user's cases are contiguous), and keeps
    what ``budget`` allows."""

    n_latents: int
    budget: CaseBudget = field(default_factory=CaseBudget)
    start_row: int = 0  # the row number of the first case this recorder takes
    expected: int | None = None  # how many cases will come, when known: no larger buffer is allocated

    def __post_init__(self) -> None:
        self.buffer: KeptBuffer | None = None
        self.n_cases = self.n_users = 0
        self.fired = np.zeros(self.n_latents, dtype=np.int64)
        self.active_users = np.zeros(self.n_latents, dtype=np.int64)
        self.first_user, self.first_latents = -1, np.empty(0, dtype=np.int64)  # for joining with an earlier block
        self.last_user, self.last_latents = -1, np.empty(0, dtype=np.int64)
        self.capacity = 2 * (self.budget.reservoir + self.budget.top * self.n_latents)

    def add(self, users: np.ndarray, positions: np.ndarray, predicted: np.ndarray, values: np.ndarray,
            indices: np.ndarray) -> None:
        if len(users) and (np.any(np.diff(users) < 0) or users[0] < self.last_user):
            raise ValueError("cases must come in the order of their users")
        self._count(users, values, indices)
        rows = np.arange(self.start_row + self.n_cases, self.start_row + self.n_cases + len(users))
        self.n_cases += len(users)
        self._take(Kept(rows, users, positions, predicted, values.astype(np.float32), indices.astype(np.int64),
                        uniform_keys(rows, self.budget.seed)))

    def _take(self, cases: Kept) -> None:
        if self.buffer is None:
            self.buffer = KeptBuffer(max(min(self.capacity, self.expected or self.capacity), len(cases)), cases)
        if not self.buffer.fits(len(cases)):
            self.buffer.compact(self._keep())
        if not self.buffer.fits(len(cases)):  # a joined block, larger than the room left
            self.buffer = self.buffer.grown(self.buffer.filled + len(cases))
        self.buffer.append(cases)

    def absorb(self, later: BudgetedRecorder) -> None:
        """Join the recorder of the cases that follow this one's (the next process's block)."""
        straddles = later.first_user >= 0 and later.first_user == self.last_user
        self.n_cases += later.n_cases
        self.n_users += later.n_users - int(straddles)
        self.fired += later.fired
        self.active_users += later.active_users
        if straddles:  # the user's latents seen on both sides were counted twice
            self.active_users[np.intersect1d(self.last_latents, later.first_latents)] -= 1
        if later.last_user >= 0:
            whole = straddles and later.last_user == later.first_user  # the later block is all that one user's
            self.last_latents = np.union1d(self.last_latents, later.last_latents) if whole else later.last_latents
            if self.first_user < 0:
                self.first_user, self.first_latents = later.first_user, later.first_latents
            self.last_user = later.last_user
        if later.buffer is not None:
            self._take(later.buffer.view())

    def _count(self, users: np.ndarray, values: np.ndarray, indices: np.ndarray) -> None:
        """Cases and distinct users per latent: a user whose cases straddle two batches counts once."""
        fired = values > 0
        self.fired += np.bincount(indices[fired], minlength=self.n_latents)
        pair_users = np.broadcast_to(users[:, None], fired.shape)[fired]
        pairs = np.unique(pair_users * self.n_latents + indices[fired])
        carried = self.last_user * self.n_latents + self.last_latents
        new = pairs[~np.isin(pairs, carried)]
        self.active_users += np.bincount(new % self.n_latents, minlength=self.n_latents)
        if len(users):
            self.n_users += len(np.unique(users)) - int(users[0] == self.last_user)
            if self.first_user < 0:
                self.first_user = int(users[0])
            if users[0] == self.first_user:  # the block's first user's latents, as long as its cases go on
                firsts = pairs[pairs // self.n_latents == self.first_user] % self.n_latents
                self.first_latents = np.union1d(self.first_latents, firsts)
            mine = pairs[pairs // self.n_latents == users[-1]] % self.n_latents
            same_user = users[-1] == self.last_user  # the whole batch is the previous batch's last user's
            self.last_latents = np.union1d(self.last_latents, mine) if same_user else mine
            self.last_user = int(users[-1])

    def _keep(self) -> np.ndarray:
        """Rows (of ``kept``) in some latent's top, or in the reservoir, in their recorded order."""
        assert self.buffer is not None
        kept = self.buffer.view()
        in_reservoir = np.argsort(kept.keys, kind="stable")[: self.budget.reservoir]
        fired = kept.values > 0
        row_of = np.broadcast_to(np.arange(len(kept))[:, None], fired.shape)[fired]
        latents, strength, users = kept.indices[fired], kept.values[fired], kept.users[row_of]
        order = np.lexsort((kept.rows[row_of], -strength, users, latents))  # each (latent, user)'s strongest first
        latents, users, strength, row_of = latents[order], users[order], strength[order], row_of[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (latents[1:] != latents[:-1]) | (users[1:] != users[:-1])
        latents, strength, row_of = latents[first], strength[first], row_of[first]
        order = np.lexsort((kept.rows[row_of], -strength, latents))  # then each latent's strongest users first
        latents, row_of = latents[order], row_of[order]
        starts = np.searchsorted(latents, latents, side="left")
        in_top = row_of[np.arange(len(latents)) - starts < self.budget.top]
        return np.union1d(in_top, in_reservoir)

    def finish(self) -> tuple[Kept, np.ndarray | None, Population | None]:
        """The kept cases, which of them are the uniform sample, and the population's counts; the last two are
        None when every case was kept (the set is then complete)."""
        if self.buffer is None:
            return Kept.empty(0), None, None
        if self.n_cases <= self.budget.reservoir:
            return self.buffer.view(), None, None
        self.buffer.compact(self._keep())
        kept = self.buffer.view()
        threshold = np.sort(kept.keys)[self.budget.reservoir - 1]
        population = Population(self.n_cases, self.n_users, self.fired, self.active_users)
        return kept, kept.keys <= threshold, population
