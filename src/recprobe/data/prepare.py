"""From raw interactions to a Split: positive threshold, iterative k-core, leave-one-out by time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from recprobe.data.readers import ItemMeta
from recprobe.data.split import Catalog, Split
from recprobe.errors import ConfigError, EmptySplitError

RATING_SCALE = (0.0, 10.0)  # explicit ratings lie on a small scale; other "rating" columns count plays or clicks
RATING_LEVELS = 21  # at most this many distinct values (half stars on 0-10)


def explicit_ratings(ratings: pd.Series) -> bool:
    """Whether a rating column holds explicit ratings (a small scale such as 1-5) rather than counts."""
    low, high = RATING_SCALE
    return bool(ratings.between(low, high).all()) and ratings.nunique() <= RATING_LEVELS


def keep_positives(frame: pd.DataFrame, min_rating: float | None) -> tuple[pd.DataFrame, str, float | None]:
    """Keep interactions rated at least ``min_rating`` where the data has explicit ratings; returns the rows
    kept, a note saying what was done, and the threshold applied (None where none was)."""
    if min_rating is None:
        return frame, "positives: every interaction (no rating threshold)", None
    if "rating" not in frame.columns:
        return frame, "positives: every interaction (the data has no rating column)", None
    if not explicit_ratings(frame["rating"]):
        return frame, (f"positives: every interaction (the rating column holds values up to {frame['rating'].max():g} "
                       f"in {frame['rating'].nunique()} levels, counts rather than ratings: --min-rating not applied)"), None
    return frame[frame["rating"] >= min_rating], f"positives: rating >= {min_rating}", min_rating


def drop_repeats(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep each (user, item) pair's earliest interaction, so a held-out item never reappears in the user's
    train items; returns the rows kept and how many repeats were dropped."""
    ordered = frame.sort_values("time", kind="stable")
    kept = ordered[~ordered.duplicated(["user", "item"], keep="first")].sort_index()
    return kept, len(frame) - len(kept)


def k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Drop users and items with fewer than ``k`` interactions, repeatedly, until none is left."""
    while True:
        users = frame["user"].map(frame["user"].value_counts())
        items = frame["item"].map(frame["item"].value_counts())
        keep = (users >= k) & (items >= k)
        if keep.all():
            return frame
        frame = frame[keep]


def _sorted_ids(values: pd.Series) -> np.ndarray:
    """Unique raw ids, in numeric order when they are all integers, else in string order."""
    unique = pd.unique(values)
    try:
        order = np.argsort(np.array([int(v) for v in unique]), kind="stable")
    except ValueError:
        order = np.argsort(unique.astype(str), kind="stable")
    return unique[order].astype(str)


def build_catalog(item_ids: np.ndarray, meta: ItemMeta, *, has_titles: bool = True) -> Catalog:
    """Titles and attributes by item index; ``has_titles`` is False when ``meta`` has none to give."""
    titles, attributes = [], []
    for raw in item_ids:
        title, attrs = meta.get(raw, (f"item {raw}", {}))
        titles.append(title)
        attributes.append(attrs)
    return Catalog(titles=titles, attributes=attributes, has_titles=has_titles and bool(meta))


def leave_one_out(
    frame: pd.DataFrame, name: str, meta: ItemMeta, *, min_rating: float | None = 4, core: int = 5
) -> Split:
    """Positives, k-core, then per user by time: last -> test, second-to-last -> dev, rest -> train.
    Ties in time keep the file's order."""
    if core < 3:
        raise ConfigError(f"--core must be at least 3 so every user keeps a train, a dev and a test item, got {core}")
    n_raw = len(frame)
    frame, repeats = drop_repeats(frame.reset_index(drop=True))
    frame, positives, applied = keep_positives(frame, min_rating)
    frame = k_core(frame, core)
    if frame.empty:
        raise EmptySplitError(
            f"{name}: no interaction is left after keeping ratings >= {min_rating} and the {core}-core "
            f"filter ({n_raw} before); lower --min-rating or --core, or check the rating column"
        )
    user_ids, item_ids = _sorted_ids(frame["user"]), _sorted_ids(frame["item"])
    users = pd.Index(user_ids).get_indexer(frame["user"].astype(str))
    items = pd.Index(item_ids).get_indexer(frame["item"].astype(str))
    times = frame["time"].to_numpy(dtype=np.float64)
    order = np.lexsort((np.arange(len(frame)), times, users))
    users, items, times = users[order], items[order], times[order]
    last = np.flatnonzero(np.r_[users[1:] != users[:-1], True])  # last row of each user
    held = np.zeros(len(users), dtype=bool)
    held[last] = held[last - 1] = True
    notes = [positives, f"{core}-core", "leave-one-out by time"]
    if repeats:
        notes.insert(0, f"{repeats:,} repeated (user, item) interactions dropped, the earliest of each kept")
    return Split(
        name=name,
        user_ids=user_ids,
        item_ids=item_ids,
        train_users=users[~held].astype(np.int64),
        train_items=items[~held].astype(np.int64),
        train_times=times[~held],
        dev_items=items[last - 1].astype(np.int64),
        test_items=items[last].astype(np.int64),
        catalog=build_catalog(item_ids, meta),
        notes=notes,
        origin={"min_rating": applied},  # load_dataset adds where the data came from
    )


