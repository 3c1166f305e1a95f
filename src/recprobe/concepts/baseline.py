"""Bases that interpret runs through the same pipeline as an SAE's latents, for comparison (paper Table 3):
the BaseModel row, the d_in raw dimensions of the probed representation as "latents" (activation = ReLU of
the value), and its two-sided variant (each dimension both ways: 2 d_in latents)."""

from __future__ import annotations

import torch


class RawDimensions:
    """Encodes like a TopK SAE whose k = n_latents = d_in: every dimension, its value clipped at 0. With
    ``both_signs``, latents d_in + j read -x_j, so a dimension's low values count as a latent too."""

    def __init__(self, d_in: int, both_signs: bool = False):
        self.both_signs = both_signs
        self.n_latents = self.k = 2 * d_in if both_signs else d_in

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.cat([x, -x], 1) if self.both_signs else x
        return values.clamp(min=0), torch.arange(values.shape[1]).expand(len(x), -1)

    @property
    def W_dec(self) -> torch.Tensor:  # noqa: N802 (the SAE's name for it)
        """[n_latents, d_in] each latent's direction: e_j, and -e_j for the second sign, so an edit of a raw
        dimension (``recprobe.steering.steer``) moves that coordinate as an SAE's edit moves its decoder row."""
        eye = torch.eye(self.n_latents // 2 if self.both_signs else self.n_latents)
        return torch.cat([eye, -eye]) if self.both_signs else eye
