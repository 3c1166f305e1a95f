"""The exact top-k by rounds over strided groups: the values torch's topk finds, for any row length."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.topk import group_size, top_k


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5000), st.integers(1, 40), st.booleans(), st.booleans(), st.integers(0, 10_000))
def test_top_k_finds_the_values_torch_finds(rows, n, k, ties, ordered, seed):
    """Rows of any length (a tail past the groups included), ties (integer values) and both orders."""
    k = min(k, n)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(-5, 6, (rows, n), generator=generator).float() if ties else torch.randn(rows, n, generator=generator)
    values, indices = top_k(x, k, sorted=ordered)
    expected = x.topk(k, dim=-1).values
    assert torch.equal(values.sort(-1, descending=True).values, expected)
    if ordered:
        assert torch.equal(values, expected)
    assert torch.equal(x.gather(1, indices), values)
    assert (indices.sort(-1).values.diff(dim=-1) > 0).all()  # k distinct entries


def test_the_tail_past_the_groups_is_searched_too():
    x = torch.zeros(3, 1000 + 7)
    x[0, -1], x[1, -7], x[2, 3] = 5.0, 6.0, 7.0  # the last entries lie past 16 groups of 62 (992 entries)
    assert group_size(x.shape[1], 2) == 16
    assert top_k(x, 1)[1].flatten().tolist() == [1006, 1000, 3]


def test_a_non_contiguous_or_batched_input_reads_the_same_entries():
    x = torch.randn(2, 3, 800)
    values, indices = top_k(x, 5, sorted=True)
    assert values.shape == indices.shape == (2, 3, 5) and torch.equal(values, x.topk(5).values)
    columns = torch.randn(900, 4).T  # rows that are not contiguous
    assert torch.equal(top_k(columns, 3, sorted=True)[0], columns.topk(3).values)


def test_rows_inside_a_larger_tensor_and_non_finite_scores():
    """Rows at an offset in padded storage (read in place), -inf (masked items) and NaN as torch orders them."""
    big = torch.randn(7, 3000)
    part = big[1:, 5:2900]
    assert part.stride(-1) == 1 and not part.is_contiguous()
    assert torch.equal(top_k(part, 10, sorted=True)[0], part.topk(10).values)
    masked = torch.full((2, 1000), float("-inf"))
    masked[0, [3, 500, 999]] = torch.tensor([1.0, 2.0, 3.0])
    masked[1, 17] = float("nan")
    values, indices = top_k(masked, 4, sorted=True)
    assert indices[0, :3].tolist() == [999, 500, 3] and values[0, 3] == float("-inf")
    assert indices[1, 0] == 17 and torch.isnan(values[1, 0])


def test_the_gradient_reaches_the_picked_entries_only():
    x = torch.randn(3, 1000, requires_grad=True)
    values, indices = top_k(x, 8)
    values.sum().backward()
    assert torch.equal(x.grad, torch.zeros(3, 1000).scatter(1, indices, 1.0))


def test_rounds_only_where_they_pay():
    assert group_size(1024, 8) == 8 and group_size(16384, 32) == 16 and group_size(49113, 10) == 16
    assert group_size(24, 3) == 1 and group_size(1024, 512) == 1  # one round: torch's own top-k
