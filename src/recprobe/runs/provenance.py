"""What each artifact was made from: short content hashes, recorded when a stage writes and checked when the
next stage reads. A mismatch is refused with the command that rebuilds the stale artifact, never reused."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recprobe.errors import StaleArtifactError
from recprobe.hashing import tensors_hash
from recprobe.schemas import Result, read_checked


def torch_module(target: Any) -> nn.Module | None:
    """The nn.Module holding a target's weights: the target itself, or what it wraps (``inner``, ``model``)."""
    if isinstance(target, nn.Module):
        return target
    for attribute in ("inner", "model"):
        wrapped = getattr(target, attribute, None)
        if wrapped is not None and (found := torch_module(wrapped)) is not None:
            return found
    return None


@torch.no_grad()
def target_fingerprint(target: Any, probe_batch=None) -> str:
    """The recommender's identity: a hash of its weights (state_dict) when it has torch weights, otherwise of
    its representations and scores on a fixed batch of users."""
    module = torch_module(target)
    if module is not None:
        return "weights:" + tensors_hash(module.state_dict())
    if probe_batch is None:
        raise ValueError("a target without torch weights needs a probe batch to be fingerprinted")
    reps = target.represent(probe_batch).float()
    return "outputs:" + tensors_hash({"reps": reps, "scores": target.score(reps, probe_batch).float()})


def check_made_from(what: str, recorded: Mapping[str, Any], current: Mapping[str, Any], rebuild: str) -> None:
    """Refuse ``what`` when any input it recorded differs from the run's current one; ``rebuild`` is the command
    that makes it again. Inputs it did not record (older files) are not checked."""
    changed = [key for key, value in current.items() if key in recorded and recorded[key] != value]
    if changed:
        detail = ", ".join(f"{key} {recorded[key]} -> now {current[key]}" for key in changed)
        raise StaleArtifactError(f"{what} was made from another {' and '.join(changed)} than the run has now "
                                 f"({detail}); rebuild it with `{rebuild}`")


def read_made_from(path: Path, current: Mapping[str, Any], rebuild: str, schema: type[Result] = Result
                   ) -> dict[str, Any] | None:
    """A result file that records what it was made from: None when absent, refused when it does not fit
    ``schema`` or was made from other inputs."""
    if not path.exists():
        return None
    result = read_checked(path, schema, rebuild)
    check_made_from(str(path), result["made_from"], current, rebuild)
    return result
