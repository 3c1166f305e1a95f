"""``concepts.jsonl``: one JSON object per finished latent, appended as each finishes.

Readers (``read_records``) never modify the file: they skip what they cannot parse. Only ``interpret``, which
holds the run's lock, repairs it (``repair_records``): the damaged lines move to ``concepts.damaged.jsonl``
beside it and the file is rewritten with the good ones, so nothing is silently lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from recprobe.io import atomic_write_text
from recprobe.runs.layout import CONCEPTS_FILE, DAMAGED
from recprobe.schemas import ConceptRecord


@dataclass
class Records:
    records: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # lines that are not a latent's record (or not finished)


def _is_record(value: Any, n_latents: int | None) -> bool:
    """Whether a line's JSON is a latent's record as interpret writes it (``ConceptRecord``), of a latent the
    basis has."""
    try:
        record = ConceptRecord.model_validate(value)
    except ValidationError:
        return False
    return n_latents is None or record.latent < n_latents


def read_records(folder: Path, n_latents: int | None = None) -> Records:
    """The finished records of ``folder/concepts.jsonl`` (first one per latent) and its damaged lines: not JSON,
    not a record (``ConceptRecord``), or of a latent beyond ``n_latents`` when it is given."""
    path = folder / CONCEPTS_FILE
    out = Records()
    if not path.exists():
        return out
    seen: set[int] = set()
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace")
            try:
                value = json.loads(line) if raw.endswith(b"\n") else None
            except json.JSONDecodeError:
                value = None
            if not _is_record(value, n_latents) or value["latent"] in seen:
                out.damaged.append(line.rstrip("\n"))
                continue
            seen.add(value["latent"])
            out.records.append(value)
    return out


def repair_records(folder: Path, n_latents: int | None = None) -> Records:
    """Move the damaged lines of ``concepts.jsonl`` to ``concepts.damaged.jsonl`` and keep the good ones (the
    caller holds the run's lock). Returns what was read; ``damaged`` lists what moved."""
    found = read_records(folder, n_latents)
    if found.damaged:
        with open(folder / DAMAGED, "a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in found.damaged)
        write_records(folder, found.records)
    return found


def write_records(folder: Path, records: list[dict[str, Any]]) -> None:
    """``concepts.jsonl`` anew, atomically, one record a line as ``append_record`` writes them."""
    atomic_write_text(folder / CONCEPTS_FILE, "".join(json.dumps(r) + "\n" for r in records))


def append_record(folder: Path, record: dict[str, Any]) -> None:
    with open(folder / CONCEPTS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
