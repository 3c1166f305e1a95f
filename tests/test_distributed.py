"""torchrun: 2 gloo processes against 1 for SAE training (through the library and the documented command), and
the documented commands of capture, evaluate and interpret's case recording."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from recprobe.cli import main
from recprobe.concepts.cases import CaseSet
from tests.conftest import synthetic_frame, write_atomic
from tests.test_sae import low_rank_store

SCRIPT = """
import sys, torch
from safetensors.torch import save_file
from recprobe.sae import SAEConfig, SAETrainConfig, train_sae
from recprobe.parallel import DataParallel
from recprobe.activations.store import ActivationStore
torch.set_num_threads(1)
parallel = DataParallel.from_env("cpu")
sae, result = train_sae(ActivationStore(sys.argv[1]), SAEConfig(d_in=8, scale=4, k=2, seed=3),
                        SAETrainConfig(epochs=4, batch_size=29), progress=False)
if parallel.main:
    save_file({n: t.contiguous() for n, t in sae.state_dict().items()}, sys.argv[2])
    print("world", parallel.world, "best epoch", result.best_epoch, "dev fvu", result.history[-1]["dev_fvu"])
"""


def test_two_gloo_processes_match_one_process(tmp_path):
    """Batches of 29 split 15 + 14 over two ranks against one process taking all 29 (each shard's last batch,
    7 or 26 rows, splits unevenly too). Tolerance 1e-4: only the order of float sums differs, over 172 Adam
    steps (the largest difference seen here was about 1e-6)."""
    store = low_rank_store(tmp_path / "store", n=1200, shard_rows=500)
    (script := tmp_path / "train.py").write_text(SCRIPT)
    one = subprocess.run([sys.executable, str(script), str(store.folder), str(tmp_path / "one.safetensors")],
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(script), str(store.folder), str(tmp_path / "two.safetensors")],
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "world 1" in one.stdout and "world 2" in two.stdout
    single, parallel = load_file(tmp_path / "one.safetensors"), load_file(tmp_path / "two.safetensors")
    for name, value in single.items():
        torch.testing.assert_close(parallel[name], value, rtol=1e-4, atol=1e-4)
    print("largest difference", max(float((parallel[n] - v).abs().max()) for n, v in single.items()))


def test_the_documented_torchrun_commands_make_what_one_process_makes(tmp_path):
    """`torchrun --standalone --nproc-per-node 2 -m recprobe.cli -- STAGE --run RUN` as docs/scaling.md writes it,
    for capture, evaluate, train-sae and interpret's case recording, on a copy of a fitted run, against the same
    command in one process: the same store byte for byte, the same figures, the same SAE within 1e-6, the same
    cases and concepts."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert main_cli("fit", "--model", "sasrec", "--dataset", str(write_atomic(tmp_path / "toy", synthetic_frame())),
                    "--out", str(one), "--epochs", "1", "--min-rating", "-1", "--core", "3") == 0
    shutil.copytree(one, two)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")

    def both(*stage: str) -> tuple[str, str]:
        single = subprocess.run([sys.executable, "-m", "recprobe.cli", *stage, "--run", str(one)], env=env,
                                capture_output=True, text=True, timeout=600)
        assert single.returncode == 0, single.stderr[-3000:]
        parallel = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "recprobe.cli", "--", *stage,
                                   "--run", str(two)], env=env, capture_output=True, text=True, timeout=600)
        assert parallel.returncode == 0, parallel.stderr[-3000:]
        return single.stdout, parallel.stdout

    single, parallel = both("capture")
    assert single.replace(str(one), "RUN") == parallel.replace(str(two), "RUN")  # printed once, by rank 0
    shards = sorted(p.name for p in (one / "activations").iterdir())
    assert shards == sorted(p.name for p in (two / "activations").iterdir()) and len(shards) == 4
    for name in shards:
        assert (one / "activations" / name).read_bytes() == (two / "activations" / name).read_bytes(), name

    single, parallel = both("evaluate")
    assert "HR@10" in single and single == parallel

    single, parallel = both("train-sae", "--epochs", "2", "--scale", "2", "--k", "4", "--batch-size", "256")
    assert "data-parallel over 2 processes" in parallel and "data-parallel" not in single
    assert not (two / "sae-checkpoint.safetensors").exists()
    a, b = load_file(one / "sae" / "sae_weights.safetensors"), load_file(two / "sae" / "sae_weights.safetensors")
    assert a.keys() == b.keys()
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=0, atol=1e-6)

    shutil.rmtree(two / "sae")  # the same SAE on both sides, so their cases can be compared exactly
    shutil.copytree(one / "sae", two / "sae")
    single, parallel = both("interpret", "--cases", "all", "--latents", "0-3", "--n", "3", "--max-cases", "150",
                            "--top-cases", "6")
    assert single.replace(str(one), "RUN") == parallel.replace(str(two), "RUN")
    cases = [CaseSet.load(run / "concepts" / "cases.safetensors") for run in (one, two)]
    assert not cases[0].complete and cases[0].n_cases > 150
    for name in ("users", "positions", "history", "predicted", "values", "indices", "uniform"):
        assert np.array_equal(getattr(cases[0], name), getattr(cases[1], name)), name
    assert np.array_equal(cases[0].population.users, cases[1].population.users)
    assert (one / "concepts" / "concepts.jsonl").read_text() == (two / "concepts" / "concepts.jsonl").read_text()

    # rank 0 refuses the folder (other settings) in one line, and torchrun stops the rank waiting on it at once
    refused = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "recprobe.cli", "--", "interpret",
                              "--cases", "all", "--latents", "0-3", "--n", "4", "--run", str(two)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "holds concepts made with another n" in refused.stdout + refused.stderr


def main_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as e:
        return e.code or 0
    return 0
