"""The ladder and `recprobe compare` end to end, on an in-memory model (as `wrap()` gives) with item labels."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from recprobe.cli import app
from recprobe.concepts.attributes import ITEM_LABELS
from recprobe.concepts.probing import held_out_users
from recprobe.errors import RunFolderError, StaleArtifactError
from recprobe.runs import Run
from recprobe.runs.compare import (
    MIN_SCORED_LABELS,
    Basis,
    compare_run,
    grounded,
    headline,
    sample_cases,
    scored_mean,
)
from recprobe.runs.interpret import controls_line
from recprobe.runs.ladder import train_ladder
from recprobe.sae.config import SAETrainConfig
from tests.conftest import sae_run
from tests.test_attributes import Blocks
from tests.test_cli import assert_one_line_error, run_cli


@pytest.fixture
def labelled_run(split, tmp_path):
    """The Blocks target (each user's representation names the item block they prefer), items labelled by block."""
    catalog = replace(split.catalog, attributes=[{"block": [str((int(i) - 1) % 3)]} for i in split.item_ids])
    split = replace(split, catalog=catalog)
    run = Run.create(tmp_path / "run", Blocks(split), split)
    run.capture(progress=False)
    return run


def test_compare_without_a_ladder_names_the_command_that_trains_it(labelled_run):
    with pytest.raises(RunFolderError, match=r"no SAE ladder to compare; train one with `recprobe train-sae --run .* --seeds 5`"):
        compare_run(labelled_run)


def test_the_ladder_resumes_and_compare_sets_every_basis_beside_its_controls(labelled_run):
    seen = []
    train = SAETrainConfig(epochs=3)
    train_ladder(labelled_run, ("topk",), 2, {"scale": 2, "k": 2}, train, progress=False,
                 on_rung=lambda rung, metrics, kept: seen.append((rung.name, kept)))
    assert [name for name, _ in seen] == [f"topk-{v}-seed{s}" for s in (0, 1)
                                         for v in ("trained", "frozen-decoder", "frozen-encoder")]
    again = []
    train_ladder(labelled_run, ("topk",), 2, {"scale": 2, "k": 2}, train, progress=False,
                 on_rung=lambda rung, metrics, kept: again.append(kept))
    assert all(again)  # nothing trained twice
    for written_before in labelled_run.layout.saes.glob("*/cfg.json"):  # by a recprobe without encoder_scale
        cfg = json.loads(written_before.read_text())
        del cfg["recprobe"]["config"]["encoder_scale"]
        written_before.write_text(json.dumps(cfg))
    older = []
    train_ladder(labelled_run, ("topk",), 2, {"scale": 2, "k": 2}, train, progress=False,
                 on_rung=lambda rung, metrics, kept: older.append(kept))
    assert older == [True] * 6  # a field added since takes its default: still current
    other = []
    train_ladder(labelled_run, ("topk",), 1, {"scale": 2, "k": 2}, SAETrainConfig(epochs=2), progress=False,
                 on_rung=lambda rung, metrics, kept: other.append(kept))
    assert other == [False] * 3  # trained otherwise: trained again
    train_ladder(labelled_run, ("topk",), 2, {"scale": 2, "k": 2}, train, progress=False)

    result = compare_run(labelled_run, ks=(1, 2))
    written = json.loads(labelled_run.layout.compare.read_text())
    assert written["seeds"] == [0, 1] and written["cases"]["kind"] == "test"
    assert set(written["bases"]) == {"raw", "topk", "topk/untrained", "topk/frozen-decoder", "topk/frozen-encoder",
                                     "random-direction"}
    families = {name.split("/")[0] for name in written["metrics"]}
    assert families == {"probing", "output", "steering", "hard_negatives"}
    assert not any("pooled" in name for name in written["metrics"])  # one case per user: nothing to pool
    probe = written["metrics"]["probing/predicted@k1"]
    assert probe["raw"]["mean"] > 0.9  # the block is a raw dimension of the representation
    for metric, entry in result["metrics"].items():  # the gap is the per-seed difference to the best control
        gap = entry.get("trained_minus_best_control")
        if gap is None or gap["n"] < 2:
            continue
        controls = [b for b, info in written["bases"].items() if info["role"] == "control" and b in entry]
        by_hand = [entry["topk"]["values"][s] - max(entry[b]["values"][s] for b in controls) for s in range(2)]
        assert gap["mean"] == pytest.approx(np.mean(by_hand), abs=1e-3), metric


def test_the_report_leads_with_the_comparison_and_refuses_a_stale_one(labelled_run):
    train_ladder(labelled_run, ("topk",), 2, {"scale": 2, "k": 2}, SAETrainConfig(epochs=2), progress=False)
    labelled_run.train_sae(scale=2, k=2, epochs=2, progress=False)
    index = labelled_run.report().read_text()
    assert "recprobe compare --run" in index and "Does training find anything?" not in index
    assert "counts alone do not tell a trained SAE from a random one" in controls_line(labelled_run)
    result = compare_run(labelled_run, ks=(1,))
    ahead = sum(row["verdict"] == "trained ahead" for row in headline(result))
    assert f"excluding 0 on {ahead} of {len(headline(result))} metrics" in controls_line(labelled_run)
    index = labelled_run.report().read_text()
    assert "Does training find anything?" in index and "probing/history@k1" in index and "verdict" in index
    # one control retrained otherwise (as `interpret --basis frozen-decoder` retrains it with the run SAE's settings)
    train_ladder(labelled_run, ("topk",), 1, {"scale": 2, "k": 2}, SAETrainConfig(epochs=1),
                 variants=("frozen-decoder",), progress=False)
    with pytest.raises(StaleArtifactError, match=r"compare.json was made from another saes .* rebuild it with `recprobe compare"):
        labelled_run.report()
    assert "the comparison is out of date: " in controls_line(labelled_run)  # interpret still finishes, and says so
    compare_run(labelled_run, ks=(1,))
    record = json.loads(labelled_run.layout.compare.read_text())
    record["made_from"]["activations"] = "0" * 16
    labelled_run.layout.compare.write_text(json.dumps(record))
    with pytest.raises(StaleArtifactError, match=r"compare.json was made from another activations .* rebuild it with `recprobe compare --run"):
        labelled_run.report()


def test_the_cli_trains_the_ladder_and_compares_a_builtin_sequential_run(split, tmp_path, monkeypatch):
    catalog = replace(split.catalog, attributes=[{"block": [str((int(i) - 1) % 3)]} for i in split.item_ids])
    run = sae_run(replace(split, catalog=catalog), tmp_path, monkeypatch, model="sasrec")
    cli = CliRunner()
    out = cli.invoke(app, ["train-sae", "--run", str(run), "--seeds", "2", "--no-controls", "--arch", "topk,batchtopk",
                           "--scale", "1", "--k", "2", "--epochs", "2"])
    assert out.exit_code == 0, out.output
    assert "batchtopk-trained-seed1: test FVU" in out.output and "frozen" not in out.output
    out = cli.invoke(app, ["compare", "--run", str(run), "--max-cases", "500"])
    assert out.exit_code == 0, out.output
    assert "gap [95%" in out.output and "probing/next@k1" in out.output, out.output
    written = json.loads((run / "compare.json").read_text())
    assert written["cases"]["kind"] == "all" and {"topk", "batchtopk/untrained"} <= set(written["bases"])
    pooled = written["metrics"]["probing/pooled-history@k1"]  # every position: each user's cases pooled too
    assert pooled["raw"]["mean"] > 0.9  # each user's items are of one block, which the representation holds
    for prefix in ("", "current-item-"):  # hard negatives for broad labels and for the item itself (too few users here)
        assert {"raw", "topk", "topk/untrained"} <= set(written["metrics"][f"hard_negatives/{prefix}hard"]), prefix


def test_several_architectures_without_seeds_are_refused_in_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train-sae", "--run", str(tmp_path), "--arch", "topk,batchtopk")
    assert_one_line_error(code, err, "--arch: one architecture for RUN/sae (several only with --seeds), got 'topk,batchtopk'")


def test_narrow_labels_read_the_item_at_this_position_and_the_next(split, tmp_path, monkeypatch):
    """Every synthetic user takes items of one block only, so at every position the current and the next item
    carry the user's block, and nothing else."""
    catalog = replace(split.catalog, attributes=[{"block": [str((int(i) - 1) % 3)]} for i in split.item_ids])
    run = Run.open(sae_run(replace(split, catalog=catalog), tmp_path, monkeypatch, model="sasrec"))
    cases = sample_cases(run)
    block = np.array([(int(u) - 1) % 3 for u in run.split.user_ids])[cases.users]
    expected = block[:, None] == np.arange(3)[None, :]
    for family in ("current", "next", "history"):
        names, labels = cases.labels[family]
        assert names == ["block: 0", "block: 1", "block: 2"] and (labels == expected).all(), family
    assert cases.kind == "all" and len(cases.users) > run.split.n_users
    offsets, items = run.split.sequences("test")
    start, length = offsets[cases.users], np.diff(offsets)[cases.users]
    after = np.minimum(start + cases.positions, len(items) - 1)
    expected_items = {"current-item": items[start + cases.positions - 1],
                      "next-item": np.where(cases.positions < length, items[after], run.split.test_items[cases.users])}
    for family in ("current-item", "next-item", "predicted-item"):
        names, labels = cases.labels[family]
        assert 0 < len(names) <= ITEM_LABELS and labels.sum(1).max() == 1, family  # at most one item per case
        assert (np.diff(labels.sum(0)) <= 0).all(), family  # the most frequent items first
        if family in expected_items:  # each labelled case names its own item: "<title> [<raw id>]"
            rows, columns = np.nonzero(labels)
            named = [f"{run.split.catalog.titles[i]} [{run.split.item_ids[i]}]" for i in expected_items[family][rows]]
            assert len(rows) > 0 and named == [names[c] for c in columns], family


def test_item_hard_negatives_credit_a_direction_that_reads_the_item_and_not_a_shuffled_one(split, tmp_path, monkeypatch):
    """A basis whose columns are the current-item labels themselves scores high on the item's hard negatives;
    the same columns shuffled over cases score about 0 (few test users here: the minimum of users per label lowered)."""
    run = Run.open(sae_run(split, tmp_path, monkeypatch, model="sasrec"))
    cases = sample_cases(run)
    _, items = cases.labels["current-item"]
    monkeypatch.setattr("recprobe.concepts.grounding.MIN_TOP_CASES", 3)
    monkeypatch.setattr("recprobe.runs.compare.MIN_SCORED_LABELS", 3)
    test = held_out_users(cases.users, seed=0)
    reader = items.astype(np.float32)
    shuffled = reader[np.random.default_rng(0).permutation(len(reader))]
    found = {}
    for name, features in (("reader", reader), ("shuffled", shuffled)):
        basis = Basis(name, "topk", "trained", lambda reps, f=features: f,
                      lambda columns: torch.zeros(len(columns), run.target.d_model))
        found[name] = grounded(basis, features, cases, run, test, seed=0)["hard_negatives/current-item-hard"]
    assert found["reader"] > 0.5 and abs(found["shuffled"]) < 0.2, found


def test_a_hard_negative_metric_over_too_few_scorable_labels_is_left_unscored():
    """A large catalog's items are the current one of few held-out users: a mean over the one or two labels that
    could be scored is not reported as the basis's score."""
    few = np.array([0.9, np.nan, 0.7] + [np.nan] * 20)
    assert np.isnan(scored_mean(few))
    enough = np.concatenate([np.full(MIN_SCORED_LABELS, 0.5), [np.nan, 1.5]])
    assert scored_mean(enough) == pytest.approx((0.5 * MIN_SCORED_LABELS + 1.5) / (MIN_SCORED_LABELS + 1))
    assert np.isnan(scored_mean(np.full(MIN_SCORED_LABELS - 1, 0.5)))  # one label fewer: unscored
