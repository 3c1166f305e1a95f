"""Each latent's effect on item scores: exact through item embeddings, by finite difference elsewhere, and per
attribute value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.data.split import Catalog
from recprobe.models import build_model
from recprobe.sae import SAEConfig, TopKSAE
from recprobe.steering.effects import MIN_ITEMS, LatentEffects, attribute_effects


class Hidden(torch.nn.Module):
    """The same model without its item embeddings: effects must come through score()."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.name, self.max_history, self.n_items, self.d_model = (
            inner, inner.name, inner.max_history, inner.n_items, inner.d_model)

    def represent(self, batch):
        return self.inner.represent(batch)

    def score(self, reps, batch):
        return self.inner.score(reps, batch)

    def item_embeddings(self):
        return None


@pytest.mark.parametrize("model", ["bprmf", "sasrec"])
def test_the_finite_difference_through_score_equals_the_decoder_row_through_item_embeddings(split, model):
    target = build_model(model, split, d=8).eval()
    sae = TopKSAE(SAEConfig(d_in=8, scale=2, k=3)).eval()
    exact, measured = LatentEffects(target, sae, split), LatentEffects(Hidden(target), sae, split)
    assert exact.exact and not measured.exact and "finite difference" in measured.method
    for latent in (0, 7, 15):
        expected = target.item_embeddings().detach() @ sae.W_dec[latent].detach()
        torch.testing.assert_close(exact.items(latent), expected)
        torch.testing.assert_close(measured.items(latent), expected, rtol=1e-4, atol=1e-5)
    found = exact.summary(3)
    raised, lowered = [e for _, e in found["raised"]], [e for _, e in found["lowered"]]
    assert raised == sorted(raised, reverse=True) and lowered == sorted(lowered)
    assert raised[0] == pytest.approx(float(exact.items(3).max())) and lowered[0] == pytest.approx(float(exact.items(3).min()))


def test_attribute_effects_are_each_values_mean_against_the_mean_of_all_items():
    n = 2 * MIN_ITEMS + 1
    genres = [["Horror"]] * MIN_ITEMS + [["Comedy"]] * MIN_ITEMS + [["Drama"]]  # Drama: one item, too few
    catalog = Catalog(titles=[str(i) for i in range(n)], attributes=[{"genre": g} for g in genres])
    effect = np.array([2.0] * MIN_ITEMS + [-1.0] * MIN_ITEMS + [10.0])
    overall = effect.mean()  # (2 MIN_ITEMS - MIN_ITEMS + 10) / n
    assert attribute_effects(effect, catalog) == [("genre: Horror", pytest.approx(2.0 - overall), MIN_ITEMS),
                                                  ("genre: Comedy", pytest.approx(-1.0 - overall), MIN_ITEMS)]
