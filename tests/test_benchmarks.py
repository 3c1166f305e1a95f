"""Every benchmark script still loads: the names it takes from recprobe exist (a constant renamed in the package
once broke one without a test noticing). Their measurements are long and run by hand; this loads each module, as
``python benchmarks/NAME.py`` would, and never calls its ``main()``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda path: path.stem)
def test_a_benchmark_script_loads(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as a script run from there sees its siblings
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main)
