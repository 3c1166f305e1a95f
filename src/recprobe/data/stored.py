"""A split kept in a run folder (``<run>/split/``), so no stage after ``fit``/``probe`` reads the raw dataset again.

    <folder>/split.json       name, notes, origin, fingerprint, the user attributes' names, format
    <folder>/<array>.npy      user_ids, item_ids, train_users, train_items, train_times, dev_items, test_items,
                              user-<name>.npy per user attribute (memory-mapped when read)
    <folder>/catalog.json     each item's title and attributes

Reading checks every file is there, the arrays' shapes agree, and the split's fingerprint equals the recorded one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recprobe.data.split import Catalog, Split
from recprobe.errors import RunFolderError
from recprobe.io import read_json, write_folder, write_json
from recprobe.schemas import StoredCatalog, read_checked

FOLDER = "split"  # its name inside a run folder
FORMAT = 1
META, CATALOG = "split.json", "catalog.json"
ARRAYS = ("user_ids", "item_ids", "train_users", "train_items", "train_times", "dev_items", "test_items")


def write_split(split: Split, folder: str | Path) -> Path:
    """Write ``split`` into ``folder`` in one atomic step (an older one is replaced only once this one is whole)."""
    def write(staging: Path) -> None:
        for name in ARRAYS:
            np.save(staging / f"{name}.npy", _plain(getattr(split, name)))
        for name, values in split.user_attributes.items():
            np.save(staging / f"user-{name}.npy", _plain(values))
        write_json(staging / CATALOG, {"titles": split.catalog.titles, "attributes": split.catalog.attributes,
                                      "has_titles": split.catalog.has_titles})
        write_json(staging / META, {"format": FORMAT, "name": split.name, "notes": split.notes, "origin": split.origin,
                                    "fingerprint": split.fingerprint, "user_attributes": list(split.user_attributes)})

    return write_folder(folder, write)


def read_split(folder: str | Path, rebuild: str) -> Split:
    """The split stored in ``folder``; a missing, damaged or altered one is an error naming ``rebuild``, the
    command that writes it again."""
    folder = Path(folder)
    try:
        meta = read_json(folder / META)
        catalog = read_checked(folder / CATALOG, StoredCatalog, rebuild)
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        users = {name: np.load(folder / f"user-{name}.npy", mmap_mode="r") for name in meta["user_attributes"]}
        split = Split(meta["name"], **arrays, catalog=Catalog(catalog["titles"], catalog["attributes"],
                                                              catalog["has_titles"]),
                      notes=meta["notes"], origin=meta["origin"], user_attributes=users)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:  # EOFError: an emptied .npy file
        raise RunFolderError(f"{folder} does not hold a whole split ({type(e).__name__}: {' '.join(str(e).split())[:160]}); "
                             f"write it again with `{rebuild}`") from e
    shapes = {len(split.user_ids), len(split.dev_items), len(split.test_items), *map(len, users.values())}
    if len(shapes) != 1 or len({len(split.train_users), len(split.train_items), len(split.train_times)}) != 1 \
            or len(split.catalog) != split.n_items:
        raise RunFolderError(f"{folder} holds arrays of disagreeing lengths; write it again with `{rebuild}`")
    if split.fingerprint != meta["fingerprint"]:
        raise RunFolderError(f"{folder} has changed since it was written (fingerprint {split.fingerprint}, recorded "
                             f"{meta['fingerprint']}); write it again with `{rebuild}`")
    return split


def _plain(values: np.ndarray) -> np.ndarray:
    """Strings as fixed-width unicode (object arrays cannot be memory-mapped); numbers as they are."""
    values = np.asarray(values)
    return values.astype(str) if values.dtype == object else values
