"""Interpret every latent of a run's SAE: describe it, verify the description on unseen cases, score it.

    runs/<name>/concepts/settings.json        describer, verifier, LLM, prompt version, N, seed, level mode
    runs/<name>/concepts/cases.safetensors    every test user's case
    runs/<name>/concepts/concepts.jsonl       one line per latent, appended as each finishes
    runs/<name>/concepts/summary.json         counts by confidence, similarity, written at the end

With ``basis="raw"`` the same happens in ``concepts-raw/`` for the raw dimensions of the representation (the
paper's BaseModel row) instead of the SAE's latents.

A killed run resumes where it stopped: finished latents are read back and skipped, and a line cut short by
the kill is dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from recprobe.concepts.baseline import RawDimensions
from recprobe.concepts.cases import CaseSet, LevelMode, levels, record_cases, sample_latent
from recprobe.concepts.describe import LLMDescriber
from recprobe.concepts.labelers import MetadataDescriber
from recprobe.concepts.llm import CountingLLM, load_llm
from recprobe.concepts.prompts import VERSION, domain_of, load_prompts
from recprobe.concepts.scoring import auroc, confidence
from recprobe.concepts.similarity import concept_similarity
from recprobe.concepts.verify import EmbeddingVerifier, LikelihoodVerifier, LLMVerifier
from recprobe.data.split import Catalog
from recprobe.errors import RecprobeError, RunFolderError
from recprobe.io import atomic_write_text, read_json, write_json
from recprobe.locking import locked
from recprobe.models import load_recommender
from recprobe.sae.io import load_sae

FOLDER = "concepts"
NO_TITLES = "this dataset has no item titles: items read as their id and category label"


def read_finished(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a concepts.jsonl; a trailing partial line (a killed write) is cut off the file."""
    if not path.exists():
        return []
    records, good_bytes = [], 0
    with open(path, "rb") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
            if not line.endswith(b"\n"):
                records.pop()
                break
            good_bytes += len(line)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return records


def most_confident(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verified concepts, most confident first; ties broken by AUROC, then by how many cases they fire on."""
    scored = [r for r in records if r.get("confidence") is not None]
    return sorted(scored, key=lambda r: (-r["confidence"], -(r.get("auroc") or 0), -r["n_active"], r["latent"]))


def append_record(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


DESCRIBERS, VERIFIERS = ("metadata", "llm"), ("embedding", "llm", "llm-likelihood")


def interpret_latent(latent: int, cases: CaseSet, describer, verifier, n: int, seed: int) -> dict[str, Any]:
    sample = sample_latent(cases, latent, n=n, seed=seed)
    record: dict[str, Any] = {"latent": latent, "status": sample.status, "n_active": sample.n_active}
    if sample.status != "ok":
        return record
    description = describer.describe(latent, describer.describing_rows(latent, sample))
    baseline_description = describer.describe(latent, sample.calibration)  # what unrelated cases share
    if description is None or baseline_description is None:
        return {**record, "status": "unparsable"}
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
        "concepts": {"C=1.0": int((c == 1.0).sum()), "C>=0.9": int((c >= 0.9).sum()),
                     "C>=0.8": int((c >= 0.8).sum()), "all": len(scored)},
        "mean_confidence": float(c.mean()) if len(c) else None,
        "mean_baseline_confidence": float(np.mean([r["baseline_confidence"] for r in scored])) if scored else None,
        "mean_auroc": float(np.nanmean([r["auroc"] for r in scored])) if scored else None,
    }


def uses_llm(describer: str, verifier: str) -> bool:
    return describer == "llm" or verifier in ("llm", "llm-likelihood")


def build_stages(describer: str, verifier: str, llm_spec: str, cases: CaseSet, catalog: Catalog, dataset: str,
                 level_mode: LevelMode):
    """The describer and verifier objects, and the LLM (counting its prompts), loaded only when one needs it."""
    llm = CountingLLM(load_llm(llm_spec)) if uses_llm(describer, verifier) else None
    prompts = load_prompts()
    made_describer = (MetadataDescriber(cases, catalog) if describer == "metadata"
                      else LLMDescriber(llm, prompts, domain_of(dataset), cases, catalog, levels(cases, level_mode)))
    made_verifier = {"embedding": lambda: EmbeddingVerifier(cases, catalog),
                     "llm": lambda: LLMVerifier(llm, prompts, cases, catalog),
                     "llm-likelihood": lambda: LikelihoodVerifier(llm, cases, catalog)}[verifier]()
    return made_describer, made_verifier, llm


@locked("interpret")
def interpret_run(run: str | Path, *, data_dir: str | Path | None = None, describer: str = "metadata",
                  verifier: str = "embedding", llm: str = "smollm2", n: int = 5, seed: int = 0,
                  level_mode: LevelMode = "max", latents: Iterable[int] | None = None, basis: str = "sae",
                  folder: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Describe and verify the run's SAE latents and score each description; resumable. Results go to
    ``run/<folder>`` (default ``concepts``, or ``concepts-raw`` for the raw basis), so runs with other
    settings can sit beside each other."""
    if describer not in DESCRIBERS or verifier not in VERIFIERS:
        raise RecprobeError(f"describer must be one of {', '.join(DESCRIBERS)} and verifier one of "
                            f"{', '.join(VERIFIERS)}; got {describer!r} and {verifier!r}")
    if basis not in ("sae", "raw"):
        raise RecprobeError(f"basis must be 'sae' (the SAE's latents) or 'raw' (the representation's dimensions), got {basis!r}")
    run = Path(run)
    folder = run / (folder or (FOLDER if basis == "sae" else f"{FOLDER}-raw"))
    if folder.parent != run:
        raise RecprobeError(f"the concepts folder must be a plain name inside the run folder, got {folder.name!r}")
    settings = {"describer": describer, "verifier": verifier, "llm": llm if uses_llm(describer, verifier) else None,
                "prompts": VERSION, "n": n, "seed": seed, "level_mode": level_mode}
    if (folder / "settings.json").exists() and read_json(folder / "settings.json") != settings:
        raise RunFolderError(
            f"{folder} holds concepts made with {read_json(folder / 'settings.json')}, not {settings}; "
            f"remove {folder} to start over with the new settings"
        )
    model, split = load_recommender(run, data_dir)
    sae = load_sae(run / "sae")[0] if basis == "sae" else RawDimensions(model.d_model)
    write_json(folder / "settings.json", settings)
    cases_path = folder / "cases.safetensors"
    if not cases_path.exists():
        record_cases(model, sae, split).save(cases_path)
    cases = CaseSet.load(cases_path)
    describe, verify, counter = build_stages(describer, verifier, llm, cases, split.catalog, split.name, level_mode)
    path = folder / "concepts.jsonl"
    records = read_finished(path)
    done = {r["latent"] for r in records}
    todo = [j for j in (range(sae.n_latents) if latents is None else latents) if j not in done]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("interpret latents", total=len(todo))
        for latent in todo:
            record = interpret_latent(latent, cases, describe, verify, n, seed)
            append_record(path, record)
            records.append(record)
            calls = f" ({counter.calls} LLM prompts)" if counter is not None else ""
            bar.update(task, advance=1, description=f"interpret latents{calls}")
    summary = {**summarize(records, sae.n_latents), **concept_similarity(records, cases, model.item_embeddings()),
               "item_text": "titles" if split.catalog.has_titles else NO_TITLES,
               "llm_prompts": counter.calls if counter is not None else 0}  # this invocation's
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
