"""A kit for adapter authors: ``check_probe_target(target, batch)`` checks every rule a ProbeTarget must
keep and reports all the broken ones at once (in the spirit of scikit-learn's ``check_estimator``)."""

from __future__ import annotations

import torch

from recprobe.errors import RecprobeError
from recprobe.target import Batch, ProbeTarget


class ProbeTargetCheckError(RecprobeError, AssertionError):
    """A ProbeTarget broke one or more of the rules; the message lists each."""


def _shape(x: object) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


@torch.no_grad()
def check_probe_target(target: ProbeTarget, batch: Batch, *, atol: float = 1e-5) -> None:
    """Raise ProbeTargetCheckError unless ``target`` keeps the ProbeTarget rules on ``batch``:
    attributes present; ``represent`` gives a finite float [B, d_model] and is deterministic; ``score``
    gives [B, n_items]; ``score(represent(b), b)`` equals ``predict(b)`` within ``atol`` (probing changes
    nothing); an edited representation changes the scores; ``item_embeddings`` is None or [n_items, d]."""
    problems: list[str] = []
    missing = [a for a in ("name", "d_model", "n_items", "max_history", "represent", "score", "predict",
                           "item_embeddings") if not hasattr(target, a)]
    if missing:
        raise ProbeTargetCheckError(f"{type(target).__name__} lacks {', '.join(missing)} (see recprobe.target.ProbeTarget)")
    n = len(batch)
    reps = target.represent(batch)
    if not isinstance(reps, torch.Tensor) or tuple(reps.shape) != (n, target.d_model):
        raise ProbeTargetCheckError(f"represent(batch) must be [B, d_model] = {(n, target.d_model)}, got {_shape(reps)}")
    if not reps.is_floating_point():
        problems.append(f"represent(batch) must be a float tensor, got {reps.dtype}")
    if not torch.isfinite(reps).all():
        problems.append("represent(batch) holds NaN or inf values")
    if not torch.equal(reps, target.represent(batch)):
        problems.append("represent(batch) differs between two calls: put the model in eval mode (dropout) and avoid randomness")
    scores = target.score(reps, batch)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (n, target.n_items):
        problems.append(f"score(reps, batch) must be [B, n_items] = {(n, target.n_items)}, got {_shape(scores)}")
    else:
        own = target.predict(batch)
        if not isinstance(own, torch.Tensor) or own.shape != scores.shape:
            problems.append(f"predict(batch) must be [B, n_items] = {(n, target.n_items)}, got {_shape(own)}")
        else:
            gap = (scores - own).abs().max().item()
            if not gap <= atol:
                problems.append(
                    f"score(represent(b), b) differs from the model's own predict(b) by up to {gap:.3g} (> {atol}): "
                    "the probe changes the model, or score does not compute what the model computes"
                )
        noise = torch.randn(reps.shape, generator=torch.Generator().manual_seed(0)).to(reps)
        edited = target.score(reps + reps.abs().mean().clamp(min=1e-3) * noise, batch)
        if isinstance(edited, torch.Tensor) and torch.equal(edited, scores):
            problems.append("an edited representation leaves score() unchanged: score must use the reps it is given (caches?)")
    items = target.item_embeddings()
    if items is not None and (not isinstance(items, torch.Tensor) or items.ndim != 2 or len(items) != target.n_items):
        problems.append(f"item_embeddings() must be None or [n_items={target.n_items}, d], got {_shape(items)}")
    if problems:
        raise ProbeTargetCheckError(
            f"{target.name} breaks {len(problems)} ProbeTarget rule(s):\n" + "\n".join(f"  - {p}" for p in problems)
        )
