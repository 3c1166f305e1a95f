"""From latents to named concepts: cases, levels and per-latent samples (paper section 3.3)."""

from recprobe.concepts.cases import CaseSet, LatentSample, levels, record_cases, sample_latent

__all__ = ["CaseSet", "LatentSample", "levels", "record_cases", "sample_latent"]
