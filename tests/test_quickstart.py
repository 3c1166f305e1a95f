"""`pip install recprobe` is the whole story: the built wheel, installed into a fresh virtual environment, runs
`recprobe quickstart` in an empty folder, with no repository and no ../shared beside it. MovieLens-100K comes
from a real local HTTP server (a thread here) serving GroupLens' ml-100k.zip layout, built from the shared copy
since GroupLens cannot be reached from the test machines. Slow: it trains SASRec and its SAE; the deterministic
fake LLM stands in for SmolLM2 (the embedded model itself is exercised in test_llm.py).

The fresh environment takes the heavy dependencies (torch, transformers...) from this one's site-packages
through a path file, never from the network; RecBole is left out, as `pip install recprobe` does not bring it
(its bundled MovieLens-100K would otherwise be read instead of fetched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

from recprobe.concepts.labelers import described_attribute
from recprobe.report.build import RunReport
from tests.test_fetch import grouplens_1m, grouplens_100k, publish, server  # noqa: F401 (server: a fixture)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory) -> Path:
    """A new virtual environment holding recprobe's wheel; its bin folder."""
    root = tmp_path_factory.mktemp("fresh")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(root / "dist"), str(REPO)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}  # else pip sees a recprobe
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    *map(str, (root / "dist").glob("recprobe-*.whl"))], check=True, env=clean)
    dependencies = root / "dependencies"  # this environment's packages, but recprobe itself and RecBole
    dependencies.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("recprobe", "__editable__", "recbole", "_recprobe")):
            (dependencies / entry.name).symlink_to(entry)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "recprobe-test-dependencies.pth").write_text(f"{dependencies}\n")
    return python.parent


def fresh_environment(folder: Path) -> dict[str, str]:
    """A new user's environment: no PYTHONPATH, no recprobe setting but the mirror and its checksums."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("RECPROBE_", "PYTHON"))}
    environment |= {key: value for key, value in os.environ.items() if key.startswith(("RECPROBE_DATASETS", "RECPROBE_LOAD"))}
    return environment | {"RECPROBE_CACHE_DIR": str(folder / "cache"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200",
                          "OMP_NUM_THREADS": "1"}  # one thread, as every test here: the other worker has the other core


def recprobe(bin_folder: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_folder / "recprobe"), *args], cwd=folder, env=fresh_environment(folder),
                          capture_output=True, text=True, timeout=1800)


QUICKSTART = ("quickstart", "--out", "runs/quickstart", "--llm", "fake", "--llm-latents", "2")


def test_the_wheel_runs_the_quickstart_in_an_empty_folder(fresh_install, server, shared_data, tmp_path, monkeypatch):  # noqa: F811
    publish(server, monkeypatch, tmp_path, {"ml-100k.zip": grouplens_100k(shared_data)})
    empty = tmp_path / "empty"
    empty.mkdir()
    located = subprocess.run([str(fresh_install / "python"), "-c", "import recprobe; print(recprobe.__file__)"],
                             cwd=empty, env=fresh_environment(empty), capture_output=True, text=True, check=True).stdout
    assert located.startswith(str(fresh_install.parent)), located  # the wheel, not the repository
    done = recprobe(fresh_install, empty, *QUICKSTART)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    assert [name for name, _ in server.seen] == ["ml-100k.zip"] and "ml-100k: fetching" in printed
    out = empty / "runs" / "quickstart"
    assert "Open the report:" in printed and str((out / "report" / "index.html").resolve()) in printed
    for path in ("recommender/model.safetensors", "activations/index.json", "sae/sae_weights.safetensors",
                 "concepts/summary.json", "concepts-llm-check/summary.json", "steering/table7.json", "steering/debias.json",
                 "report/index.html"):
        assert (out / path).is_file(), path
    table7 = json.loads((out / "steering" / "table7.json").read_text())
    assert len(table7["latents"]) == 3 and all(s["reason"] for s in table7["skipped"])
    assert {r["latent"] for r in table7["latents"]}.isdisjoint(s["latent"] for s in table7["skipped"])
    summary = json.loads((out / "concepts" / "summary.json").read_text())  # too few test users: every position
    assert summary["cases"] == "all" and summary["n_cases"] > 50_000 and summary["concepts"]["all"] >= 900
    assert summary["attributes"]["sae"]["genre"] > summary["attributes"]["untrained"]["genre"]
    assert not (out / "sae-checkpoint.safetensors").exists()
    top = [row[1] for row in RunReport(out)._concepts()["top"]]  # the report's top concepts: each its own
    assert len(top) == 25 and len(set(top)) == 25, top
    named = Counter(described_attribute(d) for d in top if described_attribute(d))
    assert max(named.values()) <= len(top) / 3, named  # no value (a release year) names most of them
    every = json.loads((out / "steering" / "table7-every.json").read_text())  # Table 7's rule beside the controls
    assert list(every["bases"]) == ["sae", "raw", "untrained"] and every["bases"]["sae"]["measured"] >= 20
    assert all(0 <= row["passed"] <= row["measured"] <= row["confident"] for row in every["bases"].values())
    assert f"trained minus the best control ({every['best_control']})" in " ".join(printed.split())
    assert "Steering every confident concept" in (out / "report" / "index.html").read_text()
    weights = (out / "sae" / "sae_weights.safetensors").read_bytes()
    again = recprobe(fresh_install, empty, *QUICKSTART)  # a rerun reuses every stage and downloads nothing
    assert again.returncode == 0 and "capture: already in" in again.stdout, again.stderr[-3000:]
    assert len(server.seen) == 1 and (out / "sae" / "sae_weights.safetensors").read_bytes() == weights
    good = grouplens_1m(shared_data)  # a mirror serving a tampered file: one line, nothing left to read
    publish(server, monkeypatch, tmp_path, {"ml-1m.zip": good[:100] + b"X" + good[101:]}, {"ml-1m.zip": good})
    refused = recprobe(fresh_install, empty, "fit", "--model", "bprmf", "--dataset", "ml-1m", "--out", "runs/m")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "gave a file whose sha256 is" in lines[0], refused.stderr
    assert not (empty / "cache" / "ml-1m").exists() and not (empty / "runs" / "m").exists()
