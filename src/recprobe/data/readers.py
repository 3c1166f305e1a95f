"""Readers for the file formats recprobe accepts. Each returns a plain DataFrame of raw interactions
(``user``, ``item`` as categorical columns of string ids; ``time`` and optional ``rating`` as floats) or item
metadata, and raises DataFormatError naming the file and the problem when the content is not what the format
requires. Interaction files are parsed ``CHUNK_ROWS`` rows at a time and their ids kept as codes, so reading
20M interactions holds one chunk's strings, not 40M of them."""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from recprobe.data.lines import first_mismatch
from recprobe.errors import DataFormatError

ItemMeta = dict[str, tuple[str, dict[str, list[str]]]]  # raw item id -> (title, attributes)
CHUNK_ROWS = 1_000_000  # interaction rows parsed at a time


def _numeric(frame: pd.DataFrame, column: str, path: Path, *, integer: bool = False) -> pd.Series:
    """The column as finite numbers; text, empty cells, NaN and infinities are refused with their row."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))  # empty cells, text, nan and +-inf all fail
    if integer:
        bad |= ~bad & (values.to_numpy(dtype=float) != np.floor(values.to_numpy(dtype=float)))
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{path}: column {column!r} must be {'an integer' if integer else 'a finite number'}, "
            f"found {frame[column].iloc[position]!r} on data row {frame.index[position] + 1}; fix or remove that row"
        )
    return values


INTEGRAL_FLOAT = r"^([+-]?\d+)\.0*$"  # "12.0" -> "12"


def normalize_ids(values: pd.Series) -> pd.Series:
    """Raw ids as every reader gives them: surrounding spaces stripped, and integers written as floats
    (``1.0``) read as the integer (``1``), so one user or item never counts twice."""
    ids = values.astype(str).str.strip()
    return ids.str.replace(INTEGRAL_FLOAT, r"\1", regex=True)


def normalize_id(value: object) -> str:
    """``normalize_ids`` for one id."""
    return re.sub(INTEGRAL_FLOAT, r"\1", str(value).strip())


def _require(frame: pd.DataFrame, columns: list[str], path: Path, expected: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {missing}; found {list(frame.columns)}. Expected {expected}"
        )


def _read_table(path: Path, sep: str, **kwargs) -> pd.DataFrame:
    return pd.concat(list(_read_chunks(path, sep, **kwargs)))


def _read_chunks(path: Path, sep: str, **kwargs) -> Iterator[pd.DataFrame]:
    """The table's rows as strings, ``CHUNK_ROWS`` at a time (an empty table: one empty chunk), each chunk indexed
    by its data rows' numbers from 0."""
    try:
        with pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], chunksize=CHUNK_ROWS,
                         **kwargs) as chunks:
            rows = 0
            for chunk in chunks:  # a row longer than the header makes its first field the index: numbers replace it
                chunk.index = pd.RangeIndex(rows, rows + len(chunk))
                rows += len(chunk)
                yield chunk
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataFormatError(f"{path}: cannot be parsed ({e}); check the separator and encoding") from e


def _interactions(user: pd.Series, item: pd.Series, **numbers: pd.Series) -> pd.DataFrame:
    """One chunk of interactions: normalised ids as categoricals, and the numeric columns."""
    return pd.DataFrame({"user": normalize_ids(user).astype("category"), "item": normalize_ids(item).astype("category"),
                         **numbers})


