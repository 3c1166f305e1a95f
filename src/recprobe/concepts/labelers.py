"""The metadata describer (no LLM): what the latent's most activating cases have that their hard negatives lack.

Each case contributes the attribute values (``genre: Comedy``) and the titles of the items it shows. A feature's
enrichment is its weighted log-odds ratio with an informative Dirichlet prior (Monroe et al. 2008), between the
latent's describing cases and a background; the description names the few most enriched features.

The background is the describing cases' **hard negatives** when the cases' representations are given: for each
describing case, the nearest cases (in representation space, other users) where the latent is silent. A value
that every case of that neighbourhood carries (the release year of whatever was recent) then names nothing; what
sets the latent's cases apart from their neighbours does. Without representations, the background is every case.
A description another latent already took is extended with the next most enriched features until it is its own.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from recprobe.concepts.cases import CaseSet, LatentSample
from recprobe.concepts.texts import cases_items
from recprobe.data.split import Catalog

# 3: a latent whose cases have nothing that stands out is left undescribed, not scored; 2: contrasted with hard
# negatives, one latent per description; 1: against every case
METADATA_VERSION = 3
NOTHING_STANDS_OUT = "no feature stands out"  # the phrase of no enriched feature: a latent without a description
MAX_FEATURES = 3
EXTRA_FEATURES = 3  # added at most, one by one, to tell a description apart from another latent's
DESCRIBING_CASES = 50  # counts need more cases than N: up to this many activated ones, never verification ones
NEIGHBOURS = 3  # hard negatives per describing case
POOL = 8192  # silent cases searched for them (a seeded sample of all cases)
COUNT_BLOCK = 65_536  # cases whose items are counted at a time


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


def described_attribute(description: str | None) -> str | None:
    """The first attribute value a metadata description names (``genre: Drama, Comedy; ...`` -> ``genre:
    Drama``); None for a description that names none (titles only, or an LLM's free text)."""
    for part in (description or "").split("; "):
        name, sep, values = part.partition(": ")
        if sep and name != "items like" and not name.startswith('"') and values:
            return f"{name}: {values.split(', ')[0]}"
    return None


def log_odds(focus: Counter, background: Counter, prior_strength: float = 1000.0,
             prior: Counter | None = None) -> dict[str, float]:
    """z-scored weighted log-odds ratio of each ``focus`` feature against ``background`` (Monroe et al. 2008,
    eq. 22), with a Dirichlet prior proportional to the ``prior`` counts (default: the background's)."""
    prior = background if prior is None else prior
    n_focus, n_background, n_prior = sum(focus.values()), sum(background.values()), sum(prior.values())
    a0 = min(prior_strength, n_background)
    scores = {}
    for feature, y_focus in focus.items():
        y_background = background[feature]
        alpha = max(a0 * prior[feature] / max(n_prior, 1), 1e-3)
        rest_focus = max(n_focus + a0 - y_focus - alpha, 1e-3)  # > 0 even when one feature is everything
        rest_background = max(n_background + a0 - y_background - alpha, 1e-3)
        delta = np.log((y_focus + alpha) / rest_focus) - np.log((y_background + alpha) / rest_background)
        scores[feature] = float(delta / np.sqrt(1 / (y_focus + alpha) + 1 / (y_background + alpha)))
    return scores


class MetadataDescriber:
    """Describes a latent by the catalog features most enriched in its describing cases."""

    name = "metadata"
    case_items = staticmethod(cases_items)  # which items a block of cases contributes (a subclass may choose others)

    def __init__(self, cases: CaseSet, catalog: Catalog, reps: np.ndarray | None = None, seed: int = 0):
        self.cases, self.catalog, self.reps = cases, catalog, reps
        self._item_features: dict[int, set[str]] = {}  # grows with the catalog, not the cases
        uniform = cases.uniform_rows()  # every case, or the budget's uniform sample of them
        self.background = self.counts(uniform)  # summed a block of cases at a time: no per-case table is held
        self.pool = np.sort(uniform[np.random.default_rng(seed).permutation(len(uniform))[:POOL]])
        # the pool's columns, gathered once: each latent's search reads them, never every case
        self._pool_indices, self._pool_fires = cases.indices[self.pool], cases.values[self.pool] > 0
        self._pool_users = cases.users[self.pool]
        if reps is not None:
            self._pool_reps = reps[self.pool]
            self._pool_norms = (self._pool_reps ** 2).sum(1)
        self.taken: dict[str, frozenset] = {}  # description -> the users of the cases it was made from

    @property
    def contrastive(self) -> bool:
        return self.reps is not None

    def hard_negatives(self, latent: int, rows: list[int]) -> list[int]:
        """For each of ``rows``, its NEIGHBOURS nearest cases in the pool where ``latent`` is silent, of users
        other than the rows' (each case once)."""
        fired = ((self._pool_indices == latent) & self._pool_fires).any(1)
        silent = ~fired & ~np.isin(self._pool_users, self.cases.users[rows])
        n = min(NEIGHBOURS, int(silent.sum()))
        if not n or not rows:
            return []
        focus = self.reps[rows]
        distance = (focus ** 2).sum(1)[:, None] - 2 * focus @ self._pool_reps.T + self._pool_norms[None, :]
        distance[:, ~silent] = np.inf
        nearest = np.argpartition(distance, n - 1, axis=1)[:, :n]  # the n nearest, in no order: a set follows
        return sorted(set(self.pool[nearest.ravel()].tolist()))

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

    def counts(self, rows) -> Counter:
        """How many of the ``rows``' case items (``case_items``) carry each feature: each distinct item looked up
        once with its multiplicity, a block of cases at a time."""
        rows = np.asarray(rows, dtype=np.int64)
        per_item: Counter = Counter()
        for start in range(0, len(rows), COUNT_BLOCK):
            block = rows[start:start + COUNT_BLOCK]
            items, times = np.unique(self.case_items(self.cases, block), return_counts=True)
            per_item.update(dict(zip(items.tolist(), times.tolist(), strict=True)))
        total: Counter = Counter()
        for item, times in per_item.items():
            if item not in self._item_features:
                self._item_features[item] = item_features(self.catalog, item)
            total.update(dict.fromkeys(self._item_features[item], times))
        return total

    def enriched(self, rows: list[int], against: list[int] | None = None) -> list[tuple[str, float]]:
        """Features of ``rows`` by enrichment against the cases ``against`` (every case when None)."""
        background = self.background if against is None else self.counts(against)
        scores = log_odds(self.counts(rows), background, prior=self.background)
        return sorted(((f, s) for f, s in scores.items() if s > 0), key=lambda fs: (-fs[1], fs[0]))

    def describe(self, latent: int, rows: list[int]) -> str:
        """The description of ``rows`` against their hard negatives (against every case without
        representations), as ``phrase``."""
        return self.phrase(self.contrasted(latent, rows))

    def contrasted(self, latent: int, rows: list[int]) -> list[tuple[str, float]]:
        """``enriched`` against the rows' hard negatives (every case without representations, or none found)."""
        against = self.hard_negatives(latent, rows) if self.contrastive else None
        return self.enriched(rows, against or None)

    def describe_exclusive(self, latent: int, rows: list[int]) -> str:
        """``describe``, with features added while another latent, described from other users' cases, holds the
        same description; the result is then held for this latent."""
        ranked = self.contrasted(latent, rows)
        users = frozenset(self.cases.users[rows].tolist())
        for extra in range(EXTRA_FEATURES + 1):
            text = self.phrase(ranked, MAX_FEATURES + extra)
            if self.taken.get(text, users) == users:
                break
        self.taken.setdefault(text, users)
        return text

    def phrase(self, ranked: list[tuple[str, float]], size: int = MAX_FEATURES) -> str:
        """A short phrase from the top ``size`` enriched features, e.g. ``genre: Drama; items like "Boogie
        Nights (1997)"``. When only titles make the top, the most enriched attribute value joins them: a reader
        (and a verifier) learns what kind of items these are, not only which."""
        top = ranked[:size]
        if not top:
            return NOTHING_STANDS_OUT
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
