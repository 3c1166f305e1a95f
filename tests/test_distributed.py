"""Data-parallel SAE training: 2 gloo processes under torchrun against 1 process, same seed and data order."""

from __future__ import annotations

import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.test_sae import low_rank_store

SCRIPT = """
import sys, torch
from safetensors.torch import save_file
from recprobe.sae import SAEConfig, SAETrainConfig, train_sae
from recprobe.sae.parallel import DataParallel
from recprobe.store import ActivationStore
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
