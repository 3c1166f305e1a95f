"""The BaseModel row of paper Table 3: the d_in raw dimensions of the probed representation as "latents"
(activation = ReLU of the value), run through the same interpretation pipeline as an SAE's latents."""

from __future__ import annotations

import torch


class RawDimensions:
    """Encodes like a TopK SAE whose k = n_latents = d_in: every dimension, its value clipped at 0."""

    def __init__(self, d_in: int):
        self.n_latents = self.k = d_in

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.clamp(min=0), torch.arange(x.shape[1]).expand(len(x), -1)
