"""Edits that must do something, measured against the unedited model: splicing an exact SAE changes nothing,
a trained one changes the scores; steering a latent moves its item by the size asked; de-biasing lowers the
popularity of the top 10. The target is the Oracle (tests/targets.py), whose scores are its representation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.batches import phase_batches
from recprobe.concepts.cases import record_cases
from recprobe.runs.align import align
from recprobe.sae import SAEConfig, TopKSAE
from recprobe.sae.faithfulness import ranking
from recprobe.steering.debias import top10_report
from recprobe.steering.edit import LatentEdit, steered
from recprobe.steering.steer import steering_effect
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
    edited = oracle.score(steered(sae, reps, [LatentEdit(item, scale=10.0)]), batch)
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
    from recprobe.steering.debias import popularity_latents

    sae = exact_sae(oracle.d_model)
    cases = record_cases(oracle, sae, split)
    ranked = popularity_latents(cases, split.item_popularity(), sae.n_latents)
    niche = [latent for latent, rho in ranked if rho < 0]
    assert niche
    before = top10_report(oracle, sae, split, [])
    after = top10_report(oracle, sae, split, [LatentEdit(j, scale=3.0) for j in niche])
    assert after["mean_popularity@10"] < before["mean_popularity@10"]
    assert after["HR@10"] == before["HR@10"] == 1.0  # the Oracle's test items stay on top


class MeanOf(torch.nn.Module):
    """An "SAE" whose reconstruction is a fixed vector: splicing it is mean ablation."""

    def __init__(self, mean):
        super().__init__()
        self.mean = mean

    def reconstruct(self, x):
        return self.mean.expand_as(x).clone()


def test_splice_effects_run_from_mean_ablation_to_the_original(split, oracle):
    from recprobe.sae.faithfulness import splice_effects

    mean = oracle.represent(all_users(split, oracle)).float().mean(0)
    exact = splice_effects(oracle, exact_sae(split.n_items), split, mean)
    assert exact["NDCG@10_recovered"] == pytest.approx(1.0) and exact["loss_recovered"] == pytest.approx(1.0)
    assert exact["top10_overlap"] == 1.0 and exact["NDCG@10_spliced"] == exact["NDCG@10_original"]
    ablated = splice_effects(oracle, MeanOf(mean), split, mean)
    assert ablated["NDCG@10_recovered"] == 0.0 and ablated["loss_recovered"] == 0.0
    assert ablated["NDCG@10_original"] > 0.9 > ablated["NDCG@10_mean"]  # the Oracle ranks its test items first
    assert ablated["top10_overlap"] < 0.5


def test_splice_loss_is_the_full_softmax_cross_entropy_of_the_held_out_item(split, oracle):
    from recprobe.ranking.metrics import seen_items
    from recprobe.sae.faithfulness import splice_effects

    mean = torch.zeros(split.n_items)
    found = splice_effects(oracle, exact_sae(split.n_items), split, mean)
    scores = oracle.score(oracle.represent(all_users(split, oracle)), None).double()
    seen_items(*split.exclusions("test"), np.arange(split.n_users)).hide(scores)
    by_hand = np.mean([float(torch.logsumexp(scores[u], 0) - scores[u, split.test_items[u]]) for u in range(split.n_users)])
    assert found["loss_original"] == pytest.approx(by_hand, rel=1e-5)
    assert found["loss_mean"] == pytest.approx(np.log(split.n_items - np.diff(split.train_offsets) - 1).mean(), rel=1e-5)  # uniform


def test_a_small_score_budget_scores_fewer_users_at_once_and_changes_no_ranking_stage(split, oracle, monkeypatch):
    """With room for 3 users' scores at a time, splicing, steering and the ranking check give what they gave
    with whole batches (the same ranks; sums of losses to float rounding), and no batch scored holds more than 3."""
    from recprobe.sae.faithfulness import splice_effects
    from recprobe.testing import ranking_check

    sae = exact_sae(oracle.d_model)
    lossy = TopKSAE(SAEConfig(d_in=oracle.d_model, scale=1, k=1)).eval()
    mean = torch.zeros(oracle.d_model)

    def measured():
        return (splice_effects(oracle, lossy, split, mean), ranking_check(oracle, split),
                steering_effect(oracle, sae, split, 0, np.arange(split.n_items) < 3))

    whole = measured()
    widths = []
    score = oracle.score
    monkeypatch.setattr(oracle, "score", lambda reps, batch: (widths.append(len(reps)), score(reps, batch))[1])
    monkeypatch.setattr("recprobe.ranking.metrics.SCORE_ENTRIES", 3 * split.n_items)
    spliced, check, steering = measured()
    assert spliced == pytest.approx(whole[0], rel=1e-6)  # the losses are summed in other groups
    assert steering == whole[2]
    assert (check.hr, check.shifted) == (whole[1].hr, whole[1].shifted)
    assert check.random_hr == pytest.approx(whole[1].random_hr, rel=1e-12)
    assert widths and max(widths) == 3
