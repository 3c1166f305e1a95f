"""The torch device a config names, checked when the config is made rather than deep inside training."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import AfterValidator


def checked_device(device: str) -> str:
    """``device`` when this machine has it; otherwise a ValueError saying what to use instead."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"no CUDA device is available here (torch {torch.__version__}); use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"there is no {device} here ({torch.cuda.device_count()} CUDA device(s)); use cuda:0")
    return device


Device = Annotated[str, AfterValidator(checked_device)]
