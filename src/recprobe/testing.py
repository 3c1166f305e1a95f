"""A kit for adapter authors: ``check_probe_target(target, batch)`` checks every rule a ProbeTarget must
keep and reports all the broken ones at once (in the spirit of scikit-learn's ``check_estimator``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from recprobe.batches import phase_batches
from recprobe.errors import IdMismatchError, RecprobeError
from recprobe.ranking.metrics import scored_chunks, seen_items, target_ranks
from recprobe.target import Batch, ProbeTarget, reads_users

SANITY_USERS = 2000  # held-out items ranked before a run is created
SANITY_FACTOR = 3.0  # a target must hit at least this many times what random scores would...
SANITY_SHARE = 1 / 3  # ...or, on catalogs too small for that, a third of the way from random to every hit
SANITY_K = 10
SHIFTS = (-1, 1)  # ids read one off each way: an off-by-one wrapper ranks clearly better under one of them
SHIFT_Z = 3.0  # how clearly: the paired z of users only the shift hits against those only the given ids hit
SHIFT_USERS = 1000  # the users fed shifted ids (a forward pass each way): enough for z > 3 at HR@10 0.02 vs 0.08
# What a wrapper can read one off: its score columns (item ids out), the histories it is fed (item ids in), the
# users it is fed; and the ids that map each without shifting by hand.
_READ = {"item": "its item ids", "history": "the item ids of the histories it reads", "user": "the user ids it reads"}
_TOKENS = {"item": "item_tokens", "history": "item_tokens", "user": "user_tokens"}
# torch's words for an id past a table: nn.Embedding / index_select, and indexing a tensor
TABLE_LOOKUPS = ("index out of range in self", "is out of bounds for dimension")


class ProbeTargetCheckError(RecprobeError, AssertionError):
    """A ProbeTarget broke one or more of the rules; the message lists each."""


def _shape(x: object) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def missing_members(target: object) -> list[str]:
    """The ProbeTarget attributes and methods ``target`` lacks."""
    return [a for a in ("name", "d_model", "n_items", "max_history", "represent", "score", "predict", "item_embeddings")
            if not hasattr(target, a)]


def require_probe_target(target: object) -> None:
    """One error naming what ``target`` lacks when it is not a ProbeTarget, and how a torch model becomes one."""
    missing = missing_members(target)
    if missing:
        wrap = (" Open a torch model with recprobe.wrap(model, site=..., d_model=..., forward=..., n_items=...) "
                "(docs: Ways in)" if isinstance(target, torch.nn.Module) else " See recprobe.target.ProbeTarget")
        raise RecprobeError(f"{type(target).__name__} is not a ProbeTarget: it lacks {', '.join(missing)}.{wrap}")


@torch.no_grad()
def check_probe_target(target: ProbeTarget, batch: Batch, *, atol: float = 1e-5, split=None) -> None:
    """Raise ProbeTargetCheckError unless ``target`` keeps the ProbeTarget rules on ``batch``:
    attributes present; ``represent`` gives a finite float [B, d_model] and is deterministic; ``score``
    gives [B, n_items]; ``score(represent(b), b)`` equals ``predict(b)`` within ``atol`` (probing changes
    nothing); an edited representation changes the scores; ``item_embeddings`` is None or [n_items, d]. With
    ``split``, it also ranks the split's held-out test items, the target mapped onto the split's ids as a run
    maps it (``item_tokens`` / ``user_tokens``): a target near random there, or better with ids shifted by one,
    is trained on other ids or data or reads them one off (see ``ranking_check``)."""
    problems: list[str] = []
    missing = missing_members(target)
    if missing:
        raise ProbeTargetCheckError(f"{type(target).__name__} lacks {', '.join(missing)} (see recprobe.target.ProbeTarget)")
    n = len(batch)
    reps = target.represent(batch)
    if not isinstance(reps, torch.Tensor) or tuple(reps.shape) != (n, target.d_model):
        raise ProbeTargetCheckError(f"represent(batch) must be [B, d_model] = {(n, target.d_model)}, got {_shape(reps)}")
    if not reps.is_floating_point():
        problems.append(f"represent(batch) must be a float tensor, got {reps.dtype}")
    if not torch.isfinite(reps).all():
        problems.append("represent(batch) holds NaN or inf values")
    if not torch.equal(reps, target.represent(batch)):
        problems.append("represent(batch) differs between two calls: put the model in eval mode (dropout) and avoid randomness")
    scores = target.score(reps, batch)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (n, target.n_items):
        problems.append(f"score(reps, batch) must be [B, n_items] = {(n, target.n_items)}, got {_shape(scores)}")
    else:
        own = target.predict(batch)
        if not isinstance(own, torch.Tensor) or own.shape != scores.shape:
            problems.append(f"predict(batch) must be [B, n_items] = {(n, target.n_items)}, got {_shape(own)}")
        else:
            gap = (scores - own).abs().max().item()
            if not gap <= atol:
                problems.append(
                    f"score(represent(b), b) differs from the model's own predict(b) by up to {gap:.3g} (> {atol}): "
                    "the probe changes the model, or score does not compute what the model computes"
                )
        noise = torch.randn(reps.shape, generator=torch.Generator().manual_seed(0)).to(reps)
        edited = target.score(reps + reps.abs().mean().clamp(min=1e-3) * noise, batch)
        if isinstance(edited, torch.Tensor) and torch.equal(edited, scores):
            problems.append("an edited representation leaves score() unchanged: score must use the reps it is given (caches?)")
    items = target.item_embeddings()
    if items is not None and (not isinstance(items, torch.Tensor) or items.ndim != 2 or len(items) != target.n_items):
        problems.append(f"item_embeddings() must be None or [n_items={target.n_items}, d], got {_shape(items)}")
    if split is not None and not problems:
        from recprobe.runs.align import align  # the run's id mapping; lazy, as align imports this module

        try:
            aligned = align(target, split)
            with lookups_checked(aligned, split):
                check = ranking_check(aligned, split)
            if not check.ok:
                problems.append(check.message())
        except IdMismatchError as e:
            problems.append(str(e))
    if problems:
        raise ProbeTargetCheckError(
            f"{target.name} breaks {len(problems)} ProbeTarget rule(s):\n" + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class Shift:
    """HR@10 with one kind of id read one off, beside HR@10 as given on the same users, and the paired z of the
    users only the shift hits against those only the given ids hit (McNemar's)."""

    part: str  # "item" (the score columns), "history" (the item ids fed in) or "user" (the user ids fed in)
    by: int
    hr: float
    given_hr: float
    users: int
    z: float

    @property
    def key(self) -> str:  # run.json's name; the score columns' keeps its name from before the other two
        return f"HR@{SANITY_K} {'' if self.part == 'item' else self.part + ' '}ids shifted {self.by:+d}"


@dataclass(frozen=True)
class RankingCheck:
    """HR@10 of a target on a sample of the split's test items, against what random scores would reach, and
    against the same target with ids shifted by one each way (an off-by-one wrapper ranks better shifted): its
    score columns, and the history items and user ids it is fed where it reads them."""

    target: str
    dataset: str
    users: int
    hr: float
    random_hr: float
    shifted: list[Shift] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        return min(SANITY_FACTOR * self.random_hr, self.random_hr + SANITY_SHARE * (1 - self.random_hr))

    @property
    def off_by(self) -> Shift | None:
        """The shift under which the held-out items rank clearly better, if any."""
        better = [shift for shift in self.shifted if shift.z > SHIFT_Z]
        return max(better, key=lambda shift: shift.z) if better else None

    @property
    def ok(self) -> bool:
        return self.hr >= self.threshold and self.off_by is None

    def message(self) -> str:
        shift = self.off_by
        if shift is not None:
            return (f"{self.target} ranks the {self.dataset} split's held-out items better with {_READ[shift.part]} "
                    f"shifted by {shift.by:+d} (HR@{SANITY_K} {shift.hr:.4f} against {shift.given_hr:.4f} as given, on "
                    f"{shift.users} test users, z = {shift.z:.1f}): its wrapper is likely off by one (ids from 1, or a "
                    f"padding row at 0?); give {_TOKENS[shift.part]} (None at the padding id) instead of shifting ids "
                    "by hand")
        return (f"{self.target} ranks the {self.dataset} split's held-out items almost at random: HR@{SANITY_K} "
                f"{self.hr:.4f} on {self.users} test users, random scores would reach {self.random_hr:.4f}, and a "
                f"trained model at least {self.threshold:.4f}. Likely causes: its user or item ids are numbered "
                "differently from the split's (declare user_tokens/item_tokens), it was trained on another dataset "
                "or filter, its histories are padded differently (recprobe pads at the end with n_items), or its "
                "weights are untrained")

    def as_dict(self) -> dict[str, float | int]:
        return {"users": self.users, f"HR@{SANITY_K}": self.hr, f"random HR@{SANITY_K}": self.random_hr,
                **{shift.key: shift.hr for shift in self.shifted}}


def width_message(name: str, width: int, expected: int, declared: str) -> str:
    """The error for scores whose width is not the declared catalog's, with the likely cause."""
    cause = (" One column more: a padding id scored as an item; give item_tokens with None at the padding id."
             if width == expected + 1 else "")
    return (f"{name} returns scores with {width} columns, but it declares {expected} items ({declared}).{cause} "
            "Make predict/score return one column per item")


@contextmanager
def lookups_checked(target: ProbeTarget, split) -> Iterator[None]:
    """Runs the block; a lookup past one of the model's tables (an IndexError "out of range") becomes one
    IdMismatchError naming the ids the model was given: most likely ids it does not number that way."""
    try:
        yield
    except IndexError as e:
        if not any(lookup in str(e) for lookup in TABLE_LOOKUPS):  # a bug of the model's own (a list, numpy)
            raise
        raise IdMismatchError(lookup_message(target, split, e)) from e


def lookup_message(target: ProbeTarget, split, error: IndexError) -> str:
    failed = f"{target.name} failed on a batch of the {split.name} split ({type(error).__name__}: {error})"
    from recprobe.runs.align import unwrapped  # lazy: align imports this module

    tokens = {kind: getattr(unwrapped(target), f"{kind}_tokens", None) for kind in ("item", "user")}
    if tokens["item"] is None and tokens["user"] is None:
        return (f"{failed}: recprobe gives users as 0..{split.n_users - 1} and histories of at most "
                f"max_history={target.max_history} item ids 0..{split.n_items - 1}, padded at the end with "
                f"{split.n_items}. A model numbering them its own way (ids from 1, padding at 0) declares item_tokens / "
                "user_tokens (None at its padding id) and recprobe maps them; one with a shorter position table "
                "declares a smaller max_history")
    fed = "; ".join(f"{kind} ids 0..{len(given) - 1} from its {len(given)} {kind}_tokens"
                    for kind, given in tokens.items() if given is not None)
    return (f"{failed}: mapped through its tokens it was fed {fed}. A table with fewer rows than its tokens (a model "
            "of fewer items or users than declared) fails so: give one token per row of the model's table, None at "
            "padding ids; one with a shorter position table declares a smaller max_history")


def represent_check(target: ProbeTarget, batch: Batch, split) -> None:
    """The target's representation of ``batch`` (the split's, in its numbering) is a finite float [B, d_model],
    or one error naming what it is: what every stage after the run's creation reads."""
    with lookups_checked(target, split):
        reps = target.represent(batch)
    if not isinstance(reps, torch.Tensor) or tuple(reps.shape) != (len(batch), target.d_model):
        raise RecprobeError(f"{target.name}'s represent(batch) must be [B, d_model] = {(len(batch), target.d_model)}, "
                            f"got {_shape(reps)}; declare the d_model its representation has")
    if not reps.is_floating_point():
        raise RecprobeError(f"{target.name}'s represent(batch) must be a float tensor, got {reps.dtype}")
    broken = ~torch.isfinite(reps).all(1)
    if broken.any():
        raise RecprobeError(f"{target.name}'s representation holds NaN or inf values for {int(broken.sum())} of "
                            f"{len(batch)} users (e.g. user {split.user_ids[int(batch.users[int(broken.nonzero()[0])])]}); "
                            "a representation must be finite numbers: check the model's weights and inputs")


def shifted_input(batch: Batch, part: str, shift: int, n_users: int, n_items: int) -> Batch:
    """``batch`` (in the split's numbering) with its history items (``part="history"``; padding stays) or its
    users (``"user"``) moved ``shift`` ids along, modulo their count."""
    if part == "user":
        return Batch((batch.users + shift) % n_users, batch.history, batch.lengths)
    history = torch.where(batch.history < n_items, (batch.history + shift) % n_items, batch.history)
    return Batch(batch.users, history, batch.lengths)


def _scores(target: ProbeTarget, batch: Batch, split) -> torch.Tensor:
    """``target.predict(batch)`` as float [users, items] on the CPU, or the error naming what is wrong with it."""
    scores = target.predict(batch)
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or len(scores) != len(batch):
        raise RecprobeError(f"{target.name}'s predict(batch) must return [users, items] scores, one row per user of "
                            f"the batch; for {len(batch)} users it returned {_shape(scores)}")
    scores = scores.float().cpu()
    if scores.shape[1] != split.n_items:
        raise IdMismatchError(width_message(target.name, scores.shape[1], split.n_items, "n_items"))
    broken = torch.isnan(scores).any(1)
    if broken.any():
        raise RecprobeError(f"{target.name} scores NaN for {int(broken.sum())} of {len(batch)} users (e.g. user "
                            f"{split.user_ids[int(batch.users[int(broken.nonzero()[0])])]}); a target's scores must be "
                            "numbers: check its weights and inputs")
    return scores


@torch.no_grad()
def ranking_check(target: ProbeTarget, split, *, n_users: int = SANITY_USERS, seed: int = 0,
                  shift_inputs: bool = True) -> RankingCheck:
    """Full-ranking HR@10 of ``target.predict`` on up to ``n_users`` test users (seen items masked), the
    expected HR@10 of random scores on the same users (10 over the items each user can be shown), and HR@10 with
    ids shifted by one each way: the score columns; with ``shift_inputs``, on the first ``SHIFT_USERS`` of those
    users, also the history items fed to a target that reads histories and the user ids fed to one that reads
    users (a forward pass each)."""
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(split.n_users, size=min(n_users, split.n_users), replace=False))
    batch_of = phase_batches(split, "test", target.max_history)
    offsets, items = split.exclusions("test")
    inputs = (["history"] * bool(target.max_history) + ["user"] * reads_users(target)) if shift_inputs else []
    hits, random_hits = 0.0, 0.0
    counts = {(part, by): np.zeros(5) for part in ["item", *inputs] for by in SHIFTS}  # shifted, given, only each, users
    for chunk in scored_chunks(users, 512, split.n_items):
        batch = batch_of(chunk)
        scores = _scores(target, batch, split)
        mask = seen_items(offsets, items, chunk)
        held_out = torch.from_numpy(split.test_items[chunk])
        shifted = {("item", by): hit_at_k(scores.roll(by, dims=1), held_out, mask) for by in SHIFTS}
        fed = slice(0, max(0, min(len(chunk), SHIFT_USERS - int(np.searchsorted(users, chunk[0])))))
        for part in inputs if fed.stop else []:
            few = Batch(batch.users[fed], batch.history[fed], batch.lengths[fed])
            for by in SHIFTS:
                moved = target.predict(shifted_input(few, part, by, split.n_users, split.n_items)).float().cpu()
                shifted[part, by] = hit_at_k(moved, held_out[fed], seen_items(offsets, items, chunk[fed]))
        given = hit_at_k(scores, held_out, mask)  # last: it masks scores in place
        hits += float(given.sum())
        for key, hit in shifted.items():
            mine = given[:len(hit)]
            counts[key] += (float(hit.sum()), float(mine.sum()), float((hit & ~mine).sum()), float((mine & ~hit).sum()),
                            len(hit))
        shown = split.n_items - (offsets[chunk + 1] - offsets[chunk])  # the held-out item is never masked
        random_hits += float(np.minimum(SANITY_K / np.maximum(shown, 1), 1.0).sum())
    found = [Shift(part, by, shifted_hits / n, given_hits / n, int(n), (only - other) / max(np.sqrt(only + other), 1.0))
             for (part, by), (shifted_hits, given_hits, only, other, n) in counts.items() if n]
    return RankingCheck(target.name, split.name, len(users), hits / len(users), random_hits / len(users), found)


def hit_at_k(scores: torch.Tensor, held_out: torch.Tensor, mask) -> torch.Tensor:
    """[users] whether each held-out item is in the masked top ``SANITY_K``; a held-out item a shifted input
    scores NaN or -inf (an empty history, an item the target masks itself) is a miss, not an error."""
    broken = ~torch.isfinite(scores.gather(1, held_out[:, None])[:, 0])
    if broken.any():  # every other item above it: ranked last
        scores[broken] = 0.0
        scores[broken, held_out[broken]] = -1.0
    return target_ranks(scores, held_out, mask) <= SANITY_K
