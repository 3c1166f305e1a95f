"""Cases and concepts as Hugging Face ``datasets`` tables (Parquet), to browse, share or push beside the SAE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recprobe.concepts.cases import CaseSet
from recprobe.concepts.texts import case_items
from recprobe.data.split import Catalog
from recprobe.io import atomic_write


def export_tables(cases: CaseSet, records: list[dict[str, Any]], catalog: Catalog, folder: str | Path) -> dict[str, Path]:
    """Write ``cases.parquet`` (one row per case: user, item titles, predicted title, latents and values) and
    ``concepts.parquet`` (one row per interpreted latent) into ``folder``."""
    import datasets
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    folder = Path(folder)
    case_rows = {
        "user": cases.users.tolist(),
        "history": [[catalog.describe(i) for i in case_items(cases, r)[:-1]] for r in range(len(cases))],
        "predicted": [catalog.describe(int(i)) for i in cases.predicted],
        "latents": cases.indices.tolist(),
        "values": cases.values.tolist(),
    }
    keys = ("latent", "status", "n_active", "description", "confidence", "balanced_accuracy", "auroc",
            "baseline_confidence", "tp", "fn", "fp", "tn")
    concept_rows = {key: [r.get(key) for r in records] for key in keys}
    concept_rows["record"] = [json.dumps(r) for r in records]  # everything else, losslessly
    written = {}
    bars = is_progress_bar_enabled()
    disable_progress_bar()  # two small tables: a progress bar would only clutter the output
    try:
        for name, rows in (("cases", case_rows), ("concepts", concept_rows)):
            path = folder / f"{name}.parquet"
            atomic_write(path, lambda p, rows=rows: datasets.Dataset.from_dict(rows).to_parquet(str(p)))
            written[name] = path
    finally:
        if bars:
            enable_progress_bar()
    return written
