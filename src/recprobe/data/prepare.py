"""From raw interactions to a Split: positive threshold, iterative k-core, leave-one-out by time."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from recprobe.data.readers import ItemMeta
from recprobe.data.split import Catalog, Split
from recprobe.errors import ConfigError, EmptySplitError

MIN_RATING, CORE = 4, 5  # the filters' defaults: positives at rating 4 or more, a 5-core

RATING_SCALE = (0.0, 10.0)  # explicit ratings lie on a small scale; other "rating" columns count plays or clicks
RATING_LEVELS = 21  # at most this many distinct values (half stars on 0-10)


def explicit_ratings(ratings: pd.Series) -> bool:
    """Whether a rating column holds explicit ratings (a small scale such as 1-5) rather than counts."""
    low, high = RATING_SCALE
    return bool(ratings.between(low, high).all()) and ratings.nunique() <= RATING_LEVELS


def keep_positives(ratings: pd.Series | None, min_rating: float | None) -> tuple[np.ndarray | None, str, float | None]:
    """Which interactions are rated at least ``min_rating``, where the data has explicit ``ratings``; returns the
    mask (None: every row), a note saying what was done, and the threshold applied (None where none was)."""
    if min_rating is None:
        return None, "positives: every interaction (no rating threshold)", None
    if ratings is None:
        return None, "positives: every interaction (the data has no rating column)", None
    if not explicit_ratings(ratings):
        return None, (f"positives: every interaction (the rating column holds values up to {ratings.max():g} "
                      f"in {ratings.nunique()} levels, counts rather than ratings: --min-rating not applied)"), None
    return (ratings >= min_rating).to_numpy(), f"positives: rating >= {min_rating}", min_rating


class IdCodes(NamedTuple):
    """An id column as integer codes: ``ids[codes]`` is the column read as text, -1 where an id is missing."""

    codes: np.ndarray  # [n]
    ids: np.ndarray  # [m] the distinct ids as strings
    raw: np.ndarray  # [m] one raw value of each (what they are ordered by)


def id_codes(column: pd.Series) -> IdCodes:
    """An id column (strings, numbers or categorical) as codes. Every later step works on them, so a column of
    20M interactions costs 8 bytes a row, not a Python string each."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, distinct = column.cat.codes.to_numpy(), np.asarray(column.cat.categories)
    else:
        codes, distinct = pd.factorize(column.to_numpy())
    merged, ids = pd.factorize(np.asarray(distinct).astype(str))  # 1 and "1" are one id
    first = np.unique(merged, return_index=True)[1]
    return IdCodes(np.where(codes >= 0, merged[np.maximum(codes, 0)], -1), np.asarray(ids, dtype=object),
                   np.asarray(distinct, dtype=object)[first])


