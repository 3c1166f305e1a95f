"""Resumable SAE training: everything a killed run needs to continue exactly where it stopped, in one
safetensors file written atomically (model, Adam moments, dead-latent counters, the data-order RNG at the start
of the epoch in progress, the best epoch so far, and the epoch's running statistics)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from recprobe.errors import RecprobeError
from recprobe.io import atomic_write


@dataclass
class TrainingProgress:
    """Where training stands: the epoch in progress and how many of its batches are done."""

    epoch: int = 1
    batches_done: int = 0
    sse: float = 0.0  # the epoch's running reconstruction statistics (for train FVU and L0)
    l0: float = 0.0
    seen: int = 0
    square: float = 0.0
    best_fvu: float = float("inf")
    best_epoch: int = 0
    seconds: float = 0.0  # training time of earlier processes
    history: list[dict[str, float]] = field(default_factory=list)

    def new_epoch(self) -> None:
        self.epoch += 1
        self.batches_done, self.sse, self.l0, self.seen, self.square = 0, 0.0, 0.0, 0, 0.0


def fingerprint(*parts: Any) -> str:
    """What a checkpoint must match to be resumed: the SAE and training configs and the store."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, key: str, progress: TrainingProgress, sae: torch.nn.Module, optimiser: torch.optim.Optimizer,
                    tensors: dict[str, torch.Tensor], best_state: dict[str, torch.Tensor] | None) -> None:
    """``tensors``: the other state (dead-latent counters, RNG, running sums), saved under their names."""
    out = {f"model.{name}": value for name, value in sae.state_dict().items()}
    for index, state in optimiser.state_dict()["state"].items():
        out.update({f"adam.{index}.{name}": value for name, value in state.items()})
    out.update({f"best.{name}": value for name, value in (best_state or {}).items()})
    out.update({f"extra.{name}": value for name, value in tensors.items()})
    out = {name: value.detach().cpu().contiguous() for name, value in out.items()}
    metadata = {"format": "pt", "key": key, "progress": json.dumps(asdict(progress))}
    atomic_write(path, lambda p: save_file(out, p, metadata=metadata))


def load_checkpoint(path: Path, key: str, sae: torch.nn.Module, optimiser: torch.optim.Optimizer
                    ) -> tuple[TrainingProgress, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """Restore ``sae`` and ``optimiser`` in place; returns the progress, the other tensors and the best state."""
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError) as e:
        raise RecprobeError(f"{path} is not a readable training checkpoint ({e}); delete it to start over") from e
    if metadata.get("key") != key:
        raise RecprobeError(f"{path} was written by a training run with other settings or data; pass the same "
                            "options to resume it, or delete it to start over")

    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}

    sae.load_state_dict(group("model."))
    params = [p for group in optimiser.param_groups for p in group["params"]]  # the order Adam numbers them
    adam: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in group("adam.").items():
        index, _, field_name = name.partition(".")
        param = params[int(index)]
        if value.shape == param.shape:  # moments take their parameter's memory layout (fused Adam needs it)
            value = torch.empty_like(param).copy_(value)
        adam.setdefault(int(index), {})[field_name] = value
    optimiser.load_state_dict({"state": adam, "param_groups": optimiser.state_dict()["param_groups"]})
    return TrainingProgress(**json.loads(metadata["progress"])), group("extra."), group("best.") or None
