"""Readers for the file formats recprobe accepts. Each returns a plain DataFrame of raw interactions
(``user``, ``item`` as strings; ``time`` and optional ``rating`` as floats) or item metadata, and raises
DataFormatError naming the file and the problem when the content is not what the format requires."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from recprobe.errors import DataFormatError

ItemMeta = dict[str, tuple[str, dict[str, list[str]]]]  # raw item id -> (title, attributes)


def _numeric(frame: pd.DataFrame, column: str, path: Path, *, integer: bool = False) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna()  # empty cells and text both fail to parse
    if integer:
        bad |= values.notna() & (values != np.floor(values))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(
            f"{path}: column {column!r} must be {'an integer' if integer else 'numeric'}, "
            f"found {frame[column].iloc[row]!r} on data row {row + 1}; fix or remove that row"
        )
    return values


def _require(frame: pd.DataFrame, columns: list[str], path: Path, expected: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {missing}; found {list(frame.columns)}. Expected {expected}"
        )


def _read_table(path: Path, sep: str, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataFormatError(f"{path}: cannot be parsed ({e}); check the separator and encoding") from e


# ---- RecBole atomic files (.inter, .item) ----

ATOMIC_INTER = "a RecBole atomic .inter file: tab-separated, header 'user_id:token item_id:token [rating:float] timestamp:float'"


def _atomic_frame(path: Path) -> pd.DataFrame:
    frame = _read_table(path, "\t", quoting=3)
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    return frame


def read_atomic_inter(path: Path) -> pd.DataFrame:
    frame = _atomic_frame(path)
    _require(frame, ["user_id", "item_id", "timestamp"], path, ATOMIC_INTER)
    out = pd.DataFrame({"user": frame["user_id"], "item": frame["item_id"]})
    if out.isna().any().any():
        raise DataFormatError(f"{path}: empty user_id or item_id on some rows; every row needs both")
    out["time"] = _numeric(frame, "timestamp", path)
    if "rating" in frame.columns:
        out["rating"] = _numeric(frame, "rating", path)
    return out


def read_atomic_item(path: Path) -> ItemMeta:
    """Title from ``movie_title``/``title``/``name`` (plus `` (release_year)`` when given); every other
    column becomes an attribute (``token_seq`` columns split on spaces; ``class`` is called ``genre``)."""
    frame = _atomic_frame(path)
    _require(frame, ["item_id"], path, "a RecBole atomic .item file with an 'item_id:token' column")
    title_col = next((c for c in ("movie_title", "title", "name") if c in frame.columns), None)
    with open(path, encoding="utf-8") as f:
        types = dict(h.split(":", 1) if ":" in h else (h, "token") for h in f.readline().rstrip("\n").split("\t"))
    attr_cols = [c for c in frame.columns if c not in ("item_id", title_col)]
    meta: ItemMeta = {}
    for r in frame.to_dict("records"):
        title = str(r[title_col]) if title_col and isinstance(r[title_col], str) else f"item {r['item_id']}"
        if isinstance(r.get("release_year"), str):
            title = f"{title} ({r['release_year']})"
        attrs = {}
        for c in attr_cols:
            value = r[c]
            if isinstance(value, str):
                parts = value.split(" ") if types.get(c, "token").endswith("seq") else [value]
                attrs["genre" if c == "class" else c] = [p for p in parts if p]
        meta[str(r["item_id"])] = (title, attrs)
    return meta


# ---- ReChorus CSV files (Amazon Grocery) ----

RECHORUS = "ReChorus files: header 'user_id item_id time' with integer ids (tab- or comma-separated)"


def read_rechorus(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8", errors="replace") as f:  # only to sniff the separator
        header = f.readline()
    frame = _read_table(path, "\t" if "\t" in header else ",")
    _require(frame, ["user_id", "item_id", "time"], path, RECHORUS)
    for c in ("user_id", "item_id"):
        _numeric(frame, c, path, integer=True)
    return pd.DataFrame(
        {
            "user": frame["user_id"].str.strip(),
            "item": frame["item_id"].str.strip(),
            "time": _numeric(frame, "time", path),
        }
    )


def read_rechorus_item_meta(path: Path) -> ItemMeta:
    """ReChorus ``item_meta.csv``: ``i_category`` (0 = unknown) becomes the ``category`` attribute; there
    are no titles in the Grocery release, so the title names the category."""
    frame = _read_table(path, "\t")
    _require(frame, ["item_id"], path, "ReChorus item_meta.csv with an 'item_id' column")
    meta: ItemMeta = {}
    for item, category in zip(frame["item_id"], frame.get("i_category", pd.Series(["0"] * len(frame))), strict=True):
        has_category = isinstance(category, str) and category not in ("0", "")
        attrs = {"category": [f"category {category}"]} if has_category else {}
        title = f"Grocery item {item}" + (f" (category {category})" if has_category else "")
        meta[str(item).strip()] = (title, attrs)
    return meta


# ---- MovieLens .dat files (ML-1M) ----

MOVIELENS_RATINGS = "GroupLens ratings.dat lines 'UserID::MovieID::Rating::Timestamp'"


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="latin-1")
    return open(path, encoding="latin-1")


def read_movielens_ratings(path: Path) -> pd.DataFrame:
    with _open_text(path) as f:
        rows = [line.rstrip("\n").split("::") for line in f if line.strip()]
    if not rows:
        raise DataFormatError(f"{path}: no ratings; expected {MOVIELENS_RATINGS}")
    bad = next((i for i, r in enumerate(rows) if len(r) != 4), None)
    if bad is not None:
        raise DataFormatError(f"{path}: line {bad + 1} has {len(rows[bad])} fields, expected 4 ({MOVIELENS_RATINGS})")
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "time"])
    for c in ("user", "item"):
        _numeric(frame, c, path, integer=True)
    frame["rating"] = _numeric(frame, "rating", path)
    frame["time"] = _numeric(frame, "time", path)
    return frame[["user", "item", "time", "rating"]]


def read_movielens_movies(path: Path) -> ItemMeta:
    meta: ItemMeta = {}
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("::")
            if len(parts) != 3:
                raise DataFormatError(f"{path}: line {n} should be 'MovieID::Title::Genres', got {line.strip()!r}")
            meta[parts[0]] = (parts[1], {"genre": [g for g in parts[2].split("|") if g]})
    return meta
