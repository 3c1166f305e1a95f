"""The ladder of SAEs behind every comparison (``recprobe train-sae --seeds S``): for each architecture and seed,
the trained SAE and its trained controls, all over the run's one activation store, in ``<run>/saes/``.

    <run>/saes/<arch>-<variant>-seed<s>/    an SAE folder (cfg.json, weights, metrics.json)

``variant`` is ``trained``, ``frozen-decoder`` (decoder kept at its seeded initialisation, encoder trained) or
``frozen-encoder`` (encoder kept, decoder trained): Korznikov et al. (2026) find such SAEs within ~0.03 of
trained ones on LLMs. The untrained SAE and the raw dimensions need no training (``recprobe.runs.compare``).
A finished folder made from the same activations and settings is kept, so an interrupted ladder resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from recprobe.errors import ConfigError, RunFolderError, StaleArtifactError
from recprobe.hashing import files_hash
from recprobe.io import read_json
from recprobe.runs.lock import locked
from recprobe.runs.options import built
from recprobe.runs.run import Run, open_run
from recprobe.runs.sae import selection
from recprobe.sae.config import ARCHITECTURES, CONTROLS, SAEConfig, SAETrainConfig
from recprobe.sae.faithfulness import reconstruction_metrics
from recprobe.sae.io import CONFIG, METRICS, WEIGHTS, load_sae, save_sae
from recprobe.sae.train import train_sae

VARIANTS = ("trained", *CONTROLS)
FREEZE = {"trained": "none", "frozen-decoder": "decoder", "frozen-encoder": "encoder"}


@dataclass(frozen=True)
class Rung:
    """One SAE of the ladder."""

    arch: str
    variant: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.variant}-seed{self.seed}"

    def config(self, d_in: int, options: dict[str, Any]) -> SAEConfig:
        rung = {"arch": self.arch, "freeze": FREEZE[self.variant], "seed": self.seed}
        return built(SAEConfig, d_in=d_in, **{**options, **rung})


def rungs(archs: Sequence[str], seeds: int, variants: Sequence[str] = VARIANTS) -> list[Rung]:
    for arch in archs:
        if arch not in ARCHITECTURES:
            raise ConfigError(f"--arch must be among {', '.join(ARCHITECTURES)}, got {arch!r}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be 1 or more, got {seeds}")
    return [Rung(arch, variant, seed) for arch in archs for seed in range(seeds) for variant in variants]


def trained_rungs(folder: Path) -> list[Rung]:
    """The finished SAEs of ``<run>/saes``, in name order."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if (path / CONFIG).is_file():
            arch, _, rest = path.name.partition("-")
            variant, _, seed = rest.rpartition("-seed")
            if arch in ARCHITECTURES and variant in VARIANTS and seed.isdigit():
                found.append(Rung(arch, variant, int(seed)))
    return found


def ladder_hash(run: Run) -> str:
    """One hash of every finished SAE of the ladder, by name and weights: what is measured on the ladder is stale
    once one of them is retrained (the run's frozen controls are rungs too) or another is added."""
    return files_hash({rung.name: run.layout.ladder(rung.name) / WEIGHTS for rung in trained_rungs(run.layout.saes)})


def _is_current(folder: Path, config: SAEConfig, made_from: dict[str, str]) -> bool:
    """Whether ``folder`` holds an SAE of this config, trained the same way, on these activations."""
    if not (folder / CONFIG).is_file():
        return False
    recorded = read_json(folder / CONFIG).get("recprobe", {})
    try:  # read through SAEConfig: a field added since it was written takes its default
        same_config = SAEConfig(**recorded.get("config", {})) == config
    except (ValidationError, TypeError):  # a damaged cfg.json: not current, trained again
        return False
    return same_config and all(
        recorded.get("provenance", {}).get(key) == value for key, value in made_from.items())


@locked("train-sae")
def train_ladder(run: Run | str | Path, archs: Sequence[str] = ("topk",), seeds: int = 5,
                 sae_options: dict[str, Any] | None = None, train: SAETrainConfig | None = None, *,
                 variants: Sequence[str] = VARIANTS, progress: bool = True,
                 on_rung: Callable[[Rung, dict[str, Any], bool], None] | None = None) -> list[Rung]:
    """Train every rung not yet trained on the run's current activations with these settings. ``on_rung`` is
    called after each with its test reconstruction metrics and whether it was kept from before."""
    run = open_run(run)
    return train_rungs(run, rungs(archs, seeds, variants), sae_options, train, progress=progress, on_rung=on_rung)


