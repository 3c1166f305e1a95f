"""TopK encoding and decoding with a sparse backward: the one dense cost of a training step is the encoder matmul.

Autograd through ``relu(x @ W_enc + b_enc).topk(k)`` would scatter the gradient of the k picked values into a
dense [B, n_latents] matrix and run a second dense matmul for ``W_enc``'s gradient. Only B * k entries of that
matrix are non-zero, so the backward here touches just the picked columns: B * k * d_in work instead of
B * n_latents * d_in. The AuxK selection (the top ``k_aux`` dead latents) rides along in the same forward, so
the dense pre-activations are computed once and never kept for the backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# On CPU, past this many bytes of [B * k, d] rows (a fresh allocation each step, past glibc's 32 MB mmap ceiling at
# recommender sizes) embedding_bag's sorted backward beats writing the rows: 10 against 34 ms at 4,096 x 32 x 128,
# where the rows win below it (0.5 against 2 ms at 4,096 x 8 x 64)
ROW_BYTES = 16 * 2**20


def few_rows(indices: torch.Tensor, vectors: torch.Tensor) -> bool:
    """Whether ``scatter_outer`` (rather than embedding_bag's backward) is the faster way to sum these rows."""
    return vectors.device.type != "cpu" or indices.numel() * vectors.shape[-1] * vectors.element_size() <= ROW_BYTES


def scatter_outer(n_rows: int, indices: torch.Tensor, weights: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """[n_rows, d] with row ``indices[b, j]`` accumulating ``weights[b, j] * vectors[b]``: the gradient of a
    weight matrix whose rows were gathered by ``indices``, without a dense [B, n_rows] matrix. Small: the B * k
    weighted rows and one index_add; large (``few_rows``): embedding_bag's own backward, which sorts the indices
    instead of writing the rows."""
    if few_rows(indices, vectors):
        rows = (weights.unsqueeze(2) * vectors.unsqueeze(1)).reshape(-1, vectors.shape[1])  # [B * k, d]
        out = torch.zeros(n_rows, vectors.shape[1], dtype=vectors.dtype, device=vectors.device)
        return out.index_add_(0, indices.flatten(), rows)
    with torch.enable_grad():
        table = vectors.new_zeros(n_rows, vectors.shape[1], requires_grad=True)
        gathered = F.embedding_bag(indices, table, per_sample_weights=weights.detach(), mode="sum")
        return torch.autograd.grad(gathered, table, vectors)[0]


class _TopKEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, centred, W_enc, b_enc, k: int, dead: torch.Tensor | None, k_aux: int, n_dead: int,
                out: torch.Tensor | None):
        pre = torch.addmm(b_enc, centred, W_enc, out=out)  # [B, n]; ReLU commutes with top-k: it runs on k values
        values, indices = pre.topk(k, dim=-1, sorted=False)
        if dead is None:
            aux_values, aux_indices = values.new_zeros(len(centred), 0), indices.new_zeros(len(centred), 0)
        else:  # top k_aux among the dead columns only, mapped back to latent ids
            # the dead ids in ascending order, as nonzero() gives them, without its wait on a GPU
            dead_ids = torch.sort((~dead).to(torch.uint8), stable=True).indices[:n_dead]
            aux_values, picked = pre.index_select(1, dead_ids).topk(k_aux, dim=-1, sorted=False)
            aux_indices = dead_ids[picked]
        values, aux_values = values.relu_(), aux_values.relu_()
        ctx.save_for_backward(centred, W_enc, torch.cat([indices, aux_indices], 1),
                              torch.cat([values, aux_values], 1) > 0)
        ctx.mark_non_differentiable(indices, aux_indices)
        return values, indices, aux_values, aux_indices

    @staticmethod
    def backward(ctx, grad_values, _grad_indices, grad_aux_values, _grad_aux_indices):
        centred, W_enc, indices, fired = ctx.saved_tensors
        grad = torch.cat([grad_values, grad_aux_values], 1) * fired  # ReLU: no gradient where the value is 0
        flat = indices.flatten()
        grad_centred = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_centred = F.embedding_bag(indices, W_enc.T, per_sample_weights=grad, mode="sum")
        if ctx.needs_input_grad[1]:
            grad_W_enc = scatter_outer(W_enc.shape[1], indices, grad, centred).T  # [n, d] rows: W_enc's own layout
        if ctx.needs_input_grad[2]:
            grad_b_enc = torch.zeros(W_enc.shape[1], dtype=grad.dtype, device=grad.device).index_add_(
                0, flat, grad.flatten())
        return grad_centred, grad_W_enc, grad_b_enc, None, None, None, None, None


class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, indices, W_dec):
        ctx.save_for_backward(values, indices, W_dec)
        return F.embedding_bag(indices, W_dec, per_sample_weights=values, mode="sum")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        values, indices, W_dec = ctx.saved_tensors
        grad_values = grad_W_dec = None
        if ctx.needs_input_grad[0]:  # embedding_bag's own per-value gradient, without its decoder gradient
            with torch.enable_grad():
                leaf = values.detach().requires_grad_()
                decoded = F.embedding_bag(indices, W_dec.detach(), per_sample_weights=leaf, mode="sum")
                (grad_values,) = torch.autograd.grad(decoded, leaf, grad_out)
        if ctx.needs_input_grad[2]:
            grad_W_dec = scatter_outer(W_dec.shape[0], indices, values, grad_out)
        return grad_values, None, grad_W_dec


def sparse_decode(values: torch.Tensor, indices: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """[B, d] sum of ``values[b, j] * W_dec[indices[b, j]]``, by embedding_bag. Where ``few_rows``, ``W_dec``'s
    gradient comes from ``scatter_outer`` instead of embedding_bag's own backward, which sorts the B * k indices
    first (at 4,096 x 8 x 64 on CPU that sort and its accumulation took 2.5 of a 20 ms training step)."""
    if few_rows(indices, W_dec):
        return _SparseDecode.apply(values, indices, W_dec)
    return F.embedding_bag(indices, W_dec, per_sample_weights=values, mode="sum")


def topk_encode(centred: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int,
                dead: torch.Tensor | None = None, k_aux: int = 0, n_dead: int | None = None,
                out: torch.Tensor | None = None):
    """(values, indices) of the k largest ``relu(centred @ W_enc + b_enc)`` per row, and (aux_values,
    aux_indices) of the ``k_aux`` largest among the ``dead`` latents (empty when ``dead`` is None); the values
    carry gradients to all three inputs. ``n_dead`` must be ``dead.sum()`` (counted here when not given). With
    ``out`` ([B, n_latents], reused from step to step) the dense pre-activations are written there: on CPU a
    fresh [B, n] block each step costs its page faults (70 of 180 ms at 4,096 x 16,384)."""
    if dead is not None:
        n_dead = int(dead.sum()) if n_dead is None else n_dead
        k_aux = min(k_aux, n_dead)
        dead = dead if k_aux > 0 else None
    return _TopKEncode.apply(centred, W_enc, b_enc, k, dead, k_aux, n_dead, out)
