"""Label-grounded metrics: the AUROC matrix against hand-computed values, planted attribute directions found,
a shuffled control at chance."""

from __future__ import annotations

import json

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.concepts.attributes import (
    MIN_POSITIVES,
    auroc_matrix,
    best_per_label,
    bucketed,
    item_identity,
    item_labels,
    sparse_auroc,
    two_sided,
    user_labels,
)
from recprobe.data.split import Catalog
from recprobe.runs.attributes import read_out, read_out_auroc
from recprobe.sae.config import SAEConfig
from recprobe.sae.topk import TopKSAE


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**16))
def test_average_ranks_are_pandas_average_ranks(n, columns, levels, seed):
    """Ranks within each column, ties (few distinct values) sharing their mean rank; a vector as one column."""
    import pandas as pd

    from recprobe.stats import average_ranks

    values = np.random.default_rng(seed).integers(0, levels, (n, columns)).astype(np.float32)
    expected = pd.DataFrame(values).rank(axis=0, method="average").to_numpy()
    assert np.array_equal(average_ranks(values), expected)
    assert np.array_equal(average_ranks(values[:, 0]), expected[:, 0])


def test_auroc_matches_a_hand_count_with_ties():
    scores = np.array([[0.9], [0.5], [0.5], [0.1]] * MIN_POSITIVES)
    labels = np.array([[True], [True], [False], [False]] * MIN_POSITIVES)
    # pairs (positive, negative): 0.9 beats both, 0.5 ties one and beats one: (2 + 1.5) / 4 per block, all blocks alike
    positives = scores[labels[:, 0], 0]
    negatives = scores[~labels[:, 0], 0]
    by_hand = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives])
    assert auroc_matrix(scores, labels)[0, 0] == by_hand


def test_planted_directions_are_found_and_a_shuffled_control_is_at_chance():
    rng = np.random.default_rng(0)
    n, d, k = 2000, 16, 4
    labels = rng.random((n, k)) < 0.3
    scores = rng.normal(size=(n, d))
    for j in range(k):  # attribute j is planted along direction 3 j
        scores[:, 3 * j] += 2.5 * labels[:, j]
    found = best_per_label(auroc_matrix(scores, labels), [f"genre: a{j}" for j in range(k)])
    assert [f["direction"] for f in found] == [0, 3, 6, 9] and min(f["auroc"] for f in found) > 0.95
    shuffled = labels[rng.permutation(n)]
    control = auroc_matrix(scores, shuffled)
    assert np.all(np.abs(control - 0.5) < 0.05)


def test_raw_dimensions_count_both_ways():
    rng = np.random.default_rng(1)
    labels = rng.random((500, 1)) < 0.5
    x = rng.normal(size=(500, 2))
    x[:, 1] -= 3 * labels[:, 0]  # the attribute lowers dimension 1
    best = best_per_label(auroc_matrix(two_sided(x), labels), ["gender: F"])[0]
    assert best["direction"] == 3 and best["auroc"] > 0.95  # -x[:, 1]


def test_the_encoder_read_out_is_ranked_a_chunk_of_latents_at_a_time_with_the_same_result():
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig(d_in=8, scale=None, n_latents=50, k=4))
    reps = torch.randn(400, 8)
    labels = np.random.default_rng(2).random((400, 3)) < 0.4
    labels[:, 0] = reps[:, 0].numpy() > 0  # one label a direction of the input, so AUROCs are far from 0.5
    whole = auroc_matrix(read_out(sae, reps), labels)
    chunked = read_out_auroc(sae, reps, labels, chunk=16)  # 50 latents: chunks of 16, 16, 16 and 2
    assert chunked.shape == (50, 3) and np.abs(whole[:, 0] - 0.5).max() > 0.2
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_labels_come_from_the_history_and_the_prediction():
    catalog = Catalog(titles=["A", "B", "C"], attributes=[{"genre": ["Horror"]}, {"genre": ["Comedy"]}, {}])
    histories = np.array([[0, -1], [2, -1], [2, 2]])
    names, labels = item_labels(histories, np.array([2, 1, 2]), catalog)
    assert names == ["genre: Comedy", "genre: Horror"]
    assert labels.tolist() == [[False, True], [True, False], [False, False]]


def test_user_labels_follow_each_cases_user_and_many_integer_values_become_decades():
    ages = np.array([str(a) for a in range(10, 60)] + [""], dtype=object)  # 50 distinct ages, one unknown
    names, labels = user_labels(np.array([0, 0, 25, 50]), {"age": ages, "gender": np.array(["M"] * 50 + ["F"], dtype=object)})
    assert names == [f"age: {d}-{d + 9}" for d in range(10, 60, 10)] + ["gender: F", "gender: M"]
    assert labels[:, names.index("age: 10-19")].tolist() == [True, True, False, False]
    assert labels[:, names.index("age: 30-39")].tolist() == [False, False, True, False]
    assert labels[3, :5].sum() == 0 and labels[3, names.index("gender: F")]  # unknown age: no age label
    assert bucketed(["M", "F"]) == ["M", "F"]


