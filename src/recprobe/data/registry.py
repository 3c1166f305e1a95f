"""Named datasets (``ml-100k``, ``ml-1m``, ``ml-20m``, ``grocery``, the Amazon categories) and where recprobe
looks for them.

Search order: the ``data_dir`` argument (``--data-dir``), ``$RECPROBE_DATA_DIR``, ``./data``; inside each,
any of the dataset's folder names; then the cache of fetched datasets (``recprobe.data.fetch``). ``ml-100k``
also comes from an installed ``recbole`` wheel. A dataset found nowhere is fetched when it can be
(``recprobe.data.sources``). A folder path instead of a name loads RecBole atomic files or ReChorus files found
in it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import recprobe.data.readers as readers
from recprobe.data.export import BENCHMARK_PARTS
from recprobe.data.fetch import fetch, fetched_folder
from recprobe.data.prepare import CORE, MIN_RATING, given_split, leave_one_out, with_user_attributes
from recprobe.data.sources import SOURCES
from recprobe.data.split import Split
from recprobe.errors import (
    ConfigError,
    DataFormatError,
    DatasetFetchError,
    DatasetNotFoundError,
    unknown_name,
)
from recprobe.settings import settings


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folders: tuple[str, ...]  # accepted folder names under a data directory
    required: tuple[str, ...]  # any one of these files marks the folder as this dataset
    load: Callable[[Path, str, float | None, int], Split]
    how_to_get: str


def _load_atomic(folder: Path, name: str, min_rating: float | None, core: int) -> Split:
    found = sorted(folder.glob("*.inter"))
    folders = [p for p in found if not p.is_file()]
    if folders:
        raise DataFormatError(f"{folders[0]} is a folder, not an .inter file; move it away or point --dataset at the "
                              "folder that holds the .inter file")
    whole = [p for p in found if all(p.with_suffix(f".{part}.inter") in found for part in BENCHMARK_PARTS)]
    if len(whole) == 1:  # an export (``export_recbole``): the whole file beside RecBole's benchmark files
        found = whole
    if len(found) > 1:
        raise DataFormatError(f"{folder} holds {len(found)} .inter files ({', '.join(p.name for p in found)}); keep one "
                              "dataset per folder (RecBole's benchmark files go in a folder of their own)")
    inter = found[0]
    item = inter.with_suffix(".item")
    meta = readers.read_atomic_item(item) if item.exists() else {}
    split = leave_one_out(readers.read_atomic_inter(inter), name, meta, min_rating=min_rating, core=core)
    if inter.with_suffix(".user").is_file():
        split = with_user_attributes(split, readers.read_atomic_user(inter.with_suffix(".user")))
    if item.exists() and readers.title_column(readers.atomic_columns(item)[1:]) is None:
        split = replace(split, catalog=replace(split.catalog, has_titles=False))
        split.notes.append(f"no title column in {item.name} (columns: {', '.join(readers.atomic_columns(item))}): items "
                           f"read as 'item N'; name the title column {' or '.join(readers.TITLE_COLUMNS)} (docs: Data)")
    return split


def _load_grocery(folder: Path, name: str, min_rating: float | None, core: int) -> Split:
    needed = [("train.csv",), ("dev_positives.csv", "dev.csv"), ("test_positives.csv", "test.csv")]
    missing = [" or ".join(names) for names in needed if not any((folder / n).is_file() for n in names)]
    if missing:
        raise DataFormatError(f"{folder} is a ReChorus dataset without {', '.join(missing)}; a ReChorus folder holds "
                              "train.csv, dev.csv and test.csv (leave-one-out, as ReChorus writes them)")
    if core != CORE or min_rating not in (None, MIN_RATING):  # the defaults: what the user did not set
        raise ConfigError(f"{folder} is split already (ReChorus), so it is loaded as given: --min-rating and --core "
                          f"filter only datasets recprobe splits itself; leave them out (got --min-rating {min_rating}, "
                          f"--core {core})")
    meta_path = folder / "item_meta.csv"
    meta = readers.read_rechorus_item_meta(meta_path) if meta_path.exists() else {}
    parts = [
        readers.read_rechorus(folder / f)
        for f in ("train.csv", _first(folder, "dev_positives.csv", "dev.csv"), _first(folder, "test_positives.csv", "test.csv"))
    ]
    return given_split(*parts, name=name, meta=meta)


def _load_movielens_1m(folder: Path, name: str, min_rating: float | None, core: int) -> Split:
    ratings = _first(folder, "ratings.dat", "ratings.dat.gz", "ratings_users0001-2999.dat.gz")
    frame = readers.read_movielens_ratings(folder / ratings)
    movies = folder / "movies.dat"
    meta = readers.read_movielens_movies(movies) if movies.exists() else {}
    split = leave_one_out(frame, name, meta, min_rating=min_rating, core=core)
    if (folder / "users.dat").is_file():
        split = with_user_attributes(split, readers.read_movielens_users(folder / "users.dat"))
    if ratings.startswith("ratings_users"):
        split.notes.append("partial ML-1M: users 1-2999 only (original ratings.dat lines); see SOURCE.md")
    return split


def _first(folder: Path, *names: str) -> str:
    return next((n for n in names if (folder / n).exists()), names[0])


FETCHED = "recprobe fetches it on first use (`recprobe datasets --fetch {name}` fetches it now)"

DATASETS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "ml-100k",
            ("movielens-100k", "ml-100k"),
            ("ml-100k.inter",),
            _load_atomic,
            "copy RecBole's ml-100k.inter and ml-100k.item there, or " + FETCHED.format(name="ml-100k"),
        ),
        DatasetSpec(
            "ml-1m",
            ("movielens-1m", "ml-1m"),
            ("ratings.dat", "ratings.dat.gz", "ratings_users0001-2999.dat.gz"),
            _load_movielens_1m,
            "unzip GroupLens' ml-1m.zip there (ratings.dat and movies.dat), or " + FETCHED.format(name="ml-1m"),
        ),
        DatasetSpec(
            "grocery",
            ("amazon-grocery-rechorus", "grocery", "Grocery_and_Gourmet_Food"),
            ("train.csv",),
            _load_grocery,
            "put ReChorus' Grocery_and_Gourmet_Food train.csv, dev.csv, test.csv and item_meta.csv there",
        ),
        *(DatasetSpec(name, (name,), (f"{name}.inter",), _load_atomic, FETCHED.format(name=name))
          for name in SOURCES if name not in ("ml-100k", "ml-1m")),
    )
}


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Where datasets are looked for, in order."""
    dirs = [Path(d) for d in (data_dir, settings().data_dir) if d]
    return [*dirs, Path("data")]


