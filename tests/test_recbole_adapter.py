"""The RecBole adapter on checkpoints that RecBole 1.2.1 itself trains here on MovieLens-100K (slow)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import recprobe
from recprobe.adapters.recbole.training import train_checkpoint
from recprobe.errors import RecprobeError
from recprobe.models import evaluate_model
from recprobe.runs.align import align
from recprobe.testing import check_probe_target

pytest.importorskip("recbole", reason="RecBole is an extra: make recbole")
pytestmark = pytest.mark.slow
DATASET = "recprobe-ml-100k"  # not ml-100k: RecBole would swap in its bundled copy


SEQUENTIAL = ("SASRec", "GRU4Rec", "BERT4Rec")


def train_recbole(model: str, data_path: Path, checkpoint_dir: Path, *, dataset: str = DATASET,
                  epochs: int = 2) -> tuple[Path, dict[str, float]]:
    """A short run of RecBole's own Trainer, small sizes, on the exported split (its leave-one-out by time holds
    out the same items); returns the checkpoint it saves and RecBole's own full-ranking test metrics."""
    return train_checkpoint(model, data_path / dataset, checkpoint_dir, epochs=epochs)


@pytest.fixture(scope="module")
def recbole_run(tmp_path_factory):
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not data.exists():
        pytest.skip(f"real datasets not found at {data}")
    root = tmp_path_factory.mktemp("recbole")
    split = recprobe.load_dataset("ml-100k", data)
    recprobe.data.export_recbole(split, root / "data", DATASET)
    return root, split, data


