"""ActivationStore: probed activations on disk as safetensors shards plus an index of where each row came from.

    <folder>/index.json                 d, dtype, per split: its shards and row counts, provenance
    <folder>/<split>-00000.safetensors  "activations" [n, d] float32, "users" [n], "positions" [n] int64

Why safetensors shards rather than Arrow through ``datasets``: the SAE trainer reads whole shards in
shuffled order and needs torch float tensors; a safetensors shard memory-maps straight into one tensor with no
conversion, where Arrow rows come back as lists to convert per batch (``benchmarks/store_read.py``
measures both). Memory stays bounded by one shard on both the write and the read side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from recprobe.errors import DataFormatError, RunFolderError
from recprobe.hashing import HASH_CHARS, file_hash, tensor_bytes
from recprobe.io import atomic_write, write_json
from recprobe.schemas import StoreIndex, read_checked

SHARD_ROWS = 65_536
INDEX = "index.json"


@dataclass
class Rows:
    """A block of activations with the entity keys of each row."""

    activations: torch.Tensor  # [n, d] float32
    users: torch.Tensor  # [n] int64
    positions: torch.Tensor  # [n] int64: index in the user's sequence of the item being predicted

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, rows: slice) -> Rows:
        return Rows(self.activations[rows], self.users[rows], self.positions[rows])

    @staticmethod
    def cat(parts: list[Rows]) -> Rows:
        return Rows(*(torch.cat(tensors) for tensors in zip(*((p.activations, p.users, p.positions) for p in parts), strict=True)))


def non_finite_row(x: torch.Tensor) -> int | None:
    """The first row of ``x`` holding a NaN or an infinity, if any. One sum first: a NaN or an infinity anywhere
    makes it non-finite (0.4 against 7 ms for a 65,536 x 64 shard), and only then (or on overflow) rows are read."""
    if bool(torch.isfinite(x.sum())):
        return None
    finite = torch.isfinite(x).all(1)
    return None if bool(finite.all()) else int((~finite).nonzero()[0])


def check_rows(rows: Rows, d: int, split: str) -> None:
    """Refuse rows that are not [n, d] finite activations, naming the first bad one."""
    if rows.activations.ndim != 2 or rows.activations.shape[1] != d:
        raise DataFormatError(f"activations must be [n, {d}], got {tuple(rows.activations.shape)}")
    bad = non_finite_row(rows.activations)
    if bad is not None:
        raise DataFormatError(f"the target produced a non-finite activation for user {int(rows.users[bad])} at "
                              f"position {int(rows.positions[bad])} ({split} split); nothing was stored for it. "
                              "Check the model's weights and inputs")


class ActivationWriter:
    """Appends rows split by split into an empty folder, cutting a shard every ``shard_rows``; ``close`` writes
    the index last (with a hash of every shard's content), so a folder with an index is complete."""

    def __init__(self, folder: str | Path, d: int, provenance: dict[str, Any], shard_rows: int = SHARD_ROWS):
        self.folder, self.d, self.shard_rows = Path(folder), d, shard_rows
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(self.folder.iterdir()):
            raise RunFolderError(f"{self.folder} is not empty; an activation store is written into a new folder")
        self._content = hashlib.sha256()
        self.index: dict[str, Any] = {"d": d, "dtype": "float32", "provenance": provenance, "splits": {}}
        self._pending: list[Rows] = []  # rows not yet in a shard (fewer than shard_rows between appends)
        self._pending_rows = 0
        self._split: str | None = None

    def append(self, split: str, rows: Rows) -> None:
        check_rows(rows, self.d, split)
        if split != self._split:
            self._flush(force=True)
            self._split = split
            self.index["splits"].setdefault(split, {"rows": 0, "shards": []})
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= self.shard_rows:
            self._flush(force=False)

    def close(self) -> Path:
        self._flush(force=True)
        self.index["content"] = self._content.hexdigest()[:HASH_CHARS]
        write_json(self.folder / INDEX, self.index)
        return self.folder

    def _flush(self, force: bool) -> None:
        """Write full shards; with ``force`` also the remainder."""
        if not self._pending:
            return
        rows, start = Rows.cat(self._pending), 0
        while len(rows) - start >= self.shard_rows or (force and start < len(rows)):
            n = min(self.shard_rows, len(rows) - start)
            self._write_shard(rows[start:start + n])
            start += n
        self._pending = [rows[start:]] if start < len(rows) else []
        self._pending_rows = len(rows) - start

    def _write_shard(self, rows: Rows) -> None:
        entry = self.index["splits"][self._split]
        name = shard_name(self._split, len(entry["shards"]))
        for tensor in write_shard(self.folder / name, rows).values():
            self._content.update(tensor_bytes(tensor))
        entry["shards"].append({"file": name, "rows": len(rows)})
        entry["rows"] += len(rows)


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.safetensors"


def write_shard(path: Path, rows: Rows) -> dict[str, torch.Tensor]:
    """One shard file, written whole or not at all; returns what it holds."""
    tensors = {"activations": rows.activations.float().contiguous(), "users": rows.users.long().contiguous(),
               "positions": rows.positions.long().contiguous()}
    atomic_write(path, lambda p: save_file(tensors, p))
    return tensors


def close_store(folder: Path, d: int, provenance: dict[str, Any], splits: dict[str, list[int]]) -> Path:
    """The index of shards written apart (by several processes): ``splits`` gives each split's shard row
    counts, in order; the content hash is read back from the shards, as ``ActivationWriter`` would have summed it."""
    index: dict[str, Any] = {"d": d, "dtype": "float32", "provenance": provenance, "splits": {}}
    for split, counts in splits.items():
        shards = [{"file": shard_name(split, j), "rows": rows} for j, rows in enumerate(counts)]
        index["splits"][split] = {"rows": sum(counts), "shards": shards}
    index["content"] = ActivationStore(folder, index=index).content_of_shards()
    write_json(folder / INDEX, index)
    return folder


class ActivationStore:
    """A finished store, read shard by shard (memory-mapped) so memory does not grow with the data."""

    @staticmethod
    def finished(folder: str | Path) -> bool:
        """Whether ``folder`` holds a finished store (its index is written last)."""
        return (Path(folder) / INDEX).is_file()

    def __init__(self, folder: str | Path, *, index: dict[str, Any] | None = None):
        """The store in ``folder``; ``index``: shards being finished, read before their index is written."""
        self.folder = Path(folder)
        if index is None and not self.finished(self.folder):
            raise RunFolderError(
                f"{self.folder} holds no finished activation store (no {INDEX}); run `recprobe capture` first"
            )
        self.index = index or read_checked(self.folder / INDEX, StoreIndex, "recprobe capture --run RUN")
        self.d: int = self.index["d"]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.index["provenance"]

    @property
    def content(self) -> str:
        """A hash of every stored activation and key (what an SAE records it was trained on)."""
        return self.index.get("content") or file_hash(self.folder / INDEX)

    def content_of_shards(self) -> str:
        """The content hash recomputed from the shards, in the order they were written."""
        found = hashlib.sha256()
        for split in self.splits():
            for shard in self._split(split)["shards"]:
                for tensor in self._read(shard["file"], "activations", "users", "positions"):
                    found.update(tensor_bytes(tensor))
        return found.hexdigest()[:HASH_CHARS]

    def verify(self, rebuild: str) -> None:
        """Refuse a store whose shards are not the ones it recorded (one replaced, copied in from another store,
        or altered)."""
        found = self.content_of_shards()
        if found != self.index["content"]:
            raise DataFormatError(f"{self.folder} holds other activations than it recorded (content hash "
                                  f"{found}, recorded {self.index['content']}): a shard was "
                                  f"replaced or altered; capture again with `{rebuild}`")

    def splits(self) -> list[str]:
        return list(self.index["splits"])

    def n_rows(self, split: str) -> int:
        return self._split(split)["rows"]

    def shards(self, split: str) -> Iterator[Rows]:
        for shard in self._split(split)["shards"]:
            yield Rows(*self._read(shard["file"], "activations", "users", "positions"))

    def batches(self, split: str, batch_size: int, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> Iterator[torch.Tensor]:
        """Activation batches; shuffled (shard order, then rows within a shard) when a generator is given. With
        ``device``, each shard moves there once and the same batches are cut there (no copy per batch)."""
        shards = self._split(split)["shards"]
        order = torch.randperm(len(shards), generator=generator) if generator is not None else torch.arange(len(shards))
        for i in order.tolist():
            (x,) = self._read(shards[i]["file"], "activations")
            bad = non_finite_row(x)
            if bad is not None:
                raise DataFormatError(f"{self.folder / shards[i]['file']} row {bad} holds a non-finite activation "
                                      f"({x[bad].tolist()[:4]}...); capture the run again")
            rows = torch.randperm(len(x), generator=generator) if generator is not None else None
            if device is not None:
                x, rows = x.to(device), None if rows is None else rows.to(device)
            for start in range(0, len(x), batch_size):
                yield x[start:start + batch_size] if rows is None else x[rows[start:start + batch_size]]

    def load(self, split: str) -> Rows:
        """The whole split in memory (for small stores and tests)."""
        return Rows.cat(list(self.shards(split)))

    def _read(self, file: str, *names: str) -> list[torch.Tensor]:
        try:
            with safe_open(self.folder / file, framework="pt") as f:
                tensors = [f.get_tensor(name) for name in names]
        except (SafetensorError, OSError) as e:
            raise DataFormatError(f"{self.folder / file} is not a readable activation shard ({e}); capture the run "
                                  "again") from e
        if tensors[0].ndim != 2 or tensors[0].shape[1] != self.d:
            raise DataFormatError(f"{self.folder / file} holds activations of shape {tuple(tensors[0].shape)}, but "
                                  f"{INDEX} says they are {self.d} wide; capture the run again")
        return tensors

    def _split(self, split: str) -> dict[str, Any]:
        if split not in self.index["splits"]:
            raise RunFolderError(
                f"{self.folder} has no {split!r} activations (it has {', '.join(self.splits())}); "
                f"capture with --splits including {split}"
            )
        return self.index["splits"][split]
