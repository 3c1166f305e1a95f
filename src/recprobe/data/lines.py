"""The tab-separated fields of every line of a file, counted on its bytes a block at a time.

Lines end as Python's text mode with ``newline=""`` ends them: at ``\\n``, ``\\r\\n`` or a lone ``\\r``; a last
line without its ending counts too. Tabs and line endings are single bytes that never occur inside a multi-byte
UTF-8 character, so counting bytes gives what counting decoded characters would, at numpy's speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

BLOCK_BYTES = 1 << 22  # read at a time; a block is cut after its last line ending


def fields_per_line(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """For each line of ``block``: its number of tab-separated fields, and whether it is empty."""
    if not block:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    data = np.frombuffer(block, dtype=np.uint8)
    newline, ret = data == 10, data == 13
    ends = newline.copy()
    ends[:-1] |= ret[:-1] & ~newline[1:]  # a lone \r ends a line; the \r of \r\n does not
    ends[-1] |= ret[-1]
    stops = np.flatnonzero(ends)
    if not ends[-1]:
        stops = np.append(stops, len(data))  # the last line, without its ending
    starts = np.concatenate([[0], stops[:-1] + 1])
    tabs = np.concatenate([[0], np.cumsum(data == 9, dtype=np.int64)])
    inside = stops < len(data)
    crlf = np.zeros(len(stops), dtype=bool)
    crlf[inside] = newline[stops[inside]] & (stops[inside] > starts[inside]) & ret[np.maximum(stops[inside] - 1, 0)]
    return tabs[stops] - tabs[starts] + 1, stops - starts - crlf == 0


def line_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The file's bytes in blocks that each end with a whole line (the last block: whatever is left)."""
    carry = b""
    with open(path, "rb") as f:
        while chunk := f.read(block_bytes):
            data = carry + chunk
            # after the last \n, or after a \r that is not the block's last byte (its next byte is known)
            cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
            block, carry = data[:cut], data[cut:]
            if block:
                yield block
    if carry:
        yield carry


def first_mismatch(path: Path, block_bytes: int = BLOCK_BYTES) -> tuple[int, int, int] | None:
    """(line number, its fields, the header's fields) of the first non-empty line whose number of tab-separated
    fields differs from the header's (line 1), or None when every line matches."""
    header, lines_before = None, 0
    for block in line_blocks(path, block_bytes):
        fields, empty = fields_per_line(block)
        if header is None:
            header, fields, empty, lines_before = int(fields[0]), fields[1:], empty[1:], 1
        bad = np.flatnonzero((fields != header) & ~empty)
        if len(bad):
            return lines_before + int(bad[0]) + 1, int(fields[bad[0]]), header
        lines_before += len(fields)
    return None