def _recbole_example(name: str) -> Path | None:
    spec = importlib.util.find_spec("recbole") if name == "ml-100k" else None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


def find_dataset(name: str, data_dir: str | Path | None = None) -> tuple[DatasetSpec, Path]:
    """The spec and folder of a named dataset, or DatasetNotFoundError saying where it looked."""
    if name not in DATASETS:
        raise unknown_name("dataset", name, list(DATASETS))
    spec = DATASETS[name]
    looked = [d / f for d in data_dirs(data_dir) for f in spec.folders]
    if name in SOURCES:
        looked.append(fetched_folder(name))
    recbole = _recbole_example(name)
    if recbole is not None:
        looked.append(recbole)
    for folder in looked:
        if any((folder / f).exists() for f in spec.required):
            return spec, folder
    raise DatasetNotFoundError(
        f"dataset {name!r} not found; looked in: {', '.join(str(p) for p in looked)}. "
        f"Fix: pass --data-dir DIR (or set RECPROBE_DATA_DIR=DIR) where DIR/{spec.folders[0]}/ holds "
        f"{' or '.join(spec.required)}; to get it, {spec.how_to_get}"
    )


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, min_rating: float | None = MIN_RATING, core: int = CORE,
    fetch_missing: bool = True, progress: bool = True,
) -> Split:
    """Load a named dataset (or a folder of RecBole atomic / ReChorus files) as a leave-one-out Split; a named
    dataset found nowhere is fetched first when it can be (and ``fetch_missing``).

    ``min_rating`` and ``core`` apply to datasets recprobe splits itself; ``grocery`` is loaded as given.
    """
    path = Path(name)
    if path.is_file():
        raise DatasetNotFoundError(
            f"{path} is a file; --dataset takes a dataset name ({', '.join(DATASETS)}) or a folder holding RecBole "
            f"atomic files (.inter, optional .item) or ReChorus CSVs: give its folder, {path.parent}")
    source = str(path.resolve()) if path.is_dir() else name
    if path.is_dir():
        if (path / "train.csv").exists():
            return _with_origin(_load_grocery(path, path.name, min_rating, core), source, core)
        if any(path.glob("*.inter")):
            return _with_origin(_load_atomic(path, path.name, min_rating, core), source, core)
        raise DatasetNotFoundError(
            f"{path} holds neither a RecBole .inter file nor ReChorus train.csv/dev.csv/test.csv; "
            f"point --dataset at such a folder or use a named dataset ({', '.join(DATASETS)})"
        )
    try:
        spec, folder = find_dataset(name, data_dir)
    except DatasetNotFoundError:
        if not (fetch_missing and name in SOURCES):
            raise
        spec = DATASETS[name]
        try:
            folder = fetch(name, progress=progress)
        except DatasetFetchError as e:
            raise DatasetFetchError(f"dataset {name!r} is not on disk and fetching it failed: {e}; or pass --data-dir "
                                    f"DIR where DIR/{spec.folders[0]}/ holds {' or '.join(spec.required)}") from None
    return _with_origin(spec.load(folder, name, min_rating, core), source, core)


def _with_origin(split: Split, source: str, core: int) -> Split:
    """The split with how ``load_dataset`` reads it again: its source, the rating threshold it applied (None where
    the data has no ratings to apply one to, or was split elsewhere) and the core."""
    return replace(split, origin={"source": source, "min_rating": split.origin.get("min_rating"), "core": core})
