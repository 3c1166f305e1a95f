"""k-sparse probing, the label-grounded metrics and the intervals they are reported with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.concepts.grounding import (
    best_directions,
    hard_negative_gaps,
    push,
    random_directions,
    time_windows,
)
from recprobe.concepts.probing import column_auroc, fit_logistic, held_out_users, k_sparse_probe, pool_by_user
from recprobe.planted import PlantedTarget, plant
from recprobe.stats import excludes_zero, interval
from recprobe.target import Batch


def planted_label(n: int = 4000, directions: int = 50, seed: int = 0):
    """Features where label j is carried by direction 3 j (plus noise); users of 10 cases each."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, directions)).astype(np.float32)
    labels = np.stack([features[:, 3 * j] + rng.normal(size=n) > 0.5 for j in range(4)], axis=1)
    return features, labels, np.arange(n) // 10


def test_a_planted_direction_is_found_at_k1_and_a_shuffled_label_stays_at_chance():
    features, labels, users = planted_label()
    test = held_out_users(users, seed=1)
    found = k_sparse_probe(features, labels, test, ks=(1,))[1]
    assert (found > 0.8).all(), found
    shuffled = k_sparse_probe(features, labels[np.random.default_rng(2).permutation(len(labels))], test, ks=(1,))[1]
    assert (np.abs(shuffled - 0.5) < 0.05).all(), shuffled


def test_no_label_frequent_enough_probes_nothing_instead_of_failing():
    """A small run can have no label that enough cases carry (300 users, one case each)."""
    features, labels, users = planted_label(n=300)
    found = k_sparse_probe(features, labels[:, :0], held_out_users(users, seed=1), ks=(1, 4))
    assert {k: v.shape for k, v in found.items()} == {1: (0,), 4: (0,)}


def test_pooling_by_user_reads_a_trait_that_single_cases_hide():
    """Each user has a trait that every case carries faintly under noise; averaging a user's 20 cases reads it
    where one case cannot. The label is the trait, held by any of the user's cases."""
    rng = np.random.default_rng(0)
    n_users, per_user = 400, 20
    users = np.repeat(np.arange(n_users), per_user)
    trait = rng.random(n_users) < 0.3
    features = (0.3 * trait[users][:, None] + rng.normal(size=(len(users), 8))).astype(np.float32)
    labels = np.zeros((len(users), 1), dtype=bool)
    labels[::per_user, 0] = trait  # one case of each user says so
    pooled, held, distinct = pool_by_user(features, labels, users)
    assert np.array_equal(distinct, np.arange(n_users)) and np.array_equal(held[:, 0], trait)
    np.testing.assert_allclose(pooled[7], features[users == 7].mean(0), rtol=1e-5)
    per_case = k_sparse_probe(features, trait[users][:, None], held_out_users(users, seed=0), ks=(1,))[1][0]
    per_user = k_sparse_probe(pooled, held, held_out_users(distinct, seed=0), ks=(1,))[1][0]
    assert per_user > 0.85 and per_case < 0.65, (per_user, per_case)


def test_held_out_users_have_no_case_in_training():
    users = np.repeat(np.arange(100), 7)
    test = held_out_users(users, share=0.2, seed=0)
    assert set(users[test]).isdisjoint(users[~test]) and len(set(users[test])) == 20


