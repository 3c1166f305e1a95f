"""One edit of an SAE latent, and the representation it makes.

A ``LatentEdit`` changes latent j's value z_j in one of three ways: ``scale`` multiplies it (where it fired; 0
ablates), ``clamp`` sets it (everywhere), ``shift`` adds to it (everywhere, not below 0: PopSteer's de-biasing
edit). The representation handed to the model's scorer is x + sum_j (z'_j - z_j) W_dec[j]: the edits' change of
the SAE's reconstruction, added to the original representation, so the SAE's reconstruction error stays in and
an edit that changes nothing (scale 1, shift 0) leaves the model's ranking exactly as it was.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recprobe.errors import RecprobeError

MAX_EDIT = 1e6  # scales and clamps beyond this overflow float32 scores on ordinary representations


def is_integer_id(value: object) -> bool:
    """Whether ``value`` can be an id: a Python or numpy integer, not a bool (nor a float or a string)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class LatentEdit:
    """One latent's change: exactly one of ``scale``, ``clamp`` and ``shift`` (see the module docstring)."""

    latent: int
    scale: float | None = None
    clamp: float | None = None
    shift: float | None = None

    def check(self, n_latents: int) -> None:
        if not is_integer_id(self.latent):
            raise RecprobeError(f"an edit's latent is a latent id, an integer from 0 to {n_latents - 1}; got {self.latent!r}")
        if not 0 <= self.latent < n_latents:
            raise RecprobeError(f"latent {self.latent} does not exist: this SAE has latents 0..{n_latents - 1}")
        given = [value for value in (self.scale, self.clamp, self.shift) if value is not None]
        if len(given) != 1:
            raise RecprobeError(f"edit of latent {self.latent}: give exactly one of scale, clamp and shift")
        value = given[0]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise RecprobeError(f"edit of latent {self.latent}: {value!r} is not a number; give e.g. 10, -10 or 0")
        if not math.isfinite(value):
            raise RecprobeError(f"edit of latent {self.latent}: {value} is not a finite number; give e.g. 10, -10 or 0")
        if abs(value) > MAX_EDIT:
            raise RecprobeError(f"edit of latent {self.latent}: {value:g} is too large (float32 scores overflow); give a "
                                f"value within +-{MAX_EDIT:g}")

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        """The new value of this latent given its current values z [B]."""
        if self.scale is not None:
            return z * self.scale
        if self.clamp is not None:
            return torch.full_like(z, self.clamp)
        return (z + self.shift).clamp_min(0)


def value_of(values: torch.Tensor, indices: torch.Tensor, latent: int) -> torch.Tensor:
    """[B] one latent's value from an encoding's (values, indices) (0 where it is not among the top k)."""
    return (values * (indices == latent)).sum(1)


def latent_values(sae, reps: torch.Tensor, latent: int) -> torch.Tensor:
    """[B] the value of one latent for these representations."""
    return value_of(*sae.encode(reps), latent)


def dense_codes(sae, reps: torch.Tensor) -> torch.Tensor:
    """[B, n_latents] the SAE's codes, zeros where a latent is not among the top k."""
    values, indices = sae.encode(reps.float())
    return torch.zeros(len(reps), sae.n_latents).scatter_(1, indices, values)


@torch.no_grad()
def steered(sae, reps: torch.Tensor, edits: Sequence[LatentEdit] | LatentEdit,
            codes: torch.Tensor | None = None) -> torch.Tensor:
    """The representation with the edits (or one edit) applied (see the module docstring); ``codes`` [B,
    n_latents], the ``dense_codes`` of ``reps`` when the caller has them already (each edit then reads its latent
    from them)."""
    edits = [edits] if isinstance(edits, LatentEdit) else list(edits)
    reps = reps.float()
    if not edits:
        return reps.clone()
    for edit in edits:
        edit.check(sae.n_latents)
    latents = [edit.latent for edit in edits]
    if codes is None:
        values, indices = sae.encode(reps)
        z = torch.stack([value_of(values, indices, j) for j in latents], 1)
    else:
        z = codes[:, latents]
    new = torch.stack([edit.apply(z[:, i]) for i, edit in enumerate(edits)], 1)
    return reps + (new - z) @ sae.W_dec.detach()[latents].float()
