"""The de-biasing sweep on synthetic data where one latent is planted to carry popularity (tests/targets.py,
PopularityDrive with the exact SAE): both selection rules must find it, and turning it down must spread the
recommendations (lower Gini@10 and ARP@10) more than the same edit on random latents, at every strength."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.concepts.cases import record_cases
from recprobe.data.prepare import leave_one_out
from recprobe.errors import ConfigError, UnknownNameError
from recprobe.models.evaluate import evaluate_model
from recprobe.ranking.beyond import PopularityGroups
from recprobe.steering.debias import (
    average_ranks,
    cohens_d,
    cohens_d_latents,
    popularity_latents,
    select_latents,
    sparse_spearman,
    spearman,
)
from recprobe.steering.edit import steered
from recprobe.steering.methods.calibration import calibrated_top, js_divergence, list_ranks
from recprobe.steering.methods.ipr import ipr_scores
from recprobe.steering.methods.latents import PopSteerEdit, random_edits
from recprobe.steering.sweep import check_strengths, debias_sweep
from tests.targets import Oracle, PopularityDrive
from tests.test_steer_effects import exact_sae


def skewed_frame(n_users: int = 150, n_items: int = 120, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    """Histories drawn with item weights 1 / (rank + 4)^a, a user's appetite for popular items a = 0, 1 or 2:
    a popular head, a long tail, and users from niche to mainstream."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        weights = 1.0 / (np.arange(n_items) + 4) ** (user % 3)
        items = rng.choice(n_items, size=per_user, replace=False, p=weights / weights.sum())
        rows += [(str(user + 1), str(item + 1), float(1000 + t), 5.0) for t, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["user", "item", "time", "rating"])


@pytest.fixture(scope="module")
def skewed():
    made = leave_one_out(skewed_frame(), "skewed", {}, min_rating=None, core=3)
    return replace(made, origin={"source": "synthetic", "min_rating": None, "core": 3})


@pytest.fixture(scope="module")
def planted(skewed):
    target = PopularityDrive(skewed)
    sae = exact_sae(target.d_model)
    return target, sae, record_cases(target, sae, skewed)


def test_both_rules_find_the_planted_latent(skewed, planted):
    target, sae, cases = planted
    by_d = cohens_d_latents(target, sae, skewed)
    assert by_d[0][0] == 0 and by_d[0][1] > 1.0  # popular histories raise it, by far the largest effect
    assert abs(by_d[0][1]) > max(abs(d) for _, d in by_d[1:])
    by_rho = popularity_latents(cases, skewed.item_popularity(), sae.n_latents)
    assert by_rho[0][0] == 0 and by_rho[0][1] > 0.3
    assert select_latents("spearman", target, sae, skewed, cases) == by_rho
    with pytest.raises(UnknownNameError, match="cohens-d, spearman"):
        select_latents("pearson", target, sae, skewed, cases)


def test_cohens_d_by_hand():
    # latent 0: popular users 1, 2, 3 (mean 2, sample variance 1), niche users 0, 0, 3 (mean 1, sample variance 3):
    # pooled SD sqrt((1 + 3) / 2) = sqrt(2), d = (2 - 1) / sqrt(2). (Population variances would give 1 / sqrt(4 / 3).)
    # latent 1 never varies: d 0, not a division by zero.
    popular, niche = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]), np.array([[0.0, 5.0], [0.0, 5.0], [3.0, 5.0]])
    sums = torch.tensor(np.stack([popular.sum(0), niche.sum(0)]))
    squares = torch.tensor(np.stack([(popular ** 2).sum(0), (niche ** 2).sum(0)]))
    assert cohens_d(sums, squares, 3).tolist() == pytest.approx([1 / np.sqrt(2), 0.0])
    with pytest.raises(ValueError, match="at least 2 users"):
        cohens_d(sums, squares, 1)


