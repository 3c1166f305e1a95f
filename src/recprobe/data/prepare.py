"""From raw interactions to a Split: positive threshold, iterative k-core, leave-one-out by time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recprobe.data.readers import ItemMeta
from recprobe.data.split import Catalog, Split
from recprobe.errors import EmptySplitError


def keep_positives(frame: pd.DataFrame, min_rating: float | None) -> pd.DataFrame:
    """Keep interactions rated at least ``min_rating`` (all of them when None or unrated)."""
    if min_rating is None or "rating" not in frame.columns:
        return frame
    return frame[frame["rating"] >= min_rating]


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
        raise ValueError(f"core must be >= 3 so every user keeps a train, a dev and a test item, got {core}")
    n_raw = len(frame)
    frame = k_core(keep_positives(frame.reset_index(drop=True), min_rating), core)
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
    notes = [f"positives: rating >= {min_rating}", f"{core}-core", "leave-one-out by time"]
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
