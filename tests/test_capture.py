"""Capture: which rows are probed, what the store holds, and the run-folder stages end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.activations.capture import capture, rows_to_probe
from recprobe.activations.store import ActivationStore
from recprobe.errors import RecprobeError, RunFolderError
from recprobe.models import build_model
from recprobe.sae.faithfulness import ranking
from tests.conftest import probe_batch


def test_rows_to_probe(split):
    n_train = np.diff(split.train_offsets)
    users, positions = rows_to_probe(split, "test", 20, "last").rows()
    assert np.array_equal(users, np.arange(split.n_users)) and np.array_equal(positions, n_train + 1)
    plan = rows_to_probe(split, "train", 20, "all")
    users, positions = plan.rows()
    assert len(plan) == len(users) == len(split.train_items) - split.n_users and positions.min() == 1
    assert (positions < n_train[users]).all()
    assert sum(a.nbytes for a in (plan.users, plan.first, plan.starts)) <= 24 * (split.n_users + 1)  # not per row
    # every train position with a history, once, in user order: what the flat list of train items gives
    flat = np.arange(len(split.train_items))
    flat = flat[flat > split.train_offsets[split.train_users]]
    assert np.array_equal(users, split.train_users[flat])
    assert np.array_equal(positions, flat - split.train_offsets[split.train_users[flat]])
    for start, stop in ((0, 7), (5, 40), (len(plan) - 3, len(plan))):  # a shard's slice is the slice of the whole
        assert all(np.array_equal(a, b[start:stop]) for a, b in zip(plan.rows(start, stop), (users, positions), strict=True))
    last = rows_to_probe(split, "train", 20, "last")
    assert np.array_equal(last.rows()[1], n_train[last.users] - 1) and (n_train[last.users] >= 2).all()
    with pytest.raises(RecprobeError, match="positions='all' needs a sequential model"):
        rows_to_probe(split, "train", 0, "all")


@pytest.mark.parametrize("name", ["bprmf", "sasrec"])
def test_captured_rows_are_what_the_model_represents(split, tmp_path, name):
    model = build_model(name, split, d=8).eval()
    store = capture(model, split, tmp_path / "acts", positions="last", batch_size=7, progress=False)
    assert store.splits() == ["train", "dev", "test"] and store.d == 8
    test = store.load("test")
    with torch.no_grad():
        expected = model.represent(probe_batch(split, model.max_history, n=split.n_users))
    torch.testing.assert_close(test.activations, expected)
    assert torch.equal(test.users, torch.arange(split.n_users))
    assert store.provenance["dataset"] == split.fingerprint


def test_capture_all_positions_matches_history_prefixes(split, tmp_path):
    model = build_model("sasrec", split, d=8).eval()
    store = capture(model, split, tmp_path / "acts", parts=("train",), positions="all", progress=False)
    rows = store.load("train")
    u, p = int(rows.users[5]), int(rows.positions[5])
    items = split.train_items[split.train_offsets[u]:split.train_offsets[u + 1]]
    history = torch.full((1, model.max_history), split.pad_item)
    history[0, :p] = torch.from_numpy(items[:p])
    from recprobe.target import Batch

    with torch.no_grad():
        rep = model.represent(Batch(torch.tensor([u]), history, torch.tensor([p])))
    torch.testing.assert_close(rows.activations[5:6], rep)


def test_an_identity_reconstruction_splices_in_without_changing_ranking(split):
    class Identity:
        def reconstruct(self, x):
            return x

    model = build_model("bprmf", split, d=8).eval()
    assert ranking(model, split, "test", sae=Identity()) == ranking(model, split, "test")


def test_a_missing_store_says_to_capture(tmp_path):
    with pytest.raises(RunFolderError, match="run `recprobe capture` first"):
        ActivationStore(tmp_path)
