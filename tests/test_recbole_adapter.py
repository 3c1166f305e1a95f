"""The RecBole adapter on checkpoints that RecBole 1.2.1 itself trains here on MovieLens-100K (slow): 27 models,
one epoch each on its first 300 users, through every stage of the command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import recprobe
from recprobe.adapters.recbole.training import train_checkpoint
from recprobe.cli import main
from recprobe.data.export import item_lines
from recprobe.errors import RecprobeError
from recprobe.ranking.metrics import metrics_from_ranks, seen_items
from recprobe.runs.align import align
from recprobe.testing import check_probe_target

pytest.importorskip("recbole", reason="RecBole is an extra: make recbole")
pytestmark = pytest.mark.slow
SMALL = "recprobe-small"  # not ml-100k: RecBole would swap in its bundled copy
USERS = 300  # the first 300 users of MovieLens-100K: each model trains and goes through every stage in seconds
PRODUCTS = "final products"
READ_AS = {  # 27 RecBole 1.2.1 models, each with the reading docs/adapters.md gives it
    "BPR": "embedding", "LINE": "embedding", "LightGCN": "graph", "NGCF": "graph",
    "ENMF": "user_embedding", "TransRec": "user_embedding", "NeuMF": "user_mf_embedding,user_mlp_embedding",
    **dict.fromkeys(["SASRec", "GRU4Rec", "NARM", "SRGNN", "STAMP", "GCSAN", "LightSANs"], "sequential"),
    **dict.fromkeys(["BERT4Rec", "Caser", "NextItNet", "FPMC", "CORE", "HGN", "SHAN", "RepeatNet", "DMF", "MultiVAE",
                     "RecVAE", "SimpleX", "CDAE"], PRODUCTS),
}
TRAINING = {"train_batch_size": 64, "learning_rate": 0.01}  # one epoch of small batches: ranks above random
SETTINGS = {"STAMP": {"learning_rate": 0.02}}
UNDERTRAINED = {"ENMF"}  # one epoch of ENMF ranks near random here (RecBole's own test HR@10 0.02, random 0.015)
LADDER = ("BPR", "SASRec")  # the ladder, its comparison and Table 7 over every concept: a general and a sequential


def real_data() -> Path:
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not data.exists():
        pytest.skip(f"real datasets not found at {data}")
    return data


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """MovieLens-100K's first users as a split, and its export: the folder RecBole trains on and `probe --dataset`
    reads back as the same split."""
    full = recprobe.load_dataset("ml-100k", real_data())
    root = tmp_path_factory.mktemp("recbole")
    source = root / "source"
    source.mkdir(parents=True)
    users = np.arange(USERS)
    train = np.isin(full.train_users, users)
    last = np.full(USERS, -np.inf)
    np.maximum.at(last, full.train_users[train], full.train_times[train])
    rows = [*zip(full.train_users[train], full.train_items[train], full.train_times[train], strict=True),
            *zip(users, full.dev_items[users], last + 1, strict=True), *zip(users, full.test_items[users], last + 2, strict=True)]
    (source / f"{SMALL}.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
        f"{full.user_ids[u]}\t{full.item_ids[i]}\t{t:.0f}\n" for u, i, t in rows))
    (source / f"{SMALL}.item").write_text("".join(item_lines(full)))  # titles, genres and years
    split = recprobe.load_dataset(str(source), min_rating=None, core=5)
    return root, split, recprobe.data.export_recbole(split, root / "data", SMALL)


def cli(capsys, *args: str) -> str:
    """One command through recprobe's command line, in this process (no interpreter start per stage)."""
    try:
        main(list(args))
    except SystemExit as e:
        assert not e.code, (args, capsys.readouterr().err[-3000:])
    return capsys.readouterr().out


def metric_on_test(table: str, metric: str) -> float:
    """The test column of one metric's row in `recprobe evaluate`'s table."""
    return float(re.search(rf"{metric}\s*│\s*[\d.]+\s*│\s*([\d.]+)", table).group(1))


@torch.no_grad()
def ties_won(target, split, mask_seen: bool) -> dict[str, float]:
    """Test HR@10 and NDCG@10 with every tie won by the held-out item. recprobe counts a tie against it (a constant
    scorer gets HR 0); RecBole's topk breaks ties by item index, so its figures lie between the two."""
    users = np.arange(split.n_users)
    scores = target.predict(recprobe.phase_batches(split, "test", target.max_history)(users))
    own = scores.gather(1, torch.from_numpy(split.test_items)[:, None])
    if mask_seen:
        seen_items(*split.exclusions("test"), users).hide(scores)
    found = metrics_from_ranks((scores > own).sum(1) + 1, ks=(10,))
    return {"hit@10": found["HR@10"], "ndcg@10": found["NDCG@10"]}


