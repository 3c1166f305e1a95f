"""The central data type: a leave-one-out split with its item catalog."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from recprobe.errors import ConfigError

Phase = Literal["dev", "test"]


def checked_phase(phase: str) -> Phase:
    """``phase``, or one error naming the two there are."""
    if phase not in ("dev", "test"):
        raise ConfigError(f"phase must be 'dev' or 'test', got {phase!r}")
    return phase  # type: ignore[return-value]


@dataclass(frozen=True)
class Catalog:
    """Item text by internal item index: a title and named attributes (genres, category, year...)."""

    titles: list[str]
    attributes: list[dict[str, list[str]]]
    has_titles: bool = True  # False when titles are placeholders (e.g. Grocery ships category ids only)

    def __len__(self) -> int:
        return len(self.titles)

    def describe(self, item: int) -> str:
        """One line for prompts and reports, e.g. ``Toy Story (1995) [genre: Animation, Comedy]``."""
        attrs = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.attributes[item].items() if v)
        return f"{self.titles[item]} [{attrs}]" if attrs else self.titles[item]


@dataclass(frozen=True, eq=False)
class Split:
    """Users and items re-indexed from 0; train interactions sorted by (user, time); one dev and one
    test item per user (leave-one-out by time). Histories pad with ``pad_item == n_items``."""

    name: str
    user_ids: np.ndarray  # raw id (str) of each internal user index
    item_ids: np.ndarray  # raw id (str) of each internal item index
    train_users: np.ndarray  # int64, sorted, with train_items/train_times aligned
    train_items: np.ndarray
    train_times: np.ndarray
    dev_items: np.ndarray  # int64 [n_users]
    test_items: np.ndarray  # int64 [n_users]
    catalog: Catalog
    notes: list[str] = field(default_factory=list)  # how the split was made, for provenance
    origin: dict = field(default_factory=dict)  # how load_dataset reads it again: source, min_rating, core
    user_attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [n_users] str ("" unknown)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def pad_item(self) -> int:
        return self.n_items

    @cached_property
    def train_offsets(self) -> np.ndarray:
        """CSR row pointer: user u's train items are ``train_items[offsets[u]:offsets[u + 1]]``."""
        counts = np.bincount(self.train_users, minlength=self.n_users)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the exact split; runs record it so later stages can refuse a different one."""
        h = hashlib.sha256()
        for a in (self.train_users, self.train_items, self.dev_items, self.test_items):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        h.update("\0".join(self.item_ids.tolist()).encode())
        return h.hexdigest()[:16]

    def sequences(self, phase: Phase) -> tuple[np.ndarray, np.ndarray]:
        """Each user's chronological items visible at ``phase`` as CSR (offsets, items):
        train items for dev, train items then the dev item for test."""
        if checked_phase(phase) == "dev":
            return self.train_offsets, self.train_items
        return self._test_sequences

    @cached_property
    def _test_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """``sequences("test")``, built once (read-only: every caller shares it)."""
        counts = np.diff(self.train_offsets) + 1
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        items = np.empty(offsets[-1], dtype=np.int64)
        items[offsets[1:] - 1] = self.dev_items
        keep = np.ones(len(items), dtype=bool)
        keep[offsets[1:] - 1] = False
        items[keep] = self.train_items
        offsets.setflags(write=False)
        items.setflags(write=False)
        return offsets, items

    def histories(self, phase: Phase, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``max_len`` visible items of every user, oldest first, padded at the end:
        ([n_users, max_len] items, [n_users] lengths)."""
        offsets, items = self.sequences(phase)
        return last_window(offsets, items, np.arange(self.n_users), offsets[1:], max_len, self.pad_item)

    def targets(self, phase: Phase) -> np.ndarray:
        return self.dev_items if checked_phase(phase) == "dev" else self.test_items

    def exclusions(self, phase: Phase) -> tuple[np.ndarray, np.ndarray]:
        """Items masked when ranking for ``phase`` as CSR (offsets, items): the user's train items and
        the other held-out item (the test item at dev time, the dev item at test time)."""
        other = self.test_items if checked_phase(phase) == "dev" else self.dev_items
        offsets, items = self.sequences("test")  # train + dev, per user
        if phase == "dev":
            items = items.copy()
            items[offsets[1:] - 1] = other
        return offsets, items

    def item_popularity(self) -> np.ndarray:
        """Train interactions per item."""
        return np.bincount(self.train_items, minlength=self.n_items)

    def summary(self) -> dict[str, int | str]:
        return {
            "dataset": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "train": len(self.train_items),
            "interactions": len(self.train_items) + 2 * self.n_users,
            "fingerprint": self.fingerprint,
        }


def last_window(
    offsets: np.ndarray, items: np.ndarray, users: np.ndarray, ends: np.ndarray, max_len: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each (user, end) the items ``items[max(start, end - max_len):end]`` of that user's CSR row,
    oldest first and padded at the end with ``pad``. Vectorised: no Python loop over users."""
    starts = np.maximum(offsets[users], ends - max_len)
    lengths = (ends - starts).astype(np.int64)
    cols = np.arange(max_len)
    index = starts[:, None] + cols[None, :]
    valid = cols[None, :] < lengths[:, None]
    window = np.where(valid, items[np.minimum(index, len(items) - 1)], pad)
    return window.astype(np.int64), lengths