def first_of_repeats(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """[n] bool: each (user, item) pair's earliest interaction (ties: the first row), so a held-out item never
    reappears in the user's train items. ``users`` and ``items`` are codes."""
    order = np.argsort(times, kind="stable")
    pair = users[order].astype(np.int64) * (int(items.max(initial=0)) + 1) + items[order]
    _, first = np.unique(pair, return_index=True)
    keep = np.zeros(len(users), dtype=bool)
    keep[order[first]] = True
    return keep


def core_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """[n] bool: the interactions left after dropping users and items with fewer than ``k``, repeatedly, until
    none is left (``users`` and ``items`` are codes; a missing id, -1, is dropped)."""
    keep = (users >= 0) & (items >= 0)
    while True:
        user_counts = np.bincount(users[keep], minlength=int(users.max(initial=0)) + 1)
        item_counts = np.bincount(items[keep], minlength=int(items.max(initial=0)) + 1)
        dense = keep & (user_counts[users] >= k) & (item_counts[items] >= k)
        if (dense == keep).all():
            return keep
        keep = dense


def k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The rows of ``frame`` that ``core_mask`` keeps."""
    return frame[core_mask(id_codes(frame["user"]).codes, id_codes(frame["item"]).codes, k)]


def _id_order(ids: np.ndarray) -> np.ndarray:
    """The order of distinct ids: numeric when they are all integers, else string order."""
    try:
        return np.argsort(np.array([int(v) for v in ids]), kind="stable")
    except (ValueError, TypeError):
        return np.argsort(ids.astype(str), kind="stable")


def _sorted_ids(values: pd.Series) -> np.ndarray:
    """Unique raw ids, in numeric order when they are all integers, else in string order."""
    unique = pd.unique(values)
    return unique[_id_order(unique)].astype(str)


def ordered_index(codes: np.ndarray, column: IdCodes) -> tuple[np.ndarray, np.ndarray]:
    """The ``codes`` still present renumbered 0..m-1 in ``_id_order`` of their raw values: (index per row [n],
    their ids [m])."""
    present = np.unique(codes)
    order = _id_order(column.raw[present])
    lookup = np.full(len(column.ids), -1, dtype=np.int64)
    lookup[present[order]] = np.arange(len(present))
    return lookup[codes], column.ids[present[order]].astype(str)


def build_catalog(item_ids: np.ndarray, meta: ItemMeta, *, has_titles: bool = True) -> Catalog:
    """Titles and attributes by item index; ``has_titles`` is False when ``meta`` has none to give."""
    titles, attributes = [], []
    for raw in item_ids:
        title, attrs = meta.get(raw, (f"item {raw}", {}))
        titles.append(title)
        attributes.append(attrs)
    return Catalog(titles=titles, attributes=attributes, has_titles=has_titles and bool(meta))


def leave_one_out(
    frame: pd.DataFrame, name: str, meta: ItemMeta, *, min_rating: float | None = MIN_RATING, core: int = CORE
) -> Split:
    """Positives, k-core, then per user by time: last -> test, second-to-last -> dev, rest -> train.
    Ties in time keep the file's order."""
    if core < 3:
        raise ConfigError(f"--core must be at least 3 so every user keeps a train, a dev and a test item, got {core}")
    n_raw = len(frame)
    user_column, item_column = id_codes(frame["user"]), id_codes(frame["item"])
    user_codes, item_codes = user_column.codes, item_column.codes
    times = frame["time"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero((user_codes >= 0) & (item_codes >= 0))  # a row without a user or item id is dropped
    missing = n_raw - len(rows)
    rows = rows[first_of_repeats(user_codes[rows], item_codes[rows], times[rows])]
    repeats = n_raw - missing - len(rows)
    ratings = frame["rating"].iloc[rows].reset_index(drop=True) if "rating" in frame.columns else None
    positive, positives, applied = keep_positives(ratings, min_rating)
    if positive is not None:
        rows = rows[positive]
    rows = rows[core_mask(user_codes[rows], item_codes[rows], core)]
    if not len(rows):
        raise EmptySplitError(
            f"{name}: no interaction is left after keeping ratings >= {min_rating} and the {core}-core "
            f"filter ({n_raw} before); lower --min-rating or --core, or check the rating column"
        )
    users, user_ids = ordered_index(user_codes[rows], user_column)
    items, item_ids = ordered_index(item_codes[rows], item_column)
    times = times[rows]
    order = np.lexsort((np.arange(len(rows)), times, users))
    users, items, times = users[order], items[order], times[order]
    last = np.flatnonzero(np.r_[users[1:] != users[:-1], True])  # last row of each user
    held = np.zeros(len(users), dtype=bool)
    held[last] = held[last - 1] = True
    notes = [positives, f"{core}-core", "leave-one-out by time"]
    if repeats:
        notes.insert(0, f"{repeats:,} repeated (user, item) interactions dropped, the earliest of each kept")
    if missing:
        notes.insert(0, f"{missing:,} interactions without a user or item id dropped")
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
