"""An Adapter: a named way to build a ProbeTarget from something a user has (a run folder, a checkpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from recprobe.target import ProbeTarget


class AdapterOptions(BaseModel):
    """Base class of an adapter's options: unknown options are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Adapter:
    """``load(options)`` builds the target; ``Options`` validates what the user passed."""

    name: str
    description: str
    Options: type[AdapterOptions]
    load: Callable[[Any], ProbeTarget]
