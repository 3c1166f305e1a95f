"""The explain stage: why the run's model recommends an item to a user, and how faithful that is.

    <run>/explanations/fidelity.json   share of users whose top-m explaining latents beat m random ones
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recprobe.concepts.highlights import broad_reason
from recprobe.errors import ConfigError
from recprobe.io import write_json
from recprobe.runs.lock import run_lock
from recprobe.runs.run import Run, open_run
from recprobe.steering.explain import FIDELITY_M, explain, fidelity

FIDELITY = "fidelity.json"


def index_of(ids: np.ndarray, raw: str, kind: str) -> int:
    """The split's index of a raw user or item id, or an error naming it."""
    found = np.flatnonzero(ids == str(raw).strip())
    if not len(found):
        raise ConfigError(f"--{kind} {raw!r} is not one of this run's {kind}s (raw ids, e.g. {str(ids[0])!r} ... {str(ids[-1])!r})")
    return int(found[0])


def explain_user(run: Run | str | Path, user: str, item: str | None = None) -> dict[str, Any]:
    """The latents behind ``item`` (raw id; default: the user's top recommendation) for ``user`` (raw id), with
    the run's concept descriptions where it has them."""
    run = open_run(run)
    split = run.split
    found = explain(run.target, run.sae(), split, index_of(split.user_ids, user, "user"),
                    None if item is None else index_of(split.item_ids, item, "item"))
    descriptions = {r["latent"]: r.get("description") for r in run.concepts()}
    share = run.cases().firing_share(run.sae().n_latents)
    offsets, seen = split.exclusions("test")
    in_history = found.item in seen[offsets[found.user]:offsets[found.user + 1]]
    return {"user": str(split.user_ids[found.user]), "item": str(split.item_ids[found.item]),
            "title": split.catalog.titles[found.item], "rank": found.rank, "in_history": bool(in_history),
            "latents": [{**entry, "description": descriptions.get(entry["latent"]),
                         "broad": broad_reason(float(share[entry["latent"]]))} for entry in found.latents]}


def fidelity_run(run: Run | str | Path, *, m: int = FIDELITY_M, seed: int = 0) -> dict[str, Any]:
    """``recprobe.steering.explain.fidelity`` over the run's test users, written to ``explanations/fidelity.json``."""
    if m < 1:
        raise ConfigError(f"--m must be at least 1 (latents ablated), got {m}")
    run = open_run(run)
    sae = run.sae()
    if 2 * m > sae.k:
        raise ConfigError(f"--m {m}: the control ablates {m} active latents besides the top {m}, so a user needs {2 * m} "
                          f"and this SAE fires at most k = {sae.k}; give --m {sae.k // 2} or less")
    result = {**fidelity(run.target, sae, run.split, m=m, seed=seed), "seed": seed}
    with run_lock(run.root, "explain"):
        write_json(run.layout.explanations / FIDELITY, {**result, "made_from": run.cases_made_from()})
    return result
