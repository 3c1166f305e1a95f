"""The TopK sparse autoencoder (paper eq. 1-2; Gao et al. 2024), with a dense reference beside the fast path.

    a = ReLU(W_enc^T (x - b_dec) + b_enc);  z = TopK_k(a);  x_hat = W_dec^T z + b_dec

Two relatives share the weights and files (``SAEConfig.arch``):

- ``batchtopk`` (Bussmann et al. 2024): while training, the B * k largest activations of a batch of B vectors
  fire, so a vector takes as many latents as it needs and k holds on average; ``threshold`` follows the
  smallest activation that fired (a running mean) and replaces the batch at inference: z = a * (a > threshold).
- ``matryoshka`` (Bussmann et al. 2025; Nabeshima 2024): BatchTopK whose loss is the mean reconstruction
  error of nested prefixes of the latents (the first n/16, n/8, ... n), so the first latents must reconstruct
  alone and take the broad concepts.

Both train through a dense [B, n_latents] code (cheap at recommender widths); TopK keeps its sparse backward.

Weights follow SAELens' layout: ``W_enc`` [d_in, n_latents], ``W_dec`` [n_latents, d_in] (unit-norm rows, one
per latent), ``b_enc`` [n_latents], ``b_dec`` [d_in] (the paper's b_pre).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from recprobe.errors import ConfigError
from recprobe.sae.config import SAEConfig
from recprobe.sae.sparse import pre_activations, select, sparse_decode, topk_encode

THRESHOLD_RATE = 0.01  # BatchTopK's threshold: running-mean rate (SAELens' topk_threshold_lr)


@dataclass
class SAEOutput:
    x_hat: torch.Tensor  # [B, d_in]
    values: torch.Tensor  # [B, k] latent values (0 = picked but not fired)
    indices: torch.Tensor  # [B, k] latent ids
    aux_values: torch.Tensor  # [B, k_aux] the largest dead-latent values, for AuxK ([B, 0] when none is dead)
    aux_indices: torch.Tensor  # [B, k_aux]
    n_dead: int = 0  # dead latents in the mask ``forward`` was given


class TopKSAE(nn.Module):
    """A sparse autoencoder over d_in-wide vectors with ``n_latents`` latents (``config.arch``: TopK keeps each
    vector's k largest pre-activations, the paper's; BatchTopK and Matryoshka keep k per vector on average while
    training and those above a learned threshold after). Weights as SAELens names them: ``W_enc`` [d_in,
    n_latents], ``b_enc``, ``W_dec`` [n_latents, d_in] with unit-norm rows, ``b_dec``. ``encode(x)`` gives the
    kept latents as (values, indices), ``decode`` the vectors back; load one with ``from_pretrained``."""

    def __init__(self, config: SAEConfig):
        super().__init__()
        self.config = config
        d, n = config.d_in, config.n_latents
        generator = torch.Generator().manual_seed(config.seed)
        decoder = torch.randn(n, d, generator=generator)
        decoder /= decoder.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(decoder)
        # W_enc is [d_in, n] as SAELens has it, stored column by column (one latent's encoder row contiguous):
        # training runs ~25% faster that way than with a row-major copy (15 s vs 20 s in benchmarks/sae_peers.py).
        self.W_enc = nn.Parameter(decoder.T.clone().mul_(config.encoder_scale))
        self.b_enc = nn.Parameter(torch.zeros(n))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("threshold", torch.zeros(()))  # batchtopk / matryoshka: the inference threshold
        self.folder: Path | None = None  # where it was loaded from, if it was
        if config.freeze == "decoder":
            self.W_dec.requires_grad_(False)
        elif config.freeze == "encoder":
            self.W_enc.requires_grad_(False)
            self.b_enc.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str, **hub_options) -> TopKSAE:
        """Load from a local folder or a Hugging Face Hub repo id (see ``recprobe.sae.hub.from_pretrained``)."""
        from recprobe.sae.hub import from_pretrained

        return from_pretrained(path_or_repo_id, **hub_options)

    def push_to_hub(self, repo_id: str, **hub_options) -> str:
        """Upload this SAE to a Hub model repo: the folder it was loaded from (with its metrics and model card),
        or, for an SAE never saved, its cfg.json and weights alone. Returns the commit URL."""
        import tempfile

        from recprobe.sae.hub import push_to_hub
        from recprobe.sae.io import save_sae

        if self.folder is not None:
            return push_to_hub(self.folder, repo_id, **hub_options)
        with tempfile.TemporaryDirectory() as tmp:
            return push_to_hub(save_sae(self, Path(tmp) / "sae", {}), repo_id, **hub_options)

    @property
    def n_latents(self) -> int:
        return self.config.n_latents

    @property
    def k(self) -> int:
        return self.config.k

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n_latents] ReLU(W_enc^T (x - b_dec) + b_enc) for [B, d_in] x."""
        return F.relu(pre_activations(x - self.b_dec, self.W_enc, self.b_enc))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, indices) of the latents each row keeps: [B, k_max] each, values 0 where a latent was picked
        but did not fire (below the threshold, for the thresholded architectures)."""
        if x.shape[-1] != self.config.d_in:
            raise ConfigError(f"the SAE reads {self.config.d_in}-wide vectors (d_in), got {tuple(x.shape)}: give it "
                              "the representations it was trained on")
        rows = (x - self.b_dec).reshape(-1, x.shape[-1])  # [..., d_in] -> [B, d_in] for one matmul
        values, indices, _, _ = select(rows, self.W_enc, self.b_enc, self.config.k_max)
        values, indices = values.view(*x.shape[:-1], -1), indices.view(*x.shape[:-1], -1)
        values = values.relu()  # ReLU commutes with top-k: after it
        if self.config.arch != "topk":
            values = values * (values > self.threshold)
        return values, indices

    def decode(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Sparse decode: a weighted sum of k decoder rows per vector (embedding_bag), never [B, n_latents]."""
        return sparse_decode(values, indices, self.W_dec) + self.b_dec

    def forward(self, x: torch.Tensor, dead: torch.Tensor | None = None) -> SAEOutput:
        """The training pass: one dense encoder matmul, a sparse backward (``recprobe.sae.sparse``) and a sparse
        decode. ``dead`` (a [n_latents] bool mask) also picks the AuxK latents."""
        n_dead = 0 if dead is None else int(dead.sum())
        if self.config.arch != "topk":
            return self._batch_forward(x, dead, n_dead)
        values, indices, aux_values, aux_indices = topk_encode(
            x, self.b_dec, self.W_enc, self.b_enc, self.k, dead, self.config.k_aux, n_dead)
        return SAEOutput(self.decode(values, indices), values, indices, aux_values, aux_indices, n_dead)

    def _batch_forward(self, x: torch.Tensor, dead: torch.Tensor | None, n_dead: int) -> SAEOutput:
        """BatchTopK's training pass, dense: the B * k largest activations of the batch fire. ``values`` is the
        dense [B, n_latents] code and ``indices`` every latent id, so callers read both forms alike."""
        pre = self.pre_acts(x)
        flat = pre.flatten()
        keep = flat.topk(min(len(x) * self.k, flat.numel()), sorted=False).indices
        z = torch.zeros_like(flat).scatter(0, keep, flat[keep]).view_as(pre)
        if self.training and len(x):
            with torch.no_grad():  # the running threshold: the smallest activation that fired in this batch
                fired = flat[keep][flat[keep] > 0]
                if len(fired):
                    self.threshold.mul_(1 - THRESHOLD_RATE).add_(THRESHOLD_RATE * fired.min())
        indices = torch.arange(self.n_latents, device=x.device).expand(len(x), -1)
        if dead is None or n_dead == 0:
            aux_values, aux_indices = pre.new_zeros(len(x), 0), indices[:, :0]
        else:
            aux_values, aux_indices = pre.masked_fill(~dead, 0).topk(min(self.config.k_aux, n_dead), sorted=False)
        return SAEOutput(z @ self.W_dec + self.b_dec, z, indices, aux_values, aux_indices, n_dead)

    def reconstruction_loss(self, x: torch.Tensor, out: SAEOutput) -> torch.Tensor:
        """Mean squared error per vector; for Matryoshka, its mean over the nested prefixes' reconstructions."""
        if self.config.arch != "matryoshka":
            return (x - out.x_hat).pow(2).sum(-1).mean()
        losses, partial, start = [], self.b_dec.expand_as(x), 0
        for end in self.config.prefixes:
            partial = partial + out.values[:, start:end] @ self.W_dec[start:end]
            losses.append((x - partial).pow(2).sum(-1).mean())
            start = end
        return torch.stack(losses).mean()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters training moves (a frozen control's frozen ones left out)."""
        return [p for p in self.parameters() if p.requires_grad]

    def dense_latents(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n_latents] z with zeros outside the top k: the slow, obvious reference."""
        values, indices = self.encode(x)
        return torch.zeros(len(x), self.n_latents, dtype=x.dtype, device=x.device).scatter(1, indices, values)

    def reconstruct_reference(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat by a dense matmul; agrees with ``forward(x).x_hat`` (tested)."""
        return self.dense_latents(x) @ self.W_dec + self.b_dec

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.encode(x))

    def aux_loss(self, x: torch.Tensor, out: SAEOutput) -> torch.Tensor:
        """AuxK: the top k_aux dead latents (picked by ``forward(x, dead)``) reconstruct the residual
        e = x - x_hat (no b_dec; e detached), scaled by min(n_dead / k_aux, 1), and with
        ``aux_scale="residual_variance"`` also by var(x) / var(e) over the batch (each rank's share of it under
        torchrun). Zero when no latent is dead."""
        if out.n_dead == 0:
            return x.new_zeros(())
        e = (x - out.x_hat).detach()
        e_hat = sparse_decode(out.aux_values, out.aux_indices, self.W_dec)
        scale = min(out.n_dead / self.config.k_aux, 1.0)
        if self.config.aux_scale == "residual_variance":
            scale = scale * _variance(x) / _variance(e).clamp(min=1e-12)
        return scale * (e - e_hat).pow(2).sum(-1).mean()

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        if not self.W_dec.requires_grad:  # a frozen decoder stays bit-identical to its initialisation
            return
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-12)

    @torch.no_grad()
    def remove_parallel_gradient(self) -> None:
        """Drop the part of each decoder row's gradient that would change its norm."""
        if self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(1, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec


def _variance(x: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the rows from their mean."""
    return (x - x.mean(0)).pow(2).sum(-1).mean()


def geometric_median(x: torch.Tensor, iterations: int = 100, tol: float = 1e-6) -> torch.Tensor:
    """Weiszfeld's algorithm, started from the mean."""
    median = x.mean(0)
    for _ in range(iterations):
        weights = 1.0 / (x - median).norm(dim=1).clamp(min=1e-8)
        new = (weights[:, None] * x).sum(0) / weights.sum()
        if (new - median).norm() < tol * median.norm().clamp(min=1e-8):
            return new
        median = new
    return median
