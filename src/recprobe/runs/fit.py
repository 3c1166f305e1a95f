"""`recprobe fit`: train a built-in recommender into ``<run>/recommender`` and make the folder a run (its adapter
is the built-in one), without ever clobbering another run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from recprobe.data.source import DataSource, data_source
from recprobe.data.split import Split
from recprobe.data.stored import read_split, write_split
from recprobe.errors import RunFolderError
from recprobe.io import read_json
from recprobe.models import build_model, evaluate_model, fit, save_recommender
from recprobe.models.checkpoint import FOLDER, existing_config, run_config, same_run
from recprobe.models.train import TrainConfig
from recprobe.ranking.metrics import SAMPLED_NEGATIVES
from recprobe.runs.layout import RunLayout
from recprobe.runs.lock import locked
from recprobe.runs.run import create_run


@locked("fit")
def fit_run(
    out: str | Path,
    model: str,
    data: str | DataSource,
    *,
    model_options: dict[str, Any] | None = None,
    train: TrainConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Train ``model`` on ``data`` (a dataset name or folder with the default filters, or a DataSource) into
    ``out/recommender``; returns (metrics, reused).

    If ``out`` already holds the same run (same model, options, training config and data), its metrics
    are returned and nothing is retrained. A different run there is refused unless ``overwrite``, which also
    clears every stage made from the old recommender.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file; give a folder path for the run")
    data = data_source(data)
    split = data.load()
    train = train or TrainConfig()
    command = fit_command(model, data, out, model_options or {}, train)
    recommender = build_model(model, split, seed=train.seed, **(model_options or {}))
    train = train.resolved(recommender)
    read = {"source": data.source, "min_rating": data.min_rating, "core": data.core}
    config = run_config(recommender, split, train.model_dump(exclude={"device", "eval_batch_size"}), read)
    previous = existing_config(out)
    if previous is None and RunLayout(out).run_file.exists() and not overwrite:
        raise RunFolderError(f"{out} already holds a run of another recommender (see its run.json); choose a new "
                             "--out or pass --overwrite to replace it and everything made from it")
    if previous is not None and not overwrite:
        if same_run(previous, config):
            layout = RunLayout(out)
            if not layout.run_file.exists():  # a run folder from before run.json existed
                recommender.load_state_dict(_saved_weights(out))
                _make_run(out, recommender, split, model, command)
            elif not stored_split_is(layout.split, split):  # damaged, or a run from before runs stored theirs
                write_split(split, layout.split)
            return read_json(out / FOLDER / "metrics.json"), True
        raise RunFolderError(
            f"{out} already holds a different run: {_describe(previous)}, not {_describe(config)} "
            f"({_difference(previous, config)}); choose a new --out or pass --overwrite to replace it"
        )
    result = fit(recommender, split, train, progress=progress)
    metrics = {
        "dev": evaluate_model(recommender, split, "dev", device=train.device),
        "test": evaluate_model(recommender, split, "test", device=train.device),
        "test_sampled": evaluate_model(recommender, split, "test", sampled=True, device=train.device)
        if split.n_items > SAMPLED_NEGATIVES else None,  # too small a catalog for 99 distinct negatives
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds_per_epoch": result.seconds_per_epoch,
        "train_seconds": result.seconds,
        "loss": train.loss,
        "history": result.history,
    }
    save_recommender(out, recommender, config, metrics)
    _make_run(out, recommender, split, model, command)
    return metrics, False


def stored_split_is(folder: Path, split: Split) -> bool:
    """Whether ``folder`` holds ``split`` whole (a damaged or altered one does not: fit writes it again)."""
    try:
        return read_split(folder, "recprobe fit").fingerprint == split.fingerprint
    except RunFolderError:
        return False


def _make_run(out: Path, recommender, split, model: str, command: str) -> None:
    """run.json for the trained model: the built-in adapter reopens it from this folder. The ranking check
    is recorded, not enforced: a built-in model's ids are the split's by construction."""
    create_run(out, recommender.eval(), split, adapter=model, options={"run": out}, enforce_ranking=False,
               overwrite=True, command=command)


def fit_command(model: str, data: DataSource, out: Path, model_options: dict[str, Any], train: TrainConfig) -> str:
    """The `recprobe fit` command that trains this run again: every option that is not the default."""
    parts = ["recprobe", "fit", "--model", model, *data.flags(), "--out", str(out)]
    defaults = TrainConfig()
    for field in ("epochs", "patience", "lr", "l2", "loss", "batch_size", "seed"):
        if getattr(train, field) != getattr(defaults, field):
            parts += [f"--{field.replace('_', '-')}", str(getattr(train, field))]
    for key, value in model_options.items():
        parts += ["--d", str(value)] if key == "d" else ["--option", f"{key}={json.dumps(value)}"]
    return shlex.join(parts)


def _saved_weights(out: Path):
    from safetensors.torch import load_file

    return load_file(out / FOLDER / "model.safetensors")


def _describe(config: dict[str, Any]) -> str:
    return f"{config['model']} on {config['dataset']['name']}"


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for key in ("model", "model_config", "train_config"):
        if a.get(key) != b.get(key):
            if isinstance(a.get(key), dict):
                diff = [k for k in {*a[key], *b[key]} if a[key].get(k) != b[key].get(k)]
                return f"{key} differs in {', '.join(sorted(diff))}"
            return f"{key} differs"
    return "the data differs (fingerprint)"
