"""The examples and the docs' code blocks run as written (slow: real data, real installs).

Docs convention: blocks fenced as ```python are complete programs and run here; ```py blocks are fragments.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "recprobe-plugin-example"
pytestmark = pytest.mark.slow


def python_blocks(page: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "docs" / page).read_text(), flags=re.S | re.M)


def run(args: list[str], cwd: Path, data: Path, plugins: str | None = "") -> subprocess.CompletedProcess:
    # one thread, as the in-process tests (conftest): two busy-waiting thread pools per core slow a step tenfold
    env = {**os.environ, "RECPROBE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("RECPROBE_LOAD_PLUGINS", None)
    if plugins is not None:
        env["RECPROBE_LOAD_PLUGINS"] = plugins
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_readme_snippets_run_as_written(shared_data, tmp_path):
    """Every line of the README's hand-run pipeline, then its Python block, from an empty folder."""
    readme = (ROOT / "README.md").read_text()
    shell = next(b for b in re.findall(r"^```bash\n(.*?)^```", readme, flags=re.S | re.M) if "recprobe fit" in b)
    for line in shell.splitlines():
        command = line.split("#")[0].split()
        assert command[0] == "recprobe", line
        run([sys.executable, "-m", "recprobe.cli", *command[1:]], tmp_path, shared_data)
    assert (tmp_path / "runs" / "ml100k-bprmf" / "report" / "index.html").exists()
    (script := tmp_path / "readme.py").write_text(re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)[0])
    top = run([sys.executable, str(script)], tmp_path, shared_data).stdout
    assert re.fullmatch(r"tensor\(\[[\d,\s]+\]\)\n", top), top


def test_own_model_example(shared_data, tmp_path):
    out = run([sys.executable, str(ROOT / "examples" / "own_model.py")], tmp_path, shared_data).stdout
    assert re.search(r"torch:GRURec.project: \(256, 32\) representations, probe check passed", out)


@pytest.mark.parametrize(("page", "count"), [("adapters.md", 3), ("runs.md", 2), ("notebooks.md", 1)])
def test_docs_code_blocks_run(shared_data, tmp_path, page, count):
    blocks = python_blocks(page)
    assert len(blocks) == count
    for i, block in enumerate(blocks):
        script = tmp_path / f"block{i}.py"
        script.write_text(block)
        run([sys.executable, str(script)], tmp_path, shared_data)


def test_plugin_package_is_found_through_its_entry_point(shared_data, tmp_path):
    pip = [sys.executable, "-m", "pip", "-q"]
    listing = [sys.executable, "-m", "recprobe.cli", "adapters"]
    run([*pip, "install", "--no-deps", "--no-build-isolation", str(PLUGIN)], tmp_path, shared_data)
    try:
        table = run(listing, tmp_path, shared_data, plugins=None).stdout
        assert re.search(r"meanpool\s+│\s+recprobe-plugin-example\s+│\s+0\.1\.0", table), table
        assert "meanpool" not in run(listing, tmp_path, shared_data, plugins="").stdout
        (tmp_path / "check.py").write_text(python_blocks("plugins.md")[0] + "\n".join([
            "", "target = recprobe.load_target('meanpool', split=split)",
            "check_probe_target(target, recprobe.phase_batches(split, 'test', 20)(range(32)))",
            "print(recprobe.adapters()['meanpool'].package)",
        ]))
        out = run([sys.executable, "check.py"], tmp_path, shared_data, plugins="meanpool").stdout
        assert out.strip() == "recprobe-plugin-example"
        cli = [sys.executable, "-m", "recprobe.cli"]
        run([*cli, "probe", "--adapter", "meanpool", "--dataset", "ml-100k", "--out", "runs/meanpool", "--untrained-ok"],
            tmp_path, shared_data, plugins="meanpool")
        nowhere = tmp_path / "no-datasets"  # every later stage reopens the target on the run's own split
        for stage in (["capture"], ["train-sae", "--scale", "2", "--k", "4", "--epochs", "2"], ["interpret"],
                      ["steer", "--table7"], ["report"]):
            run([*cli, stage[0], "--run", "runs/meanpool", *stage[1:]], tmp_path, nowhere, plugins="meanpool")
        assert "meanpool on ml-100k" in (tmp_path / "runs" / "meanpool" / "report" / "index.html").read_text()
    finally:
        run([*pip, "uninstall", "-y", "recprobe-plugin-example"], tmp_path, shared_data)
    assert "meanpool" not in run(listing, tmp_path, shared_data, plugins=None).stdout
