from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.ranking.metrics import KS, evaluate_ranking, metrics_from_ranks, seen_items, target_ranks


@st.composite
def ranking_problems(draw):
    n_users, n_items = draw(st.integers(1, 12)), draw(st.integers(3, 40))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    # few distinct values so ties happen
    scores = rng.integers(0, draw(st.integers(2, 20)), size=(n_users, n_items)).astype(np.float32)
    targets = rng.integers(0, n_items, size=n_users)
    rows = [np.setdiff1d(rng.choice(n_items, size=rng.integers(0, n_items - 1), replace=False), [t])
            for t in targets]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    items = np.concatenate(rows).astype(np.int64) if offsets[-1] else np.zeros(0, np.int64)
    return scores, targets, (offsets, items), n_items


def run(scores, targets, exclusions, n_items, **kw):
    return evaluate_ranking(lambda users: torch.from_numpy(scores[users]).clone(), targets, exclusions, n_items,
                            batch_size=5, **kw)


@settings(max_examples=100, deadline=None)
@given(ranking_problems())
def test_metrics_lie_in_unit_interval_and_grow_with_k(problem):
    out = run(*problem)
    for k in KS:
        assert 0.0 <= out[f"NDCG@{k}"] <= out[f"HR@{k}"] <= 1.0
    assert all(out[f"HR@{a}"] <= out[f"HR@{b}"] for a, b in zip(KS, KS[1:], strict=False))


@settings(max_examples=100, deadline=None)
@given(ranking_problems())
def test_masked_items_never_rank_above_the_target(problem):
    scores, targets, (offsets, items), n_items = problem
    boosted = scores.copy()
    mask = seen_items(offsets, items, np.arange(len(targets))).dense(n_items).numpy()
    boosted[mask] = 1e9  # excluded items become the best scored: must not matter
    assert run(boosted, targets, (offsets, items), n_items) == run(scores, targets, (offsets, items), n_items)


@settings(max_examples=50, deadline=None)
@given(ranking_problems())
def test_a_perfect_scorer_gets_one(problem):
    scores, targets, exclusions, n_items = problem
    perfect = np.zeros_like(scores)
    perfect[np.arange(len(targets)), targets] = 1.0
    out = run(perfect, targets, exclusions, n_items)
    assert all(out[f"HR@{k}"] == 1.0 and out[f"NDCG@{k}"] == 1.0 for k in KS)


@settings(max_examples=100, deadline=None)
@given(ranking_problems(), st.integers(0, 2**16))
def test_permuting_item_ids_changes_nothing(problem, seed):
    scores, targets, (offsets, items), n_items = problem
    perm = np.random.default_rng(seed).permutation(n_items)  # old id -> new id
    permuted = np.empty_like(scores)
    permuted[:, perm] = scores
    assert run(permuted, perm[targets], (offsets, perm[items]), n_items) == run(scores, targets, (offsets, items), n_items)


@settings(max_examples=50, deadline=None)
@given(ranking_problems())
def test_counting_a_few_rows_at_a_time_gives_the_ranks_of_one_block(problem):
    """On CPU ``target_ranks`` compares a few rows at a time (``COUNT_BYTES``): one row per block here."""
    from unittest import mock

    import recprobe.ranking.metrics as metrics

    scores, targets, (offsets, items), n_items = problem
    mask = seen_items(offsets, items, np.arange(len(targets)))
    whole = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), mask)
    with mock.patch.object(metrics, "COUNT_BYTES", 1):
        rows = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), mask)
    assert torch.equal(whole, rows)
    expected = [(np.where(mask.dense(n_items)[u].numpy() & (np.arange(n_items) != t), -np.inf, scores[u])
                 >= scores[u, t]).sum() for u, t in enumerate(targets)]
    assert rows.tolist() == expected


def test_ties_count_against_the_target():
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert target_ranks(scores, torch.tensor([0])).item() == 3


def test_hand_computed_ranks():
    out = metrics_from_ranks(torch.tensor([1, 3, 11]), ks=(10,))
    assert math.isclose(out["HR@10"], 2 / 3)
    assert math.isclose(out["NDCG@10"], (1 + 1 / math.log2(4)) / 3)


def test_non_finite_target_scores_are_refused():
    import pytest

    with pytest.raises(ValueError, match="non-finite score"):
        target_ranks(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))


def test_sampled_mode_is_labelled_and_ranks_among_100():
    n_items = 500
    scores = np.tile(np.arange(n_items, dtype=np.float32), (3, 1))  # item id = score
    targets = np.array([499, 250, 0])
    exclusions = (np.zeros(4, np.int64), np.zeros(0, np.int64))
    out = run(scores, targets, exclusions, n_items, sampled=True, ks=(10,))
    assert set(out) == {"HR@10 (sampled-99)", "NDCG@10 (sampled-99)"}
    assert 1 / 3 <= out["HR@10 (sampled-99)"] < 1.0  # the top item always hits, the bottom never


@settings(max_examples=50, deadline=None)
@given(ranking_problems(), st.integers(0, 2**16))
def test_seen_items_hide_and_take_what_a_dense_mask_would(problem, seed):
    scores, targets, (offsets, items), n_items = problem
    users = np.arange(len(targets))
    seen = seen_items(offsets, items, users)
    dense = np.zeros_like(scores, dtype=bool)
    for u in users:
        dense[u, items[offsets[u]:offsets[u + 1]]] = True
    assert (seen.dense(n_items).numpy() == dense).all()
    hidden = seen.hide(torch.from_numpy(scores).clone()).numpy()
    assert (np.isneginf(hidden) == dense).all() and (hidden[~dense] == scores[~dense]).all()
    rows = np.random.default_rng(seed).permutation(len(users))[: max(1, len(users) // 2)]
    assert (seen.take(rows).dense(n_items).numpy() == dense[rows]).all()


def test_a_large_catalog_scores_fewer_users_at_once_with_the_same_metrics(monkeypatch):
    """Past ``SCORE_ENTRIES`` the batch shrinks (here to 3 users of 40 items), and nothing else changes."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 40)).astype(np.float32)
    targets = rng.integers(0, 40, size=50)
    offsets = np.arange(0, 101, 2, dtype=np.int64)
    items = np.stack([(targets + 1) % 40, (targets + 2) % 40], 1).ravel().astype(np.int64)
    widths = []

    def score_batch(users):
        widths.append(len(users))
        return torch.from_numpy(scores[users]).clone()

    whole = evaluate_ranking(score_batch, targets, (offsets, items), 40, batch_size=64)
    assert widths == [50]
    monkeypatch.setattr("recprobe.ranking.metrics.SCORE_ENTRIES", 130)
    widths.clear()
    assert evaluate_ranking(score_batch, targets, (offsets, items), 40, batch_size=64) == whole
    assert max(widths) == 3 and sum(widths) == 50
