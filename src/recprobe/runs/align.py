"""Ids aligned by construction: a target that numbers users or items its own way declares its raw tokens
(``user_tokens`` / ``item_tokens``: the dataset's raw id of each of its indices, as RecBole's checkpoints do;
``None`` marks a padding id), and the run maps the split onto them. Downstream everything speaks the split's
numbering. A target may know a subset of the split's items (never recommended, dropped from histories), not
items the split lacks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recprobe.errors import ConfigError, IdMismatchError, RecprobeError
from recprobe.target import Batch, ProbeTarget, check_batch, is_sequential, reads_users
from recprobe.testing import width_message

EXAMPLES = 3
MAX_UNKNOWN = 0.5  # a target may leave out up to this share of the split's items (a model of a sub-catalog)


def align(target: ProbeTarget, split) -> ProbeTarget:
    """``target`` speaking the split's user and item numbering (or an IdMismatchError naming the mismatch), and
    given whole histories when it reads them but is not sequential."""
    aligned = align_ids(target, split)
    if target.max_history and not is_sequential(target):
        return WholeHistory(aligned, int(np.diff(split.sequences("test")[0]).max()))
    return aligned


def align_ids(target: ProbeTarget, split) -> ProbeTarget:
    """``target`` speaking the split's user and item numbering, or an IdMismatchError naming the mismatch."""
    item_tokens = getattr(target, "item_tokens", None)
    user_tokens = getattr(target, "user_tokens", None)
    if item_tokens is None:
        if target.n_items != split.n_items:
            padding = (" One more than the split: a padding id (ids from 1, or a padding row at the end)? Give "
                       "item_tokens with None at the padding id." if target.n_items == split.n_items + 1 else "")
            raise IdMismatchError(
                f"{target.name} scores {target.n_items} items but the {split.name} split has {split.n_items}.{padding} "
                "Otherwise probe it against the dataset (and filters: --min-rating, --core) it was trained on, or give "
                "the target item_tokens (each of its item indices' raw id) so recprobe can map the ids"
            )
        items, pads = np.arange(split.n_items), []
    else:
        if len(item_tokens) != target.n_items:
            raise IdMismatchError(f"{target.name} declares n_items={target.n_items} but {len(item_tokens)} item_tokens; "
                                  "give one token per output column (None for a padding id)")
        items = token_map(item_tokens, split.item_ids, "item", target.name, split.name, subset_ok=True)
        pads = [i for i, token in enumerate(item_tokens) if token is None]
    users = None if user_tokens is None or not reads_users(target) else token_map(
        user_tokens, split.user_ids, "user", target.name, split.name)
    if users is None and np.array_equal(items, np.arange(split.n_items)) and target.n_items == split.n_items:
        return target
    return AlignedTarget(target, items, users, pad=pads[0] if pads else target.n_items)


def token_map(target_tokens: Sequence, split_tokens: np.ndarray, kind: str, target_name: str, split_name: str, *,
              subset_ok: bool = False) -> np.ndarray:
    """[n] the target's index of each of the split's ``kind``s, matched by raw token (``None`` tokens are padding
    ids and match nothing); -1 for one the target does not know, allowed with ``subset_ok`` when the target
    knows most of them. A target token the split lacks is always refused."""
    mine = [None if t is None else str(t).strip() for t in target_tokens]
    theirs = [str(t).strip() for t in split_tokens]
    index: dict[str, int] = {}
    for i, token in enumerate(mine):
        if token is not None and index.setdefault(token, i) != i:
            raise IdMismatchError(f"{target_name}'s {kind}_tokens name {token!r} twice (its {kind}s {index[token]} and {i}), "
                                  f"so one of them could never be mapped; give each raw id once (None for a padding id)")
    missing = [t for t in theirs if t not in index]
    extra = sorted(set(index) - set(theirs))
    if extra or (missing and not (subset_ok and len(missing) <= len(theirs) * MAX_UNKNOWN)):
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the split's {len(theirs)} {kind}s are unknown to the target "
                         f"(e.g. {', '.join(map(repr, missing[:EXAMPLES]))})")
        if extra:
            parts.append(f"{len(extra)} of the target's {len(index)} {kind}s are not in the split "
                         f"(e.g. {', '.join(map(repr, extra[:EXAMPLES]))})")
        raise IdMismatchError(
            f"{target_name} was trained on other {kind}s than the {split_name} split: {'; '.join(parts)}. It was "
            "trained on another dataset or with other filters; train it on the split `recprobe export` writes "
            "(docs: Ways in, RecBole), or probe it against the dataset and filters (--min-rating, --core) it saw"
        )
    return np.array([index.get(t, -1) for t in theirs], dtype=np.int64)


