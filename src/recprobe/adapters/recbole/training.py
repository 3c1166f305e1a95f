"""Train a RecBole 1.2.1 model on an export of recprobe's split with RecBole's own Trainer, and read RecBole's
own full-ranking test metrics: what the RecBole tests and ``benchmarks/recbole_models.py`` check recprobe against.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from recprobe.adapters.recbole.shims import import_recbole
from recprobe.data.export import recbole_settings

SMALL = {  # sizes that train in seconds on a CPU; a model ignores the keys it does not have
    "embedding_size": 16, "hidden_size": 16, "n_layers": 1, "inner_size": 32, "MAX_ITEM_LIST_LENGTH": 20,
    "train_batch_size": 512, "learning_rate": 0.005,
}


def loss_is_ce(model: str) -> bool:
    """Whether RecBole trains ``model`` with a cross-entropy over every item by default (``loss_type: CE``), so
    it takes ``train_neg_sample_args: None``; sampled-negative models need RecBole's default sampling."""
    return _model_default(model, "loss_type") == "CE"


def _model_default(model: str, key: str) -> Any:
    """A key of RecBole's own yaml defaults for ``model`` (None when it sets none)."""
    import yaml

    recbole = import_recbole()

    path = Path(recbole.__file__).parent / "properties" / "model" / f"{model}.yaml"
    found = yaml.safe_load(path.read_text()) if path.is_file() else None
    return (found or {}).get(key)


def train_checkpoint(model: str, export: str | Path, checkpoint_dir: str | Path, *, epochs: int = 1,
                     seed: int = 0, **settings: Any) -> tuple[Path, dict[str, float]]:
    """Train ``model`` on the export at ``export`` (``recprobe.data.export_recbole``'s folder) for ``epochs``
    with RecBole's Trainer; returns the checkpoint it saved and its own test metrics (``hit@10``, ``ndcg@10``)."""
    import_recbole()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config_dict = {**recbole_settings(export), **SMALL, "metrics": ["Hit", "NDCG"], "topk": [10], "epochs": epochs,
                   "use_gpu": False, "seed": seed, "eval_step": 0, "show_progress": False, "state": "WARNING",
                   "checkpoint_dir": str(checkpoint_dir), **settings}
    if loss_is_ce(model) and "train_neg_sample_args" not in settings:
        config_dict["train_neg_sample_args"] = None  # a cross-entropy over every item: no negatives to sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = Config(model=model, dataset=config_dict["dataset"], config_dict=config_dict)
        init_seed(seed, True)
        logging.getLogger().setLevel(logging.WARNING)
        train, _, test = data_preparation(config, create_dataset(config))
        # get_trainer: the models with a trainer of their own (RecVAE, the diffusion models...) get it
        trainer = get_trainer(config["MODEL_TYPE"], model)(config, get_model(model)(config, train._dataset))
        trainer.fit(train, None, saved=True, show_progress=False, verbose=False)
        result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    return Path(trainer.saved_model_file), {key: float(value) for key, value in result.items()}
