"""The SAE stages of a run folder: capture its recommender's activations, then train and evaluate an SAE.

    runs/<name>/activations/   index.json + shards      (recprobe capture)
    runs/<name>/sae/           cfg.json, sae_weights.safetensors, metrics.json, README.md   (recprobe train-sae)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recprobe.capture import SPLITS, Positions, capture
from recprobe.concepts.cases import CaseSet, record_cases
from recprobe.data.split import Split
from recprobe.errors import RunFolderError
from recprobe.evaluate import faithfulness
from recprobe.locking import locked
from recprobe.models import load_recommender
from recprobe.models.base import Recommender
from recprobe.sae.card import model_card
from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.io import load_sae, save_sae
from recprobe.sae.parallel import DataParallel
from recprobe.sae.topk import TopKSAE
from recprobe.sae.train import initial_sae, train_sae
from recprobe.store import ActivationStore

ACTIVATIONS, SAE = "activations", "sae"
CHECKPOINT = "sae-checkpoint.safetensors"  # resumable training state while train-sae runs


@locked("capture")
def capture_run(run: str | Path, *, data_dir: str | Path | None = None, parts: tuple[str, ...] = SPLITS,
                positions: Positions = "last", batch_size: int = 1024, progress: bool = True) -> ActivationStore:
    """Capture the run's recommender over ``parts`` into ``run/activations``."""
    model, split = load_recommender(run, data_dir)
    provenance = {"adapter": model.name, "model": model.name, "site": f"{type(model).__name__}.represent",
                  "run": str(run)}
    return capture(model, split, Path(run) / ACTIVATIONS, parts=parts, positions=positions, batch_size=batch_size,
                   provenance=provenance, progress=progress)


@locked("train-sae")
def train_sae_run(run: str | Path, sae_options: dict[str, Any] | None = None, train: SAETrainConfig | None = None, *,
                  data_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train an SAE on ``run/activations``, measure faithfulness before (random init) and after, and write
    ``run/sae``. Returns the metrics."""
    run = Path(run)
    model, split = load_recommender(run, data_dir)
    store = ActivationStore(run / ACTIVATIONS)
    if store.provenance.get("fingerprint") != split.fingerprint:
        raise RunFolderError(
            f"{run / ACTIVATIONS} was captured from other data than {run}'s recommender; run `recprobe capture --run {run}` again"
        )
    config = SAEConfig(d_in=store.d, **(sae_options or {}))
    train = train or SAETrainConfig()
    parallel = DataParallel.from_env(train.device)  # under torchrun: every rank trains, rank 0 writes
    before = faithfulness(model, initial_sae(store, config).eval(), split, store) if parallel.main else {}
    checkpoint = run / CHECKPOINT
    sae, result = train_sae(store, config, train, progress=progress, checkpoint=checkpoint)
    if not parallel.main:
        return {}
    after = faithfulness(model, sae, split, store)
    metrics = {"after": after, "before": before, "best_epoch": result.best_epoch, "train_seconds": result.train_seconds,
               "train_config": train.model_dump(), "history": result.history}
    provenance = {**store.provenance, "d_in": store.d}
    save_sae(sae, run / SAE, provenance, extra={"metrics.json": json.dumps(metrics, indent=2) + "\n",
                                              "README.md": model_card(sae.config, provenance, metrics)})
    checkpoint.unlink()  # the SAE is saved: nothing left to resume
    return metrics


@dataclass
class OpenedRun:
    """A run taken as far as its SAE: the recommender, its split, the SAE and every test user's case."""

    run: Path
    target: Recommender
    split: Split
    sae: TopKSAE
    cases: CaseSet


def open_sae_run(run: str | Path, data_dir: str | Path | None = None, *, purpose: str) -> OpenedRun:
    """Load a run for a stage that needs its SAE (``purpose`` completes "has no SAE to ..."). The cases come
    from ``concepts/cases.safetensors`` when interpret has recorded them, else they are recorded now."""
    run = Path(run)
    if not (run / SAE / "cfg.json").exists():
        raise RunFolderError(f"{run} has no SAE to {purpose}; run `recprobe train-sae --run {run}` first")
    target, split = load_recommender(run, data_dir)
    sae = load_sae(run / SAE)[0]
    cases_path = run / "concepts" / "cases.safetensors"
    cases = CaseSet.load(cases_path) if cases_path.exists() else record_cases(target, sae, split)
    return OpenedRun(run, target, split, sae, cases)
