"""Activations: a target's representations captured over a split (``capture``) into a sharded, memory-mapped
safetensors store (``store``), the SAE's training data."""

from recprobe.activations.capture import capture
from recprobe.activations.store import ActivationStore

__all__ = ["ActivationStore", "capture"]
