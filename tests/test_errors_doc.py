"""Every row of the docs' bad-input table names a test that exists and asserts the message the row shows: some
string the test checks shares at least ``MIN_SHARED`` consecutive characters with the row's message."""

from __future__ import annotations

import ast
import re
from difflib import SequenceMatcher
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (.*) \| `(.*)` \| `(test_\w+\.py)::(test_\w+)(?:\[([\w-]+)\])?` \|$", flags=re.M)
MIN_SHARED = 16


def rows() -> list[tuple[str, str, str, str, str]]:
    return ROW.findall((ROOT / "docs" / "errors.md").read_text())


def asserted_strings(file: str, name: str, case: str) -> list[str]:
    """The string constants of the test function (for a parametrized row: of its case), regex escapes removed."""
    tree = ast.parse((ROOT / "tests" / file).read_text())
    if case:
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Case"
                 and node.args and getattr(node.args[0], "value", None) == case]
        assert calls, f"{file} has no case {case!r}"
        scope: ast.AST = calls[0]
    else:
        found = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == name]
        assert found, f"{file}::{name} is missing"
        scope = found[0]
    return [node.value.replace("\\", "") for node in ast.walk(scope)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def shared(a: str, b: str) -> int:
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match().size


def test_every_row_of_the_bad_input_table_asserts_its_message():
    found = rows()
    assert len(found) >= 100
    weak = []
    for _, message, file, name, case in found:
        strings = asserted_strings(file, name, case)
        need = min(MIN_SHARED, len(message))
        if max((shared(message, s) for s in strings), default=0) < need:
            weak.append(f"{file}::{name}{f'[{case}]' if case else ''}: {message!r}")
    assert not weak, "rows whose test does not assert the shown message:\n" + "\n".join(weak)
