"""The hooks a recprobe plugin can implement. Plugins are found through the ``recprobe`` entry-point group."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from recprobe.adapters.base import Adapter

hookspec = pluggy.HookspecMarker("recprobe")
hookimpl = pluggy.HookimplMarker("recprobe")


@hookspec
def register_adapters(register: Callable[[Adapter], None]) -> None:
    """Call ``register(adapter)`` once for every Adapter the plugin provides."""
