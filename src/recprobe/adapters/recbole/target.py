"""A RecBole model opened at its user representation.

RecBole numbers users and items from 1 (0 is its padding); recprobe numbers them from 0 with the pad item
at ``n_items``, so ids shift by one at this boundary and nowhere else. Module hooks do not fire inside
RecBole's ``full_sort_predict`` (it calls ``self.forward`` directly), so the representation is computed
explicitly: the user table (BPR and other embedding models), the propagated user table (LightGCN and
other graph models whose ``forward()`` returns user and item tables), or ``forward(item_seq, item_seq_len)``
(sequential models). Scores are that representation against the matching item table, exactly what each
``full_sort_predict`` computes.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recprobe.adapters.recbole.shims import import_recbole
from recprobe.data.prepare import build_catalog
from recprobe.data.readers import read_atomic_item
from recprobe.data.split import Catalog
from recprobe.errors import RecprobeError
from recprobe.target import Batch

Kind = Literal["embedding", "graph", "sequential"]
SUPPORTED = (
    "a general model with user_embedding and item_embedding tables (BPR...), a graph model whose forward() "
    "returns the user and item tables and caches them in restore_user_e (LightGCN, NGCF...), or a sequential model with "
    "forward(item_seq, item_seq_len) and item_embedding (SASRec, GRU4Rec...)"
)


class RecBoleTarget:
    """A ProbeTarget over a loaded RecBole model. ``item_tokens`` and ``catalog`` map recprobe's item
    indices back to the dataset's raw item ids and titles."""

    def __init__(self, model: torch.nn.Module, dataset: Any, config: Any):
        self.model = model.eval()
        self.kind = model_kind(model)
        self.name = f"recbole:{type(model).__name__}"
        self.n_items, self.n_users = dataset.item_num - 1, dataset.user_num - 1
        self.max_history = int(config["MAX_ITEM_LIST_LENGTH"]) if self.kind == "sequential" else 0
        self.item_tokens = np.asarray(dataset.id2token(dataset.iid_field, np.arange(1, dataset.item_num)))
        self.user_tokens = np.asarray(dataset.id2token(dataset.uid_field, np.arange(1, dataset.user_num)))
        self.catalog = _catalog(Path(config["data_path"]), config["dataset"], self.item_tokens)
        self._fields = (dataset.uid_field, getattr(model, "ITEM_SEQ", None), getattr(model, "ITEM_SEQ_LEN", None))
        self.d_model = int(self._item_table().shape[1])

    def represent(self, batch: Batch) -> torch.Tensor:
        if self.kind == "sequential":
            return self.model.forward(*self._sequence(batch))
        users = batch.users + 1
        if self.kind == "graph":
            return self.model.forward()[0][users]
        if hasattr(self.model, "get_user_embedding"):
            return self.model.get_user_embedding(users)
        return self.model.user_embedding(users)

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return (reps @ self._item_table().T)[:, 1:]

    def predict(self, batch: Batch) -> torch.Tensor:
        if self.kind == "graph":  # drop the cached propagation so the current weights are used
            self.model.restore_user_e = self.model.restore_item_e = None
        return self.model.full_sort_predict(self.interaction(batch)).view(len(batch), -1)[:, 1:]

    def item_embeddings(self) -> torch.Tensor:
        return self._item_table()[1:]

    def interaction(self, batch: Batch) -> Any:
        """The RecBole ``Interaction`` holding the same users and histories as ``batch``."""
        from recbole.data.interaction import Interaction

        uid, seq_field, len_field = self._fields
        fields = {uid: batch.users + 1}
        if self.kind == "sequential":
            fields[seq_field], fields[len_field] = self._sequence(batch)
        return Interaction(fields)

    def batch(self, interaction: Any) -> Batch:
        """The recprobe Batch of a RecBole ``Interaction`` (e.g. one from its test dataloader)."""
        uid, seq_field, len_field = self._fields
        users = interaction[uid] - 1
        if self.kind != "sequential":
            return Batch(users, torch.empty(len(users), 0, dtype=torch.long), torch.zeros(len(users), dtype=torch.long))
        seq = interaction[seq_field]
        return Batch(users, torch.where(seq == 0, self.n_items, seq - 1), interaction[len_field])

    def _sequence(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.history.shape[1] > self.max_history:
            raise RecprobeError(
                f"{self.name} reads at most {self.max_history} history items (MAX_ITEM_LIST_LENGTH), the batch holds "
                f"{batch.history.shape[1]}; build batches with max_history={self.max_history}"
            )
        history = torch.where(batch.history == self.n_items, 0, batch.history + 1)
        return history, batch.lengths

    def _item_table(self) -> torch.Tensor:
        if self.kind == "graph":
            return self.model.forward()[1]
        return self.model.item_embedding.weight


def model_kind(model: torch.nn.Module) -> Kind:
    """How the representation is read from this RecBole model, or an error naming what is supported."""
    from recbole.model.abstract_recommender import GeneralRecommender, SequentialRecommender

    params = inspect.signature(model.forward).parameters
    if isinstance(model, SequentialRecommender) and hasattr(model, "item_embedding"):
        if list(params)[:2] == ["item_seq", "item_seq_len"]:
            return "sequential"
    elif isinstance(model, GeneralRecommender):
        if hasattr(model, "restore_user_e") and not any(p.default is inspect.Parameter.empty for p in params.values()):
            return "graph"  # RecBole's graph models cache their propagated tables in restore_user_e/item_e
        if hasattr(model, "user_embedding") and hasattr(model, "item_embedding"):
            return "embedding"
    raise RecprobeError(
        f"RecBole model {type(model).__name__} is not supported: recprobe reads {SUPPORTED}; "
        "write an adapter plugin for it (docs: 'Writing an adapter plugin')"
    )


def _catalog(dataset_dir: Path, dataset: str, item_tokens: np.ndarray) -> Catalog:
    item_file = dataset_dir / f"{dataset}.item"
    meta = read_atomic_item(item_file) if item_file.exists() else {}
    return build_catalog(item_tokens.astype(str), meta)


def read_checkpoint(path: Path, *, trust_checkpoint: bool) -> dict[str, Any]:
    """The unpickled checkpoint dict, refusing to unpickle anything the user has not said they trust."""
    if not trust_checkpoint:
        raise RecprobeError(
            f"{path} is a pickle (RecBole saves checkpoints with torch.save), and unpickling can run code; "
            "load it only if you trust it, with trust_checkpoint=True"
        )
    if not path.is_file():
        raise RecprobeError(f"{path} does not exist or is not a file; pass the .pth file RecBole's Trainer saved")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a file that is not a checkpoint
        raise RecprobeError(f"{path} is not a RecBole checkpoint: torch.load could not read it ({e})") from e
    if not isinstance(checkpoint, dict) or not {"config", "state_dict"} <= set(checkpoint):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise RecprobeError(
            f"{path} is not a RecBole checkpoint: expected a dict with 'config' and 'state_dict' (what RecBole's "
            f"Trainer saves), found {found}"
        )
    return checkpoint


def load_recbole(checkpoint_path: str | Path, *, trust_checkpoint: bool = False,
                 data_path: str | Path | None = None) -> RecBoleTarget:
    """Rebuild a RecBole model from its checkpoint and the dataset it names, on CPU."""
    import_recbole()
    checkpoint = read_checkpoint(Path(checkpoint_path), trust_checkpoint=trust_checkpoint)
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, init_seed

    config = checkpoint["config"]
    if data_path is not None:
        config.final_config_dict["data_path"] = str(Path(data_path) / config["dataset"])
    if not Path(config["data_path"]).is_dir():
        raise RecprobeError(
            f"the dataset {config['dataset']!r} this checkpoint was trained on is not at {config['data_path']}; "
            "pass data_path= the folder that holds its folder"
        )
    config.final_config_dict["device"] = torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RecBole on pandas 3 / torch 2.x warns a lot; none changes results
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, _, _ = data_preparation(config, dataset)
        model = get_model(config["model"])(config, train._dataset)
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return RecBoleTarget(model, dataset, config)
