"""The interpret stage: describe, verify and score every latent of the run's SAE (or of another basis: the raw
dimensions, one or both signs, the SAE untrained, or trained with a frozen decoder or encoder).

    <run>/concepts/settings.json        describer, verifier, LLM, prompt version, N, seed, level mode, cases, made_from
    <run>/concepts/cases.safetensors    the cases (test: one per user; all: every position; metadata: made_from)
    <run>/concepts/concepts.jsonl       one line per latent, appended as each finishes
    <run>/concepts/summary.json         counts by confidence, similarity, written at the end

A killed run resumes where it stopped: finished latents are read back and skipped. Lines that cannot be read
(a write cut short by the kill, a damaged file) move to ``concepts.damaged.jsonl`` and are interpreted again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from recprobe.activations.store import ActivationStore
from recprobe.concepts.budget import CaseBudget, default_budget
from recprobe.concepts.cases import (
    CASE_KINDS,
    CaseKind,
    CaseSet,
    case_rows,
    record_cases,
    scorable_share,
)
from recprobe.concepts.interpret import (
    NO_TITLES,
    build_stages,
    describe_latent,
    interpret_latent,
    summarize,
    uses_llm,
)
from recprobe.concepts.labelers import METADATA_VERSION
from recprobe.concepts.llm import check_llm_spec
from recprobe.concepts.prompts import VERSION
from recprobe.concepts.records import append_record, repair_records, write_records
from recprobe.concepts.similarity import concept_similarity
from recprobe.errors import ConfigError, RecprobeError, StaleArtifactError
from recprobe.io import atomic_write, atomic_write_text, write_json
from recprobe.parallel import DataParallel
from recprobe.progress import stage_bar
from recprobe.runs.attributes import attribute_metrics, case_representations
from recprobe.runs.ladder import train_controls
from recprobe.runs.layout import ATTRIBUTES, CASES, CONTROL_BASES, DAMAGED, SETTINGS, SUMMARY
from recprobe.runs.lock import locked
from recprobe.runs.options import InterpretOptions, stage_options
from recprobe.runs.provenance import check_made_from
from recprobe.runs.run import Run, open_run
from recprobe.sae.faithfulness import DENSE_RATE
from recprobe.sae.io import CONFIG
from recprobe.schemas import ConceptSettings, read_checked
from recprobe.target import is_sequential

MIN_SCORABLE = 0.9  # the share of latents the paper's test cases must score for `auto` to keep them


@locked("interpret")
def interpret_run(run: Run | str | Path, options: InterpretOptions | None = None, *, progress: bool = True,
                  **fields: Any) -> dict[str, Any]:
    """Describe and verify the run's SAE latents and score each description; resumable. ``options`` (or its
    fields by name): ``recprobe.runs.options.InterpretOptions``. Results go to ``run/<folder>`` (default
    ``concepts``, or ``concepts-<basis>`` for another basis), so runs with other settings sit beside each other.
    ``cases``: ``test``, ``all`` or ``auto`` (see ``resolve_cases``). Concepts made with other settings, another SAE
    or other cases are refused unless ``overwrite``, which starts the folder over. Past a million cases only the
    case budget is kept (``recprobe.concepts.budget``; ``max_cases`` and ``top_cases``)."""
    o = stage_options(InterpretOptions, options, fields)
    if uses_llm(o.describer, o.verifier):
        check_llm_spec(o.llm)
    run = open_run(run)
    if o.basis in CONTROL_BASES:  # the control belongs to the run's SAE: trained here once, then kept
        train_controls(run, [o.basis], progress=progress)
    sae = run.basis(o.basis)
    out = run.layout.concepts(o.folder, basis=o.basis)
    todo_latents = list(range(sae.n_latents)) if o.latents is None else list(o.latents)
    outside = [j for j in todo_latents if not 0 <= j < sae.n_latents]
    if outside:
        raise ConfigError(f"latents {_ranges(outside)} do not exist: this {o.basis.upper()} basis has latents 0-{sae.n_latents - 1}")
    kind = resolve_cases(run, o.cases, o.n)
    settings = {"describer": o.describer, **({"describer_version": METADATA_VERSION} if o.describer == "metadata" else {}),
                "verifier": o.verifier, "llm": o.llm if uses_llm(o.describer, o.verifier) else None,
                "prompts": VERSION, "n": o.n, "seed": o.seed, "level_mode": o.level_mode, "basis": o.basis, "cases": kind,
                "made_from": run.cases_made_from(o.basis)}
    budget = o.case_budget
    if budget != default_budget(o.n):  # named only when not the default, so folders made before budgets stay current
        settings["case_budget"] = {"top": budget.top, "reservoir": budget.reservoir, "seed": budget.seed}
    parallel = DataParallel.from_env("cpu")
    if not parallel.main:  # under torchrun: record this process's block of the cases for rank 0, which does the rest
        if parallel.broadcast(None):
            record_cases(run.target, sae, run.split, kind=kind, budget=budget, parallel=parallel)
        return {}
    rebuild = run.interpret_command(out, o.basis)
    if (out / SETTINGS).exists() and not o.overwrite:
        previous = read_checked(out / SETTINGS, ConceptSettings, rebuild)  # older folders: test cases, the SAE
        check_made_from(str(out), previous["made_from"], settings["made_from"], rebuild)
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise StaleArtifactError(f"{out} holds concepts made with another {', '.join(changed)} ({ {k: previous.get(k) for k in changed} }, "
                                     f"now { {k: settings[k] for k in changed} }); start it over with `{rebuild}`, "
                                     "or keep it and write elsewhere with --folder NAME")
    if o.overwrite and out.exists():
        shutil.rmtree(out)
    created = not out.exists()
    try:
        write_json(out / SETTINGS, settings)
        alike = None if o.overwrite or (out / CASES).exists() else recorded_alike(run, settings, budget)
        if alike is not None:  # another folder holds these very cases (other latents, describer or verifier)
            atomic_write(out / CASES, lambda tmp: shutil.copyfile(alike, tmp))
        if parallel.broadcast(not (out / CASES).exists()):
            recorded = record_cases(run.target, sae, run.split, kind=kind, budget=budget, parallel=parallel)
            recorded.made_from = settings["made_from"]
            recorded.save(out / CASES)
        case_set = run.cases(out, basis=o.basis)
        reps = case_representations(run, case_set) if o.describer == "metadata" else None  # for the hard negatives
        describe, verify, counter = build_stages(o.describer, o.verifier, o.llm, case_set, run.split.catalog, run.split.name,
                                                 o.level_mode, reps)
    except BaseException:
        if created:  # a folder that could not even start (an LLM that does not load) is not left half made
            shutil.rmtree(out, ignore_errors=True)
        raise
    found = repair_records(out, sae.n_latents)
    records = found.records
    if hasattr(describe, "taken"):  # descriptions made before a resume stay theirs
        describe.taken.update({r["description"]: frozenset() for r in records if r.get("description")})
    done = {r["latent"] for r in records}
    todo = [j for j in todo_latents if j not in done]
    described = {}
    if o.describer == "metadata" and hasattr(verify, "prepare"):  # descriptions are cheap: embed them all at once
        described = {j: describe_latent(j, case_set, describe, o.n, o.seed) for j in todo}
        verify.prepare(text for found in described.values() for text in found[1:] if text)
    with stage_bar(progress) as bar:
        task = bar.add_task("interpret latents", total=len(todo))
        for latent in todo:
            record = interpret_latent(latent, case_set, describe, verify, o.n, o.seed, described.get(latent))
            append_record(out, record)
            records.append(record)
            calls = f" ({counter.calls} LLM prompts)" if counter is not None else ""
            bar.update(task, advance=1, description=f"interpret latents{calls}")
    if found.damaged:  # the latents interpreted again go back in their place: a repaired file reads as before
        records.sort(key=lambda r: r["latent"])
        write_records(out, records)
    summary = {**summarize(records, sae.n_latents), **concept_similarity(records, case_set, run.target.item_embeddings()),
               "cases": kind, "n_cases": case_set.n_cases, "users": case_set.n_users,
               **firing_on_cases(case_set, sae.n_latents),
               "item_text": "titles" if run.split.catalog.has_titles else NO_TITLES,
               "llm_prompts": counter.calls if counter is not None else 0,  # this invocation's
               "repaired": len(found.damaged), "folder": str(out)}
    if o.basis == "sae" and o.latents is None:  # every latent's attribute AUROC: with a full interpretation only
        attributes = attribute_metrics(run, case_set, reps)  # the describer's representations, when it took them
        write_json(out / ATTRIBUTES, attributes)
        summary["attributes"] = attributes.get("mean_best_auroc")
    if o.basis == "sae":  # a control's own counts are the measure the line speaks of, not a claim to check
        summary["controls"] = controls_line(run)
    if found.damaged:
        summary["repair_note"] = (f"{len(found.damaged)} damaged line(s) of {out.name}/concepts.jsonl moved to "
                                  f"{out.name}/{DAMAGED}; their latents were interpreted again")
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def controls_line(run: Run) -> str:
    """What the counts above mean beside the controls: the comparison's headline, or how to measure it."""
    from recprobe.runs.compare import headline, read_compare

    try:
        found = read_compare(run) if ActivationStore.finished(run.layout.activations) else None
    except StaleArtifactError as stale:  # a ladder SAE retrained since: the concepts stand, the comparison waits
        return f"counts alone do not tell a trained SAE from a random one, and the comparison is out of date: {stale}"
    if found is None:
        return (f"counts alone do not tell a trained SAE from a random one; measure it against its controls with "
                f"`recprobe train-sae --run {run.root} --seeds 5` and `recprobe compare --run {run.root}`")
    rows = headline(found)
    ahead = [r["metric"] for r in rows if r["verdict"] == "trained ahead"]
    return (f"against its controls (seeds {found['seeds']}): training is ahead with a 95% interval excluding 0 on "
            f"{len(ahead)} of {len(rows)} metrics ({', '.join(ahead) or 'none'}); `recprobe compare --run {run.root}` "
            "shows them all")