def test_popsteer_edit_raises_niche_latents_everywhere_and_lowers_popular_ones_where_they_fire():
    sae = exact_sae(3)  # latent j decodes to unit vector e_j (j < 3)
    sd = torch.tensor([2.0, 1.0, 9.0, 0.0, 0.0, 0.0])
    edit = PopSteerEdit.of([0, 1], [-1.0, 0.5], sd)  # latent 0 popular (lowered), latent 1 niche (raised)
    reps = torch.tensor([[3.0, 0.0, 7.0], [0.5, 2.0, 7.0]])
    codes = torch.cat([reps.clamp_min(0), (-reps).clamp_min(0)], 1)
    # strength 1: latent 0 falls by 1 * 2 (not below 0): 3 -> 1, 0.5 -> 0; latent 1 rises by 0.5 * 1 even at 0
    expected = torch.tensor([[1.0, 0.5, 7.0], [0.0, 2.5, 7.0]])
    torch.testing.assert_close(steered(sae, reps, edit.at(1.0), codes), expected)
    torch.testing.assert_close(steered(sae, reps, edit.at(1.0)), expected)  # the codes read from the SAE alike
    torch.testing.assert_close(steered(sae, reps, edit.at(0.0), codes), reps)


def test_the_random_control_keeps_the_weights_on_other_latents_that_fire():
    sd = torch.ones(6)
    edit = PopSteerEdit.of([0, 1], [-1.0, 0.5], sd)
    draws = random_edits(edit, np.arange(6), 3, sd)
    assert [d.weights for d in draws] == [edit.weights] * 3
    assert all(set(d.latents) <= {2, 3, 4, 5} and len(set(d.latents)) == 2 for d in draws)
    assert len({d.latents for d in draws}) > 1  # seeded draws, not one
    with pytest.raises(ConfigError, match="too few latents fire"):
        random_edits(edit, np.array([0, 1, 2]), 1, sd)


def test_list_ranks():
    top = torch.tensor([[4, 2, 9], [1, 3, 5]])
    assert list_ranks(top, torch.tensor([9, 7])).tolist() == [3, 4]  # absent: K + 1


def test_cohens_d_needs_a_target_that_reads_histories(split):
    with pytest.raises(ConfigError, match="reads user ids only"):
        cohens_d_latents(Oracle(split), exact_sae(split.n_items), split)


def test_the_sweep_beats_random_latents_at_every_strength(skewed, planted):
    target, sae, cases = planted
    strengths = (0.0, 1.0, 2.0, 4.0)
    result = debias_sweep(target, sae, skewed, cases, strengths=strengths, ipr_alphas=(0.0, 1.0),
                          calibration_lambdas=(0.0, 0.5), n_latents=1, seeds=3)
    assert [row["latent"] for row in result["latents"]["spearman"]] == [0]
    assert [row["latent"] for row in result["latents"]["cohens-d"]] == [0]
    rows = {(r["method"], r["selection"], r["strength"]): r for r in result["rows"]}
    unedited = rows[("sae", "spearman", 0.0)]
    # the same ranking code as `recprobe evaluate`: its HR@10, NDCG@10 and beyond-accuracy metrics, exactly
    evaluated = evaluate_model(target, skewed, "test", beyond=True)
    assert {key: unedited[key] for key in evaluated if key in unedited} == pytest.approx(
        {key: evaluated[key] for key in evaluated if key in unedited})
    assert "Gini@10" in evaluated and "NDCG@10 light users" in evaluated
    for key in (("random", "spearman", 0.0), ("ipr", None, 0.0), ("calibration", None, 0.0)):
        assert rows[key]["Gini@10"] == pytest.approx(unedited["Gini@10"])
        assert rows[key]["NDCG@10"] == pytest.approx(unedited["NDCG@10"])
    for selection in ("spearman", "cohens-d"):
        for strength in strengths[1:]:
            sae_row, random_row = rows[("sae", selection, strength)], rows[("random", selection, strength)]
            assert sae_row["Gini@10"] < random_row["Gini@10"] - 0.02, (selection, strength)
            assert sae_row["ARP@10"] < random_row["ARP@10"], (selection, strength)
    assert rows[("sae", "spearman", 4.0)]["Gini@10"] < unedited["Gini@10"] - 0.03
    assert rows[("ipr", None, 1.0)]["ARP@10"] < unedited["ARP@10"]
    assert rows[("calibration", None, 0.5)]["Tail@10"] > unedited["Tail@10"]