def _joined(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks of interactions as one frame: the ids' categories united, the rows numbered from 0."""
    return pd.DataFrame({c: union_categoricals([chunk[c] for chunk in chunks]) if c in ("user", "item")
                         else np.concatenate([chunk[c].to_numpy() for chunk in chunks]) for c in chunks[0].columns})


# ---- RecBole atomic files (.inter, .item) ----

ATOMIC_INTER = "a RecBole atomic .inter file: tab-separated, header 'user_id:token item_id:token [rating:float] timestamp:float'"


def _atomic_frame(path: Path) -> pd.DataFrame:
    return pd.concat(list(_atomic_chunks(path)))


def _atomic_chunks(path: Path) -> Iterator[pd.DataFrame]:
    _check_fields(path)
    for chunk in _read_chunks(path, "\t", quoting=3):
        chunk.columns = [str(c).split(":", 1)[0] for c in chunk.columns]
        yield chunk


def atomic_columns(path: Path) -> list[str]:
    """The column names of an atomic file's header, without their types."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [c.split(":", 1)[0] for c in f.readline().rstrip("\r\n").split("\t")]


def _check_fields(path: Path) -> None:
    """Every line of a tab-separated atomic file has the header's number of fields: a tab or a line break
    inside a field (a title, say) would shift every later column, so it is refused with its line."""
    found = first_mismatch(path)
    if found is not None:
        number, fields, header = found
        raise DataFormatError(
            f"{path}: line {number} has {fields} tab-separated fields, the header has {header}; "
            "a tab or a line break inside a field (a title?) splits it: remove it from that field")


def read_atomic_inter(path: Path) -> pd.DataFrame:
    chunks = []
    for frame in _atomic_chunks(path):
        _require(frame, ["user_id", "item_id", "timestamp"], path, ATOMIC_INTER)
        if frame[["user_id", "item_id"]].isna().any().any():
            raise DataFormatError(f"{path}: empty user_id or item_id on some rows; every row needs both")
        numbers = {"time": _numeric(frame, "timestamp", path)}
        if "rating" in frame.columns:
            numbers["rating"] = _numeric(frame, "rating", path)
        chunks.append(_interactions(frame["user_id"], frame["item_id"], **numbers))
    return _joined(chunks)


TITLE_COLUMNS = ("movie_title", "title", "name")


def title_column(columns: list[str]) -> str | None:
    """The column an .item file's titles come from: ``movie_title``, ``title`` or ``name``, else the first
    column whose name ends in ``_title`` or ``_name`` (``track_name``, ``artist_name``), else None."""
    exact = next((c for c in TITLE_COLUMNS if c in columns), None)
    return exact or next((c for c in columns if c.endswith(("_title", "_name"))), None)


def read_atomic_item(path: Path) -> ItemMeta:
    """Title from ``title_column`` (plus `` (release_year)`` unless it ends with it); every other column becomes an
    attribute (``token_seq`` columns split on spaces; ``class`` is called ``genre``)."""
    frame = _atomic_frame(path)
    _require(frame, ["item_id"], path, "a RecBole atomic .item file with an 'item_id:token' column")
    title_col = title_column([c for c in frame.columns if c != "item_id"])
    with open(path, encoding="utf-8") as f:
        types = dict(h.split(":", 1) if ":" in h else (h, "token") for h in f.readline().rstrip("\n").split("\t"))
    attr_cols = [c for c in frame.columns if c not in ("item_id", title_col)]
    ids = frame["item_id"].map(normalize_id)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        rows = (ids == repeated.iloc[0]).to_numpy().nonzero()[0] + 2  # file lines: the header is line 1
        others = repeated.nunique() - 1
        raise DataFormatError(f"{path} lists item {repeated.iloc[0]!r} more than once (lines {', '.join(map(str, rows))})"
                              f"{f', and {others} other items too' if others else ''}; keep one row per item")
    meta: ItemMeta = {}
    for r in frame.to_dict("records"):
        title = str(r[title_col]) if title_col and isinstance(r[title_col], str) else f"item {r['item_id']}"
        year = r.get("release_year")
        if isinstance(year, str) and not title.endswith(f"({year})"):
            title = f"{title} ({year})"
        attrs = {}
        for c in attr_cols:
            value = r[c]
            if isinstance(value, str):
                parts = value.split(" ") if types.get(c, "token").endswith("seq") else [value]
                attrs["genre" if c == "class" else c] = [p for p in parts if p]
        meta[normalize_id(r["item_id"])] = (title, attrs)
    return meta


UserMeta = dict[str, dict[str, str]]  # raw user id -> attribute -> value


def read_atomic_user(path: Path) -> UserMeta:
    """A RecBole ``.user`` file: every column besides ``user_id`` is an attribute (``gender``, ``age``...)."""
    frame = _atomic_frame(path)
    _require(frame, ["user_id"], path, "a RecBole atomic .user file with a 'user_id:token' column")
    columns = [c for c in frame.columns if c != "user_id"]
    return {normalize_id(r["user_id"]): {c: str(r[c]) for c in columns if isinstance(r[c], str)}
            for r in frame.to_dict("records")}


MOVIELENS_USER_FIELDS = ("gender", "age", "occupation", "zip_code")


def read_movielens_users(path: Path) -> UserMeta:
    """MovieLens-1M ``users.dat``: UserID::Gender::Age::Occupation::Zip-code (age and occupation as codes,
    explained in the dataset's README)."""
    return {normalize_id(parts[0]): dict(zip(MOVIELENS_USER_FIELDS, parts[1:], strict=True))
            for parts in _dat_rows(path, "UserID::Gender::Age::Occupation::Zip-code")}


def _dat_rows(path: Path, layout: str) -> Iterator[list[str]]:
    """The ``::``-separated fields of each non-empty line of a GroupLens ``.dat`` file, refused with the line's
    number where their count is not the ``layout``'s."""
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("::")
            if len(parts) != layout.count("::") + 1:
                raise DataFormatError(f"{path}: line {n} should be '{layout}', got {line.strip()!r}")
            yield parts


# ---- ReChorus CSV files (Amazon Grocery) ----

RECHORUS = "ReChorus files: header 'user_id item_id time' with integer ids (tab- or comma-separated)"


def read_rechorus(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8", errors="replace") as f:  # only to sniff the separator
        header = f.readline()
    chunks = []
    for frame in _read_chunks(path, "\t" if "\t" in header else ","):
        _require(frame, ["user_id", "item_id", "time"], path, RECHORUS)
        for c in ("user_id", "item_id"):
            _numeric(frame, c, path, integer=True)
        chunks.append(_interactions(frame["user_id"], frame["item_id"], time=_numeric(frame, "time", path)))
    return _joined(chunks)


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
        meta[normalize_id(item)] = (title, attrs)
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
        frame[c] = normalize_ids(frame[c])
    frame["rating"] = _numeric(frame, "rating", path)
    frame["time"] = _numeric(frame, "time", path)
    return frame[["user", "item", "time", "rating"]]


def read_movielens_movies(path: Path) -> ItemMeta:
    return {parts[0]: (parts[1], {"genre": [g for g in parts[2].split("|") if g]})
            for parts in _dat_rows(path, "MovieID::Title::Genres")}
