"""Import RecBole 1.2.1 on today's stack. Every shim it needs lives here and nowhere else:

- ``ray`` / ``ray.tune``: imported at module level by ``recbole.quick_start``; ray has no wheel for new
  Pythons and breaks on numpy 2. Stubbed (recprobe never uses RecBole's hyper-parameter search).
- ``torch.utils.tensorboard``: imported by ``recbole.utils``; stubbed when tensorboard is absent.
- numpy 2 removed ``np.float_``, ``np.complex_``, ``np.unicode_`` that RecBole's Config uses, and numpy 1.24
  ``np.float`` that its evaluator and data loader use: restored.
- torch >= 2.6 loads with ``weights_only=True`` by default, which cannot read the checkpoints RecBole's own
  Trainer writes (they pickle its Config): ``Trainer.evaluate(load_best_model=True)``, ``resume_checkpoint``
  and ``run_recbole``'s final test step fail. RecBole's trainer module gets a ``torch`` whose ``load`` defaults
  to ``weights_only=False``, as before torch 2.6, for the files RecBole's Trainer itself wrote;
  recprobe's own checkpoint loader still refuses untrusted files (``trust_checkpoint``).
- scipy >= 1.13 removed ``dok_matrix._update`` that the graph models (LightGCN, NGCF...) build their
  adjacency with: restored as a bulk update of the matrix's dict.

Known and left alone: pandas 3 ignores RecBole's ``df[field].fillna(..., inplace=True)``, so a feature file
with empty cells keeps NaN there; the interaction and item files recprobe exports have none.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import numpy as np

from recprobe.errors import RecprobeError

INSTALL = "pip install 'recprobe[recbole]' && pip install --no-deps recbole==1.2.1"


class _NoOpSummaryWriter:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _stub(name: str, **attrs: Any) -> None:
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        module.__recprobe_stub__ = True
        sys.modules[name] = module


class _TorchLoadingAsBefore(types.ModuleType):
    """``torch`` with ``load`` defaulting to ``weights_only=False`` (its default before torch 2.6)."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str) -> Any:
        import torch

        return getattr(torch, name)

    @staticmethod
    def load(*args: Any, **kwargs: Any) -> Any:
        import torch

        kwargs.setdefault("weights_only", False)
        return torch.load(*args, **kwargs)


def _load_checkpoints_as_before(module_name: str) -> None:
    module = importlib.import_module(module_name)
    if not isinstance(module.torch, _TorchLoadingAsBefore):
        module.torch = _TorchLoadingAsBefore()


def apply_shims() -> None:
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_), ("float", float)):
        if alias not in np.__dict__:
            setattr(np, alias, target)
    import scipy.sparse as sp

    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = lambda self, data: self._dict.update(data)
    try:
        importlib.import_module("ray.tune")
    except Exception:  # absent, or present and broken on numpy 2
        _stub("ray", tune=types.SimpleNamespace())
        sys.modules["ray"].tune = sys.modules.setdefault("ray.tune", types.ModuleType("ray.tune"))
    try:
        importlib.import_module("torch.utils.tensorboard")
    except ImportError:
        _stub("torch.utils.tensorboard", SummaryWriter=_NoOpSummaryWriter)


def import_recbole() -> types.ModuleType:
    """``recbole`` with the shims applied, or a RecprobeError saying how to install it."""
    apply_shims()
    try:
        recbole = importlib.import_module("recbole")
        _load_checkpoints_as_before("recbole.trainer.trainer")
        return recbole
    except ImportError as e:
        raise RecprobeError(f"RecBole is not installed ({e}); run `{INSTALL}`") from e