@pytest.mark.parametrize("model", list(READ_AS))
def test_a_recbole_model_ranks_as_recbole_does_and_goes_through_every_cli_stage(small, model, capsys, monkeypatch):
    """Trained one epoch by RecBole's own Trainer and probed by raw token, the model is read inside its own scoring,
    an edit of its representation moves its scores, `recprobe evaluate` ranks the test items as RecBole's own
    evaluation does (RecBole does not mask seen items for sequential models: --no-mask-seen is its protocol),
    and every stage of the command line runs on it."""
    monkeypatch.setenv("RECPROBE_LOAD_PLUGINS", "")
    root, split, export = small
    path, recbole_metrics = train_checkpoint(model, export, root / model, epochs=1, **{**TRAINING, **SETTINGS.get(model, {})})
    target = recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)
    assert target.site == READ_AS[model]
    aligned = align(target, split)
    batch = recprobe.phase_batches(split, "test", aligned.max_history)(np.arange(64))
    check_probe_target(aligned, batch, split=None if model in UNDERTRAINED else split)
    best = ties_won(aligned, split, mask_seen=not target.sequential)  # the same as recprobe's unless scores tie (DMF)
    with torch.no_grad():  # an edited representation moves the scores; RecBole's caches do not hide it
        edited = aligned.represent(batch) + 1.0
        assert (aligned.score(edited, batch) - aligned.predict(batch)).abs().max() > 1e-3
        if model == "LightGCN":  # RecBole's cache is filled now; predicting again must still follow the weights
            own = target.predict(batch)
            target.model.item_embedding.weight.mul_(2)
            assert not torch.allclose(target.predict(batch), own)
    assert sorted(target.item_tokens) == sorted(split.item_ids)
    assert not (target.item_tokens == split.item_ids).all()  # RecBole's own order: the mapping is needed
    titles = dict(zip(split.item_ids, split.catalog.titles, strict=True))
    assert [titles[raw] for raw in target.item_tokens] == target.catalog.titles
    run = str(root / f"run-{model}")
    cli(capsys, "probe", "--adapter", "recbole", "--option", f"checkpoint={path}", "--option", "trust_checkpoint=true",
        "--dataset", str(export), "--min-rating", "-1", "--out", run, *(("--untrained-ok",) if model in UNDERTRAINED else ()))
    protocol = ("--no-mask-seen",) if target.sequential else ()
    table = cli(capsys, "evaluate", "--run", run, *protocol)
    ours = {"hit@10": metric_on_test(table, "HR@10"), "ndcg@10": metric_on_test(table, "NDCG@10")}
    assert all(ours[key] - 0.002 <= recbole_metrics[key] <= best[key] + 0.002 for key in ours), (ours, recbole_metrics, best)
    cli(capsys, "capture", "--run", run)
    cli(capsys, "train-sae", "--run", run, "--scale", "2", "--k", "4", "--epochs", "1")
    cli(capsys, "interpret", "--run", run)
    if model == "SASRec":  # every position is a case: items last often enough to score (a general model: one case per user)
        scored = json.loads((Path(run) / "concepts" / "attributes.json").read_text())["per_label"]
        assert any(row["label"].startswith("last item: ") for row in scored)  # the item itself, beside attribute values
    steered = cli(capsys, "steer", "--run", run, "--table7")
    assert "steering" in steered
    if model in LADDER:
        cli(capsys, "train-sae", "--run", run, "--seeds", "2", "--scale", "2", "--k", "4", "--epochs", "1")
        compared = cli(capsys, "compare", "--run", run, "--max-cases", "2000")
        assert "gap [95%" in compared and "probing/predicted@k1" in compared
        assert ("probing/current-item@k1" in compared) == (model == "SASRec")  # 300 test cases: no item 10 times
        metrics = json.loads((Path(run) / "compare.json").read_text())["metrics"]
        assert ("hard_negatives/current-item-hard" in metrics) == (model == "SASRec")  # the item's hard negatives too
        cli(capsys, "interpret", "--run", run, "--basis", "frozen-decoder")  # trains the control
        cli(capsys, "steer", "--run", run, "--table7", "--every")
        every = json.loads((Path(run) / "steering" / "table7-every.json").read_text())
        assert list(every["bases"]) == ["sae", "frozen-decoder"], every  # the interpreted bases: the control beside it
        assert all(0 <= row["passed"] <= row["measured"] <= row["confident"] for row in every["bases"].values())
        assert every["cases"] == ("all" if model == "SASRec" else "test")  # steered where its concepts were read
        explored_by_api(run, capsys)
        budgeted_as_complete(run)
    cli(capsys, "report", "--run", run)
    index = (Path(run) / "report" / "index.html").read_text()
    assert f"recbole:{model} on {SMALL}" in index
    assert ("Does training find anything?" in index) == (model in LADDER)
    assert ("Steering every confident concept" in index) == (model in LADDER)


