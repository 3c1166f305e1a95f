"""Short content hashes: what provenance records (``recprobe.runs.provenance``) are made of."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch

HASH_CHARS = 16


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()


def tensors_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    """A hash of named tensors (names, dtypes, shapes and bytes), independent of their order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\0".encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()[:HASH_CHARS]


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:HASH_CHARS]


def files_hash(paths: Mapping[str, str | Path]) -> str:
    """A hash of named files' contents (a missing file counts as missing), independent of their order."""
    h = hashlib.sha256()
    for name in sorted(paths):
        h.update(f"{name}:{file_hash(paths[name]) if Path(paths[name]).is_file() else 'missing'}\0".encode())
    return h.hexdigest()[:HASH_CHARS]
