"""Highlights skip latents that fire on most users, and latents whose decoder raises other items than their
concept's, saying why."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from recprobe.concepts.cases import CaseSet
from recprobe.concepts.highlights import Highlights
from recprobe.data.split import Catalog
from recprobe.runs.align import align
from recprobe.sae import SAEConfig, TopKSAE
from recprobe.steering.effects import LatentEffects
from tests.targets import Oracle


def test_a_widespread_latent_and_one_whose_decoder_disagrees_are_skipped_with_their_reasons(split):
    genre = ["A" if item < 10 else "B" for item in range(split.n_items)]  # items 0-9 are genre A
    split = replace(split, catalog=Catalog([f"film {i}" for i in range(split.n_items)], [{"genre": [g]} for g in genre]))
    oracle = align(Oracle(split), split)  # item embeddings = identity: a latent's effect on item i is W_dec[j, i]
    sae = TopKSAE(SAEConfig(d_in=split.n_items, n_latents=3, scale=None, k=2))
    with torch.no_grad():
        sae.W_dec.zero_()
        sae.W_dec[1, :10] = 1.0  # latent 1 raises the genre A items: its concept
        sae.W_dec[2, 10:] = 1.0  # latent 2 fires on genre A histories but raises genre B items
    n = split.n_users
    users = np.arange(n)
    history = np.where(users[:, None] < 12, np.arange(9)[None, :], 10 + (users[:, None] + np.arange(9)[None, :]) % 20)
    values = np.zeros((n, 2), dtype=np.float32)
    indices = np.zeros((n, 2), dtype=np.int64)
    values[:, 0] = 1.0  # latent 0: every user
    indices[:6, 1], values[:6, 1] = 1, 2.0  # latent 1: users 0-5
    indices[6:12, 1], values[6:12, 1] = 2, 2.0  # latent 2: users 6-11
    cases = CaseSet(users, history, np.full(n, 9), values, indices)
    highlights = Highlights(cases, split.catalog, LatentEffects(oracle, sae, split))
    records = [{"latent": j, "status": "ok", "confidence": c, "auroc": 1.0, "n_active": 1, "description": f"latent {j}"}
               for j, c in ((0, 1.0), (1, 0.9), (2, 0.95))]
    chosen, skipped = highlights.pick(records, 3)
    assert [r["latent"] for r in chosen] == [1]
    assert [s["latent"] for s in skipped] == [0, 2]
    assert skipped[0]["reason"].startswith("fires on 100.0% of the cases (more than 20%")
    assert skipped[1]["reason"] == ("0 of the 20 items its decoder raises most carry genre: A (0.0%), no more than "
                                    "the catalog's 33.3%: its description is not what it does")
