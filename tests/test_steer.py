"""Steering and de-biasing: latent edits, re-ranking effects, popularity latents, run folders and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.cli import main
from recprobe.errors import RecprobeError, RunFolderError
from recprobe.models import load_recommender
from recprobe.runs.steering import SteeringRun
from recprobe.sae import SAEConfig, TopKSAE, load_sae
from recprobe.steering.debias import average_ranks, spearman, top10_report
from recprobe.steering.edit import LatentEdit, latent_values, steered
from recprobe.steering.steer import steering_effect, top_items
from tests.conftest import sae_run


def small_sae() -> tuple[TopKSAE, torch.Tensor]:
    sae = TopKSAE(SAEConfig(d_in=6, scale=4, k=3, seed=2))
    return sae, torch.randn(20, 6, generator=torch.Generator().manual_seed(1))


def test_edits_change_only_the_edited_latent_along_its_decoder_row():
    sae, x = small_sae()
    values, indices = sae.encode(x)
    latent = int(indices[0, 0])
    z = latent_values(sae, x, latent)
    torch.testing.assert_close(steered(sae, x, [LatentEdit(latent, scale=1.0)]), x)  # 1x is the model as it is
    torch.testing.assert_close(steered(sae, x, [LatentEdit(latent, scale=3.0)]), x + 2 * z[:, None] * sae.W_dec[latent].detach())
    torch.testing.assert_close(steered(sae, x, [LatentEdit(latent, scale=0.0)]), x - z[:, None] * sae.W_dec[latent].detach())
    torch.testing.assert_close(steered(sae, x, [LatentEdit(latent, clamp=2.0)]), x + (2.0 - z)[:, None] * sae.W_dec[latent].detach())
    shifted = (z - 0.5).clamp_min(0)  # a shift adds everywhere, never below 0
    torch.testing.assert_close(steered(sae, x, [LatentEdit(latent, shift=-0.5)]), x + (shifted - z)[:, None] * sae.W_dec[latent].detach())
    torch.testing.assert_close(steered(sae, x, [LatentEdit(latent, shift=0.0)]), x)
    other = int(indices[0, 1])
    both = steered(sae, x, [LatentEdit(latent, scale=3.0), LatentEdit(other, scale=0.0)])
    expected = x + 2 * z[:, None] * sae.W_dec[latent].detach() - latent_values(sae, x, other)[:, None] * sae.W_dec[other].detach()
    torch.testing.assert_close(both, expected)


@pytest.mark.parametrize(("edit", "message"), [
    (LatentEdit(24, scale=2.0), "latent 24 does not exist: this SAE has latents 0..23"),
    (LatentEdit(-1, scale=2.0), "latent -1 does not exist"),
    (LatentEdit(3, scale=float("nan")), "nan is not a finite number"),
    (LatentEdit(3, scale=float("inf")), "inf is not a finite number"),
    (LatentEdit(3), "give exactly one of scale, clamp and shift"),
    (LatentEdit(3, scale=1.0, clamp=1.0), "give exactly one of scale, clamp and shift"),
    (LatentEdit(3, clamp=1.0, shift=1.0), "give exactly one of scale, clamp and shift"),
    (LatentEdit("3", scale=2.0), "an edit's latent is a latent id, an integer from 0 to 23; got '3'"),
    (LatentEdit(3.7, scale=2.0), "an edit's latent is a latent id, an integer from 0 to 23; got 3.7"),
    (LatentEdit(3, scale="10"), "edit of latent 3: '10' is not a number"),
])
def test_bad_edits_are_refused(edit, message):
    sae, x = small_sae()
    with pytest.raises(RecprobeError, match=message):
        steered(sae, x, [edit])


def test_one_edit_needs_no_list_and_vectors_of_another_width_are_refused():
    sae, x = small_sae()
    latent = int(sae.encode(x)[1][0, 0])
    torch.testing.assert_close(steered(sae, x, LatentEdit(latent, scale=3.0)), steered(sae, x, [LatentEdit(latent, scale=3.0)]))
    assert not torch.equal(steered(sae, x, LatentEdit(latent, scale=3.0)), x)
    steered(sae, x, LatentEdit(np.int64(latent), scale=3.0))  # a numpy integer is a latent id too
    with pytest.raises(RecprobeError, match=r"the SAE reads 6-wide vectors \(d_in\), got \(20, 5\)"):
        steered(sae, x[:, :5], LatentEdit(latent, scale=3.0))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.lists(st.integers(0, 4), min_size=1, max_size=30))
def test_spearman_matches_scipy_with_ties(a, b):
    stats = pytest.importorskip("scipy.stats")
    n = min(len(a), len(b))
    a, b = np.array(a[:n], dtype=float), np.array(b[:n], dtype=float)
    assert average_ranks(a).sum() == pytest.approx(n * (n + 1) / 2)
    expected = stats.spearmanr(a, b).statistic if a.std() > 0 and b.std() > 0 else 0.0
    assert spearman(a, b) == pytest.approx(expected, abs=1e-9)


def test_steering_effect_and_debias_report_on_a_real_run(split, tmp_path, monkeypatch):
    """A BPRMF and its SAE trained on the synthetic split: effects are shares, 1x is the original model."""
    run = sae_run(split, tmp_path, monkeypatch)
    target, _ = load_recommender(run)
    sae = load_sae(run / "sae")[0]
    values, indices = sae.encode(target.represent(_all_users(split, target)).float())
    latent = int(torch.mode(indices[values > 0]).values)
    concept = np.zeros(split.n_items, dtype=bool)
    concept[:5] = True
    effect = steering_effect(target, sae, split, latent, concept, scales=(-10.0, 1.0, 10.0))
    assert effect["n_active"] == int(((indices == latent) & (values > 0)).any(1).sum()) > 0
    assert all(0 <= row["hit@10"] <= 1 and 0 <= row["HR@10"] <= 1 for row in effect["scales"])
    users = _active(split, target, sae, latent)
    batch = _batch(split, target, users)
    top = top_items(target, target.represent(batch).float(), batch, _seen(split, users))
    assert effect["scales"][1]["hit@10"] == pytest.approx(float(torch.from_numpy(concept)[top].any(1).float().mean()))
    unedited = top10_report(target, sae, split, [])
    assert unedited == top10_report(target, sae, split, [LatentEdit(latent, scale=1.0)])
    assert 0 < unedited["coverage@10"] <= 1 and unedited["mean_popularity@10"] > 0

    steering = SteeringRun(run)
    report = steering.debias(n_latents=2, niche_scale=2.0, popular_scale=0.0)
    assert report["before"] == unedited and set(report["change"]) == set(unedited)
    assert json.loads((run / "steering" / "debias.json").read_text())["after"] == report["after"]
    with pytest.raises(RunFolderError, match="no interpreted concepts; run `recprobe interpret"):
        steering.table7()
    one = steering.steer(latent, 10.0)  # one scale needs no list
    assert [row["scale"] for row in one["metadata"]["scales"]] == [1.0, 10.0]
    with pytest.raises(RecprobeError, match="an edit's latent is a latent id, an integer"):
        steering.steer(str(latent), [10.0])


def test_steering_a_run_without_an_sae_is_refused(split, tmp_path, monkeypatch, capsys):
    run = sae_run(split, tmp_path, monkeypatch)
    (run / "sae" / "cfg.json").unlink()
    with pytest.raises(RunFolderError, match="has no SAE; run `recprobe train-sae --run .*` first"):
        SteeringRun(run)
    with pytest.raises(SystemExit) as exit_info:
        main(["steer", "--run", str(run), "--latent", "0", "--scale", "10"])
    assert exit_info.value.code == 2 and "has no SAE; run `recprobe train-sae" in capsys.readouterr().err


def test_cli_refuses_a_latent_out_of_range_and_a_non_finite_scale(split, tmp_path, monkeypatch, capsys):
    run = sae_run(split, tmp_path, monkeypatch)
    for argv, message in ((["--latent", "8", "--scale", "10"], "latent 8 does not exist: this SAE has latents 0..7"),
                          (["--latent", "1", "--scale", "nan"], "nan is not a finite number")):
        with pytest.raises(SystemExit) as exit_info:
            main(["steer", "--run", str(run), *argv])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not list((run / "steering").glob("latent-*.json"))  # nothing written for a refused edit


def _all_users(split, target):
    return _batch(split, target, np.arange(split.n_users))


def _batch(split, target, users):
    from recprobe.batches import phase_batches

    return phase_batches(split, "test", target.max_history)(users)


def _seen(split, users):
    from recprobe.ranking.metrics import seen_items

    return seen_items(*split.exclusions("test"), users)


def _active(split, target, sae, latent):
    users = np.arange(split.n_users)
    return users[(latent_values(sae, target.represent(_batch(split, target, users)).float(), latent) > 0).numpy()]
