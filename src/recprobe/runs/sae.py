"""The SAE stage: train a TopK SAE on ``<run>/activations``, measure it, write ``<run>/sae``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recprobe.parallel import DataParallel
from recprobe.runs.lock import locked
from recprobe.runs.options import built
from recprobe.runs.run import Run, open_run
from recprobe.sae.card import model_card
from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.faithfulness import faithfulness
from recprobe.sae.io import METRICS, save_sae
from recprobe.sae.train import initial_sae, train_sae


@locked("train-sae")
def train_sae_run(run: Run | str | Path, sae_options: dict[str, Any] | None = None,
                  train: SAETrainConfig | None = None, *,
                  progress: bool = True) -> dict[str, Any]:
    """Train an SAE on ``run/activations``, measure faithfulness before (random init) and after, and write
    ``run/sae``. Returns the metrics."""
    run = open_run(run)
    model, split, store = run.target, run.split, run.activations(verify=True)
    config = built(SAEConfig, d_in=store.d, **(sae_options or {}))
    train = train or SAETrainConfig()
    parallel = DataParallel.from_env(train.device)  # under torchrun: every rank trains, rank 0 writes
    before = faithfulness(model, initial_sae(store, config).eval(), split, store) if parallel.main else {}
    checkpoint = run.layout.sae_checkpoint
    items = model.item_embeddings() if train.kl_weight > 0 else None
    sae, result = train_sae(store, config, train, progress=progress, checkpoint=checkpoint, items=items)
    if not parallel.main:
        return {}
    after = faithfulness(model, sae, split, store)
    metrics = {"after": after, "before": before, "best_epoch": result.best_epoch, "train_seconds": result.train_seconds,
               "train_config": train.model_dump(), "history": result.history, "processes": parallel.world,
               "selected_on": selection(result.selected_on, model.max_history)}
    provenance = {**store.provenance, "activations": store.content, "d_in": store.d}
    save_sae(sae, run.layout.sae, provenance, extra={METRICS: json.dumps(metrics, indent=2) + "\n",
                                              "README.md": model_card(sae.config, provenance, metrics)})
    checkpoint.unlink()  # the SAE is saved: nothing left to resume
    return metrics


def selection(split: str, max_history: int) -> str:
    """How the kept epoch was chosen, in words: a general target's dev vectors are its users' own train vectors
    (one representation per user), so there the lowest dev FVU is the best fit, not the best held-out epoch."""
    if split != "dev":
        return f"lowest {split} FVU: the activations hold no dev vectors"
    if not max_history:
        return "lowest dev FVU, on the users' own train vectors: a general model has one representation per user"
    return "lowest dev FVU"
