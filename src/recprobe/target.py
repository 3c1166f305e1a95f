"""The one interface everything downstream of a recommender talks to: ``ProbeTarget``, and the batch it reads.

Capture, SAE evaluation, concepts and steering need only this. Adapters build one from what a user has: a
built-in run folder, a RecBole checkpoint, a torch model (see ``recprobe.adapters``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from recprobe.errors import ConfigError, IdMismatchError

INTEGERS = (torch.int64, torch.int32, torch.int16, torch.int8)  # ids (uint8 would index as a mask)
_NUMBERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # target -> fingerprints of splits it speaks


@dataclass
class Batch:
    """What a recommender sees of a user: their index and their history (oldest first, padded at the
    end with the pad item ``n_items``). General models ignore the history, sequential ones the user."""

    users: torch.Tensor  # [B] int64
    history: torch.Tensor  # [B, L] int64
    lengths: torch.Tensor  # [B] int64, >= 1 for sequential models

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.users.to(device), self.history.to(device), self.lengths.to(device))

    def __len__(self) -> int:
        return len(self.users)


@runtime_checkable
class ProbeTarget(Protocol):
    """A recommender opened at its probing site: the user representation right before the prediction layer.

    Items are numbered ``0 .. n_items - 1`` (the pad item in histories is ``n_items``); users as in the
    dataset the target was trained on. ``recprobe.testing.check_probe_target`` checks an implementation.
    """

    name: str  # the adapter and model, e.g. "recbole:SASRec"
    d_model: int  # width d of the representation
    n_items: int
    max_history: int  # history length the model reads; 0 when it needs only user ids

    def represent(self, batch: Batch) -> torch.Tensor:
        """[B, d] activations at the probing site; the model is left unchanged."""
        ...

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        """[B, n_items] scores computed from given, possibly edited, representations."""
        ...

    def predict(self, batch: Batch) -> torch.Tensor:
        """[B, n_items] the model's own scores, computed its own way (the reference ``score`` must match)."""
        ...

    def item_embeddings(self) -> torch.Tensor | None:
        """[n_items, d'] the item vectors the prediction layer uses, or None when it has none."""
        ...


def is_sequential(target: ProbeTarget) -> bool:
    """Whether the target's representation depends on the order of a history window (SASRec, GRU4Rec), as it
    declares with an optional ``sequential`` attribute; without one, whether it reads histories at all. A
    general target that reads histories (a Mult-VAE, a two-tower model pooling them) says ``sequential = False``
    and is given whole histories."""
    declared = getattr(target, "sequential", None)
    return bool(target.max_history) if declared is None else bool(declared) and bool(target.max_history)


def reads_users(target: ProbeTarget) -> bool:
    """Whether the target's user ids must match the split's: general targets read them; sequential ones read
    histories, and their user ids are bookkeeping, unless they say ``reads_users`` (Caser, HGN...)."""
    return bool(getattr(target, "reads_users", not target.max_history))


def require_split_numbering(target: ProbeTarget, split) -> None:
    """Refuse a target that numbers users or items its own way (its ``item_tokens`` / ``user_tokens`` are not
    the split's ids, or it scores another count of items) where the split's batches are fed to it: ``run.target``
    is the same target mapped into the split's numbering."""
    try:
        checked = _NUMBERED.setdefault(target, set())
    except TypeError:  # a target that takes no weak reference is checked every time
        checked = set()
    if split.fingerprint in checked and target.n_items == split.n_items:
        return
    own = [f"{kind}_tokens" for kind, ids in (("item", split.item_ids), ("user", split.user_ids))
           if not numbered_as(getattr(target, f"{kind}_tokens", None), ids) and (kind == "item" or reads_users(target))]
    if own or target.n_items != split.n_items:
        why = (f"declares {' and '.join(own)} other than the split's ids" if own
               else f"scores {target.n_items} items where the split has {split.n_items}")
        raise IdMismatchError(f"{target.name} {why}: it numbers ids its own way, so the {split.name} split's batches "
                              "would be read as other users and items. Give run.target (Run.create maps the ids; "
                              "recprobe.runs.align.align(target, split) does it alone)")
    checked.add(split.fingerprint)  # its tokens compared once per split: explain runs per request in `serve`


def numbered_as(tokens, ids: np.ndarray) -> bool:
    """Whether declared raw ``tokens`` (None: none declared) number their ids as ``ids`` does."""
    if tokens is None:
        return True
    return len(tokens) == len(ids) and bool(np.array_equal(np.char.strip(np.asarray(tokens, dtype=str)),
                                                           np.char.strip(np.asarray(ids, dtype=str))))


def check_batch(batch: Batch, n_items: int) -> None:
    """One error naming what is wrong with a batch built by hand: users are [B] integer ids, histories [B, L]
    integer item ids from 0 to ``n_items`` (the pad), one row per user."""
    users, history = batch.users, batch.history
    if users.ndim != 1 or users.dtype not in INTEGERS:
        raise ConfigError(f"a Batch's users must be [B] integer user ids, got {users.dtype} {tuple(users.shape)}")
    if history.ndim != 2 or len(history) != len(batch) or (history.numel() and history.dtype not in INTEGERS):
        raise ConfigError(f"a Batch's history must be [B, L] integer item ids, one row per user: got {history.dtype} "
                          f"{tuple(history.shape)} for {len(batch)} users")
    if history.numel() and not 0 <= int(history.min()) <= int(history.max()) <= n_items:
        raise ConfigError(f"a Batch's history holds item ids from {int(history.min())} to {int(history.max())}; the "
                          f"split's are 0..{n_items - 1}, padded with {n_items}")
