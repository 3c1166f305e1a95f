"""The metadata describer (no LLM): what the latent's most activating cases have in common, against all cases.

Each case contributes the attribute values (``genre: Comedy``) and the titles of the items it shows. A feature's
enrichment is its weighted log-odds ratio with an informative Dirichlet prior (Monroe et al. 2008), between the
latent's describing cases and every case; the description names the few most enriched features.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from recprobe.concepts.cases import CaseSet, LatentSample
from recprobe.concepts.texts import case_items
from recprobe.data.split import Catalog

MAX_FEATURES = 3
DESCRIBING_CASES = 50  # counts need more cases than N: up to this many activated ones, never verification ones


def item_features(catalog: Catalog, item: int) -> set[str]:
    """Attribute values as ``name: value``, and the item itself as its quoted title where the catalog has
    titles (a placeholder such as ``item 4521`` names nothing a reader or a verifier could recognise)."""
    features = {f"{name}: {value}" for name, values in catalog.attributes[item].items() for value in values}
    return features | {f'"{catalog.titles[item]}"'} if catalog.has_titles else features


def is_title(feature: str) -> bool:
    """Features are quoted titles or ``name: value`` attribute values."""
    return feature.startswith('"')


def items_with(catalog: Catalog, feature: str) -> np.ndarray:
    """[n_items] bool: the items that carry ``feature`` (an attribute value or a quoted title)."""
    return np.array([feature in item_features(catalog, item) for item in range(len(catalog))])


def case_features(cases: CaseSet, row: int, catalog: Catalog) -> Counter:
    counts: Counter = Counter()
    for item in case_items(cases, row):
        counts.update(item_features(catalog, item))
    return counts


def log_odds(focus: Counter, background: Counter, prior_strength: float = 1000.0) -> dict[str, float]:
    """z-scored weighted log-odds ratio of each ``focus`` feature against ``background`` (Monroe et al. 2008,
    eq. 22), with a Dirichlet prior proportional to the background counts."""
    n_focus, n_background = sum(focus.values()), sum(background.values())
    a0 = min(prior_strength, n_background)
    scores = {}
    for feature, y_focus in focus.items():
        y_background = background[feature]
        alpha = max(a0 * y_background / n_background, 1e-3)
        rest_focus = max(n_focus + a0 - y_focus - alpha, 1e-3)  # > 0 even when one feature is everything
        rest_background = max(n_background + a0 - y_background - alpha, 1e-3)
        delta = np.log((y_focus + alpha) / rest_focus) - np.log((y_background + alpha) / rest_background)
        scores[feature] = float(delta / np.sqrt(1 / (y_focus + alpha) + 1 / (y_background + alpha)))
    return scores


class MetadataDescriber:
    """Describes a latent by the catalog features most enriched in its describing cases."""

    name = "metadata"

    def __init__(self, cases: CaseSet, catalog: Catalog):
        self.cases, self.catalog = cases, catalog
        self.background: Counter = Counter()
        self._features = [case_features(cases, row, catalog) for row in range(len(cases))]
        for counts in self._features:
            self.background.update(counts)

    def describing_rows(self, latent: int, sample: LatentSample) -> list[int]:
        """The latent's most activating cases, one per user, the verification cases' users excepted."""
        ranked = self.cases.strongest(latent)
        ranked = ranked[~np.isin(self.cases.users[ranked], self.cases.users[sample.verification])]
        return ranked[:DESCRIBING_CASES].tolist()

    def top_attribute(self, latent: int) -> str | None:
        """The attribute value (``genre: Horror``; titles aside) most enriched in the latent's most
        activating cases (all of them: nothing is held out here)."""
        rows = self.cases.strongest(latent)[:DESCRIBING_CASES].tolist()
        return next((feature for feature, _ in self.enriched(rows) if not is_title(feature)), None)

    def enriched(self, rows: list[int]) -> list[tuple[str, float]]:
        focus: Counter = Counter()
        for row in rows:
            focus.update(self._features[row])
        scores = log_odds(focus, self.background)
        return sorted(((f, s) for f, s in scores.items() if s > 0), key=lambda fs: (-fs[1], fs[0]))

    def describe(self, latent: int, rows: list[int]) -> str:
        """A short phrase from the top enriched features, e.g. ``genre: Drama; items like "Boogie Nights (1997)"``.
        When only titles make the top, the most enriched attribute value joins them: a reader (and a verifier)
        learns what kind of items these are, not only which."""
        ranked = self.enriched(rows)
        top = ranked[:MAX_FEATURES]
        if not top:
            return "no feature stands out"
        if all(is_title(feature) for feature, _ in top):
            top += [(feature, score) for feature, score in ranked if not is_title(feature)][:1]
        attributes: dict[str, list[str]] = {}
        titles = []
        for feature, _ in top:
            if is_title(feature):
                titles.append(feature)
            else:
                name, _, value = feature.partition(": ")
                attributes.setdefault(name, []).append(value)
        parts = [f"{name}: {', '.join(values)}" for name, values in attributes.items()]
        if titles:
            parts.append("items like " + ", ".join(titles))
        return "; ".join(parts)
