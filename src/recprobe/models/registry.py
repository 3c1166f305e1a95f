"""The built-in recommenders by name."""

from __future__ import annotations

from typing import Any

import torch

from recprobe.data.split import Split
from recprobe.errors import unknown_name
from recprobe.models.base import Recommender
from recprobe.models.bprmf import BPRMF
from recprobe.models.lightgcn import LightGCN
from recprobe.models.sasrec import SASRec
from recprobe.models.timirec import TiMiRec

MODELS: dict[str, type[Recommender]] = {m.name: m for m in (BPRMF, LightGCN, SASRec, TiMiRec)}


def model_class(name: str) -> type[Recommender]:
    if name not in MODELS:
        raise unknown_name("model", name, list(MODELS))
    return MODELS[name]


def build_model(name: str, split: Split, *, seed: int = 0, **options: Any) -> Recommender:
    """A fresh built-in model for ``split``, initialised from ``seed`` (the global RNG is left as it
    was); ``options`` are fields of the model's Config."""
    cls = model_class(name)
    config = cls.Config(**options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config, split.n_users, split.n_items)
    if isinstance(model, LightGCN):
        model.set_graph(split.train_users, split.train_items)
    return model