def cli(*args: str, data: Path, cwd: Path) -> str:
    env = {**os.environ, "RECPROBE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "RECPROBE_LOAD_PLUGINS": ""}
    result = subprocess.run([sys.executable, "-m", "recprobe.cli", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result.stdout


def hr_at_10(table: str) -> float:
    """The test column of `recprobe evaluate`'s HR@10 row."""
    return float(re.search(r"HR@10\s*│\s*[\d.]+\s*│\s*([\d.]+)", table).group(1))


@pytest.mark.parametrize("model", ["BPR", "LightGCN", "SASRec", "GRU4Rec", "BERT4Rec", "NeuMF"])
def test_a_recbole_checkpoint_goes_through_every_cli_stage(recbole_run, model):
    """Probed by raw token, the checkpoint ranks the split's test items exactly as RecBole's own evaluation does
    (RecBole does not mask seen items for sequential models: --no-mask-seen is its protocol); then every stage."""
    root, split, data = recbole_run
    path, recbole_metrics = train_recbole(model, root / "data", root / model)
    target = recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)
    batch = recprobe.phase_batches(split, "test", target.max_history)(torch.arange(64).numpy())
    check_probe_target(target, batch)
    with torch.no_grad():  # an edited representation moves the scores; RecBole's caches do not hide it
        reps = target.represent(batch)
        edited = reps.clone()
        edited[:, 0] += 5.0
        assert (target.score(edited, batch) - target.predict(batch)).abs().max() > 1e-3
        if model == "LightGCN":  # RecBole's cache is filled now; predicting again must still follow the weights
            own = target.predict(batch)
            target.model.item_embedding.weight.mul_(2)
            assert not torch.allclose(target.predict(batch), own)
    assert sorted(target.item_tokens) == sorted(split.item_ids)
    assert not (target.item_tokens == split.item_ids).all()  # RecBole's own order: the mapping is needed
    titles = dict(zip(split.item_ids, split.catalog.titles, strict=True))
    assert [titles[raw] for raw in target.item_tokens] == target.catalog.titles
    run = root / f"run-{model}"
    cli("probe", "--adapter", "recbole", "--option", f"checkpoint={path}", "--option", "trust_checkpoint=true",
        "--dataset", "ml-100k", "--out", str(run), data=data, cwd=root)
    protocol = ("--no-mask-seen",) if model in SEQUENTIAL else ()
    ours = hr_at_10(cli("evaluate", "--run", str(run), *protocol, data=data, cwd=root))
    assert abs(ours - recbole_metrics["hit@10"]) <= 0.002, (ours, recbole_metrics)
    cli("capture", "--run", str(run), data=data, cwd=root)
    cli("train-sae", "--run", str(run), "--scale", "2", "--k", "4", "--epochs", "2", data=data, cwd=root)
    cli("interpret", "--run", str(run), data=data, cwd=root)
    cli("steer", "--run", str(run), "--table7", data=data, cwd=root)
    if model in ("BPR", "SASRec"):  # the ladder and its comparison, for a general and a sequential checkpoint
        cli("train-sae", "--run", str(run), "--seeds", "2", "--scale", "2", "--k", "4", "--epochs", "1", data=data, cwd=root)
        compared = cli("compare", "--run", str(run), "--max-cases", "2000", data=data, cwd=root)
        assert "gap [95%" in compared and "probing/predicted@k1" in compared
        cli("interpret", "--run", str(run), "--basis", "frozen-decoder", data=data, cwd=root)  # trains the control
        every = cli("steer", "--run", str(run), "--table7", "--every", data=data, cwd=root)
        assert "frozen-decoder" in every and "trained minus the best control (" in every, every
    cli("report", "--run", str(run), data=data, cwd=root)
    index = (run / "report" / "index.html").read_text()
    assert f"recbole:{model} on ml-100k" in index
    assert ("Does training find anything?" in index) == (model in ("BPR", "SASRec"))
    assert ("Steering every confident concept" in index) == (model in ("BPR", "SASRec"))


@pytest.mark.parametrize(("model", "read"), [
    ("NeuMF", "user_mf_embedding,user_mlp_embedding"), ("NARM", "sequential"), ("Caser", "final products"),
    ("MultiVAE", "final products"), ("FPMC", "final products"), ("RepeatNet", "final products"), ("NGCF", "graph"),
])
def test_any_recbole_model_is_read_inside_its_own_scoring(recbole_run, model, read):
    """Models beyond the command-line test, most of which the specialised readings do not fit: the representation
    is read (and edited) inside the model's own full_sort_predict or predict, and recprobe ranks exactly as
    RecBole's own evaluation does."""
    root, split, _ = recbole_run
    path, recbole_metrics = train_recbole(model, root / "data", root / model, epochs=1)
    target = recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)
    assert target.site == read
    aligned = align(target, split)
    check_probe_target(aligned, recprobe.phase_batches(split, "test", aligned.max_history)(range(64)), split=split)
    ours = evaluate_model(aligned, split, "test", mask_seen=not target.sequential)
    assert abs(ours["HR@10"] - recbole_metrics["hit@10"]) <= 0.002, (ours, recbole_metrics)
    assert abs(ours["NDCG@10"] - recbole_metrics["ndcg@10"]) <= 0.002, (ours, recbole_metrics)


def test_a_model_scoring_pairs_without_its_site_is_refused_with_the_option_that_reads_it(recbole_run, monkeypatch):
    from recprobe.adapters.recbole import target as recbole_target

    root, _, _ = recbole_run
    path, _ = train_recbole("NeuMF", root / "data", root / "NeuMF-sites", epochs=1)
    with pytest.raises(RecprobeError, match=r"NeuMF has no module 'user_tower'; its modules: user_mf_embedding, "):
        recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True, site="user_tower")
    monkeypatch.delitem(recbole_target.DEFAULT_SITES, "NeuMF")
    with pytest.raises(RecprobeError, match=r"RecBole model NeuMF computes no product of a user vector with the item "
                                            r"vectors .* name its user-side modules with --option site=MODULE"):
        recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)


def test_a_checkpoint_of_recboles_unfiltered_ml100k_is_refused(recbole_run, tmp_path):
    """RecBole's bundled ml-100k keeps every rating (943 users, 1,682 items); recprobe's split keeps ratings >= 4
    and the 5-core (938 users, 1,008 items): the items cannot be mapped, and the run says so."""
    root, _, data = recbole_run
    import recbole

    bundled = Path(recbole.__file__).parent / "dataset_example"
    path, _ = train_recbole("BPR", bundled, root / "bundled", dataset="ml-100k", epochs=1)
    env = {**os.environ, "RECPROBE_DATA_DIR": str(data), "RECPROBE_LOAD_PLUGINS": ""}
    result = subprocess.run([sys.executable, "-m", "recprobe.cli", "probe", "--adapter", "recbole", "--option",
                             f"checkpoint={path}", "--option", "trust_checkpoint=true", "--dataset", "ml-100k",
                             "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"error: recbole:BPR was trained on other items than the ml-100k split: 674 of the target's 1682 "
                     r"items are not in the split", " ".join(result.stderr.split())), result.stderr
    assert not (tmp_path / "run").exists()


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
    root, _, _ = recbole_run
    path, _ = train_recbole("Pop", root / "data", root / "Pop", epochs=1)
    with pytest.raises(RecprobeError, match="RecBole model Pop has no user representation to probe: it scores every "
                                            "user by item popularity"):
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
