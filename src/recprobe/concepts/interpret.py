"""Interpret one latent: describe it, verify the description on unseen cases, score it; and summarise many.
The run-folder stage that drives this over every latent is ``recprobe.runs.interpret``."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from recprobe.concepts.cases import CaseSet, LatentSample, LevelMode, levels, sample_latent
from recprobe.concepts.describe import LLMDescriber
from recprobe.concepts.labelers import NOTHING_STANDS_OUT, MetadataDescriber
from recprobe.concepts.llm import CountingLLM, load_llm
from recprobe.concepts.prompts import domain_of, load_prompts
from recprobe.concepts.scoring import auroc, confidence
from recprobe.concepts.verify import EmbeddingVerifier, LikelihoodVerifier, LLMVerifier
from recprobe.data.split import Catalog

NO_TITLES = "this dataset has no item titles: items read as their id and category label"


def most_confident(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verified concepts, most confident first; ties broken by AUROC, then by how many cases they fire on."""
    scored = [r for r in records if r.get("confidence") is not None
              and r.get("description") != NOTHING_STANDS_OUT]  # a folder from describer version 2 scored it
    return sorted(scored, key=lambda r: (-r["confidence"], -(r.get("auroc") or 0), -r["n_active"], r["latent"]))


def card_description(record: dict[str, Any] | None) -> str:
    """What a latent's card says it is: its description, else why it has none."""
    record = record or {}
    why = {"insufficient": "too few activated users (or other users to verify against) to describe and verify",
           "unparsable": "the describer's answer did not parse"}
    return record.get("description") or record.get("reason") or why.get(record.get("status"), "not interpreted yet")


Describer = Literal["metadata", "llm"]
Verifier = Literal["embedding", "llm", "llm-likelihood"]


def describe_latent(latent: int, cases: CaseSet, describer, n: int, seed: int) -> tuple[LatentSample, str | None, str | None]:
    """The latent's sample, its description, and the description of unrelated cases (the random-description
    baseline); no descriptions for a latent with too few activated cases."""
    sample = sample_latent(cases, latent, n=n, seed=seed)
    if sample.status != "ok":
        return sample, None, None
    describe = getattr(describer, "describe_exclusive", describer.describe)  # one latent per description
    return (sample, describe(latent, describer.describing_rows(latent, sample)),
            describer.describe(latent, sample.calibration))


def interpret_latent(latent: int, cases: CaseSet, describer, verifier, n: int, seed: int,
                     described: tuple[LatentSample, str | None, str | None] | None = None) -> dict[str, Any]:
    """Describe (unless ``described`` holds ``describe_latent``'s result already), verify and score one latent."""
    sample, description, baseline_description = described or describe_latent(latent, cases, describer, n, seed)
    record: dict[str, Any] = {"latent": latent, "status": sample.status, "n_active": sample.n_active,
                              "active_users": sample.active_users}
    if sample.status != "ok":
        return record
    if description is None or baseline_description is None:
        return {**record, "status": "unparsable"}
    if description == NOTHING_STANDS_OUT:  # no concept to verify: a verifier may still separate the phrase by chance
        return {**record, "status": "undescribed", "description": description}
    if getattr(describer, "repeats_example", lambda _: False)(description):  # nor in a copy of the prompt's example
        return {**record, "status": "undescribed", "description": None,
                "reason": f"the LLM repeated its prompt's example ({description!r})"}
    rows = sample.verification + sample.negatives
    levels, scores = verifier.levels(description, rows, sample.construction, sample.calibration)
    baseline_levels, _ = verifier.levels(baseline_description, rows, sample.construction, sample.calibration)
    return {
        **record, "description": description,
        **confidence(levels[:n], levels[n:]),
        "auroc": auroc(scores[:n], scores[n:]),
        "baseline_description": baseline_description,
        "baseline_confidence": confidence(baseline_levels[:n], baseline_levels[n:])["confidence"],
        "construction": [int(cases.users[r]) for r in sample.construction],
        "verification": [int(cases.users[r]) for r in sample.verification],
        "negatives": [int(cases.users[r]) for r in sample.negatives],
        "levels": levels.tolist(),
    }


def summarize(records: list[dict[str, Any]], n_latents: int) -> dict[str, Any]:
    scored = [r for r in records if r["status"] == "ok"]
    c = np.array([r["confidence"] for r in scored])
    return {
        "latents": n_latents, "interpreted": len(records),
        "insufficient": sum(r["status"] == "insufficient" for r in records),
        "unparsable": sum(r["status"] == "unparsable" for r in records),
        "undescribed": sum(r["status"] == "undescribed" for r in records),
        "concepts": {"C=1.0": int((c == 1.0).sum()), "C>=0.9": int((c >= 0.9).sum()),
                     "C>=0.8": int((c >= 0.8).sum()), "all": len(scored)},
        "mean_confidence": float(c.mean()) if len(c) else None,
        "mean_baseline_confidence": float(np.mean([r["baseline_confidence"] for r in scored])) if scored else None,
        "mean_auroc": float(np.nanmean([r["auroc"] for r in scored])) if scored else None,
    }


def uses_llm(describer: str, verifier: str) -> bool:
    return describer == "llm" or verifier in ("llm", "llm-likelihood")


def build_stages(describer: str, verifier: str, llm_spec: str, cases: CaseSet, catalog: Catalog, dataset: str,
                 level_mode: LevelMode, reps: np.ndarray | None = None):
    """The describer and verifier objects, and the LLM (counting its prompts), loaded only when one needs it.
    ``reps``: the cases' representations, for the metadata describer's hard negatives."""
    llm = CountingLLM(load_llm(llm_spec)) if uses_llm(describer, verifier) else None
    prompts = load_prompts()
    made_describer = (MetadataDescriber(cases, catalog, reps) if describer == "metadata"
                      else LLMDescriber(llm, prompts, domain_of(dataset), cases, catalog, levels(cases, level_mode)))
    made_verifier = {"embedding": lambda: EmbeddingVerifier(cases, catalog),
                     "llm": lambda: LLMVerifier(llm, prompts, cases, catalog),
                     "llm-likelihood": lambda: LikelihoodVerifier(llm, cases, catalog)}[verifier]()
    return made_describer, made_verifier, llm