def test_the_documented_method_of_ones_own_joins_the_sweep(skewed, planted):
    """docs/debias.md's HeadCap, run as written: its strength 0 is the model's own lists, more strength less
    popularity, and the built-in methods' rows are unchanged beside it."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "debias.md").read_text()
    block = re.search(r"^```py\n(from dataclasses import dataclass.*?)^```", page, flags=re.S | re.M).group(1)
    namespace: dict = {}
    exec(compile(block, "docs/debias.md", "exec"), namespace)  # noqa: S102 - the docs' own block
    target, sae, cases = planted
    popularity = torch.from_numpy(np.bincount(skewed.train_items, minlength=skewed.n_items)).float()
    kwargs = {"selections": ("spearman",), "strengths": (0.0, 1.0), "ipr_alphas": (0.0,), "calibration_lambdas": (0.0,),
              "n_latents": 1, "seeds": 1}
    plain = debias_sweep(target, sae, skewed, cases, **kwargs)
    result = debias_sweep(target, sae, skewed, cases, **kwargs,
                          methods=[namespace["HeadCap"](popularity, [0.0, 0.05, 0.2])])
    rows = {(r["method"], r["strength"]): r for r in result["rows"]}
    assert result["rows"][:len(plain["rows"])] == plain["rows"]
    assert rows[("head-cap", 0.0)]["ARP@10"] == pytest.approx(rows[("sae", 0.0)]["ARP@10"])
    assert rows[("head-cap", 0.2)]["ARP@10"] < rows[("head-cap", 0.05)]["ARP@10"] < rows[("head-cap", 0.0)]["ARP@10"]
    with pytest.raises(ConfigError, match="head-cap's strengths: -1.0"):
        debias_sweep(target, sae, skewed, cases, **kwargs, methods=[namespace["HeadCap"](popularity, [-1.0])])


def test_strengths_are_checked(skewed, planted):
    assert check_strengths([2, 0, 2.0]) == [0.0, 2.0]
    for bad in ([float("nan")], [float("inf")], [-1.0], []):
        with pytest.raises(ConfigError, match="--strengths"):
            check_strengths(bad)
    target, sae, cases = planted
    for kwargs, message in (({"ipr_alphas": [-1.0]}, "ipr_alphas: -1.0"), ({"calibration_lambdas": [2.0]}, "above 1"),
                            ({"n_latents": 0}, "n_latents=0"), ({"seeds": 0}, "seeds=0")):
        with pytest.raises(ConfigError, match=message):
            debias_sweep(target, sae, skewed, cases, **kwargs)
    with pytest.raises(UnknownNameError, match="unknown latent selection 'pearson'"):
        debias_sweep(target, sae, skewed, cases, selections=["pearson"])


def test_ipr_divides_probabilities_by_popularity_to_the_alpha():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    popularity = torch.tensor([9.0, 1.0, 0.0])
    # alpha = 1: P / (1 + pop) = 0.05, 0.15, 0.2 -> the least popular item first
    assert ipr_scores(scores, popularity, 1.0).argsort(descending=True).tolist() == [[2, 1, 0]]
    torch.testing.assert_close(ipr_scores(scores, popularity, 0.0), scores)


def test_calibration_follows_the_users_history_mix():
    # item groups: 0, 1 head, 2 mid, 3, 4 tail; relevance falls with the index
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    groups = torch.tensor([0, 0, 1, 2, 2])
    tail_lover = torch.tensor([[0.0, 0.0, 1.0]])
    assert calibrated_top(scores, groups, tail_lover, 0.0, k=2).tolist() == [[0, 1]]  # lam 0: the model's order
    assert calibrated_top(scores, groups, tail_lover, 0.9, k=2).tolist() == [[3, 4]]  # all tail, as the history
    # JS of identical distributions is 0; of disjoint ones ln 2
    assert js_divergence(tail_lover, tail_lover).item() == pytest.approx(0.0)
    assert js_divergence(tail_lover, torch.tensor([[1.0, 0.0, 0.0]])).item() == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match=r"lambda must be in \[0, 1\]"):
        calibrated_top(scores, groups, tail_lover, 1.5, k=2)


def test_history_shares(skewed):
    groups = PopularityGroups.of(skewed)
    offsets, items = skewed.sequences("test")
    shares = groups.history_shares(offsets, items, np.array([0, 1]))
    assert shares.sum(1).tolist() == pytest.approx([1.0, 1.0])
    mine = groups.item_group[items[offsets[0]:offsets[1]]]
    assert shares[0, 2].item() == pytest.approx((mine == 2).mean())


def test_debias_sweep_on_the_command_line(capsys, tmp_path, monkeypatch):
    """`recprobe debias --sweep` on a run of the planted target: the table, the results file with provenance, the
    report's Pareto chart."""
    import json

    from tests.conftest import write_atomic
    from tests.test_cli import run_cli

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the factory's module is importable from here
    toy, out = write_atomic(tmp_path / "toy", skewed_frame()), tmp_path / "run"
    kwargs = json.dumps({"dataset": str(toy)})
    code, _, err = run_cli(capsys, "probe", "--adapter", "torch", "--option", "factory=tests.targets:make_popularity_drive",
                           "--option", f"kwargs={kwargs}", "--dataset", str(toy), "--min-rating", "-1", "--core", "3",
                           "--out", str(out), "--untrained-ok")
    assert code == 0, err
    for args in (("capture",), ("train-sae", "--scale", "4", "--k", "3", "--epochs", "3")):
        code, _, err = run_cli(capsys, args[0], "--run", str(out), *args[1:])
        assert code == 0, (args, err)
    code, text, err = run_cli(capsys, "debias", "--run", str(out), "--sweep", "--latents", "2", "--strengths", "0,2")
    assert code == 0, err
    assert "de-biasing sweep" in text and "Gini" in text and "debias-sweep.json" in "".join(text.split())
    saved = json.loads((out / "steering" / "debias-sweep.json").read_text())
    assert saved["strengths"] == [0.0, 2.0] and saved["made_from"]["sae"]
    assert {(row["method"], row["selection"]) for row in saved["rows"]} == {
        ("sae", "spearman"), ("sae", "cohens-d"), ("random", "spearman"), ("random", "cohens-d"), ("ipr", None),
        ("calibration", None)}
    code, _, err = run_cli(capsys, "report", "--run", str(out))
    assert code == 0, err
    page = (out / "report" / "index.html").read_text()
    assert "De-biasing sweep" in page and "<polyline" in page


