"""SAEConfig: the TopK sparse autoencoder's shape and training objective (method.md section 4)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recprobe.device import Device

ARCHITECTURES = ("topk", "batchtopk", "matryoshka")
CONTROLS = ("frozen-decoder", "frozen-encoder")  # trained controls (Korznikov et al. 2026); "untrained" needs none


class SAEConfig(BaseModel):
    """A TopK SAE over ``d_in``-wide activations. Give ``scale`` (n_latents = scale * d_in) or ``n_latents``."""

    model_config = ConfigDict(extra="forbid")
    d_in: int = Field(ge=1, strict=True, description="Width of the probed activation.")
    scale: int | None = Field(16, ge=1, strict=True, description="n_latents = scale * d_in (the paper's s; default 16).")
    n_latents: int | None = Field(None, ge=1, strict=True, description="Number of latents, instead of scale.")
    k: int = Field(8, ge=1, strict=True, description="Latents kept per vector (TopK).")
    k_aux: int | None = Field(None, ge=1, strict=True, description="Dead latents used by the AuxK loss (default d_in / 2).")
    alpha: float = Field(1 / 32, ge=0, allow_inf_nan=False, description="Weight of the AuxK loss.")
    aux_scale: Literal["paper", "residual_variance"] = Field(
        "paper", description="'paper': AuxK as the paper writes it. 'residual_variance': AuxK times the batch's "
        "variance over the residual's (sparsify's and OpenAI's scaling), so dead latents still learn once the "
        "reconstruction is good; fewer dead latents on representations that vary along few directions.",
    )
    dead_window: int | None = Field(
        None, ge=1, description="A latent is dead after this many training vectors without firing (default: one epoch)."
    )
    init: Literal["geometric_median", "mean"] = Field("geometric_median", description="How b_pre is initialised.")
    encoder_scale: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="W_enc starts as W_dec^T times this: 1 gives unit-norm encoder "
        "rows; 0.577 (1/sqrt(3), nn.Linear's and sparsify's scale) kept every latent alive at 16,384 latents on "
        "synthetic data where 1 left two thirds dead, and changed nothing on MovieLens-100K (docs/results.md).")
    seed: int = Field(0, ge=0, description="Seeds the initialisation and the data order.")
    arch: Literal["topk", "batchtopk", "matryoshka"] = Field(
        "topk", description="'topk': k latents per vector (the paper's). 'batchtopk': k per vector on average over "
        "the batch while training, a learned threshold at inference (Bussmann et al. 2024). 'matryoshka': "
        "BatchTopK whose nested latent prefixes each reconstruct on their own, so early latents hold broad "
        "concepts (Bussmann et al. 2025).")
    prefixes: list[int] | None = Field(
        None, description="Matryoshka only: the nested prefix sizes, ascending, the last n_latents (default: "
        "n/16, n/8, n/4, n/2, n).")
    freeze: Literal["none", "decoder", "encoder"] = Field(
        "none", description="A control: keep the decoder ('decoder') or the encoder weights and bias ('encoder') "
        "at their seeded initialisation while the rest trains.")

    @model_validator(mode="after")
    def _resolve(self) -> SAEConfig:
        if self.n_latents is None:
            if self.scale is None:
                raise ValueError("give scale or n_latents")
            self.n_latents = self.scale * self.d_in
        elif self.scale is not None and self.scale * self.d_in != self.n_latents:
            raise ValueError(
                f"scale ({self.scale}) * d_in ({self.d_in}) = {self.scale * self.d_in} disagrees with n_latents "
                f"({self.n_latents}); give only one of scale and n_latents"
            )
        if self.k >= self.n_latents:
            raise ValueError(f"k ({self.k}) must be below n_latents ({self.n_latents}): with k >= n_latents every "
                             "latent fires on every vector and nothing is sparse")
        if self.k_aux is None:
            self.k_aux = max(1, self.d_in // 2)
        if self.arch == "matryoshka":
            n = self.n_latents
            self.prefixes = self.prefixes or sorted({max(1, n // 16), max(1, n // 8), max(1, n // 4), max(1, n // 2), n})
            if self.prefixes != sorted(set(self.prefixes)) or self.prefixes[-1] != n or self.prefixes[0] < 1:
                raise ValueError(f"prefixes must ascend strictly from 1 or more to n_latents ({n}), got {self.prefixes}")
        elif self.prefixes is not None:
            raise ValueError(f"prefixes are for arch='matryoshka' only (this SAE is {self.arch!r})")
        return self

    @property
    def k_max(self) -> int:
        """Latents one vector can keep at inference: k for TopK; for the thresholded architectures, the largest
        4k activations above the threshold (a vector above it on more is cut to those, a documented bound)."""
        return self.k if self.arch == "topk" else min(4 * self.k, self.n_latents)

    @property
    def variant(self) -> str:
        """'trained', or the control it is: 'frozen-decoder' / 'frozen-encoder'."""
        return "trained" if self.freeze == "none" else f"frozen-{self.freeze}"


class SAETrainConfig(BaseModel):
    """How the SAE is trained."""

    model_config = ConfigDict(extra="forbid")
    epochs: int | None = Field(
        None, ge=1, description="Passes over the train activations (default: enough to see 2M vectors, 5 to 500)."
    )
    batch_size: int = Field(64, ge=1, description="Activation vectors per step.")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False,
                      description="Adam learning rate (no weight decay: it fights the unit-norm decoder).")
    kl_weight: float = Field(
        0.0, ge=0, allow_inf_nan=False,
        description="Weight of a prediction-aware term (Arviv et al. 2026): the KL divergence between the item "
        "softmax computed from each vector and from its reconstruction, through the target's item embeddings. 0: "
        "reconstruction alone (the paper's).")
    device: Device = Field("cpu", description="torch device.")
    checkpoint_every: int = Field(1000, ge=1, description="Steps between resumable checkpoints (also at each epoch's end).")

    def epochs_for(self, n_train: int) -> int:
        """The number of epochs: as given, or enough passes over ``n_train`` vectors to see 2M, within 5..500."""
        if self.epochs is not None:
            return self.epochs
        return int(min(500, max(5, -(-2_000_000 // max(n_train, 1)))))
