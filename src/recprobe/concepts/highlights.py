"""Which confident concepts a summary may lead with, by one rule wherever latents are chosen (the report's top
concepts, Table 7, explanations). A latent that fires on a large share of the cases (of the users, with one case
per user) is a broad, bias-like direction, not a concept, and one whose concept items are not the items its
decoder direction raises is described by something other than what it does; both are skipped, with the reason
said. The concept items are those carrying the attribute value the latent's own description names first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recprobe.concepts.cases import CaseSet
from recprobe.concepts.interpret import most_confident
from recprobe.concepts.labelers import MetadataDescriber, described_attribute, items_with
from recprobe.data.split import Catalog
from recprobe.steering.effects import LatentEffects

MAX_SHARE = 0.2
DECODER_ITEMS = 20


def broad_reason(share: float) -> str | None:
    """Why a latent firing on ``share`` of the cases is too broad to lead with, or None: the one rule for broad
    latents, wherever latents are chosen or shown."""
    if share > MAX_SHARE:
        return f"fires on {share:.1%} of the cases (more than {MAX_SHARE:.0%}: a direction most users share)"
    return None


class Highlights:
    """Checks concepts against how widely their latent fires and what its decoder direction raises."""

    def __init__(self, cases: CaseSet, catalog: Catalog, effects: LatentEffects,
                 descriptions: dict[int, str | None] | None = None):
        self.catalog, self.effects = catalog, effects
        self.describer = MetadataDescriber(cases, catalog)
        self.share = cases.firing_share(effects.sae.n_latents)
        self.descriptions = descriptions or {}

    def concept_items(self, latent: int) -> tuple[str | None, np.ndarray]:
        """The attribute value the latent's description names first (else its most enriched one in its top
        cases) and the items carrying it."""
        feature = described_attribute(self.descriptions.get(latent))
        if feature is None or not items_with(self.catalog, feature).any():
            feature = self.describer.top_attribute(latent)
        mask = items_with(self.catalog, feature) if feature else np.zeros(len(self.catalog), dtype=bool)
        return feature, mask

    def broad(self, latent: int) -> str | None:
        return broad_reason(float(self.share[latent]))

    def skip_reason(self, latent: int) -> str | None:
        broad = self.broad(latent)
        if broad is not None:
            return broad
        feature, items = self.concept_items(latent)
        if feature is None or not items.any():
            return None
        among, overall = self.decoder_shares(latent, items)
        if among <= overall:
            raised = min(DECODER_ITEMS, len(items))
            return (f"{round(among * raised)} of the {raised} items its decoder raises most carry {feature} ({among:.1%}), "
                    f"no more than the catalog's {overall:.1%}: its description is not what it does")
        return None

    def decoder_shares(self, latent: int, items: np.ndarray) -> tuple[float, float]:
        """The share of the ``DECODER_ITEMS`` items the latent's decoder direction raises most that are among
        ``items`` ([n_items] bool), and the catalog's share (what a random direction's would be on average)."""
        raised = self.effects.items(latent).topk(min(DECODER_ITEMS, len(items))).indices.numpy()
        return float(items[raised].mean()), float(items.mean())

    def pick(self, records: list[dict[str, Any]], count: int, keep=lambda latent: True,
             also: Callable[[int], str | None] = lambda latent: None) -> tuple[list[dict], list[dict]]:
        """The ``count`` most confident concepts that pass (and ``keep``), and the ones skipped before them with
        their reasons (``also``: a caller's own reason to skip, or None)."""
        chosen, skipped = [], []
        for record in most_confident(records):
            if len(chosen) == count:
                break
            reason = self.skip_reason(record["latent"]) or also(record["latent"])
            if reason is not None:
                skipped.append({"latent": record["latent"], "description": record.get("description"), "reason": reason})
            elif keep(record["latent"]):
                chosen.append(record)
        return chosen, skipped
