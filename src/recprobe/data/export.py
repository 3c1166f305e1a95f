"""Export a Split to RecBole atomic benchmark files so a peer trains on exactly the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recprobe.data.split import Split
from recprobe.errors import ConfigError
from recprobe.io import atomic_write_text

BENCHMARK_PARTS = ("train", "valid", "test")  # RecBole's benchmark_filename


def export_recbole(split: Split, out_dir: str | Path, name: str | None = None) -> Path:
    """Write ``<out>/<name>/<name>.{train,valid,test}.inter`` for RecBole's ``benchmark_filename:
    [train, valid, test]``, ``<name>.inter`` with all of them (for RecBole's sequential datasets, which
    split by themselves: ``eval_args.split: {LS: valid_and_test}, order: TO`` gives the same split), and
    ``<name>.item`` with the titles and attributes (``item_lines``); ``name`` defaults to the split's. Reading the
    folder back (``load_dataset``) gives the same split and catalog. Returns the folder.

    Note: RecBole replaces a dataset named like one of its bundled examples (``ml-100k``) by its own
    copy; export under another name (``recprobe-ml-100k``) to make it read these files."""
    name = split.name if name is None else name
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise ConfigError(f"--name {name!r}: a dataset name is one folder name inside --out, without / or ..; "
                          "e.g. --name recprobe-mydata")
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    # Held-out rows get times after every train row of their user so RecBole's order matches ours.
    last = np.full(split.n_users, -np.inf)
    np.maximum.at(last, split.train_users, split.train_times)
    parts = zip(BENCHMARK_PARTS, [(split.train_users, split.train_items, split.train_times),
                                  (np.arange(split.n_users), split.dev_items, last + 1),
                                  (np.arange(split.n_users), split.test_items, last + 2)], strict=True)
    texts = {}
    for part, (users, items, times) in parts:
        rows = (f"{split.user_ids[u]}\t{split.item_ids[i]}\t{t:.0f}\n" for u, i, t in zip(users, items, times, strict=True))
        texts[part] = "".join(rows)
        atomic_write_text(folder / f"{name}.{part}.inter", header + texts[part])
    atomic_write_text(folder / f"{name}.inter", header + "".join(texts.values()))
    atomic_write_text(folder / f"{name}.item", "".join(item_lines(split)))
    return folder


def item_lines(split: Split) -> list[str]:
    """The ``.item`` file: the title, then one column per attribute, ``token`` where every item has at most one
    value (kept whole) and ``token_seq`` otherwise (values joined by spaces, a space inside a value written as _)."""
    catalog = split.catalog
    names = sorted({name for attributes in catalog.attributes for name in attributes})
    several = {name: any(len(a.get(name, ())) > 1 for a in catalog.attributes) for name in names}
    header = ["item_id:token", "title:token_seq", *(f"{_plain(n)}:{'token_seq' if several[n] else 'token'}" for n in names)]
    lines = ["\t".join(header) + "\n"]
    for raw, title, attributes in zip(split.item_ids, catalog.titles, catalog.attributes, strict=True):
        values = [" ".join(_plain(v).replace(" ", "_") if several[n] else _plain(v) for v in attributes.get(n, ()))
                  for n in names]
        lines.append("\t".join([str(raw), _plain(title), *values]) + "\n")
    return lines


def _plain(text: str) -> str:
    """A field of a tab-separated line: no tab, no line break."""
    return " ".join(str(text).replace("\t", " ").splitlines())


def recbole_settings(folder: str | Path) -> dict[str, Any]:
    """The RecBole config entries that make RecBole read an export (``export_recbole``'s folder) as recprobe's
    split: its dataset name and folder, the timestamp column, and a leave-one-out by time that holds out the
    same dev and test items. Add the model's own settings (``epochs``, ``train_neg_sample_args`` ...)."""
    folder = Path(folder)
    return {"dataset": folder.name, "data_path": str(folder.parent),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"}}
