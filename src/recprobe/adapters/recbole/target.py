"""A RecBole model opened at its user representation.

RecBole numbers users and items from 1 (0 is its padding); recprobe numbers them from 0 with the pad item
at ``n_items``, so ids shift by one at this boundary and nowhere else.

Three specialised readings, exact and fast, are used where they reproduce the model's own scores: the user
table (BPR and other embedding models), the propagated user table (LightGCN and other graph models whose
``forward()`` returns user and item tables), or ``forward(item_seq, item_seq_len)`` (SASRec, GRU4Rec...),
against the matching item table. Every other model (and one whose specialised reading does not reproduce its
scores) is read inside its own scoring call (``recprobe.adapters.recbole.generic``): the user-side operand of
its final products, or the outputs of the modules ``site`` names. Models with no learned user-side
representation (popularity, item-item similarities, closed forms) are refused, saying so.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recprobe.adapters.recbole.generic import MAX_PAIR_ROWS, FinalProducts, SiteOutputs
from recprobe.adapters.recbole.shims import import_recbole
from recprobe.data.prepare import build_catalog
from recprobe.data.readers import read_atomic_item
from recprobe.data.split import Catalog
from recprobe.errors import RecprobeError
from recprobe.target import Batch

Kind = Literal["embedding", "graph", "sequential", "products", "sites"]
NO_USER_REPRESENTATION = {  # RecBole 1.2.1 models that score without one: nothing to probe
    "Pop": "it scores every user by item popularity",
    "Random": "it scores at random",
    "ItemKNN": "it scores by item-item similarities over the user's history",
    "AsymKNN": "it scores by item-item (or user-user) similarities",
    "EASE": "it scores the user's history row through a closed-form item-item matrix",
    "SLIMElastic": "it scores the user's history row through a learned item-item matrix",
    "ADMMSLIM": "it scores the user's history row through a learned item-item matrix",
    "NCEPLRec": "it scores the user's history row through a closed-form item projection",
    "FISM": "its user vector pools the history's item embeddings leaving out each scored item, so it is another "
            "vector for every item",
    "NAIS": "its user vector is an attention over the history's item embeddings computed anew for every scored item",
}
DEFAULT_SITES = {  # models that score pairs with an MLP or a distance: their user-side modules
    "NeuMF": "user_mf_embedding,user_mlp_embedding",
    "ConvNCF": "user_embedding",
    "NNCF": "user_embedding",
    "ENMF": "user_embedding",
    "TransRec": "user_embedding",
}
ATOL = 1e-4  # a specialised reading must reproduce the model's own scores this closely


class RecBoleTarget:
    """A ProbeTarget over a loaded RecBole model. ``item_tokens`` and ``catalog`` map recprobe's item
    indices back to the dataset's raw item ids and titles; ``site`` names the module(s) to read instead."""

    def __init__(self, model: torch.nn.Module, dataset: Any, config: Any, site: str | None = None):
        self.model = model.eval()
        model_name = type(model).__name__
        if model_name in NO_USER_REPRESENTATION and site is None:
            raise RecprobeError(f"RecBole model {model_name} has no user representation to probe: "
                                f"{NO_USER_REPRESENTATION[model_name]}. recprobe probes models that build a user "
                                "vector before scoring (see the RecBole table in the docs: Ways in)")
        self.name = f"recbole:{model_name}"
        site = site or DEFAULT_SITES.get(model_name)
        self.n_items, self.n_users = dataset.item_num - 1, dataset.user_num - 1
        self.sequential = _is_sequential(model)
        self.max_history = int(config["MAX_ITEM_LIST_LENGTH"]) if self.sequential else 0
        # general models read the user id; Caser, HGN, SHAN... read it beside the history
        self.reads_users = not self.sequential or "user" in inspect.signature(model.forward).parameters
        self.item_tokens = np.asarray(dataset.id2token(dataset.iid_field, np.arange(1, dataset.item_num)))
        self.user_tokens = np.asarray(dataset.id2token(dataset.uid_field, np.arange(1, dataset.user_num)))
        self.catalog = _catalog(Path(config["data_path"]), config["dataset"], self.item_tokens)
        self._fields = (dataset.uid_field, dataset.iid_field, getattr(model, "ITEM_SEQ", None),
                        getattr(model, "ITEM_SEQ_LEN", None))
        self._sites = None if site is None else SiteOutputs(model, [part.strip() for part in site.split(",")])
        self._product_items: torch.Tensor | None = None
        self._probe = probe = self._probe_batch()
        self.kind: Kind = "sites" if site is not None else _specialised_kind(model) or "products"
        if self.kind in ("embedding", "graph", "sequential") and not self._reproduces(probe):
            self.kind = "products"
        try:
            specialised = self.kind in ("embedding", "graph", "sequential")
            self._widths = [self.represent(probe).shape[1]] if specialised else [rep.shape[1] for rep in self._read(probe)]
        except RecprobeError:
            raise
        except Exception as e:  # RecBole models raise anything for inputs they did not expect
            raise RecprobeError(f"RecBole model {model_name} fails when scoring a batch of users and histories "
                                f"({type(e).__name__}: {e}): it needs inputs besides them (e.g. the target item or "
                                "item features), which a probe cannot give") from e
        if not self._widths:
            raise RecprobeError(
                f"RecBole model {model_name} computes no product of a user vector with the item vectors (it scores "
                "each user and item pair another way, e.g. with an MLP or a distance); name its user-side modules "
                "with --option site=MODULE[,MODULE] (e.g. site=user_embedding), as the RecBole table in the docs "
                "(Ways in) lists for it")
        self.d_model = sum(self._widths)
        self.site = site or ("final products" if self.kind == "products" else self.kind)

    # --- the ProbeTarget members -------------------------------------------------------------------------------
    def represent(self, batch: Batch) -> torch.Tensor:
        if self.kind == "sequential":
            return self.model.forward(*self._sequence(batch))
        if self.kind in ("embedding", "graph"):
            users = batch.users + 1
            if self.kind == "graph":
                return self.model.forward()[0][users]
            if hasattr(self.model, "get_user_embedding"):
                return self.model.get_user_embedding(users)
            return self.model.user_embedding(users)
        return torch.cat(self._read(batch), 1)

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        if self.kind in ("embedding", "graph", "sequential"):
            return (reps @ self._item_table().T)[:, 1:]
        return self._scored(batch, list(torch.split(reps, self._widths, dim=1)))

    def predict(self, batch: Batch) -> torch.Tensor:
        if self.kind == "graph":  # drop the cached propagation so the current weights are used
            self.model.restore_user_e = self.model.restore_item_e = None
        return self._call(batch)[:, 1:]

    def item_embeddings(self) -> torch.Tensor | None:
        if self.kind in ("embedding", "graph", "sequential"):
            return self._item_table()[1:]
        if self.kind == "products" and len(self._widths) == 1:  # the item side of its one final product
            if self._product_items is None:
                scoring = FinalProducts(len(self._probe), self.n_items + 1)
                with scoring, torch.no_grad():
                    self._call(self._probe)
                _, items, func = scoring.found[0]
                self._product_items = (items if func is torch.nn.functional.linear else items.T)[1:]  # [n_items, d]
            return self._product_items
        return None

    # --- RecBole's side -------------------------------------------------------------------------------------------
    def interaction(self, batch: Batch) -> Any:
        """The RecBole ``Interaction`` holding the same users and histories as ``batch``."""
        from recbole.data.interaction import Interaction

        uid, _, seq_field, len_field = self._fields
        fields = {uid: batch.users + 1}
        if self.sequential:
            fields[seq_field], fields[len_field] = self._sequence(batch)
        return Interaction(fields)

    def batch(self, interaction: Any) -> Batch:
        """The recprobe Batch of a RecBole ``Interaction`` (e.g. one from its test dataloader)."""
        uid, _, seq_field, len_field = self._fields
        users = interaction[uid] - 1
        if not self.sequential:
            return Batch(users, torch.empty(len(users), 0, dtype=torch.long), torch.zeros(len(users), dtype=torch.long))
        seq = interaction[seq_field]
        return Batch(users, torch.where(seq == 0, self.n_items, seq - 1), interaction[len_field])

    def _call(self, batch: Batch) -> torch.Tensor:
        """[B, item_num] the model's own scores, column 0 its padding item: ``full_sort_predict``, or ``predict``
        on every (user, item) pair for a model without it (as RecBole's own evaluation does)."""
        interaction = self.interaction(batch)
        if _has_own(self.model, "full_sort_predict"):
            return self.model.full_sort_predict(interaction).view(len(batch), -1)
        width = self.n_items + 1
        uid, iid, _, _ = self._fields
        pairs = interaction.repeat_interleave(width)
        pairs.update(type(interaction)({iid: torch.arange(width).repeat(len(batch))}))
        return self.model.predict(pairs).view(len(batch), width)

    def _read(self, batch: Batch) -> list[torch.Tensor]:
        """The representation's parts for ``batch``, read inside the scoring call."""
        if self.kind == "sites":
            return [part.detach() for part in self._chunked(batch, None)[1]]
        scoring = FinalProducts(len(batch), self.n_items + 1)
        with scoring:
            self._call(batch)
        return [user.detach() for user, _, _ in scoring.found]

    def _scored(self, batch: Batch, parts: list[torch.Tensor]) -> torch.Tensor:
        if self.kind == "sites":
            return self._chunked(batch, parts)[0][:, 1:]
        scoring = FinalProducts(len(batch), self.n_items + 1, edits=parts)
        with scoring:
            scores = self._call(batch)
        if len(scoring.found) != len(parts):
            raise RecprobeError(f"{self.name} computed {len(scoring.found)} final products, not {len(parts)} as when "
                                "its representation was read; its scoring depends on more than the batch")
        return scores[:, 1:]

    def _chunked(self, batch: Batch, parts: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The scoring call with the site hooks, over chunks of users small enough for pair scoring."""
        step = len(batch) if _has_own(self.model, "full_sort_predict") else max(1, MAX_PAIR_ROWS // (self.n_items + 1))
        scores, found = [], []
        for start in range(0, len(batch), step):
            rows = slice(start, start + step)
            chunk = Batch(batch.users[rows], batch.history[rows], batch.lengths[rows])
            edits = None if parts is None else [part[rows] for part in parts]
            result, outputs = self._sites.run(lambda chunk=chunk: self._call(chunk), len(chunk), edits)
            scores.append(result)
            found.append(outputs)
        return torch.cat(scores), [torch.cat(column) for column in zip(*found, strict=True)]

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

    def _probe_batch(self) -> Batch:
        """A few users with made-up histories, to read the representation's shape and check a reading."""
        users = torch.arange(min(8, self.n_users))
        if not self.sequential:
            return Batch(users, torch.empty(len(users), 0, dtype=torch.long), torch.zeros(len(users), dtype=torch.long))
        length = self.max_history
        history = (torch.arange(length)[None, :] * 7 + users[:, None] * 13) % self.n_items
        lengths = torch.clamp(users + 1, max=length)
        history = torch.where(torch.arange(length)[None, :] < lengths[:, None], history, self.n_items)
        return Batch(users, history, lengths)

    @torch.no_grad()
    def _reproduces(self, batch: Batch) -> bool:
        """Whether the specialised reading gives the model's own scores on ``batch``."""
        try:
            own, read = self.predict(batch), self.score(self.represent(batch), batch)
        except Exception:  # noqa: BLE001 (a reading that does not fit this model: the generic one will)
            return False
        return own.shape == read.shape and bool(torch.allclose(own, read, atol=ATOL, rtol=ATOL))


def _has_own(model: torch.nn.Module, method: str) -> bool:
    """Whether the model class defines ``method`` itself (not RecBole's abstract placeholder)."""
    from recbole.model.abstract_recommender import AbstractRecommender

    return getattr(type(model), method) is not getattr(AbstractRecommender, method)


def _is_sequential(model: torch.nn.Module) -> bool:
    from recbole.model.abstract_recommender import SequentialRecommender

    return isinstance(model, SequentialRecommender)


def _specialised_kind(model: torch.nn.Module) -> Kind | None:
    """The exact fast reading that fits this model's shape, if any (checked against its scores after)."""
    from recbole.model.abstract_recommender import GeneralRecommender

    params = inspect.signature(model.forward).parameters
    if _is_sequential(model) and hasattr(model, "item_embedding"):
        if list(params)[:2] == ["item_seq", "item_seq_len"]:
            return "sequential"
    elif isinstance(model, GeneralRecommender):
        if hasattr(model, "restore_user_e") and not any(p.default is inspect.Parameter.empty for p in params.values()):
            return "graph"  # RecBole's graph models cache their propagated tables in restore_user_e/item_e
        if hasattr(model, "user_embedding") and hasattr(model, "item_embedding"):
            return "embedding"
    return None


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
                 data_path: str | Path | None = None, site: str | None = None) -> RecBoleTarget:
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
    return RecBoleTarget(model, dataset, config, site)
