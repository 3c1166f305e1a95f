"""Explanations of single recommendations: contributions are the score each latent carries, the top one is the
latent that put the item there, and ablating the explanation moves the item far more than a random control."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.batches import phase_batches
from recprobe.errors import ConfigError
from recprobe.runs import Run
from recprobe.runs.align import align
from recprobe.steering.explain import explain, fidelity, latent_contributions
from tests.targets import Oracle
from tests.test_steer_effects import exact_sae


@pytest.fixture
def oracle(split):
    return align(Oracle(split), split)


def test_contributions_are_activation_times_the_decoder_score_of_the_item(split, oracle):
    """For a dot-product scorer the ablation difference is exactly z_j * (W_dec[j] . item embedding)."""
    sae = exact_sae(oracle.d_model)
    batch = phase_batches(split, "test", 0)(np.arange(split.n_users))
    items = torch.from_numpy(split.test_items)
    values, indices, effects = latent_contributions(oracle, sae, batch, items)
    expected = values * (sae.W_dec[indices] @ oracle.item_embeddings().T).gather(2, items[:, None, None].expand(-1, values.shape[1], 1))[..., 0]
    torch.testing.assert_close(effects, torch.where(values > 0, expected, torch.zeros_like(expected)))


def test_the_top_explanation_is_the_latent_that_carries_the_item(split, oracle):
    sae = exact_sae(oracle.d_model)
    for user in range(5):
        found = explain(oracle, sae, split, user)
        assert found.item == split.test_items[user] and found.rank == 1  # the Oracle's top item is the test item
        assert found.latents[0]["latent"] == found.item  # latent i reads item i's score
        assert found.latents[0]["share"] > 0.5 and found.latents[0]["contribution"] > 4


def test_ablating_the_explanation_moves_the_item_more_than_a_random_control(split, oracle):
    sae = exact_sae(oracle.d_model)
    result = fidelity(oracle, sae, split, m=1)
    assert result["users"] > 0.9 * split.n_users and result["share_top_beats_random"] > 0.95
    assert result["mean_rank_drop_top"] > 5 * max(result["mean_rank_drop_random"], 0.1)


def test_explaining_a_run_by_raw_ids(split, tmp_path):
    from recprobe.runs.explain import explain_user, fidelity_run

    run = Run.create(tmp_path / "run", Oracle(split), split)
    run.capture(progress=False)
    run.train_sae(scale=2, k=4, epochs=3, progress=False)
    user = str(split.user_ids[3])
    found = explain_user(run, user)
    assert found["user"] == user and found["item"] == str(split.item_ids[split.test_items[3]]) and found["latents"]
    with pytest.raises(ConfigError, match="--user 'nobody' is not one of this run's users"):
        explain_user(run, "nobody")
    result = fidelity_run(run, m=1)
    assert (run.layout.explanations / "fidelity.json").is_file() and result["users"] > 0


class TwoLayer(torch.nn.Module):
    """A user's own model, opened with recprobe.wrap: its user vector is the output of ``tower``."""

    def __init__(self, n_users, n_items, d=6):
        super().__init__()
        torch.manual_seed(0)
        self.users = torch.nn.Embedding(n_users, d)
        self.tower = torch.nn.Linear(d, d)
        self.out = torch.nn.Linear(d, n_items)  # not a dot product with item embeddings: a bias and weights

    def forward(self, users):
        return self.out(self.tower(self.users(users)))


def test_a_wrapped_model_is_explained_by_the_same_finite_difference(split):
    import recprobe

    model = TwoLayer(split.n_users, split.n_items).eval()
    target = recprobe.wrap(model, site="tower", n_items=split.n_items, d_model=6, forward=lambda m, b: m(b.users))
    sae = exact_sae(6)
    found = explain(target, sae, split, 2)
    batch = phase_batches(split, "test", 0)([2])
    reps = target.represent(batch)
    top = found.latents[0]
    direction = sae.W_dec[top["latent"]]
    by_hand = target.score(reps, batch)[0, found.item] - target.score(reps - top["activation"] * direction, batch)[0, found.item]
    assert top["contribution"] == pytest.approx(float(by_hand), abs=1e-5) and top["contribution"] > 0
    assert [e["contribution"] for e in found.latents] == sorted((e["contribution"] for e in found.latents), reverse=True)
