"""Edits that must do something, measured against the unedited model: splicing an exact SAE changes nothing,
a trained one changes the scores; steering a latent moves its item by the size asked; de-biasing lowers the
popularity of the top 10. The target is the Oracle (tests/targets.py), whose scores are its representation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.batches import phase_batches
from recprobe.concepts.cases import record_cases
from recprobe.debias import top10_report
from recprobe.evaluate import ranking
from recprobe.runs.align import align
from recprobe.sae import SAEConfig, TopKSAE
from recprobe.steer import Edit, steered, steering_effect
from tests.targets import Oracle


def exact_sae(d: int) -> TopKSAE:
    """An SAE that reconstructs every vector exactly: latent i reads +x_i, latent d + i reads -x_i (at most d fire)."""
    sae = TopKSAE(SAEConfig(d_in=d, n_latents=2 * d, scale=None, k=d))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


@pytest.fixture
def oracle(split):
    """In the split's own item order, so representation dimension i is item i's score."""
    return align(Oracle(split), split)


def all_users(split, target):
    return phase_batches(split, "test", target.max_history)(np.arange(split.n_users))


def test_splicing_an_exact_sae_changes_nothing_and_a_lossy_one_changes_the_scores(split, oracle):
    batch = all_users(split, oracle)
    reps = oracle.represent(batch)
    exact = exact_sae(oracle.d_model)
    torch.testing.assert_close(oracle.score(exact.reconstruct(reps), batch), oracle.predict(batch))
    assert ranking(oracle, split, "test", sae=exact) == ranking(oracle, split, "test")
    lossy = TopKSAE(SAEConfig(d_in=oracle.d_model, scale=1, k=1)).eval()  # random init, one latent per user
    moved = (oracle.score(lossy.reconstruct(reps), batch) - oracle.predict(batch)).abs().mean()
    assert moved > 0.1 * oracle.predict(batch).abs().mean()


def test_steering_a_latent_moves_its_item_by_the_size_asked(split, oracle):
    sae = exact_sae(oracle.d_model)
    batch = all_users(split, oracle)
    reps = oracle.represent(batch)
    item = int(np.bincount(split.test_items).argmax())  # the test item of the most users
    firing = reps[:, item] > 0
    edited = oracle.score(steered(sae, reps, [Edit(item, scale=10.0)]), batch)
    original = oracle.predict(batch)
    torch.testing.assert_close(edited[firing, item], 10 * original[firing, item])  # x10 where it fires
    torch.testing.assert_close(edited[:, np.arange(split.n_items) != item], original[:, np.arange(split.n_items) != item])
    concept = np.zeros(split.n_items, dtype=bool)
    concept[item] = True
    effect = {row["scale"]: row for row in steering_effect(oracle, sae, split, item, concept, (-10.0, 1.0, 10.0))["scales"]}
    assert effect[-10.0]["hit@10"] == 0.0 < effect[1.0]["hit@10"] < effect[10.0]["hit@10"]
    assert effect[1.0]["HR@10"] > effect[-10.0]["HR@10"]  # pushed out, the test item of its holders is lost


def test_a_latent_that_fires_on_nobody_has_no_effect_to_report(split, oracle):
    sae = exact_sae(oracle.d_model)
    with torch.no_grad():
        sae.b_enc[0] = -1e6  # latent 0 never fires
    effect = steering_effect(oracle, sae, split, 0, np.ones(split.n_items, dtype=bool), (1.0, 10.0))
    assert effect["n_active"] == 0 and all(row["hit@10"] is None and row["HR@10"] is None for row in effect["scales"])


def test_boosting_the_niche_latents_lowers_the_popularity_of_the_top_10(split, oracle):
    from recprobe.debias import popularity_latents

    sae = exact_sae(oracle.d_model)
    cases = record_cases(oracle, sae, split)
    ranked = popularity_latents(cases, split.item_popularity(), sae.n_latents)
    niche = [latent for latent, rho in ranked if rho < 0]
    assert niche
    before = top10_report(oracle, sae, split, [])
    after = top10_report(oracle, sae, split, [Edit(j, scale=3.0) for j in niche])
    assert after["mean_popularity@10"] < before["mean_popularity@10"]
    assert after["HR@10"] == before["HR@10"] == 1.0  # the Oracle's test items stay on top
