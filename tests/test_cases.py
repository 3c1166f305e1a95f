"""Cases, levels and per-latent samples (paper 3.3, with the reference code's leakage and padding avoided)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.concepts import CaseSet, levels, record_cases, sample_latent
from recprobe.concepts.cases import PLAN_BATCHES, case_rows, case_times
from recprobe.models import build_model
from recprobe.sae import SAEConfig, TopKSAE


def case_set(values: np.ndarray, indices: np.ndarray) -> CaseSet:
    n = len(values)
    return CaseSet(np.arange(n), np.full((n, 9), -1), np.zeros(n, dtype=np.int64),
                   values.astype(np.float32), indices.astype(np.int64))


@st.composite
def sparse_activations(draw):
    n, k, n_latents = draw(st.integers(1, 40)), draw(st.integers(1, 4)), draw(st.integers(4, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    indices = np.stack([rng.choice(n_latents, size=k, replace=False) for _ in range(n)])
    values = rng.exponential(size=(n, k)) * (rng.random((n, k)) < 0.8)
    return case_set(values, indices)


@settings(max_examples=50, deadline=None)
@given(sparse_activations(), st.sampled_from(["max", "quantile"]))
def test_levels_are_zero_exactly_where_nothing_fired_and_within_1_to_10_elsewhere(cases, mode):
    out = levels(cases, mode)
    assert out.shape == cases.values.shape
    assert ((out == 0) == (cases.values <= 0)).all()
    assert out.max(initial=0) <= 10 and out[cases.values > 0].min(initial=1) >= 1


def test_max_levels_reach_10_at_each_latents_peak():
    cases = case_set(np.array([[1.0, 0.5], [2.0, 0.0], [0.2, 0.1]]), np.array([[0, 1], [0, 1], [0, 1]]))
    assert levels(cases, "max").tolist() == [[5, 10], [10, 0], [1, 2]]


@settings(max_examples=50, deadline=None)
@given(sparse_activations(), st.integers(1, 4), st.integers(0, 100))
def test_samples_are_disjoint_seeded_and_never_padded(cases, n, seed):
    for latent in range(int(cases.indices.max()) + 1):
        sample = sample_latent(cases, latent, n=n, seed=seed)
        activation = cases.activation(latent)
        assert sample.n_active == int((activation > 0).sum())
        if sample.status == "insufficient":  # too few activated cases, or too few others to verify against
            assert (sample.n_active < 2 * n or (activation == 0).sum() < 2 * n) and not sample.construction
            continue
        assert len(sample.construction) == len(sample.verification) == n
        chosen = sample.construction + sample.verification
        assert len(set(chosen) | set(sample.negatives)) == len(chosen) + len(sample.negatives)
        assert (activation[sample.negatives] == 0).all()
        top = np.sort(activation)[::-1][: 2 * n]
        assert sorted(activation[chosen].tolist(), reverse=True) == top.tolist()
        assert sample == sample_latent(cases, latent, n=n, seed=seed)


def test_record_cases_matches_the_model_and_round_trips(split, tmp_path):
    model = build_model("sasrec", split, d=8).eval()
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3))
    cases = record_cases(model, sae, split, batch_size=7)
    assert len(cases) == split.n_users and cases.values.shape == (split.n_users, 3)
    seen = split.sequences("test")
    for user in (0, 5):
        items = seen[1][seen[0][user]:seen[0][user + 1]]
        assert cases.predicted[user] not in items
        shown = cases.history[user][cases.history[user] >= 0]
        assert shown.tolist() == items[-9:].tolist()
    cases.save(tmp_path / "cases.safetensors")
    again = CaseSet.load(tmp_path / "cases.safetensors")
    assert all(np.array_equal(getattr(cases, f), getattr(again, f)) for f in ("users", "history", "values", "indices"))


def test_unknown_level_mode():
    with pytest.raises(ValueError, match="'max' or 'quantile'"):
        levels(case_set(np.ones((2, 1)), np.zeros((2, 1))), "median")


def test_cases_read_from_their_plan_a_block_at_a_time_are_the_same_cases(split):
    model = build_model("sasrec", split, d=8).eval()
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3))
    whole = record_cases(model, sae, split, kind="all", batch_size=4096)  # one block
    blocks = record_cases(model, sae, split, kind="all", batch_size=1)  # blocks of 64 rows
    assert len(whole) > 3 * PLAN_BATCHES
    for name in ("users", "positions", "history", "predicted", "indices"):
        assert np.array_equal(getattr(blocks, name), getattr(whole, name)), name
    np.testing.assert_allclose(blocks.values, whole.values, rtol=1e-5, atol=1e-6)


def test_all_cases_hold_every_position_with_its_own_prefix_and_end_with_the_test_case(split):
    model = build_model("sasrec", split, d=8).eval()
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3))
    test, every = record_cases(model, sae, split, batch_size=7), record_cases(model, sae, split, kind="all", batch_size=11)
    offsets, items = split.sequences("test")
    assert len(every) == len(items) == (np.diff(split.train_offsets) + 1).sum()
    last = np.flatnonzero(np.r_[every.users[1:] != every.users[:-1], True])  # each user's last case
    assert np.array_equal(every.users[last], test.users) and np.array_equal(every.positions[last], test.positions)
    for name in ("history", "predicted", "indices"):
        assert np.array_equal(getattr(every, name)[last], getattr(test, name)), name
    np.testing.assert_allclose(every.values[last], test.values, rtol=1e-5, atol=1e-6)
    for row in (0, 3, len(every) // 2):
        user, position = every.users[row], every.positions[row]
        prefix = items[offsets[user]:offsets[user] + position]
        assert every.history[row][every.history[row] >= 0].tolist() == prefix[-9:].tolist()
        assert every.predicted[row] not in prefix  # the prefix's items are masked, later ones are not
        reps = model.represent(model_batch(split, user, position))
        expected = sae.encode(reps.float())[1][0].numpy()
        assert sorted(every.indices[row].tolist()) == sorted(expected.tolist())


def model_batch(split, user, position):
    from recprobe.batches import position_batches

    return next(position_batches(split, np.array([user]), np.array([position]), 20, 1))


def test_all_cases_are_refused_for_a_general_model(split):
    from recprobe.errors import ConfigError

    with pytest.raises(ConfigError, match="--cases all needs a target that reads histories"):
        record_cases(build_model("bprmf", split, d=8), TopKSAE(SAEConfig(d_in=8, scale=2, k=3)), split, kind="all")


@st.composite
def repeated_user_cases(draw):
    cases = draw(sparse_activations())
    cases.users = np.sort(draw(st.lists(st.integers(0, 8), min_size=len(cases), max_size=len(cases)))).astype(np.int64)
    return cases


@settings(max_examples=80, deadline=None)
@given(repeated_user_cases(), st.integers(1, 3), st.integers(0, 100))
def test_every_sampled_case_comes_from_a_distinct_user(cases, n, seed):
    for latent in range(int(cases.indices.max()) + 1):
        sample = sample_latent(cases, latent, n=n, seed=seed)
        activation = cases.activation(latent)
        active_users = np.unique(cases.users[activation > 0])
        assert sample.active_users == len(active_users)
        silent_users = np.unique(cases.users[activation == 0])  # at most 2N of them are the chosen active users
        if sample.status == "insufficient":
            assert len(active_users) < 2 * n or len(silent_users) < 4 * n
            continue
        rows = sample.construction + sample.verification + sample.negatives + sample.calibration
        assert len(set(cases.users[rows].tolist())) == len(rows)  # no user twice, across every set
        chosen = sample.construction + sample.verification
        best = sorted((activation[cases.users == u].max() for u in active_users), reverse=True)[: 2 * n]
        assert sorted(activation[chosen].tolist(), reverse=True) == best  # each user's strongest, the top 2N of them
        assert (activation[sample.negatives + sample.calibration] == 0).all()


def test_a_case_is_dated_by_the_last_item_before_it(split):
    users, positions = case_rows(split, "all", max_history=5).rows()
    times = case_times(split, users, positions)
    offsets = split.train_offsets
    for row in (0, 1, len(users) // 2):
        user, position = users[row], positions[row]
        train_length = offsets[user + 1] - offsets[user]
        if position <= train_length:  # the position-th train item is the last before the case
            assert times[row] == split.train_times[offsets[user] + position - 1]
    after_dev = np.flatnonzero(positions == np.diff(offsets)[users] + 1)  # the test cases: after the dev item
    assert len(after_dev) == split.n_users
    assert np.array_equal(times[after_dev], split.train_times[offsets[1:] - 1])  # the dev item's time is not kept
    assert (np.diff(times[users == users[0]]) >= 0).all()  # a user's cases follow their time


@given(sparse_activations(), st.integers(0, 40))
@settings(max_examples=80, deadline=None)
def test_the_latent_index_lists_each_latents_fired_cases_strongest_first(cases, latent):
    rows, values = cases.fired(latent)
    dense = np.where(cases.indices == latent, cases.values, 0.0).sum(1)
    expected = np.argsort(-dense, kind="stable")[: int((dense > 0).sum())]
    assert rows.tolist() == expected.tolist() and np.allclose(values, dense[expected])
    assert np.allclose(cases.activation(latent), dense)


def test_negatives_are_silent_cases_of_other_users_by_rejection_and_exact_when_rare():
    rng = np.random.default_rng(0)
    n = 2000
    users = np.repeat(np.arange(400), 5)
    values = rng.random((n, 2)).astype(np.float32)
    indices = np.stack([np.zeros(n, dtype=np.int64), rng.integers(1, 50, n)], 1)
    values[:, 0] = np.where(rng.random(n) < 0.99, values[:, 0], 0.0)  # latent 0 silent on 1% of cases
    cases = CaseSet(users, np.full((n, 9), -1), np.zeros(n, dtype=np.int64), values, indices)
    for latent in (0, 7):  # latent 0: silent cases are rare (the exact scan); latent 7: common (rejection)
        fired = set(cases.fired(latent)[0].tolist())
        sample = sample_latent(cases, latent, n=5, seed=3)
        assert sample.status == "ok"
        negatives = sample.negatives + sample.calibration
        chosen = sample.construction + sample.verification
        assert not fired & set(negatives)
        assert len({int(users[r]) for r in negatives + chosen}) == 20  # every case of its own user
        assert sample_latent(cases, latent, n=5, seed=3) == sample  # seeded
