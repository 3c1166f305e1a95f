"""Your own torch model as a ProbeTarget: forward hooks read the probing site's output and substitute
edited representations, so the model's code is never changed.

    target = recprobe.wrap(model, site="encoder.norm", n_items=1682, d_model=64,
                           forward=lambda model, batch: model(batch.history), position=LastValid())
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from pydantic import Field
from torch import nn

from recprobe.adapters.base import Adapter, AdapterOptions
from recprobe.errors import RecprobeError
from recprobe.hookspecs import hookimpl
from recprobe.target import Batch, ProbeTarget

Forward = Callable[[nn.Module, Batch], torch.Tensor]


class Position:
    """Where the representation sits in the site's output. This base takes the whole output as [B, d]."""

    def select(self, output: Any, batch: Batch) -> Any:
        return output

    def replace(self, output: Any, batch: Batch, reps: torch.Tensor) -> Any:
        return reps.to(output.dtype)


class LastValid(Position):
    """The last valid step of a [B, L, d] sequence output whose histories are padded at the end."""

    def select(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return output[torch.arange(len(output), device=output.device), batch.lengths - 1]

    def replace(self, output: torch.Tensor, batch: Batch, reps: torch.Tensor) -> torch.Tensor:
        edited = output.clone()
        edited[torch.arange(len(output), device=output.device), batch.lengths - 1] = reps.to(output.dtype)
        return edited


class _Captured(Exception):
    """Raised by the capture hook to skip the rest of the forward pass once the site has run."""


class TorchTarget:
    """A ProbeTarget over any ``nn.Module``; build it with ``recprobe.wrap``."""

    def __init__(
        self, model: nn.Module, site: str, *, d_model: int, forward: Forward, n_items: int | None = None,
        position: Position | None = None, max_history: int = 0,
        item_embeddings: Callable[[], torch.Tensor] | None = None, name: str | None = None,
        item_tokens: Sequence[Any] | None = None, user_tokens: Sequence[Any] | None = None,
        sequential: bool | None = None, reads_users: bool | None = None,
    ):
        self.model, self.site, self.forward = model, site, forward
        self.module = find_site(model, site)
        if n_items is None and item_tokens is None:
            raise RecprobeError("wrap needs n_items (the width of the model's scores) or item_tokens (one raw item id "
                                "per score column, None for a padding id)")
        self.n_items = len(item_tokens) if n_items is None else n_items
        self.d_model, self.max_history = d_model, max_history
        self.sequential = bool(max_history) if sequential is None else sequential
        self.reads_users = not max_history if reads_users is None else reads_users  # recprobe.target.reads_users
        self.item_tokens = None if item_tokens is None else list(item_tokens)
        self.user_tokens = None if user_tokens is None else list(user_tokens)
        self.position = position or Position()
        self._item_embeddings = item_embeddings
        self.name = name or f"torch:{type(model).__name__}.{site}"

    def represent(self, batch: Batch) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            captured.append(self.position.select(output, batch))
            raise _Captured

        handle = self.module.register_forward_hook(hook)
        try:
            self.forward(self.model, batch)
        except _Captured:
            pass
        finally:
            handle.remove()
        if not captured:
            raise RecprobeError(f"the site {self.site!r} did not run during forward; pick a module the forward pass uses")
        return self._checked(captured[0], batch, "the site's output")

    def score(self, reps: torch.Tensor, batch: Batch) -> torch.Tensor:
        reps = self._checked(reps, batch, "the representations given to score", given=True)

        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            return self.position.replace(output, batch, reps)

        handle = self.module.register_forward_hook(hook)
        try:
            return self.forward(self.model, batch)
        finally:
            handle.remove()

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.forward(self.model, batch)

    def item_embeddings(self) -> torch.Tensor | None:
        return None if self._item_embeddings is None else self._item_embeddings()

    def _checked(self, reps: Any, batch: Batch, what: str, *, given: bool = False) -> torch.Tensor:
        expected = (len(batch), self.d_model)
        if not isinstance(reps, torch.Tensor) or tuple(reps.shape) != expected:
            got = tuple(reps.shape) if isinstance(reps, torch.Tensor) else type(reps).__name__
            fix = ("give one d_model-wide row per user of the batch, as represent(batch) gives" if given else
                   "pick another site, fix d_model, or pass a position (e.g. LastValid()) that selects one vector per user")
            raise RecprobeError(f"{what} at site {self.site!r} is {got}, but a ProbeTarget needs [B, d_model] = "
                                f"{expected}; {fix}")
        return reps


def find_site(model: nn.Module, site: str) -> nn.Module:
    """The submodule at dotted path ``site``, or an error listing the paths that exist."""
    modules = dict(model.named_modules())
    if site in modules and site:
        return modules[site]
    paths = [p for p in modules if p]
    close = difflib.get_close_matches(site, paths, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise RecprobeError(
        f"{type(model).__name__} has no module {site!r}.{hint} Module paths: {', '.join(paths)}"
    )


def wrap(model: nn.Module, site: str, **options: Any) -> TorchTarget:
    """Open ``model`` at the submodule ``site`` (a dotted path from ``model.named_modules()``).

    Options: ``d_model``, ``forward(model, batch) -> [B, n_items]`` scores (how a Batch is fed), ``n_items``
    (the scores' width) or ``item_tokens``, and optionally ``position`` (which part of the site's output is the
    user representation), ``max_history``, ``sequential``, ``reads_users`` (a model that reads histories and
    user ids alike, as Caser does: its ``user_tokens`` are mapped and its user ids checked), ``item_embeddings``
    (a function returning [n_items, d], in the model's own ids: with ``item_tokens``, one row per token, padding
    included) and ``name``.

    History: a target with ``max_history`` 0 reads user ids only. One that reads histories is sequential by
    default (it gets the last ``max_history`` items, and every position is a case); ``sequential=False`` (a
    Mult-VAE, a model pooling the history) gets each user's whole history instead, never a window.

    Ids: with ``item_tokens``, ``item_tokens[j]`` is the dataset's raw id of the model's item j (its score
    column j and its input id j), ``None`` marking a padding id; the run translates histories into the model's
    ids and scores back into the split's, so ids from 1, a padding row at 0 or at the end, and a model of a
    subset of the catalog need no translation by hand. ``user_tokens`` likewise for user ids. Without them the
    model's ids must be the split's (0..n-1, histories padded at the end with n_items). Either way, feed the
    split's batches to ``run.target`` (the run's mapping over this target), not to the target itself.
    """
    return TorchTarget(model, site, **options)


class FactoryOptions(AdapterOptions):
    factory: str = Field(description="An importable function `package.module:function` that returns the ProbeTarget "
                                     "(e.g. the result of recprobe.wrap); the current folder is importable.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the factory, as JSON.")


def load_factory(options: FactoryOptions):
    """Import ``module:function`` and call it; the result must be a ProbeTarget."""
    module_name, sep, function_name = options.factory.partition(":")
    if not sep or not module_name or not function_name:
        raise RecprobeError(f"factory must be written module:function (e.g. mypkg.models:make_target), got {options.factory!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: a module beside the user is found
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RecprobeError(f"cannot import {module_name!r} for the factory {options.factory!r} ({e}); run from the "
                            "folder that holds it, or install its package") from e
    function = getattr(module, function_name, None)
    if not callable(function):
        raise RecprobeError(f"{module_name} has no function {function_name!r} (the factory {options.factory!r})")
    target = function(**options.kwargs)
    if not isinstance(target, ProbeTarget):
        raise RecprobeError(f"the factory {options.factory!r} returned a {type(target).__name__}, not a ProbeTarget; "
                            "return recprobe.wrap(model, site=...) or an object with the ProbeTarget members")
    return target


@hookimpl
def register_adapters(register) -> None:
    register(Adapter("torch", "your own torch model, from an importable factory (module:function) returning "
                     "recprobe.wrap(...)", FactoryOptions, load_factory))
