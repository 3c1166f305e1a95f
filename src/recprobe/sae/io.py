"""SAE files: ``cfg.json`` + ``sae_weights.safetensors`` in SAELens v6's layout, with the recommender's provenance
in the config; the same folder is what goes to and comes from the Hugging Face Hub. A TopK SAE is SAELens'
``topk``; BatchTopK and Matryoshka SAEs are saved for inference as SAELens saves its own, ``jumprelu`` with
the learned threshold on every latent (SAELens then reads the same code unless a vector exceeds ``k_max``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
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
THRESHOLD = "threshold"  # the thresholded architectures' extra tensor ([n_latents], one value repeated)


def saelens_architecture(config: SAEConfig) -> str:
    return "topk" if config.arch == "topk" else "jumprelu"


def weight_tensors(sae: TopKSAE) -> dict[str, torch.Tensor]:
    """What the weights file holds."""
    tensors = {name: getattr(sae, name).detach().cpu().contiguous() for name in TENSORS}
    if sae.config.arch != "topk":
        tensors[THRESHOLD] = sae.threshold.detach().cpu().expand(sae.n_latents).contiguous()
    return tensors


def sae_cfg(sae: TopKSAE, provenance: dict[str, Any]) -> dict[str, Any]:
    """SAELens v6 fields, then recprobe's own: the full SAEConfig and where the activations came from."""
    return {
        "architecture": saelens_architecture(sae.config), "d_in": sae.config.d_in, "d_sae": sae.n_latents,
        **({"k": sae.k} if sae.config.arch == "topk" else {}), "dtype": "float32",
        "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {"model_name": provenance.get("target"), "hook_name": provenance.get("site", "represent"),
                     "dataset_path": provenance.get("dataset_name"), "sae_lens_training_version": None},
        "recprobe": {"config": sae.config.model_dump(), "provenance": provenance},
    }


def save_sae(sae: TopKSAE, folder: str | Path, provenance: dict[str, Any], extra: dict[str, str] | None = None) -> Path:
    """Write the folder atomically (``recprobe.io.write_folder``). ``extra`` adds text files (metrics, card)."""

    def write(staging: Path) -> None:
        architecture = saelens_architecture(sae.config)
        save_file(weight_tensors(sae), staging / WEIGHTS, metadata={"format": "pt", "architecture": architecture})
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
    architecture = cfg.get("architecture") if isinstance(cfg, dict) else cfg
    if architecture != "topk" and not (architecture == "jumprelu" and "recprobe" in cfg):
        raise RecprobeError(f"{folder / CONFIG}: recprobe loads TopK SAEs (architecture 'topk') and the BatchTopK and "
                            f"Matryoshka SAEs it saved itself ('jumprelu' with a recprobe config), this is {architecture!r}")
    try:
        config = SAEConfig(**cfg["recprobe"]["config"]) if "recprobe" in cfg else SAEConfig(
            d_in=cfg["d_in"], n_latents=cfg["d_sae"], scale=None, k=cfg["k"])
    except (KeyError, TypeError, ValidationError) as e:
        raise RecprobeError(f"{folder / CONFIG} does not describe a TopK SAE: {' '.join(str(e).split())}") from e
    if saelens_architecture(config) != architecture:
        raise RecprobeError(f"{folder / CONFIG}: architecture {architecture!r} disagrees with recprobe's config "
                            f"(arch {config.arch!r}); save the folder again with recprobe (save_sae)")
    saelens = {"d_in": config.d_in, "d_sae": config.n_latents, **({"k": config.k} if config.arch == "topk" else {})}
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
    expected = {name: tuple(t.shape) for name, t in weight_tensors(sae).items()}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if found != expected:
        raise RecprobeError(f"{folder / WEIGHTS} holds tensors {found}, but {CONFIG} implies {expected}")
    broken = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise RecprobeError(f"{folder / WEIGHTS} holds NaN or infinite values in {', '.join(sorted(broken))}; an SAE "
                            "with them fires on nothing or everything: train it again with `recprobe train-sae`")
    if THRESHOLD in tensors:
        threshold = tensors.pop(THRESHOLD)
        if not bool((threshold == threshold[0]).all()):
            raise RecprobeError(f"{folder / WEIGHTS}: the thresholds differ between latents; recprobe's BatchTopK "
                                "SAEs share one, so this file was not saved by recprobe")
        tensors[THRESHOLD] = threshold[0]
    sae.load_state_dict(tensors, strict=False)  # every tensor was checked above; a TopK SAE has no threshold
    sae.folder = folder
    return sae.eval(), cfg