def train_rungs(run: Run, todo: Sequence[Rung], sae_options: dict[str, Any] | None = None,
                train: SAETrainConfig | None = None, *, progress: bool = True,
                on_rung: Callable[[Rung, dict[str, Any], bool], None] | None = None) -> list[Rung]:
    """``train_ladder``'s work for given rungs, for a caller that holds the run's lock."""
    store = run.activations(verify=True)
    options = {key: value for key, value in (sae_options or {}).items() if key not in ("arch", "freeze", "seed", "d_in")}
    train = train or SAETrainConfig()
    trained_how = json.dumps(train.model_dump(exclude={"device", "checkpoint_every"}), sort_keys=True)
    made_from = {**run.made_from(), "activations": store.content, "training": trained_how}
    for rung in todo:
        folder = run.layout.ladder(rung.name)
        config = rung.config(store.d, options)
        kept = _is_current(folder, config, made_from)
        if kept:
            metrics = read_json(folder / METRICS) if (folder / METRICS).is_file() else {}
        else:
            items = run.target.item_embeddings() if train.kl_weight > 0 else None
            sae, result = train_sae(store, config, train, progress=progress, items=items)
            metrics = {part: reconstruction_metrics(sae, store, part) for part in store.splits()}
            metrics |= {"best_epoch": result.best_epoch, "train_seconds": result.train_seconds,
                        "history": result.history, "selected_on": selection(result.selected_on, run.target.max_history)}
            save_sae(sae, folder, {**store.provenance, **made_from, "d_in": store.d},
                     extra={METRICS: json.dumps(metrics, indent=2) + "\n"})
        if on_rung is not None:
            on_rung(rung, metrics.get("test", {}), kept)
    return list(todo)


def control_rung(run: Run, variant: str) -> Rung:
    """The ladder rung that is the run's own SAE (``<run>/sae``) with its decoder or encoder frozen."""
    config = run.sae().config
    return Rung(config.arch, variant, config.seed)


def train_controls(run: Run, variants: Sequence[str] = CONTROLS, *, progress: bool = True) -> list[Rung]:
    """Train the frozen controls of the run's SAE: its config and training settings, one part frozen (kept when
    already trained so). For a caller that holds the run's lock."""
    config, metrics = run.sae().config, run.layout.sae / METRICS
    trained_how = read_json(metrics).get("train_config") if metrics.is_file() else None  # none: an SAE from elsewhere
    train = SAETrainConfig(**{**trained_how, "device": "cpu"}) if trained_how else None
    return train_rungs(run, [control_rung(run, variant) for variant in variants], config.model_dump(), train,
                       progress=progress)


def load_control(run: Run, variant: str):
    """A frozen control of the run's SAE, refused when missing or made with other settings than the SAE's."""
    rung = control_rung(run, variant)
    rebuild = f"recprobe interpret --run {run.root} --basis {variant}"
    if not (run.layout.ladder(rung.name) / CONFIG).is_file():
        raise RunFolderError(f"{run.root} has no {variant} control of its SAE; `{rebuild}` trains it (as many seconds "
                             "as train-sae took)")
    sae = load_rung(run, rung)
    expected = run.sae().config.model_copy(update={"freeze": FREEZE[variant]})
    if sae.config != expected:
        raise StaleArtifactError(f"{run.layout.ladder(rung.name)} was trained with other settings than {run.layout.sae}; "
                                 f"retrain it with `{rebuild} --overwrite`")
    return sae


def load_rung(run: Run, rung: Rung):
    """A ladder SAE, refused when it was trained on other activations than the run's current ones."""
    from recprobe.runs.provenance import check_made_from

    folder = run.layout.ladder(rung.name)
    sae, cfg = load_sae(folder)
    current = {**run.made_from(), "activations": run.activations().content}
    check_made_from(str(folder), cfg.get("recprobe", {}).get("provenance", {}), current,
                    f"recprobe train-sae --run {run.root} --seeds {rung.seed + 1} --arch {rung.arch}")
    return sae
