"""An Adapter: a named way to build a ProbeTarget from something a user has (a run folder, a checkpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from recprobe.target import ProbeTarget


class AdapterOptions(BaseModel):
    """Base class of an adapter's options: unknown options are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Adapter:
    """``load(options)`` builds the target; ``Options`` validates what the user passed. An adapter whose target
    is shaped by the data (its item count: fresh weights, or a model built per dataset) sets ``takes_split``
    and is called ``load(options, split)``: ``probe`` hands it the split it reads, and every later stage the
    split the run stores, so no stage after ``probe`` reads raw files for it."""

    name: str
    description: str
    Options: type[AdapterOptions]
    load: Callable[..., ProbeTarget]
    takes_split: bool = False