class AlignedTarget:
    """A ProbeTarget in the split's numbering over one in its own: batches are translated on the way in, score
    columns on the way out. ``inner`` is the wrapped target; ``pad`` its padding item id in histories."""

    def __init__(self, inner: ProbeTarget, items: np.ndarray, users: np.ndarray | None, pad: int | None = None):
        self.inner = inner
        self.name, self.d_model, self.max_history = inner.name, inner.d_model, inner.max_history
        self.sequential, self.reads_users = getattr(inner, "sequential", None), reads_users(inner)
        self.n_items = len(items)
        pad = inner.n_items if pad is None else pad
        known = torch.from_numpy(items)
        self._unknown = known < 0  # the split's items the target does not know: never recommended
        self._items = known.clamp(min=0)
        self._history_map = torch.cat([torch.where(self._unknown, pad, known), torch.tensor([pad])])  # pad -> pad
        self._users = None if users is None else torch.from_numpy(users)

    def _batch(self, batch: Batch) -> Batch:
        check_batch(batch, self.n_items)
        if self._users is not None and len(batch):
            low, high = int(batch.users.min()), int(batch.users.max())
            if not 0 <= low <= high < len(self._users):
                raise ConfigError(f"a Batch's users are from {low} to {high}; the split's are 0..{len(self._users) - 1}")
        users = batch.users if self._users is None else self._users[batch.users]
        if not batch.history.numel():
            return Batch(users, batch.history, batch.lengths)
        history = self._history_map[batch.history]
        if self._unknown.any():  # drop unknown items, keeping the histories padded at the end
            pad = int(self._history_map[-1])
            keep = history != pad
            order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
            history = torch.where(torch.gather(keep, 1, order), torch.gather(history, 1, order), pad)
            return Batch(users, history, keep.sum(1).clamp(min=1))
        return Batch(users, history, batch.lengths)

    def _columns(self, scores: torch.Tensor) -> torch.Tensor:
        if not isinstance(scores, torch.Tensor) or scores.ndim != 2:
            raise RecprobeError(f"{self.inner.name}'s scores must be [users, items], one row per user, got "
                                f"{tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}")
        if scores.shape[1] != self.inner.n_items:
            raise IdMismatchError(width_message(self.inner.name, scores.shape[1], self.inner.n_items, "item_tokens"))
        picked = scores[:, self._items.to(scores.device)]
        lowest = torch.finfo(picked.dtype).min  # below every score, and finite: a held-out item still has a rank
        return picked.masked_fill(self._unknown.to(scores.device), lowest) if self._unknown.any() else picked

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.inner.represent(self._batch(batch))

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self._columns(self.inner.score(reps, self._batch(batch)))

    def predict(self, batch: Batch) -> torch.Tensor:
        return self._columns(self.inner.predict(self._batch(batch)))

    def item_embeddings(self) -> torch.Tensor | None:
        items = self.inner.item_embeddings()
        if items is None:
            return None
        picked = items[self._items.to(items.device)]
        return picked.masked_fill(self._unknown.to(items.device)[:, None], 0.0) if self._unknown.any() else picked


class WholeHistory:
    """A general target that reads histories (``sequential = False``), given each user's whole history: its
    ``max_history`` is the split's longest, so no window cuts what a bag-of-items model reads."""

    sequential = False

    def __init__(self, inner: ProbeTarget, longest: int):
        self.inner = inner
        self.name, self.d_model, self.n_items = inner.name, inner.d_model, inner.n_items
        self.reads_users = reads_users(inner)
        self.max_history = max(longest, inner.max_history)

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.inner.represent(batch)

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.inner.score(reps, batch)

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.inner.predict(batch)

    def item_embeddings(self) -> torch.Tensor | None:
        return self.inner.item_embeddings()


def unwrapped(target: ProbeTarget) -> ProbeTarget:
    """The target as its adapter opened it, under the run's id mapping and whole-history wrappers."""
    while isinstance(target, AlignedTarget | WholeHistory):
        target = target.inner
    return target
