"""Fields per line counted on bytes, against Python's own text-mode line splitting."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.data.lines import first_mismatch


def by_text(path):
    """The first mismatch as reading the file in text mode (newline="") finds it: the reference."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        header = f.readline().rstrip("\r\n").count("\t") + 1
        for number, line in enumerate(f, 2):
            line = line.rstrip("\r\n")
            if line and line.count("\t") + 1 != header:
                return number, line.count("\t") + 1, header
    return None


pieces = st.lists(st.sampled_from(["a", "bc", "é", "\t", "\n", "\r", "\r\n", "\n\n"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(pieces, st.integers(1, 9))
def test_the_first_mismatch_is_the_one_text_mode_finds_whatever_the_block_size(tmp_path_factory, parts, block):
    path = tmp_path_factory.mktemp("lines") / "x.inter"
    path.write_bytes("".join(parts).encode())
    assert first_mismatch(path, block_bytes=block) == by_text(path)
    assert first_mismatch(path) == by_text(path)


def test_a_tab_inside_a_title_is_named_by_its_line(tmp_path):
    path = tmp_path / "x.item"
    path.write_bytes(b"item_id:token\ttitle:token\r\n1\tA\r\n\r\n2\tB\tC\r\n3\tD")
    assert first_mismatch(path, block_bytes=4) == (4, 3, 2)
