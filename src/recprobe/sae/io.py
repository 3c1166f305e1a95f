"""SAE files: ``cfg.json`` + ``sae_weights.safetensors`` in SAELens v6's layout (``architecture: "topk"``), with
the recommender's provenance in the config; the same folder is what goes to and comes from the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from recprobe.errors import RecprobeError, RunFolderError
from recprobe.io import read_json, write_folder, write_json
from recprobe.sae.config import SAEConfig
from recprobe.sae.topk import TopKSAE

CONFIG, WEIGHTS = "cfg.json", "sae_weights.safetensors"
METRICS = "metrics.json"  # what train-sae measured, beside the weights
HUB_FILES = (CONFIG, WEIGHTS, "README.md", METRICS)
TENSORS = ("W_enc", "W_dec", "b_enc", "b_dec")


def sae_cfg(sae: TopKSAE, provenance: dict[str, Any]) -> dict[str, Any]:
    """SAELens v6 fields, then recprobe's own: the full SAEConfig and where the activations came from."""
    return {
        "architecture": "topk", "d_in": sae.config.d_in, "d_sae": sae.n_latents, "k": sae.k, "dtype": "float32",
        "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {"model_name": provenance.get("target"), "hook_name": provenance.get("site", "represent"),
                     "dataset_path": provenance.get("dataset_name"), "sae_lens_training_version": None},
        "recprobe": {"config": sae.config.model_dump(), "provenance": provenance},
    }


def save_sae(sae: TopKSAE, folder: str | Path, provenance: dict[str, Any], extra: dict[str, str] | None = None) -> Path:
    """Write the folder atomically (``recprobe.io.write_folder``). ``extra`` adds text files (metrics, card)."""

    def write(staging: Path) -> None:
        tensors = {name: getattr(sae, name).detach().cpu().contiguous() for name in TENSORS}
        save_file(tensors, staging / WEIGHTS, metadata={"format": "pt", "architecture": "topk"})
        write_json(staging / CONFIG, sae_cfg(sae, provenance))
        for name, text in (extra or {}).items():
            (staging / name).write_text(text, encoding="utf-8")

    return write_folder(folder, write)


def load_sae(folder: str | Path) -> tuple[TopKSAE, dict[str, Any]]:
    """The SAE in ``folder`` and its cfg.json; every problem with the files is a RecprobeError that names it."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise RunFolderError(f"{folder} holds no SAE ({CONFIG} and {WEIGHTS}); train one with `recprobe train-sae`")
    cfg = read_json(folder / CONFIG)
    if not isinstance(cfg, dict) or cfg.get("architecture") != "topk":
        raise RecprobeError(f"{folder / CONFIG}: recprobe loads TopK SAEs (architecture 'topk'), this is {cfg.get('architecture') if isinstance(cfg, dict) else cfg!r}")
    try:
        config = SAEConfig(**cfg["recprobe"]["config"]) if "recprobe" in cfg else SAEConfig(
            d_in=cfg["d_in"], n_latents=cfg["d_sae"], scale=None, k=cfg["k"])
    except (KeyError, TypeError, ValidationError) as e:
        raise RecprobeError(f"{folder / CONFIG} does not describe a TopK SAE: {' '.join(str(e).split())}") from e
    saelens = {"d_in": config.d_in, "d_sae": config.n_latents, "k": config.k}
    disagree = {key: cfg[key] for key, value in saelens.items() if key in cfg and cfg[key] != value}
    if disagree:
        raise RecprobeError(f"{folder / CONFIG}: the SAELens fields {disagree} disagree with recprobe's own config "
                            f"({ {key: saelens[key] for key in disagree} }), so SAELens and recprobe would read different SAEs; "
                            "save the folder again with recprobe (save_sae) or fix the fields")
    try:
        tensors = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError) as e:
        raise RecprobeError(f"{folder / WEIGHTS} is not a readable safetensors file ({e})") from e
    sae = TopKSAE(config)
    expected = {name: tuple(getattr(sae, name).shape) for name in TENSORS}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if found != expected:
        raise RecprobeError(f"{folder / WEIGHTS} holds tensors {found}, but {CONFIG} implies {expected}")
    sae.load_state_dict(tensors)
    sae.folder = folder
    return sae.eval(), cfg
