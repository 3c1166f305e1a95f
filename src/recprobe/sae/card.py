"""The model card that travels with an SAE folder (README.md on the Hub)."""

from __future__ import annotations

from typing import Any

from recprobe.sae.config import SAEConfig


def model_card(config: SAEConfig, provenance: dict[str, Any], metrics: dict[str, Any]) -> str:
    after, before = metrics["after"], metrics["before"]
    rows = []
    for phase in ("dev", "test"):
        for key in ("HR@10", "NDCG@10", "HR@20", "NDCG@20"):
            rows.append(f"| {phase} {key} | {after[f'original_{phase}'][key]:.4f} | "
                        f"{before[f'spliced_{phase}'][key]:.4f} | {after[f'spliced_{phase}'][key]:.4f} |")
    for key in ("NDCG@10_recovered", "loss_recovered", "top10_overlap"):
        if "splice_test" in after:
            rows.append(f"| test {key} | 1 | {_cell(before['splice_test'][key])} | {_cell(after['splice_test'][key])} |")
    recon = after.get("reconstruction_test") or next(v for k, v in after.items() if k.startswith("reconstruction_"))
    return "\n".join([
        "---", "library_name: recprobe", "tags: [recprobe, sparse-autoencoder, recommender, topk-sae]", "---", "",
        f"# TopK SAE on {provenance.get('target')} ({provenance.get('dataset_name')})", "",
        f"A TopK sparse autoencoder (n_latents = {config.n_latents}, k = {config.k}) trained by "
        "[recprobe](https://github.com/recprobe/recprobe) on the user representation the recommender builds right "
        "before its prediction layer.", "",
        "## Provenance", "",
        *(f"- **{key}**: `{value}`" for key, value in provenance.items()), "",
        "## Faithfulness", "",
        f"Test reconstruction: FVU {recon['fvu']:.4f}, MSE {recon['mse']:.3g}, L0 {recon['l0']:.2f}, "
        f"dead {recon['dead_fraction']:.1%}, dense {recon['dense_fraction']:.1%}.", "",
        "Full-ranking metrics of the recommender, and with the SAE's reconstruction spliced in before scoring:", "",
        "| metric | original | spliced, random init | spliced, trained |", "|---|---|---|---|", *rows, "",
        "Recovered: where the spliced model lies between the representation replaced by its mean (0) and the "
        "original (1); top-10 overlap: the share of each user's original top 10 the spliced model keeps.", "",
        "## Use", "", "```python", "from recprobe.sae import TopKSAE", "",
        'sae = TopKSAE.from_pretrained("<this repo id or a local folder>")',
        "values, indices = sae.encode(representations)  # [B, k] each", "```", "",
    ])


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