@given(st.integers(0, 10_000), st.integers(20, 300), st.floats(0.02, 0.9))
@settings(max_examples=60, deadline=None)
def test_sparse_spearman_equals_the_dense_one(seed, n, share):
    """The closed form for a mostly-zero activation, ties among the fired values and in the popularity included."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random(n) < share, rng.integers(1, 5, n).astype(float), 0.0)
    popularity = rng.integers(0, 8, n).astype(float)
    rows = np.flatnonzero(dense)
    ranks = average_ranks(popularity)
    assert sparse_spearman(rows, dense[rows], ranks - ranks.mean()) == pytest.approx(spearman(dense, popularity), abs=1e-9)


def test_the_default_latent_count_leaves_the_random_control_as_many_others(skewed, planted):
    """By default each SAE edit moves at most half the latents that fire on enough users, so an SAE narrower than
    twice ``N_LATENTS`` is swept rather than refused (a count given is kept, and refused when too large)."""
    from recprobe.steering.sweep import N_LATENTS, code_spread

    target, sae, cases = planted
    eligible = len(code_spread(target, sae, skewed, 512)[1])
    assert eligible < 2 * N_LATENTS  # the case the old default of N_LATENTS refused
    result = debias_sweep(target, sae, skewed, cases, selections=("spearman",), strengths=(0.0, 1.0),
                          ipr_alphas=(0.0,), calibration_lambdas=(0.0,), seeds=1)
    assert result["n_latents"] == max(1, min(N_LATENTS, eligible // 2))
    assert len(result["latents"]["spearman"]) == result["n_latents"]
    with pytest.raises(ConfigError, match="too few latents fire"):
        debias_sweep(target, sae, skewed, cases, selections=("spearman",), strengths=(0.0,), ipr_alphas=(0.0,),
                     calibration_lambdas=(0.0,), seeds=1, n_latents=eligible)
