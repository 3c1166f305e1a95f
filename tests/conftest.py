"""Shared fixtures: small synthetic data for fast tests; the real datasets (../shared/data) for `slow` ones."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recprobe.batches import phase_batches
from recprobe.data.prepare import leave_one_out
from recprobe.data.split import Split
from recprobe.target import Batch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

torch.set_num_threads(1)  # tests run in parallel workers; one thread each keeps them from fighting


@pytest.fixture(scope="session")
def _empty_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dataset-cache")


@pytest.fixture(autouse=True)
def _no_ambient_data_dir(monkeypatch, _empty_cache):
    """Tests say where data is; they never pick it up from the environment, never read the user's dataset cache,
    and never reach the network: a dataset they do not give is "fetched" from a closed local port and refused."""
    monkeypatch.delenv("RECPROBE_DATA_DIR", raising=False)
    monkeypatch.delenv("RECPROBE_DATASETS_CHECKSUMS", raising=False)
    monkeypatch.setenv("RECPROBE_CACHE_DIR", str(_empty_cache))
    monkeypatch.setenv("RECPROBE_DATASETS_URL", "http://127.0.0.1:9/offline")


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch):
    """Tests see the built-in adapters only, never a plugin that happens to be installed."""
    from recprobe.plugins import adapters

    monkeypatch.setenv("RECPROBE_LOAD_PLUGINS", "")
    adapters.cache_clear()
    yield
    adapters.cache_clear()


def probe_batch(split: Split, max_history: int, n: int = 16) -> Batch:
    """The test-phase batch of the first ``n`` users, as every target reads it."""
    return phase_batches(split, "test", max_history)(np.arange(min(n, split.n_users)))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def synthetic_frame(n_users: int = 40, n_items: int = 30, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    """Interactions with structure a model can learn: each user prefers one of three item blocks."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        block = u % 3
        pool = np.arange(n_items)[np.arange(n_items) % 3 == block]
        items = rng.choice(pool, size=min(per_user, len(pool)), replace=False)
        for t, i in enumerate(items):
            rows.append((str(u + 1), str(i + 1), float(1000 + t), float(rng.integers(3, 6))))
    return pd.DataFrame(rows, columns=["user", "item", "time", "rating"])


def synthetic_meta(n_items: int = 30, seed: int = 1) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """A title and two of five genres per item, as a real catalog has: the metadata describer has something to
    name (without features every latent is left undescribed)."""
    rng = np.random.default_rng(seed)
    genres = ["Drama", "Comedy", "Horror", "Action", "Western"]
    return {str(i + 1): (f"Film {i + 1}", {"genre": [str(g) for g in rng.choice(genres, 2, replace=False)]})
            for i in range(n_items)}


def synthetic_split() -> Split:
    made = leave_one_out(synthetic_frame(), "synthetic", synthetic_meta(), min_rating=None, core=3)
    return replace(made, origin={"source": "synthetic", "min_rating": None, "core": 3})


@pytest.fixture
def split() -> Split:
    return synthetic_split()


def write_atomic(folder: Path, frame: pd.DataFrame, name: str = "toy", items: bool = True) -> Path:
    """RecBole atomic files: the interactions, and (``items``) the items' titles and genres (``synthetic_meta``;
    the frame's item ids are then 1..n)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{r.user}\t{r.item}\t{r.rating}\t{r.time}" for r in frame.itertuples()]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    if not items:
        return folder
    catalog = ["item_id:token\ttitle:token\tgenre:token_seq"]
    catalog += [f"{item}\t{title}\t{' '.join(attributes['genre'])}"
                for item, (title, attributes) in synthetic_meta(int(frame["item"].astype(int).max())).items()]
    (folder / f"{name}.item").write_text("\n".join(catalog) + "\n")
    return folder


def use_synthetic(monkeypatch, split) -> None:
    """`fit` gets the synthetic split for the dataset it reads; every later stage reads the split it stored."""
    monkeypatch.setattr("recprobe.data.registry.load_dataset", lambda *a, **k: split)


def sae_run(split, tmp_path, monkeypatch, model: str = "bprmf"):
    """A run folder on the synthetic split: a BPRMF (or ``model``), its activations and a small SAE (8 latents,
    k = 2)."""
    from recprobe.models import TrainConfig
    from recprobe.runs.capture import capture_run
    from recprobe.runs.fit import fit_run
    from recprobe.runs.sae import train_sae_run
    from recprobe.sae.config import SAETrainConfig

    use_synthetic(monkeypatch, split)
    run = tmp_path / "run"
    fit_run(run, model, "synthetic", model_options={"d": 8}, train=TrainConfig(epochs=2), progress=False)
    capture_run(run, progress=False)
    train_sae_run(run, {"scale": 1, "k": 2}, SAETrainConfig(epochs=3), progress=False)
    return run


CHROMIUM_TEST = "tests/test_report.py::test_report_renders_in_headless_chromium"


def pytest_terminal_summary(terminalreporter):
    """Say in the log whether the browser test ran: it must never be skipped silently."""
    for outcome in ("passed", "failed", "skipped", "error"):
        if any(report.nodeid == CHROMIUM_TEST for report in terminalreporter.stats.get(outcome, [])):
            terminalreporter.write_line(f"headless Chromium render test: {outcome}")
