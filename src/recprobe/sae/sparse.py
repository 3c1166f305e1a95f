"""TopK encoding and decoding with a sparse backward: the one dense cost of a training step is the encoder matmul.

Autograd through ``relu(x @ W_enc + b_enc).topk(k)`` would scatter the gradient of the k picked values into a
dense [B, n_latents] matrix and run a second dense matmul for ``W_enc``'s gradient. Only B * k entries of that
matrix are non-zero, so the backward here touches just the picked columns: B * k * d_in work instead of
B * n_latents * d_in. The AuxK selection (the top ``k_aux`` dead latents) rides along in the same forward, so
the dense pre-activations are computed once and never kept for the backward.

The forward (``select``, shared with inference) is the encoder matmul with the bias folded in, a chunk of rows
at a time, each chunk's top k found by rounds over strided groups (``recprobe.topk``). On 2 CPU cores at 4,096 x 16,384,
k = 32, a training step went from 248 to 144 ms this way, ahead of torch's own ``addmm`` and ``topk`` alone.
"""

from __future__ import annotations

import threading
import warnings

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from recprobe.topk import top_k

# torch warns once per process that compressed-row tensors are "beta"; scatter_outer builds one every step
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

CHUNK_BYTES = 32 * 2**20  # the pre-activation block select writes at a time on CPU
FOLD_ROWS = 256  # fewer rows: addmm's bias copy costs less than folding the bias into a copy of W_enc


