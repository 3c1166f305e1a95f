"""Any RecBole model's user representation, read and edited inside the model's own scoring call.

Two ways, both running the model's own ``full_sort_predict`` (or, for a model without one, its ``predict`` on
every item), so an edited representation flows through whatever the model does after it:

- **final products** (the default): during the scoring call for B users over the W item columns, every matrix
  product whose output is [B, W] (``matmul``, ``mm``, ``@``, ``F.linear``) is the prediction layer, and its
  user-side operand [B, d] is the representation (several such products: their operands side by side). This is
  the sequence encoder's output for SASRec, BERT4Rec, Caser..., the decoder's input for Mult-VAE, RecVAE, CDAE.
- **site modules** (``site=a,b``): the outputs of named submodules, one row per user (or per user and item,
  when the model scores pairs), side by side; for models that score with an MLP over a user and an item
  embedding (NeuMF) or a distance (TransRec).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from recprobe.errors import RecprobeError

PRODUCTS = {torch.matmul, torch.mm, torch.Tensor.matmul, torch.Tensor.mm, torch.Tensor.__matmul__, F.linear}
MAX_PAIR_ROWS = 200_000  # (user, item) rows per call for a model that scores pairs


def _width(func: Callable, args: Sequence[Any]) -> int | None:
    """The output columns of a product of a 2-d left operand, or None for another shape."""
    if len(args) < 2 or not all(isinstance(a, torch.Tensor) for a in args[:2]) or args[0].ndim != 2:
        return None
    right = args[1]
    if func is F.linear:
        return right.shape[0] if right.ndim == 2 else None
    return right.shape[-1] if right.ndim == 2 else None


class FinalProducts(TorchFunctionMode):
    """Records (or, given ``edits``, replaces) the user-side operand of every product whose output is
    [rows, width] during one call."""

    def __init__(self, rows: int, width: int, edits: list[torch.Tensor] | None = None):
        super().__init__()
        self.rows, self.width, self.edits = rows, width, edits
        self.found: list[tuple[torch.Tensor, torch.Tensor, Callable]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in PRODUCTS and _width(func, args) == self.width and args[0].shape[0] == self.rows:
            if self.edits is not None:
                if len(self.found) >= len(self.edits):
                    raise RecprobeError("the model computed more final products than when its representation was read")
                args = (self.edits[len(self.found)].to(args[0].dtype), *args[1:])
            self.found.append((args[0], args[1], func))
        return func(*args, **kwargs)


class SiteOutputs:
    """Forward hooks on named submodules: record their outputs, or replace them with edited rows (each
    representation row repeated over the rows that belong to its user)."""

    def __init__(self, model: nn.Module, sites: Sequence[str]):
        modules = dict(model.named_modules())
        missing = [site for site in sites if site not in modules or not site]
        if missing:
            raise RecprobeError(f"{type(model).__name__} has no module {', '.join(map(repr, missing))}; its modules: "
                                f"{', '.join(name for name in modules if name)}")
        self.modules = [modules[site] for site in sites]
        self.sites = list(sites)

    def run(self, call: Callable[[], torch.Tensor], users: int, edits: list[torch.Tensor] | None = None):
        """(the call's result, each site's output with one row per user)."""
        found: list[torch.Tensor] = []

        def hook(index: int):
            def on_output(module, inputs, output):
                if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] % users:
                    raise RecprobeError(f"site {self.sites[index]!r} gives {tuple(getattr(output, 'shape', ()))}, not one "
                                        f"row per user (or per user and item); pick a module whose output is [B, d]")
                repeat = output.shape[0] // users
                found.append(output[::repeat])
                if edits is not None:
                    return edits[index].to(output.dtype).repeat_interleave(repeat, 0)
                return None
            return on_output

        handles = [module.register_forward_hook(hook(i)) for i, module in enumerate(self.modules)]
        try:
            result = call()
        finally:
            for handle in handles:
                handle.remove()
        if len(found) != len(self.modules):
            raise RecprobeError(f"sites {self.sites} ran {len(found)} times in one scoring call, not once each; pick "
                                "modules the scoring uses once")
        return result, found
