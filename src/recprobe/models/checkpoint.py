"""A trained recommender on disk: ``<run>/recommender/{config.json, model.safetensors, metrics.json}``.

The folder is written next to its final place and swapped into it, so it is always complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from recprobe.data import load_dataset
from recprobe.data import stored as stored_split
from recprobe.data.split import Split
from recprobe.errors import DataFormatError, RunFolderError
from recprobe.io import write_folder, write_json
from recprobe.models.base import Recommender
from recprobe.models.registry import build_model
from recprobe.schemas import RecommenderConfig, read_checked
from recprobe.version import __version__

FOLDER = "recommender"


def run_config(model: Recommender, split: Split, train: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to rebuild the model and to tell one run from another."""
    return {
        "recprobe_version": __version__,
        "model": model.name,
        "model_config": model.config.model_dump(),
        "train_config": train,
        "dataset": {"name": split.name, **data, "fingerprint": split.fingerprint,
                    "n_users": split.n_users, "n_items": split.n_items, "notes": split.notes},
    }


def same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("model", "model_config", "train_config")
    return all(a.get(k) == b.get(k) for k in keys) and a["dataset"].get("fingerprint") == b["dataset"].get("fingerprint")


def existing_config(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / FOLDER / "config.json"
    return read_checked(path, RecommenderConfig, f"recprobe fit --out {run_dir} --overwrite ...") if path.exists() else None


def save_recommender(run_dir: str | Path, model: Recommender, config: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """Write the recommender folder atomically (``recprobe.io.write_folder``)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a run folder; choose another --out")

    def write(staging: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, staging / "model.safetensors", metadata={"model": model.name})
        write_json(staging / "config.json", config)
        write_json(staging / "metrics.json", metrics)

    return write_folder(run_dir / FOLDER, write)


def load_recommender(run_dir: str | Path) -> tuple[Recommender, Split]:
    """The trained model of a run folder and the exact split it was trained on (checked by fingerprint): the one
    stored in the run, else (a folder from before splits were stored) its dataset read again."""
    folder = Path(run_dir) / FOLDER
    config = existing_config(run_dir)
    if config is None or not (folder / "model.safetensors").exists():
        raise RunFolderError(f"{folder} holds no trained recommender; train one with `recprobe fit --out {run_dir}`")
    data, stored = config["dataset"], Path(run_dir) / stored_split.FOLDER
    rebuild = f"recprobe fit --out {run_dir} --overwrite ..."
    split = (stored_split.read_split(stored, rebuild) if stored.is_dir() else
             load_dataset(data.get("source", data["name"]), min_rating=data.get("min_rating"), core=data.get("core", 5)))
    if split.fingerprint != data["fingerprint"]:
        raise RunFolderError(
            f"the {data['name']} data found now (fingerprint {split.fingerprint}) is not the data {run_dir} was "
            f"trained on ({data['fingerprint']}); set RECPROBE_DATA_DIR to the original files, or retrain with `{rebuild}`"
        )
    model = build_model(config["model"], split, **config["model_config"])
    try:
        model.load_state_dict(load_file(folder / "model.safetensors"))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise DataFormatError(f"{folder / 'model.safetensors'} is damaged or not this model's weights ({' '.join(str(e).split())[:200]}); "
                              f"retrain with `recprobe fit --out {run_dir} --overwrite ...`") from e
    return model.eval(), split
