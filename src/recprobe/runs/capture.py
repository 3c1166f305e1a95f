"""The capture stage: the run's target over its split, into ``<run>/activations``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recprobe.activations.capture import capture
from recprobe.activations.store import ActivationStore
from recprobe.runs.lock import locked
from recprobe.runs.options import CaptureOptions, stage_options
from recprobe.runs.run import Run, open_run


@locked("capture")
def capture_run(run: Run | str | Path, options: CaptureOptions | None = None, *, progress: bool = True,
                **fields: Any) -> ActivationStore:
    """Capture the run's target over ``parts`` into ``run/activations`` (the previous store stays until the new
    one is complete); ``options`` (or its fields by name): ``recprobe.runs.options.CaptureOptions``.
    ``positions="auto"`` records every train position of a target that reads histories."""
    o = stage_options(CaptureOptions, options, fields)
    run = open_run(run)
    return capture(run.target, run.split, run.layout.activations, parts=o.parts, positions=o.positions,
                   batch_size=o.batch_size, provenance=run.made_from(), progress=progress)
