"""Import RecBole 1.2.1 on today's stack. Every shim it needs lives here and nowhere else:

- ``ray`` / ``ray.tune``: imported at module level by ``recbole.quick_start``; ray has no wheel for new
  Pythons and breaks on numpy 2. Stubbed (recprobe never uses RecBole's hyper-parameter search).
- ``torch.utils.tensorboard``: imported by ``recbole.utils``; stubbed when tensorboard is absent.
- numpy 2 removed ``np.float_``, ``np.complex_``, ``np.unicode_`` that RecBole's Config uses: restored.
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


def apply_shims() -> None:
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, alias):
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
        return importlib.import_module("recbole")
    except ImportError as e:
        raise RecprobeError(f"RecBole is not installed ({e}); run `{INSTALL}`") from e