def test_the_logistic_fit_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model", reason="scikit-learn comes with recprobe[recbole]")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    y = (x @ [1.5, -2.0, 0.3] + rng.normal(size=500) > 0).astype(float)
    weights, bias = fit_logistic(torch.from_numpy(x.T)[None].float(), torch.from_numpy(y)[None].float(), l2=1e-2)
    reference = linear_model.LogisticRegression(C=1 / (1e-2 * 500), tol=1e-10, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(weights[0].numpy(), reference.coef_[0], atol=2e-3)
    np.testing.assert_allclose(float(bias[0]), reference.intercept_[0], atol=2e-3)


def test_column_auroc_counts_ties_half():
    scores = np.array([[0.1], [0.4], [0.4], [0.9]])
    labels = np.array([[False], [True], [False], [True]])
    assert column_auroc(scores, labels)[0] == pytest.approx((1 + 0.5 + 1 + 1) / 4)


def test_hard_negatives_expose_a_direction_that_only_follows_its_neighbourhood():
    """Cases live in two regions; the label is common in region A. A direction that marks region A beats random
    negatives but not its nearest neighbours; one that marks the label itself beats both."""
    rng = np.random.default_rng(0)
    n = 4000
    region = rng.integers(0, 2, n)
    reps = np.stack([region * 5.0 + rng.normal(size=n) * 0.1, rng.normal(size=n)], axis=1)
    label = rng.random(n) < np.where(region == 1, 0.6, 0.05)
    users = np.arange(n)
    marks_region = region + 0.01 * rng.normal(size=n)
    marks_label = label + 0.01 * rng.normal(size=n)
    hard, random = hard_negative_gaps(np.stack([marks_region, marks_label], 1), np.stack([label, label], 1),
                                      reps, users)
    assert random[0] > 0.3 and abs(hard[0]) < 0.2
    assert hard[1] > 0.5 and random[1] > 0.5


def test_hard_negatives_from_the_same_time_window_expose_a_direction_that_only_marks_the_season():
    """The label is common late in the data; one direction marks lateness (under noise, so every window has
    silent cases), another the label. Nearest neighbours in representation space ignore time, so only the time
    window sends the season marker to 0."""
    rng = np.random.default_rng(0)
    n = 4000
    times = rng.random(n)
    late = times > 0.5
    reps = rng.normal(size=(n, 4))
    label = rng.random(n) < np.where(late, 0.6, 0.05)
    markers = 8  # season markers under independent noise: each one's gap is a 50-case estimate
    marks_season = late[:, None] + 0.5 * rng.normal(size=(n, markers))
    marks_label = label + 0.01 * rng.normal(size=n)
    scores = np.column_stack([marks_season, marks_label])
    labels = np.repeat(label[:, None], markers + 1, axis=1)
    windows = time_windows(times)
    assert np.bincount(windows).tolist() == [400] * 10
    blind, _ = hard_negative_gaps(scores, labels, reps, np.arange(n))
    timed, _ = hard_negative_gaps(scores, labels, reps, np.arange(n), windows=windows)
    assert blind[:markers].mean() > 0.3 and abs(timed[:markers].mean()) < 0.1, (blind, timed)
    assert timed[markers] > 0.5


def test_pushing_a_planted_direction_raises_its_items_and_a_random_direction_does_not():
    planted = plant(n=300, d=16, m=8, s=2, n_items=200, seed=0)
    target = PlantedTarget(planted)
    batch = Batch(torch.arange(256), torch.empty(256, 0, dtype=torch.long), torch.zeros(256, dtype=torch.long))
    per_item = (planted.item_directions.numpy()[:, None] == np.arange(8)[None]).astype(bool)
    reps = target.represent(batch)
    true = push(target, batch, reps, planted.directions, per_item)
    random = push(target, batch, reps, random_directions(8, 16, seed=0), per_item)
    assert true.concentration.mean() > 0.6 and random.concentration.mean() < 0.3
    assert true.raised_share.mean() > random.raised_share.mean() + 0.3
    assert true.lowered_share.mean() < random.lowered_share.mean()


def test_the_best_direction_carries_the_sign_that_marks_the_label():
    features, labels, _ = planted_label()
    features[:, 3] *= -1  # label 1 now rides on -direction 3
    chosen = best_directions(features, labels, np.ones(len(labels), dtype=bool))
    assert chosen.columns.tolist() == [0, 3, 6, 9] and chosen.signs.tolist() == [1, -1, 1, 1]


def test_intervals_use_students_t_and_say_when_they_exclude_zero():
    summary = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert summary["mean"] == 3.0 and summary["low"] == pytest.approx(3 - half, abs=1e-4)
    assert excludes_zero(summary) and not excludes_zero(interval([-1.0, 1.0, 0.5]))
    assert interval([0.2])["low"] is None and not excludes_zero(interval([0.2]))


def test_every_label_chunk_keeps_its_own_label_and_k_past_the_directions_uses_them_all():
    """40 labels (three chunks of the batched fit), label j marking where direction j is high: each label's one
    direction reads it perfectly, in its own column; a shuffled copy of the labels is read at chance; k = 64 on
    40 directions is the probe on all 40."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3000, 40)).astype(np.float32)
    labels = features > 1.0
    test = held_out_users(np.arange(3000), seed=0)
    found = k_sparse_probe(features, labels, test, ks=(1, 40, 64))
    assert sorted(found) == [1, 40, 64] and all(v.shape == (40,) for v in found.values())
    assert found[1].min() > 0.999
    np.testing.assert_array_equal(found[64], found[40])
    shuffled = k_sparse_probe(features, labels[:, rng.permutation(40)][rng.permutation(3000)], test, ks=(1,))[1]
    assert abs(shuffled.mean() - 0.5) < 0.03
    assert np.isnan(k_sparse_probe(features, labels, np.arange(3000) > 0, ks=(1,))[1]).all()  # one training row


def test_a_direction_that_reads_a_rare_label_perfectly_scores_one_on_hard_negatives():
    """A label on 20 of 4,000 users: its perfect reader scores 1 (the top cases shrink to the label's users; with
    50 of them it could score at most 0.4), a half-right reader less; a label on 5 users is not scored."""
    rng = np.random.default_rng(0)
    n = 4000
    reps = rng.normal(size=(n, 4))
    rare, rarer = np.zeros(n, bool), np.zeros(n, bool)
    rare[rng.choice(n, 20, replace=False)] = True
    rarer[rng.choice(n, 5, replace=False)] = True
    half_right = rare.copy()
    half_right[np.flatnonzero(rare)[:10]] = False
    half_right[np.flatnonzero(~rare)[:10]] = True
    scores = np.column_stack([rare, half_right, rarer]).astype(float)
    hard, _ = hard_negative_gaps(scores, np.column_stack([rare, rare, rarer]), reps, np.arange(n))
    assert hard[0] == 1.0 and 0.3 < hard[1] < 0.7 and np.isnan(hard[2]), hard
