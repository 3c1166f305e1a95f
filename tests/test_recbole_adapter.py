"""The RecBole adapter on checkpoints that RecBole 1.2.1 itself trains here on MovieLens-100K (slow)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch

import recprobe
from recprobe.errors import RecprobeError
from recprobe.testing import check_probe_target

pytest.importorskip("recbole", reason="RecBole is an extra: make recbole")
pytestmark = pytest.mark.slow
DATASET = "recprobe-ml-100k"  # not ml-100k: RecBole would swap in its bundled copy


def train_recbole(model: str, data_path: Path, checkpoint_dir: Path) -> Path:
    """One epoch of RecBole's own Trainer, small sizes; returns the checkpoint it saves."""
    from recprobe.adapters.recbole.shims import import_recbole

    import_recbole()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import get_model, init_seed

    settings = {
        "data_path": str(data_path), "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"group_by": "user", "order": "TO", "mode": "full", "split": {"LS": "valid_and_test"}},
        "epochs": 1, "embedding_size": 16, "hidden_size": 16, "n_layers": 1, "inner_size": 32,
        "MAX_ITEM_LIST_LENGTH": 20, "train_batch_size": 2048, "use_gpu": False, "seed": 0, "eval_step": 0,
        "show_progress": False, "checkpoint_dir": str(checkpoint_dir), "state": "WARNING",
    }
    if model in ("SASRec", "GRU4Rec"):
        settings["train_neg_sample_args"] = None  # CE over all items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = Config(model=model, dataset=DATASET, config_dict=settings)
        init_seed(0, True)
        logging.getLogger().setLevel(logging.WARNING)
        train, _, _ = data_preparation(config, create_dataset(config))
        trainer = Trainer(config, get_model(model)(config, train._dataset))
        trainer.fit(train, None, saved=True, show_progress=False, verbose=False)
    return Path(trainer.saved_model_file)


@pytest.fixture(scope="module")
def recbole_run(tmp_path_factory):
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not data.exists():
        pytest.skip(f"real datasets not found at {data}")
    root = tmp_path_factory.mktemp("recbole")
    split = recprobe.load_dataset("ml-100k", data)
    recprobe.data.export_recbole(split, root / "data", DATASET)
    return root, split


@pytest.mark.parametrize("model", ["BPR", "LightGCN", "SASRec", "GRU4Rec"])
def test_recbole_checkpoint_is_a_faithful_probe_target(recbole_run, model):
    root, split = recbole_run
    path = train_recbole(model, root / "data", root / model)
    target = recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)
    assert target.name == f"recbole:{model}" and target.n_items == 1008
    batch = recprobe.phase_batches(split, "test", target.max_history)(torch.arange(64).numpy())
    check_probe_target(target, batch)
    with torch.no_grad():
        reps = target.represent(batch)
        own = target.model.full_sort_predict(target.interaction(batch)).view(len(batch), -1)[:, 1:]
        assert (target.score(reps, batch) - own).abs().max() <= 1e-5
        edited = reps.clone()
        edited[:, 0] += 5.0
        assert (target.score(edited, batch) - own).abs().max() > 1e-3
        if model == "LightGCN":  # RecBole's cache is filled now; predicting again must still follow the weights
            target.model.item_embedding.weight.mul_(2)
            assert not torch.allclose(target.predict(batch), own)
    # RecBole numbers items in its own order; raw tokens and titles map back to the dataset's
    assert sorted(target.item_tokens) == sorted(split.item_ids)
    ours = {raw: title for raw, title in zip(split.item_ids, split.catalog.titles, strict=True)}
    assert [ours[raw] for raw in target.item_tokens] == target.catalog.titles


def test_recbole_checkpoint_needs_the_trust_flag(recbole_run):
    with pytest.raises(RecprobeError, match="pickle .* trust_checkpoint=True"):
        recprobe.load_target("recbole", checkpoint=recbole_run[0] / "any.pth")


def test_a_file_that_is_not_a_recbole_checkpoint(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(RecprobeError, match="is not a RecBole checkpoint: torch.load could not read it"):
        recprobe.load_target("recbole", checkpoint=text, trust_checkpoint=True)
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(RecprobeError, match=r"expected a dict with 'config' and 'state_dict'.*found \['weights'\]"):
        recprobe.load_target("recbole", checkpoint=other, trust_checkpoint=True)
    with pytest.raises(RecprobeError, match="does not exist"):
        recprobe.load_target("recbole", checkpoint=tmp_path / "missing.pth", trust_checkpoint=True)


def test_an_unsupported_recbole_model_class(recbole_run):
    root, _ = recbole_run
    path = train_recbole("Pop", root / "data", root / "Pop")
    with pytest.raises(RecprobeError, match="RecBole model Pop is not supported: recprobe reads a general model"):
        recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)


def test_missing_recbole_names_the_pip_command(monkeypatch):
    """RecBole is installed here, so its absence is simulated by making its import fail."""
    import importlib

    from recprobe.adapters.recbole import shims

    real = importlib.import_module
    monkeypatch.setattr(shims.importlib, "import_module",
                        lambda name, *a: (_ for _ in ()).throw(ImportError("No module named 'recbole'"))
                        if name == "recbole" else real(name, *a))
    with pytest.raises(RecprobeError, match=r"RecBole is not installed .* run `pip install 'recprobe\[recbole\]'"):
        shims.import_recbole()
