"""The capture stage: the run's target over its split, into ``<run>/activations``."""

from __future__ import annotations

from pathlib import Path

from recprobe.capture import SPLITS, Positions, capture
from recprobe.runs.lock import locked
from recprobe.runs.run import Run, open_run
from recprobe.store import ActivationStore


@locked("capture")
def capture_run(run: Run | str | Path, *, parts: tuple[str, ...] = SPLITS,
                positions: Positions = "auto", batch_size: int = 1024, progress: bool = True) -> ActivationStore:
    """Capture the run's target over ``parts`` into ``run/activations`` (the previous store stays until the new
    one is complete). ``positions="auto"`` records every train position of a sequential target."""
    run = open_run(run)
    return capture(run.target, run.split, run.layout.activations, parts=parts, positions=positions,
                   batch_size=batch_size, provenance=run.made_from(), progress=progress)
