"""One writer per run folder: a command that writes into a run holds an exclusive lock on it, and a second
command on the same folder is refused at once instead of interleaving its files with the first one's. The lock
is an ``flock`` on ``.recprobe.lock``, so the system drops it when its process ends, even by SIGKILL."""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from recprobe.errors import RunFolderError
from recprobe.runs.layout import LOCK

F = TypeVar("F", bound=Callable)


@contextmanager
def run_lock(run: str | Path, command: str) -> Iterator[None]:
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise RunFolderError(f"{run} is a file; give a folder path for the run")
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    with open(run / LOCK, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise RunFolderError(f"{run} is in use by another recprobe command ({f.read().strip() or 'unknown'}); "
                                 "wait for it to finish, or use another run folder") from None
        f.seek(0)
        f.truncate()
        f.write(f"recprobe {command}, pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            if created and [p.name for p in run.iterdir()] == [LOCK]:  # a command that failed before writing
                (run / LOCK).unlink()
                run.rmdir()
            fcntl.flock(f, fcntl.LOCK_UN)


def locked(command: str) -> Callable[[F], F]:
    """Decorate a function whose first argument is a run (a folder or a ``Run``) so it runs holding its lock."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run_locked(run, *args, **kwargs):
            if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 holds the lock for the group
                return function(run, *args, **kwargs)
            with run_lock(run.layout.root if hasattr(run, "layout") else run, command):
                return function(run, *args, **kwargs)

        return run_locked  # type: ignore[return-value]

    return decorate
