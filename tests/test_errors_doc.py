"""Every row of the docs' bad-input table names a test that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_row_of_the_bad_input_table_is_backed_by_a_test():
    rows = re.findall(r"^\| .* \| `(test_\w+\.py)::(test_\w+)` \|$", (ROOT / "docs" / "errors.md").read_text(), flags=re.M)
    assert len(rows) >= 20
    for file, name in rows:
        assert re.search(rf"^def {name}\(", (ROOT / "tests" / file).read_text(), flags=re.M), f"{file}::{name} is missing"
