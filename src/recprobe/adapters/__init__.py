"""Ways to build a ProbeTarget: built-in run folders, RecBole checkpoints, a user's own torch model."""

from recprobe.adapters.base import Adapter, AdapterOptions

__all__ = ["Adapter", "AdapterOptions"]
