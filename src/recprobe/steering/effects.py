"""Each latent's effect on the output (direct logit attribution): how much one unit of the latent, added along
its decoder direction, changes each item's score; the items it raises and lowers most; and the same
aggregated per catalog attribute value.

Where the target's item embeddings live in the representation's space, the effect is the decoder row through
them, ``item_embedding . W_dec[j]`` (exact for a dot-product scorer). Otherwise it is measured through the
target's own ``score()`` by a finite difference, averaged over a sample of test users.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from recprobe.batches import phase_batches
from recprobe.data.split import Catalog, Split
from recprobe.steering.steer import decoder_scores
from recprobe.target import ProbeTarget

SAMPLE_USERS = 64  # the finite difference's users: enough to rank the items a latent raises
MEASURED = 64  # finite-difference effects kept (memory: this many x n_items floats)
TOP_ITEMS = 10
TOP_VALUES = 5
MIN_ITEMS = 5  # an attribute value carried by fewer items says more about those items than about the value


class LatentEffects:
    """Item effects of every latent of one SAE on one target; the finite difference's users scored once."""

    def __init__(self, target: ProbeTarget, sae, split: Split, users: int = SAMPLE_USERS):
        self.target, self.sae, self.catalog = target, sae, split.catalog
        self.exact = decoder_scores(target, sae, 0) is not None
        self._measured: OrderedDict[int, torch.Tensor] = OrderedDict()
        if not self.exact:
            sample = np.arange(min(users, split.n_users))
            self.batch = phase_batches(split, "test", target.max_history)(sample)
            self.reps = target.represent(self.batch).float()
            self.base = target.score(self.reps, self.batch).float()

    @property
    def method(self) -> str:
        return "item embeddings . decoder row" if self.exact else f"finite difference through score() over {len(self.reps)} users"

    @torch.no_grad()
    def items(self, latent: int) -> torch.Tensor:
        """[n_items] the change of each item's score per unit of the latent. A finite difference is kept for the
        last ``MEASURED`` latents asked, as a report asks for a latent's more than once."""
        if self.exact:
            return decoder_scores(self.target, self.sae, latent)
        if latent not in self._measured:
            moved = self.reps + self.sae.W_dec[latent].detach()
            self._measured[latent] = (self.target.score(moved, self.batch).float() - self.base).mean(0)
            while len(self._measured) > MEASURED:
                self._measured.popitem(last=False)
        self._measured.move_to_end(latent)
        return self._measured[latent]

    def summary(self, latent: int) -> dict[str, Any]:
        """The items the latent raises and lowers most, and the attribute values whose items it raises and lowers
        most on average (relative to the mean over all items)."""
        effect = self.items(latent)
        order = torch.argsort(effect, descending=True).tolist()
        values = attribute_effects(effect.numpy(), self.catalog)
        return {"method": self.method,
                "raised": [(item, float(effect[item])) for item in order[:TOP_ITEMS]],
                "lowered": [(item, float(effect[item])) for item in order[::-1][:TOP_ITEMS]],
                "raised_values": values[:TOP_VALUES], "lowered_values": values[::-1][:TOP_VALUES]}


def attribute_effects(effect: np.ndarray, catalog: Catalog) -> list[tuple[str, float, int]]:
    """(``name: value``, mean effect of its items minus the mean over all items, number of items), highest first,
    for values carried by at least ``MIN_ITEMS`` items."""
    members: dict[str, list[int]] = {}
    for item, attributes in enumerate(catalog.attributes):
        for name, values in attributes.items():
            for value in values:
                members.setdefault(f"{name}: {value}", []).append(item)
    overall = float(effect.mean())
    found = [(label, float(effect[items].mean()) - overall, len(items)) for label, items in members.items()
             if len(items) >= MIN_ITEMS]
    return sorted(found, key=lambda entry: -entry[1])
