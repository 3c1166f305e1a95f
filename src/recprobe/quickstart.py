"""`recprobe quickstart`: every stage on MovieLens-100K with the embedded defaults, then the HTML report.

fit SASRec -> capture every train position -> TopK SAE -> concepts for every latent (metadata describer,
MiniLM embedding verifier), and for two controls (the SAE untrained, the raw dimensions) -> the embedded LLM
(SmolLM2) verifying the most confident concepts a second time -> steering (paper Table 7, and its rule over
every confident concept of the SAE and the controls) and de-biasing -> report. A stage whose output is already
in the run folder is reused, so a rerun after an interruption picks up where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from recprobe.concepts.highlights import broad_reason
from recprobe.concepts.interpret import most_confident
from recprobe.concepts.records import read_records
from recprobe.data.source import DataSource
from recprobe.errors import ConfigError
from recprobe.report import build_report
from recprobe.runs import Run
from recprobe.runs.capture import capture_run
from recprobe.runs.fit import fit_run
from recprobe.runs.interpret import interpret_run
from recprobe.runs.sae import train_sae_run
from recprobe.runs.steering import SteeringRun
from recprobe.runs.table7_every import table7_every_run, verdict_lines

QUICKSTART_DATA = DataSource(dataset="ml-100k")
LLM_FOLDER = "concepts-llm-check"  # concepts-llm: what the quickstart wrote when the LLM described
CONTROLS = ("untrained", "raw")  # the frozen-decoder and -encoder controls train two more SAEs: ~3 more minutes


def quickstart(out: str | Path = "runs/quickstart", *, data: DataSource = QUICKSTART_DATA, llm: str = "smollm2",
               llm_latents: int = 3, console: Console | None = None) -> Path:
    """Run every stage into ``out``; returns the report's index.html."""
    if llm_latents < 0:
        raise ConfigError(f"--llm-latents: how many concepts the LLM checks, 0 or more; got {llm_latents}")
    out, console = Path(out), console or Console(markup=False, highlight=False)
    timings: list[tuple[str, float]] = []

    def stage(name: str, work: Callable[[], Any], done: bool = False) -> Any:
        if done:
            console.print(Text(f"{name}: already in {out}, reused", style="dim"))
            return None
        started = time.perf_counter()
        result = work()
        timings.append((name, time.perf_counter() - started))
        console.print(Text.assemble((name, "green"), f" done in {timings[-1][1]:.0f} s"))
        return result

    metrics, _ = stage(f"fit SASRec on {data.dataset}", lambda: fit_run(out, "sasrec", data))
    console.print(f"  test HR@10 {metrics['test']['HR@10']:.4f}, NDCG@10 {metrics['test']['NDCG@10']:.4f}")
    run = Run.open(out)
    stage("capture", lambda: capture_run(run), done=(run.layout.activations / "index.json").exists())
    stage("train the TopK SAE", lambda: train_sae_run(run), done=(run.layout.sae / "cfg.json").exists())
    summary = stage("interpret every latent (metadata + embedding)", lambda: interpret_run(run))
    console.print(f"  concepts with C >= 0.8: {summary['concepts']['C>=0.8']} of {summary['concepts']['all']} verified")
    for basis in CONTROLS:
        control = stage(f"interpret the {basis} control", lambda basis=basis: interpret_run(run, basis=basis))
        console.print(f"  {basis}: concepts with C >= 0.8: {control['concepts']['C>=0.8']}")
    share = run.cases().firing_share(run.sae().n_latents)
    confident = [r for r in most_confident(run.concepts()) if broad_reason(float(share[r["latent"]])) is None][:llm_latents]
    if llm_latents:
        # the embedded model only where it measurably works: its likelihoods rank descriptions (AUROC 0.76 on 64
        # latents), while the descriptions it writes copy its prompt's example (docs/results.md)
        stage(f"{llm} checks {len(confident)} concepts", lambda: interpret_run(
            run, describer="metadata", verifier="llm-likelihood", llm=llm, latents=[r["latent"] for r in confident],
            folder=LLM_FOLDER))
        checked = {r["latent"]: r for r in read_records(run.layout.concepts(LLM_FOLDER)).records}
        for record in confident:
            again = checked.get(record["latent"], {})
            # described among 3 latents, a description need not grow to stay apart from the others' as among all
            same = again.get("description") == record["description"]
            console.print(f"  latent {record['latent']} ({again.get('description')!r}): C = {again.get('confidence')} by "
                          f"{llm}'s likelihoods, " + (f"{record['confidence']} by MiniLM" if same else
                                                      f"MiniLM's {record['confidence']} was for {record['description']!r}"))
    steering = SteeringRun(run)
    table = stage("steering (Table 7)", steering.table7)
    for row in table["latents"]:
        hits = " / ".join(f"{s['hit@10']:.2f}" for s in row["metadata"]["scales"])
        console.print(f"  latent {row['latent']} ({row['feature']}): Hit@10 at -10x / 1x / +10x = {hits}")
    every = stage("Table 7's rule over every confident concept", lambda: table7_every_run(run))
    for basis, row in every["bases"].items():
        console.print(f"  {basis}: {row['passed']} of {row['measured']} measured concepts pass "
                      f"({row['confident']} at C >= 0.8); the decoder raises the items of {row['grounded']}")
    for line in verdict_lines(every):
        console.print(f"  {line}")
    report = stage("de-biasing", steering.debias)
    console.print(f"  top-10 popularity {report['after']['mean_popularity@10']:.1f} (was {report['before']['mean_popularity@10']:.1f}), "
                  f"HR@10 {report['after']['HR@10']:.4f} (was {report['before']['HR@10']:.4f})")
    index = stage("HTML report", lambda: build_report(run))
    console.print(Text.assemble(f"total {sum(t for _, t in timings) / 60:.1f} min. Open the report: ",
                                (str(index.resolve()), "bold")))
    return index
