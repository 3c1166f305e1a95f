"""Atomic file writes: a reader never sees a half-written artifact."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recprobe.errors import DataFormatError, RunFolderError

AT_FDCWD, RENAME_EXCHANGE = -100, 2  # from <fcntl.h> and <linux/fs.h>


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temp file over ``path`` (same folder, so atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a finished file is as readable as any other
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(staging)`` on a new folder beside ``folder``, then swap it into place in one atomic step: an
    older folder is replaced only once the new one is whole, a failed or killed write leaves it as it was, and
    no reader ever finds the folder missing. The caller holds the run's lock, so leftovers of a killed earlier
    write (hidden ``.<name>.*`` folders) are removed first."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file recprobe did not write, where it writes a folder; move it away (recprobe "
                             "never replaces what it did not write)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    for leftover in folder.parent.glob(f".{folder.name}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; a finished folder is as readable as any other
        if folder.exists():
            exchange(staging, folder)  # staging now holds the old folder
        else:
            os.replace(staging, folder)
        return folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere, by three renames."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None and renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return
    middle = b.parent / f".{b.name}.swap"
    os.replace(b, middle)
    os.replace(a, b)
    os.replace(middle, a)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a damaged file (cut short, not JSON) is a DataFormatError naming it."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataFormatError(f"{path} is damaged: not valid JSON ({e}); rerun the stage that writes it") from e
