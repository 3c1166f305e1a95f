"""Every CLI stage on a run whose target comes from an importable factory (`--adapter torch`), as a user's own
model would; a SIGKILL during capture leaves the previous store usable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recprobe.runs import Run
from tests.conftest import synthetic_frame, write_atomic
from tests.test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(tmp_path):
    return write_atomic(tmp_path / "toy", synthetic_frame())


def probe_args(toy, out, *options):
    kwargs = json.dumps({"dataset": str(toy), **{k: json.loads(v) for k, v in (o.split("=", 1) for o in options)}})
    return ("probe", "--adapter", "torch", "--option", "factory=tests.targets:make_oracle", "--option",
            f"kwargs={kwargs}", "--dataset", str(toy), "--min-rating", "-1", "--core", "3", "--out", str(out))


def test_a_factory_target_goes_through_every_cli_stage(capsys, tmp_path, toy, monkeypatch):
    monkeypatch.chdir(ROOT)  # the factory's module is importable from the current folder
    out = tmp_path / "run"
    code, text, _ = run_cli(capsys, *probe_args(toy, out))
    assert code == 0 and "ids mapped by raw token" in " ".join(text.split())
    for args in (("capture",), ("train-sae", "--scale", "2", "--k", "2", "--epochs", "3"),
                 ("interpret", "--describer", "llm", "--verifier", "llm", "--llm", "fake", "--n", "2"),
                 ("steer", "--table7"), ("debias", "--latents", "2"), ("report",), ("evaluate",)):
        code, text, err = run_cli(capsys, args[0], "--run", str(out), *args[1:])
        assert code == 0, (args, err)
    assert "HR@10" in text and "1.0000" in text  # the oracle, evaluated in the split's numbering
    assert (out / "report" / "index.html").exists() and (out / "steering" / "debias.json").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["target"]["adapter"] == "torch" and record["command"].startswith("recprobe probe --adapter torch")
    code, _, err = run_cli(capsys, *probe_args(toy, out, "shuffled=false"))  # another model into the same folder
    assert_one_line_error(code, err, "already holds a run of", "--overwrite")


def test_an_option_set_twice_is_refused(capsys, tmp_path, toy, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    run_cli(capsys, *probe_args(toy, out))
    run_cli(capsys, "capture", "--run", str(out))
    code, _, err = run_cli(capsys, "train-sae", "--run", str(out), "--k", "2", "--option", "k=3")
    assert code == 2 and "k is set by its own option (--k)" in err
    assert not (out / "sae").exists()


def test_sigkill_during_capture_leaves_the_previous_store(capsys, tmp_path, toy, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    assert run_cli(capsys, *probe_args(toy, out, "delay=0.02"))[0] == 0
    assert run_cli(capsys, "capture", "--run", str(out), "--batch-size", "1")[0] == 0
    before = Run.open(out).activations().load("train").activations
    env = {**os.environ, "RECPROBE_LOAD_PLUGINS": ""}
    capture = subprocess.Popen([sys.executable, "-m", "recprobe.cli", "capture", "--run", str(out), "--batch-size", "1"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not any(p.name.startswith(".activations.") for p in out.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the new store's writing
    capture.send_signal(signal.SIGKILL)
    capture.wait()
    assert capture.returncode == -signal.SIGKILL
    assert torch.equal(Run.open(out).activations().load("train").activations, before)
    assert run_cli(capsys, "capture", "--run", str(out), "--batch-size", "64")[0] == 0  # and a rerun cleans up
    assert not any(p.name.startswith(".activations.") for p in out.iterdir())