def given_split(
    train: pd.DataFrame, dev: pd.DataFrame, test: pd.DataFrame, name: str, meta: ItemMeta
) -> Split:
    """A split made elsewhere (ReChorus): loaded as given, one dev and one test row per user."""
    for part, frame in (("dev", dev), ("test", test)):
        dup = frame["user"].duplicated()
        if dup.any():
            raise EmptySplitError(
                f"{name}: the {part} file has more than one row for user {frame['user'][dup].iloc[0]}; "
                "a leave-one-out split needs exactly one per user"
            )
    user_ids = _sorted_ids(pd.concat([train["user"], dev["user"], test["user"]]))
    item_pool = pd.concat([train["item"], dev["item"], test["item"], pd.Series(list(meta), dtype=str)])
    item_ids = _sorted_ids(item_pool)
    users, items = pd.Index(user_ids), pd.Index(item_ids)
    missing = set(user_ids) - set(dev["user"]) | set(user_ids) - set(test["user"])
    if missing:
        raise EmptySplitError(
            f"{name}: {len(missing)} user(s) lack a dev or test row (e.g. user {sorted(missing)[0]}); "
            "every user needs one of each"
        )
    u = users.get_indexer(train["user"])
    t = train["time"].to_numpy(dtype=np.float64)
    order = np.lexsort((np.arange(len(u)), t, u))

    def per_user(frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(len(user_ids), dtype=np.int64)
        out[users.get_indexer(frame["user"])] = items.get_indexer(frame["item"])
        return out

    return Split(
        name=name,
        user_ids=user_ids,
        item_ids=item_ids,
        train_users=u[order].astype(np.int64),
        train_items=items.get_indexer(train["item"])[order].astype(np.int64),
        train_times=t[order],
        dev_items=per_user(dev),
        test_items=per_user(test),
        catalog=build_catalog(item_ids, meta, has_titles=False),  # ReChorus item_meta has categories, no titles
        notes=["split as given (ReChorus leave-one-out)"],
    )


def with_user_attributes(split: Split, meta: dict[str, dict[str, str]]) -> Split:
    """The split with each user's attributes (gender, age...) from ``meta`` (raw id -> attribute -> value),
    as [n_users] string columns; users ``meta`` lacks get ""."""
    names = sorted({name for attrs in meta.values() for name in attrs})
    empty: dict[str, str] = {}
    columns = {name: np.array([meta.get(u, empty).get(name, "") for u in split.user_ids], dtype=object) for name in names}
    return replace(split, user_attributes=columns)