@st.composite
def sparse_codes(draw):
    n, k, n_latents = draw(st.integers(2 * MIN_POSITIVES, 80)), draw(st.integers(1, 3)), draw(st.integers(3, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    indices = np.stack([rng.choice(n_latents, size=k, replace=False) for _ in range(n)])
    values = np.round(rng.exponential(size=(n, k)), 1) * (rng.random((n, k)) < 0.7)  # rounded: ties happen
    labels = rng.random((n, 3)) < rng.uniform(0.2, 0.8)
    return values, indices, n_latents, labels


@settings(max_examples=60, deadline=None)
@given(sparse_codes())
def test_sparse_auroc_equals_the_dense_reference(codes):
    values, indices, n_latents, labels = codes
    dense = np.zeros((len(values), n_latents))
    np.add.at(dense, (np.arange(len(values))[:, None].repeat(values.shape[1], 1), indices), values)
    np.testing.assert_allclose(sparse_auroc(values, indices, n_latents, labels), auroc_matrix(dense, labels), atol=1e-12)


class Blocks(torch.nn.Module):
    """A general target that knows each synthetic user's item block (user u prefers block u % 3): its
    representation is the block, one-hot and scaled, beside three dimensions of noise."""

    name, max_history, d_model = "blocks", 0, 6

    def __init__(self, split):
        super().__init__()
        self.n_items = split.n_items
        self.block = torch.tensor([(int(u) - 1) % 3 for u in split.user_ids])
        items = torch.tensor([(int(i) - 1) % 3 for i in split.item_ids])
        self.items = torch.cat([torch.nn.functional.one_hot(items, 3).float(), torch.zeros(len(items), 3)], 1)
        self.noise = torch.randn(len(self.block), 3, generator=torch.Generator().manual_seed(0))

    def represent(self, batch):
        return torch.cat([2 * torch.nn.functional.one_hot(self.block[batch.users], 3).float(), self.noise[batch.users]], 1)

    def score(self, reps, batch):
        return reps @ self.items.T

    def predict(self, batch):
        return self.score(self.represent(batch), batch)

    def item_embeddings(self):
        return self.items


def test_interpret_measures_user_attributes_the_model_encodes_and_not_random_ones(split, tmp_path):
    """A user attribute naming each user's block is read off the representation (and the SAE trained on it);
    one drawn at random is not."""
    from dataclasses import replace

    from recprobe.runs import Run

    blocks = np.array([str((int(u) - 1) % 3) for u in split.user_ids], dtype=object)
    coin = np.array([str(c) for c in np.random.default_rng(0).permutation(split.n_users) % 2], dtype=object)
    split = replace(split, user_attributes={"block": blocks, "coin": coin})
    run = Run.create(tmp_path / "run", Blocks(split), split)
    run.capture(progress=False)
    run.train_sae(scale=2, k=2, epochs=20, progress=False)
    summary = run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    found = json.loads((run.layout.concepts() / "attributes.json").read_text())
    rows = {row["label"]: row for row in found["per_label"]}
    assert set(rows) == {"block: 0", "block: 1", "block: 2", "coin: 0", "coin: 1"}
    assert found["bases"] == ["sae", "sae_encoder", "raw", "untrained", "untrained_encoder"]
    for basis, floor in (("raw", 0.95), ("sae_encoder", 0.85)):  # the SAE: 12 latents fitted to 40 vectors
        assert min(rows[f"block: {b}"][basis]["auroc"] for b in range(3)) > floor, basis
        assert max(rows[f"coin: {c}"][basis]["auroc"] for c in range(2)) < 0.8, basis  # best of many, 40 users
    assert {rows[f"block: {b}"]["raw"]["direction"] for b in range(3)} == {"+0", "+1", "+2"}
    assert summary["attributes"]["raw"]["block"] > summary["attributes"]["raw"]["coin"] + 0.2


def test_item_identity_labels_the_most_frequent_items_one_column_each():
    names, hot = item_identity(np.array([2, 0, 2, -1, 1, 2, 0]), ["a", "b", "c", "d"], top=2)
    assert names == ["c", "a"]  # by frequency; "d" never occurs, -1 is no item
    assert hot.astype(int).tolist() == [[1, 0], [0, 1], [1, 0], [0, 0], [0, 0], [1, 0], [0, 1]]
    assert item_identity(np.array([3, 3]), ["a", "b", "c", "d"])[0] == ["d"]  # never more than the items seen


def test_attribute_metrics_score_the_last_item_itself(split, tmp_path, monkeypatch):
    """Every-position cases of a SASRec run: besides attribute values, each case is labelled with its most recent
    item (the 100 most frequent, named `last item: <title> [<raw id>]`), counted from the split itself."""
    from recprobe.concepts.cases import record_cases
    from recprobe.runs import Run
    from recprobe.runs.attributes import attribute_metrics
    from tests.conftest import sae_run

    run = Run.open(sae_run(split, tmp_path, monkeypatch, model="sasrec"))
    cases = record_cases(run.target, run.sae(), run.split, kind="all")
    found = attribute_metrics(run, cases)
    rows = {row["label"]: row for row in found["per_label"]}
    offsets, items = run.split.sequences("test")
    last = items[offsets[cases.users] + cases.positions - 1]
    named = {f"last item: {run.split.catalog.titles[i]} [{run.split.item_ids[i]}]": int((last == i).sum())
             for i in np.unique(last)}
    scored = {label: row["cases"] for label, row in rows.items() if label.startswith("last item: ")}
    assert scored and all(scored[label] == named[label] for label in scored)
    assert set(scored) == {label for label, count in named.items() if MIN_POSITIVES <= count <= len(last) - MIN_POSITIVES}
    assert "last item" in found["mean_best_auroc"]["sae"]