def explored_by_api(run: str, capsys) -> None:
    """The explorer over a RecBole run: its top 10 at a slider's scale is `recprobe steer --user`'s."""
    from starlette.testclient import TestClient

    from recprobe.runs import Run
    from recprobe.serve import create_app

    opened = Run.open(run)
    record = next(r for r in opened.concepts() if r["status"] == "ok")
    rows, _ = opened.cases().fired(record["latent"])
    user = str(opened.split.user_ids[opened.cases().users[rows[0]]])
    shown = TestClient(create_app(run)).get("/api/top", params={"user": user, "edit": f"{record['latent']}:-10.0"}).json()
    lists = json.loads(cli(capsys, "steer", "--run", run, "--latent", str(record["latent"]), "--scale", "-10",
                           "--user", user, "--json"))["lists"]
    assert [row["item"] for row in shown["items"]] == next(e["items"] for e in lists if e["scale"] == -10.0)


def budgeted_as_complete(run: str) -> None:
    """A RecBole run's test cases under a budget of 10 strongest per latent and 50 uniform cases: every latent's
    strongest users and every count are the complete recording's."""
    from recprobe.concepts.budget import CaseBudget
    from recprobe.concepts.cases import record_cases
    from recprobe.runs import Run

    opened = Run.open(run)
    sae = opened.sae()
    every = record_cases(opened.target, sae, opened.split)
    budgeted = record_cases(opened.target, sae, opened.split, budget=CaseBudget(top=10, reservoir=50))
    assert not budgeted.complete and budgeted.n_cases == len(every) and budgeted.uniform.sum() == 50
    assert np.array_equal(budgeted.users_per_latent(sae.n_latents), every.users_per_latent(sae.n_latents))
    for latent in range(sae.n_latents):
        assert budgeted.users[budgeted.strongest(latent)[:10]].tolist() == every.users[every.strongest(latent)[:10]].tolist()


def test_a_model_scoring_pairs_without_its_site_is_refused_with_the_option_that_reads_it(small, monkeypatch):
    from recprobe.adapters.recbole import target as recbole_target

    root, _, export = small
    path, _ = train_checkpoint("NeuMF", export, root / "NeuMF-sites", epochs=1)
    with pytest.raises(RecprobeError, match=r"NeuMF has no module 'user_tower'; its modules: user_mf_embedding, "):
        recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True, site="user_tower")
    monkeypatch.delitem(recbole_target.DEFAULT_SITES, "NeuMF")
    with pytest.raises(RecprobeError, match=r"RecBole model NeuMF computes no product of a user vector with the item "
                                            r"vectors .* name its user-side modules with --option site=MODULE"):
        recprobe.load_target("recbole", checkpoint=path, trust_checkpoint=True)


def test_a_checkpoint_of_recboles_unfiltered_ml100k_is_refused(tmp_path):
    """RecBole's bundled ml-100k keeps every rating (943 users, 1,682 items); recprobe's split keeps ratings >= 4
    and the 5-core (938 users, 1,008 items): the items cannot be mapped, and the run says so."""
    data = real_data()
    import recbole

    path, _ = train_checkpoint("BPR", Path(recbole.__file__).parent / "dataset_example" / "ml-100k", tmp_path, epochs=1)
    env = {**os.environ, "RECPROBE_DATA_DIR": str(data), "RECPROBE_LOAD_PLUGINS": ""}
    result = subprocess.run([sys.executable, "-m", "recprobe.cli", "probe", "--adapter", "recbole", "--option",
                             f"checkpoint={path}", "--option", "trust_checkpoint=true", "--dataset", "ml-100k",
                             "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"error: recbole:BPR was trained on other items than the ml-100k split: 674 of the target's 1682 "
                     r"items are not in the split", " ".join(result.stderr.split())), result.stderr
    assert not (tmp_path / "run").exists()


def test_recbole_checkpoint_needs_the_trust_flag(tmp_path):
    with pytest.raises(RecprobeError, match="pickle .* trust_checkpoint=True"):
        recprobe.load_target("recbole", checkpoint=tmp_path / "any.pth")


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


def test_an_unsupported_recbole_model_class(small):
    root, _, export = small
    path, _ = train_checkpoint("Pop", export, root / "Pop", epochs=1)
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
