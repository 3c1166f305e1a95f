"""Ids aligned by construction: a target that numbers users or items its own way declares its raw tokens
(``user_tokens`` / ``item_tokens``: the dataset's raw id of each of its indices, as RecBole's checkpoints do),
and the run maps the split onto them. Downstream everything speaks the split's numbering."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recprobe.errors import IdMismatchError
from recprobe.target import Batch, ProbeTarget

EXAMPLES = 3


def align(target: ProbeTarget, split) -> ProbeTarget:
    """``target`` speaking the split's user and item numbering, or an IdMismatchError naming the mismatch."""
    item_tokens = getattr(target, "item_tokens", None)
    user_tokens = getattr(target, "user_tokens", None)
    if item_tokens is None:
        if target.n_items != split.n_items:
            raise IdMismatchError(
                f"{target.name} scores {target.n_items} items but the {split.name} split has {split.n_items}; probe it "
                "against the dataset (and filters: --min-rating, --core) it was trained on, or give the target "
                "item_tokens (each of its item indices' raw id) so recprobe can map the ids"
            )
        return target
    items = token_map(item_tokens, split.item_ids, "item", target.name, split.name)
    users = None if user_tokens is None or not target_reads_users(target) else token_map(
        user_tokens, split.user_ids, "user", target.name, split.name)
    if users is None and np.array_equal(items, np.arange(split.n_items)):
        return target
    return AlignedTarget(target, items, users)


def target_reads_users(target: ProbeTarget) -> bool:
    """Sequential targets read histories; their user ids are bookkeeping and need not match the split's."""
    return not target.max_history


def token_map(target_tokens: Sequence, split_tokens: np.ndarray, kind: str, target_name: str, split_name: str) -> np.ndarray:
    """[n] the target's index of each of the split's ``kind``s, matched by raw token; the two sets must be equal."""
    mine = [str(t).strip() for t in target_tokens]
    theirs = [str(t).strip() for t in split_tokens]
    index = {token: i for i, token in enumerate(mine)}
    missing = [t for t in theirs if t not in index]
    extra = sorted(set(mine) - set(theirs))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the split's {len(theirs)} {kind}s are unknown to the target "
                         f"(e.g. {', '.join(map(repr, missing[:EXAMPLES]))})")
        if extra:
            parts.append(f"{len(extra)} of the target's {len(mine)} {kind}s are not in the split "
                         f"(e.g. {', '.join(map(repr, extra[:EXAMPLES]))})")
        raise IdMismatchError(
            f"{target_name} was trained on other {kind}s than the {split_name} split: {'; '.join(parts)}. It was "
            "trained on another dataset or with other filters; train it on the split `recprobe export` writes "
            "(docs: Ways in, RecBole), or probe it against the dataset and filters (--min-rating, --core) it saw"
        )
    return np.array([index[t] for t in theirs], dtype=np.int64)


class AlignedTarget:
    """A ProbeTarget in the split's numbering over one in its own: batches are translated on the way in, score
    columns on the way out. ``inner`` is the wrapped target."""

    def __init__(self, inner: ProbeTarget, items: np.ndarray, users: np.ndarray | None):
        self.inner = inner
        self.name, self.d_model, self.max_history = inner.name, inner.d_model, inner.max_history
        self.n_items = len(items)
        self._items = torch.from_numpy(items)
        self._history_map = torch.cat([self._items, torch.tensor([inner.n_items])])  # the split's pad -> target's pad
        self._users = None if users is None else torch.from_numpy(users)

    def _batch(self, batch: Batch) -> Batch:
        users = batch.users if self._users is None else self._users[batch.users]
        history = self._history_map[batch.history] if batch.history.numel() else batch.history
        return Batch(users, history, batch.lengths)

    def _columns(self, scores: torch.Tensor) -> torch.Tensor:
        return scores[:, self._items.to(scores.device)]

    def represent(self, batch: Batch) -> torch.Tensor:
        return self.inner.represent(self._batch(batch))

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self._columns(self.inner.score(reps, self._batch(batch)))

    def predict(self, batch: Batch) -> torch.Tensor:
        return self._columns(self.inner.predict(self._batch(batch)))

    def item_embeddings(self) -> torch.Tensor | None:
        items = self.inner.item_embeddings()
        return None if items is None else items[self._items.to(items.device)]