def recorded_alike(run: Run, settings: dict[str, Any], budget: CaseBudget) -> Path | None:
    """The cases file of another concepts folder of this run recorded from the same basis, kind of cases, case
    budget and inputs, and readable as such: a new folder copies it instead of recording every case again."""
    for folder in run.layout.concept_folders():
        try:
            theirs = json.loads((folder / SETTINGS).read_text())
            kept = CaseBudget(**theirs["case_budget"]) if "case_budget" in theirs else default_budget(theirs["n"])
            if not ((folder / CASES).is_file() and kept == budget
                    and all(theirs.get(key) == settings[key] for key in ("basis", "cases", "made_from"))):
                continue
            run.cases(folder, basis=settings["basis"])  # refuses a damaged or stale file: record anew instead
        except (OSError, ValueError, TypeError, KeyError, RecprobeError):
            continue
        return folder / CASES
    return None


def firing_on_cases(cases: CaseSet, n_latents: int) -> dict[str, float]:
    """Dead (never firing) and dense (firing on more than DENSE_RATE of them) fractions of the latents on the
    interpreted cases, beside train-sae's figures on the train vectors."""
    share = cases.firing_share(n_latents)
    return {"dead_on_cases": float((share == 0).mean()), "dense_on_cases": float((share > DENSE_RATE).mean())}


def resolve_cases(run: Run, cases: str, n: int) -> CaseKind:
    """``auto``: the paper's test cases, unless the target is sequential (as it declares: ``is_sequential``) and
    its SAE's test cases leave more than
    ``1 - MIN_SCORABLE`` of the latents with fewer than 2N activated users; then every position (``all``). The
    same for both bases of a run, so SAE latents and raw dimensions are compared on the same cases."""
    if cases not in CASE_KINDS:
        raise ConfigError(f"--cases must be one of {', '.join(CASE_KINDS)}, got {cases!r}")
    if cases != "auto":
        case_rows(run.split, cases, run.target.max_history)  # refuses 'all' for a general target
        return cases
    if not is_sequential(run.target) or not (run.layout.sae / CONFIG).is_file():
        return "test"
    sae = run.sae()
    return "test" if scorable_share(record_cases(run.target, sae, run.split), sae.n_latents, n) >= MIN_SCORABLE else "all"


def _ranges(latents: list[int]) -> str:
    shown = ", ".join(map(str, latents[:5]))
    return shown + (f" and {len(latents) - 5} more" if len(latents) > 5 else "")
