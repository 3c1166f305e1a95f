"""Export a Split to RecBole atomic benchmark files so a peer trains on exactly the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recprobe.data.split import Split
from recprobe.io import atomic_write_text


def export_recbole(split: Split, out_dir: str | Path, name: str | None = None) -> Path:
    """Write ``<out>/<name>/<name>.{train,valid,test}.inter`` for RecBole's ``benchmark_filename:
    [train, valid, test]``, ``<name>.inter`` with all of them (for RecBole's sequential datasets, which
    split by themselves: ``eval_args.split: {LS: valid_and_test}, order: TO`` gives the same split), and
    ``<name>.item`` with the titles; ``name`` defaults to the split's. Returns the folder.

    Note: RecBole replaces a dataset named like one of its bundled examples (``ml-100k``) by its own
    copy; export under another name (``recprobe-ml-100k``) to make it read these files."""
    name = name or split.name
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    # Held-out rows get times after every train row of their user so RecBole's order matches ours.
    last = np.full(split.n_users, -np.inf)
    np.maximum.at(last, split.train_users, split.train_times)
    parts = {
        "train": (split.train_users, split.train_items, split.train_times),
        "valid": (np.arange(split.n_users), split.dev_items, last + 1),
        "test": (np.arange(split.n_users), split.test_items, last + 2),
    }
    texts = {}
    for part, (users, items, times) in parts.items():
        rows = (f"{split.user_ids[u]}\t{split.item_ids[i]}\t{t:.0f}\n" for u, i, t in zip(users, items, times, strict=True))
        texts[part] = "".join(rows)
        atomic_write_text(folder / f"{name}.{part}.inter", header + texts[part])
    atomic_write_text(folder / f"{name}.inter", header + "".join(texts.values()))
    lines = ["item_id:token\ttitle:token_seq\n"]
    lines += [f"{raw}\t{title.replace(chr(9), ' ')}\n" for raw, title in zip(split.item_ids, split.catalog.titles, strict=True)]
    atomic_write_text(folder / f"{name}.item", "".join(lines))
    return folder


def recbole_settings(folder: str | Path) -> dict[str, Any]:
    """The RecBole config entries that make RecBole read an export (``export_recbole``'s folder) as recprobe's
    split: its dataset name and folder, the timestamp column, and a leave-one-out by time that holds out the
    same dev and test items. Add the model's own settings (``epochs``, ``train_neg_sample_args`` ...)."""
    folder = Path(folder)
    return {"dataset": folder.name, "data_path": str(folder.parent),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"}}