def encoder_operands(centred: torch.Tensor, W_enc: torch.Tensor,
                     b_enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(rows, weights, bias) whose ``product`` is ``centred @ W_enc + b_enc``. On CPU with FOLD_ROWS rows or more,
    the bias folded in as one more input column (ones) and one more row of ``W_enc`` (bias None): ``addmm``
    would first copy ``b_enc`` into every row of its [B, n] result, 17 of 86 ms at [4,096, 16,384] on 2 cores.
    Fewer rows, or a GPU: the inputs as they are, for ``addmm``."""
    if centred.device.type != "cpu" or len(centred) < FOLD_ROWS:
        return centred, W_enc, b_enc
    rows = torch.cat([centred, centred.new_ones(len(centred), 1)], 1)
    return rows, torch.cat([W_enc.T, b_enc.unsqueeze(1)], 1).T, None  # [d + 1, n], column-major as W_enc


def product(rows: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None,
            out: torch.Tensor | None = None) -> torch.Tensor:
    return torch.mm(rows, weights, out=out) if bias is None else torch.addmm(bias, rows, weights, out=out)


def pre_activations(centred: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor) -> torch.Tensor:
    """[B, n] ``centred @ W_enc + b_enc``."""
    return product(*encoder_operands(centred, W_enc, b_enc))


def chunk_rows(n_latents: int, device: torch.device) -> int:
    """How many rows ``select`` encodes at a time: on CPU, a float32 [rows, n_latents] block of CHUNK_BYTES (its top-k
    rounds then read what the matmul has just written: 81 against 106 ms for 4,096 x 16,384 on 2 cores, where
    one chunk of 64 rows costs twice one of the whole batch at 4,096 x 1,024); on a GPU, every row at once."""
    return max(1, CHUNK_BYTES // (4 * n_latents)) if device.type == "cpu" else 2**62


_kept = threading.local()  # select's block on CPU, per thread: callers on several never share one


def kept_block(rows: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    """A [rows, n] CPU block that ``select`` writes its chunks into, kept per thread between calls (and training
    steps) and grown to the largest chunk asked (at most CHUNK_BYTES). A fresh block each call, past glibc's mmap
    threshold, is mapped and page-faulted in anew: encoding 4,096 rows at 8,192 latents took 67 ms so, 26 ms
    with the block kept (2 cores); at 16,384 latents a training step paid 70 of 180 ms in page faults."""
    block = getattr(_kept, "block", None)
    if block is None or block.shape[1] != n or block.dtype != dtype or len(block) < rows:
        block = _kept.block = torch.empty(rows, n, dtype=dtype)
    return block[:rows]


def select(centred: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int,
           dead_ids: torch.Tensor | None = None, k_aux: int = 0):
    """(values, indices) of the k largest pre-activations ``centred @ W_enc + b_enc`` per row, and (aux_values,
    aux_indices) of the ``k_aux`` largest among the latents ``dead_ids`` (empty when None), before ReLU. The
    rows go through in chunks (``chunk_rows``), so the whole [B, n] block never exists; on CPU each chunk is
    written into the thread's ``kept_block`` (the training pass's too: its forward runs outside autograd)."""
    rows, weights, bias = encoder_operands(centred, W_enc, b_enc)
    step = chunk_rows(weights.shape[1], rows.device)
    recorded = torch.is_grad_enabled() and any(t.requires_grad for t in (centred, W_enc, b_enc))
    # autograd does not record a product written into a block; a GPU's caching allocator reuses blocks itself
    kept = rows.device.type == "cpu" and not recorded
    block = kept_block(min(step, len(rows)), weights.shape[1], weights.dtype) if kept else None
    parts = []
    for chunk in rows.split(step):
        pre = product(chunk, weights, bias, out=None if block is None else block[:len(chunk)])
        values, indices = top_k(pre, k)
        if dead_ids is None:
            aux_values, aux_indices = values[:, :0], indices[:, :0]
        else:  # top k_aux among the dead columns only, mapped back to latent ids
            aux_values, among = top_k(pre.index_select(1, dead_ids), k_aux)
            aux_indices = dead_ids[among]
        parts.append((values, indices, aux_values, aux_indices))
    return parts[0] if len(parts) == 1 else tuple(torch.cat(part) for part in zip(*parts, strict=True))


def by_sparse_product(device: torch.device) -> bool:
    """Whether ``scatter_outer`` sums by a sparse matrix product (CPU) rather than by writing the rows (GPU)."""
    return device.type == "cpu"


def scatter_outer(n_rows: int, indices: torch.Tensor, weights: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """[n_rows, d] with row ``indices[b, j]`` accumulating ``weights[b, j] * vectors[b]``: the gradient of a
    weight matrix whose rows were gathered by ``indices``, without a dense [B, n_rows] matrix. On CPU, the product
    of the sparse [n_rows, B] matrix of the weights (compressed rows) with ``vectors``; elsewhere, the B * k
    weighted rows summed by one index_add. On CPU the rows are a fresh [B * k, d] block each step, whose writing
    cost more than the sum: a training step at 4,096 x 8 x 64 took 10.4 ms by a sparse product against 12.3 ms
    by the rows, and at 4,096 x 32 x 128 the product took 6.8 against 23 ms (embedding_bag's sorted backward:
    12.6). The matrix is built in compressed rows directly, its entries put in row order by a stable sort of the
    row ids as 16-bit integers where they fit: 0.48 against 0.91 ms at 4,096 x 8 into 1,024 rows for a COO
    matrix, which sorted its 64-bit coordinates to coalesce them (the product itself takes 0.07 ms)."""
    if by_sparse_product(vectors.device):
        flat = indices.flatten()
        order = torch.sort(flat.to(torch.int16 if n_rows <= 2**15 else torch.int32), stable=True).indices
        starts = torch.zeros(n_rows + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(flat, minlength=n_rows), 0, out=starts[1:])
        owners = order.div(indices.shape[1], rounding_mode="floor")  # the row b of entry b * k + j
        matrix = torch.sparse_csr_tensor(starts, owners, weights.flatten()[order].to(vectors.dtype),
                                         (n_rows, len(indices)), check_invariants=False)
        return matrix @ vectors
    rows = (weights.unsqueeze(2) * vectors.unsqueeze(1)).reshape(-1, vectors.shape[1])  # [B * k, d]
    out = torch.zeros(n_rows, vectors.shape[1], dtype=vectors.dtype, device=vectors.device)
    return out.index_add_(0, indices.flatten(), rows)


class _TopKEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b_dec, W_enc, b_enc, k: int, dead: torch.Tensor | None, k_aux: int, n_dead: int):
        centred = x - b_dec
        # the dead ids in ascending order, as nonzero() gives them, without its wait on a GPU
        dead_ids = None if dead is None else torch.sort((~dead).to(torch.uint8), stable=True).indices[:n_dead]
        # ReLU commutes with top-k: it runs on the k values
        values, indices, aux_values, aux_indices = select(centred, W_enc, b_enc, k, dead_ids, k_aux)
        values, aux_values = values.relu_(), aux_values.relu_()
        ctx.save_for_backward(centred, W_enc, torch.cat([indices, aux_indices], 1),
                              torch.cat([values, aux_values], 1) > 0)
        ctx.mark_non_differentiable(indices, aux_indices)
        return values, indices, aux_values, aux_indices

    @staticmethod
    def backward(ctx, grad_values, _grad_indices, grad_aux_values, _grad_aux_indices):
        centred, W_enc, indices, fired = ctx.saved_tensors
        grad = torch.cat([grad_values, grad_aux_values], 1) * fired  # ReLU: no gradient where the value is 0
        grad_x = grad_b_dec = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            grad_x = F.embedding_bag(indices, W_enc.T, per_sample_weights=grad, mode="sum")
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[3]:  # each latent's gradient, summed over the rows
            grad_b_enc = torch.zeros(W_enc.shape[1], dtype=grad.dtype, device=grad.device).index_add_(
                0, indices.flatten(), grad.flatten())
        if ctx.needs_input_grad[1]:  # the rows' gradients summed: [d, n] @ [n], not B weighted sums of k columns
            grad_b_dec = -(W_enc @ grad_b_enc)
        if ctx.needs_input_grad[2]:
            grad_W_enc = scatter_outer(W_enc.shape[1], indices, grad, centred).T  # [n, d] rows: W_enc's own layout
        return grad_x, grad_b_dec, grad_W_enc, grad_b_enc, None, None, None, None


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
    """[B, d] sum of ``values[b, j] * W_dec[indices[b, j]]``, by embedding_bag; ``W_dec``'s gradient by
    ``scatter_outer``, the values' by embedding_bag's own per-sample backward."""
    return _SparseDecode.apply(values, indices, W_dec)


def topk_encode(x: torch.Tensor, b_dec: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int,
                dead: torch.Tensor | None = None, k_aux: int = 0, n_dead: int | None = None):
    """(values, indices) of the k largest ``relu((x - b_dec) @ W_enc + b_enc)`` per row, and (aux_values,
    aux_indices) of the ``k_aux`` largest among the ``dead`` latents (empty when ``dead`` is None); the values
    carry gradients to all four inputs. ``n_dead`` must be ``dead.sum()`` (counted here when not given)."""
    if dead is not None:
        n_dead = int(dead.sum()) if n_dead is None else n_dead
        k_aux = min(k_aux, n_dead)
        dead = dead if k_aux > 0 else None
    return _TopKEncode.apply(x, b_dec, W_enc, b_enc, k, dead, k_aux, n_dead)
