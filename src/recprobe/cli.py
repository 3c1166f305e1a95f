"""The command line: parses, calls the library, renders results and errors. Never imported by the library."""

from __future__ import annotations

import functools
import inspect
import json
import warnings
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from recprobe.concepts.cases import SAMPLED_CASES, describe_kind
from recprobe.data.source import DataFilter, DataSource
from recprobe.errors import ConfigError, RecprobeError
from recprobe.io import read_json
from recprobe.models.train import TrainConfig
from recprobe.parallel import DataParallel
from recprobe.ranking.beyond import ITEM_GROUPS, USER_GROUPS
from recprobe.runs.options import CaptureOptions, DebiasOptions, InterpretOptions, SweepOptions
from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.faithfulness import DENSE_RATE

app = typer.Typer(
    help="recprobe: probe recommenders, train sparse autoencoders on them, name and steer their latents.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
# Plain text: a user's text (paths, names, titles, descriptions) is never read as rich markup; styles are Text spans.
console = Console(markup=False, highlight=False)
err = Console(stderr=True, markup=False, highlight=False)

@app.callback()
def _options(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", help="Let third-party progress bars, logs and warnings through "
                                          "(model loading in transformers, torch deprecations).")] = False,
) -> None:
    """recprobe: probe recommenders, train sparse autoencoders on them, name and steer their latents."""
    if not verbose:
        from recprobe.quiet import third_party_quiet

        ctx.with_resource(third_party_quiet())


def from_config(config: type[BaseModel], name: str, *flags: str) -> typer.models.OptionInfo:
    """A CLI option whose help is the config field's own description (its default comes from ``default``)."""
    return typer.Option(*flags, help=config.model_fields[name].description)


def default(config: type[BaseModel], name: str):
    """The config field's default: the one place each default is written."""
    return config.model_fields[name].default


def _parse_options(pairs: list[str], named: dict[str, object] | None = None) -> dict[str, object]:
    """``--option KEY=VALUE`` pairs (values parsed as JSON where they can be); a key that a named option of the
    command also sets is refused rather than silently overriding it."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--option: expected KEY=VALUE, got {pair!r}")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    clash = sorted(set(options) & set(named or {}))
    if clash:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in clash)
        raise ConfigError(f"--option: {', '.join(clash)} is set by its own option ({flags}); use that instead")
    return {**(named or {}), **options}


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metrics_table(title: str, columns: dict[str, dict[str, float | None]]) -> Table:
    """One row per metric, one column per split."""
    table = Table("metric", *columns, title=title)
    for key in next(iter(columns.values())):
        table.add_row(key, *(_number(values[key]) for values in columns.values()))
    return table


# The options of the commands that read raw files (fit, probe, export): help and defaults from DataFilter
Dataset = Annotated[str, from_config(DataSource, "dataset")]
DataDir = Annotated[Path | None, from_config(DataFilter, "data_dir", "--data-dir")]
MinRating = Annotated[float, typer.Option(help="Ratings at least this are positives (negative: keep all).")]
FILTER_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default(DataFilter, name))
    for name, kind in (("data_dir", DataDir), ("min_rating", MinRating),
                       ("core", Annotated[int, from_config(DataFilter, "core")]))
]
DEFAULT_FILTERS = DataFilter()  # frozen; what a command decorated with reads_raw_files sees without those flags
Overwrite = Annotated[bool, typer.Option(help="Replace a different run already in --out, and everything made from it.")]


def reads_raw_files(command):
    """A command that reads raw files takes FILTER_OPTIONS, declared once here, as one ``filters`` (a DataFilter;
    on the command line a negative --min-rating keeps every rating): its own --dataset says what they filter."""
    @functools.wraps(command)
    def with_filters(**given):
        options = {parameter.name: given.pop(parameter.name, parameter.default) for parameter in FILTER_OPTIONS}
        options["min_rating"] = None if options["min_rating"] < 0 else options["min_rating"]
        return command(**given, filters=DataFilter(**options))

    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "filters"]
    with_filters.__signature__ = inspect.Signature([*own, *FILTER_OPTIONS])
    with_filters.__annotations__ = {p.name: p.annotation for p in with_filters.__signature__.parameters.values()}
    return with_filters


@app.command()
@reads_raw_files
def fit(
    model: Annotated[str, typer.Option(help="bprmf, lightgcn, sasrec or timirec.")],
    dataset: Dataset,
    out: Annotated[Path, typer.Option(help="Run folder, e.g. runs/NAME.")],
    epochs: Annotated[int, from_config(TrainConfig, "epochs")] = default(TrainConfig, "epochs"),
    patience: Annotated[int, from_config(TrainConfig, "patience")] = default(TrainConfig, "patience"),
    lr: Annotated[float | None, from_config(TrainConfig, "lr")] = default(TrainConfig, "lr"),
    l2: Annotated[float | None, from_config(TrainConfig, "l2")] = default(TrainConfig, "l2"),
    loss: Annotated[str | None, from_config(TrainConfig, "loss")] = default(TrainConfig, "loss"),
    batch_size: Annotated[int, from_config(TrainConfig, "batch_size")] = default(TrainConfig, "batch_size"),
    d: Annotated[int, typer.Option("--d", help="Embedding size.")] = 64,
    option: Annotated[list[str], typer.Option(help="Model option KEY=VALUE, e.g. n_layers=2 (repeatable).")] = [],  # noqa: B006
    seed: Annotated[int, from_config(TrainConfig, "seed")] = default(TrainConfig, "seed"),
    device: Annotated[str, from_config(TrainConfig, "device")] = default(TrainConfig, "device"),
    overwrite: Overwrite = False,
    filters: DataFilter = DEFAULT_FILTERS,
) -> None:
    """Train a built-in recommender into RUN/recommender/ (weights, config, metrics) and make RUN a run folder."""
    from recprobe.runs.fit import fit_run

    train = TrainConfig(epochs=epochs, patience=patience, lr=lr, l2=l2, loss=loss, batch_size=batch_size,
                        seed=seed, device=device)
    metrics, reused = fit_run(
        out, model, filters.applied_to(dataset),
        model_options=_parse_options(option, {"d": d}), train=train, overwrite=overwrite,
    )
    if reused:
        console.print(f"{out} already holds this run; showing its metrics (pass --overwrite to retrain).")
    _print_notes(read_json(out / "run.json")["dataset"]["notes"])
    console.print(metrics_table(f"{model} on {dataset} (full ranking)", {"dev": metrics["dev"], "test": metrics["test"]}))
    console.print(
        f"best epoch {metrics['best_epoch']}, {metrics['seconds_per_epoch']:.2f} s/epoch, "
        f"{metrics['train_seconds']:.0f} s in all -> {out / 'recommender'}"
    )


@app.command()
@reads_raw_files
def probe(
    adapter: Annotated[str, typer.Option(help="Adapter name (`recprobe adapters` lists them), e.g. recbole.")],
    dataset: Dataset,
    out: Annotated[Path, typer.Option(help="Run folder to create, e.g. runs/NAME.")],
    option: Annotated[list[str], typer.Option(help="Adapter option KEY=VALUE, e.g. checkpoint=saved/BPR.pth (repeatable).")] = [],  # noqa: B006
    untrained_ok: Annotated[bool, typer.Option(help="Accept a target that ranks the held-out items near random (weights fresh on purpose), or better with its ids shifted by one.")] = False,
    overwrite: Overwrite = False,
    filters: DataFilter = DEFAULT_FILTERS,
) -> None:
    """Create a run folder for any recommender an adapter opens (RecBole, a plugin, your torch model)."""
    from recprobe.plugins import load_target
    from recprobe.runs import Run

    options = _parse_options(option)
    split = filters.applied_to(dataset).load()
    target = load_target(adapter, split=split, **options)
    run = Run.create(out, target, split, adapter=adapter, options=options, untrained_ok=untrained_ok,
                     overwrite=overwrite)
    _print_notes(split.notes)
    check = run.record["ranking_check"]
    console.print(f"{run.target.name} on {split.name}: d = {run.target.d_model}, {split.n_items:,} items "
                  f"(ids {run.record['target']['ids']}); HR@10 {check['HR@10']:.4f} on {check['users']} test users "
                  f"(random: {check['random HR@10']:.4f}) -> {out / 'run.json'}")


def _print_notes(notes: list[str]) -> None:
    """How the split was made (positives, filters, repeats dropped, a missing title column), for the user to see."""
    console.print(Text("data: " + "; ".join(notes)))


RunOption = Annotated[Path, typer.Option(help="Run folder (made by `recprobe probe` or `recprobe fit`).")]


@app.command()
def evaluate(
    run: RunOption,
    sampled: Annotated[bool, typer.Option(help="Rank among 99 sampled negatives instead of all items.")] = False,
    mask_seen: Annotated[bool, typer.Option(help="Mask the user's seen items (recprobe's protocol); --no-mask-seen is RecBole's for sequential models.")] = True,
) -> None:
    """Evaluate the run's recommender on dev and test (full ranking, seen items masked)."""
    from recprobe.runs import Run

    opened = Run.open(run)
    rows = {phase: opened.evaluate(phase, sampled=sampled, mask_seen=mask_seen) for phase in ("dev", "test")}
    if not DataParallel.current().main:  # under torchrun: rank 0 reports
        return
    protocol = "sampled-99" if sampled else "full ranking" + ("" if mask_seen else ", seen items not masked")
    console.print(metrics_table(f"{opened.target.name} on {opened.split.name} ({protocol})", rows))


@app.command()
def capture(
    run: RunOption,
    splits: Annotated[str, from_config(CaptureOptions, "parts", "--splits")] = ",".join(default(CaptureOptions, "parts")),
    positions: Annotated[str, from_config(CaptureOptions, "positions")] = default(CaptureOptions, "positions"),
    batch_size: Annotated[int, from_config(CaptureOptions, "batch_size")] = default(CaptureOptions, "batch_size"),
) -> None:
    """Probe the run's recommender and write RUN/activations/ (safetensors shards + index)."""
    from recprobe.runs.capture import capture_run

    parts = tuple(s.strip() for s in splits.split(",") if s.strip())
    store = capture_run(run, CaptureOptions(parts=parts, positions=positions, batch_size=batch_size))  # type: ignore[arg-type]
    if not DataParallel.current().main:  # under torchrun: rank 0 reports
        return
    rows = ", ".join(f"{part} {store.n_rows(part):,}" for part in store.splits())
    console.print(f"{rows} vectors of width {store.d} -> {store.folder}")


@app.command("train-sae")
def train_sae(
    run: RunOption,
    scale: Annotated[int, from_config(SAEConfig, "scale")] = default(SAEConfig, "scale"),
    k: Annotated[int, from_config(SAEConfig, "k")] = default(SAEConfig, "k"),
    arch: Annotated[str, typer.Option(help=SAEConfig.model_fields["arch"].description + " With --seeds, several "
                                           "comma-separated.")] = default(SAEConfig, "arch"),
    epochs: Annotated[int | None, from_config(SAETrainConfig, "epochs")] = default(SAETrainConfig, "epochs"),
    batch_size: Annotated[int, from_config(SAETrainConfig, "batch_size")] = default(SAETrainConfig, "batch_size"),
    lr: Annotated[float, from_config(SAETrainConfig, "lr")] = default(SAETrainConfig, "lr"),
    seed: Annotated[int, from_config(SAEConfig, "seed")] = default(SAEConfig, "seed"),
    seeds: Annotated[int | None, typer.Option(help="Train the ladder instead, into RUN/saes/: seeds 0..N-1 of each --arch, "
                                                   "each with its frozen-decoder and frozen-encoder controls (for "
                                                   "`recprobe compare`).")] = None,
    controls: Annotated[bool, typer.Option(help="With --seeds: train the frozen controls too.")] = True,
    option: Annotated[list[str], typer.Option(help="Another SAEConfig field KEY=VALUE, e.g. alpha=0.05 (repeatable).")] = [],  # noqa: B006
    device: Annotated[str, from_config(SAETrainConfig, "device")] = default(SAETrainConfig, "device"),
    kl_weight: Annotated[float, from_config(SAETrainConfig, "kl_weight")] = default(SAETrainConfig, "kl_weight"),
) -> None:
    """Train a TopK (or BatchTopK, Matryoshka) SAE on RUN/activations and write RUN/sae/ (cfg.json, weights,
    metrics.json, model card); with --seeds, the ladder of SAEs and controls in RUN/saes/."""
    train = SAETrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, device=device, kl_weight=kl_weight)
    archs = [a.strip() for a in arch.split(",") if a.strip()]
    if seeds is not None:
        from recprobe.runs.ladder import VARIANTS, train_ladder

        def show(rung, metrics, kept) -> None:
            console.print(f"{rung.name}: test FVU {metrics.get('fvu', float('nan')):.4f}  L0 {metrics.get('l0', 0):.2f}"
                          f"{'  (kept: trained before)' if kept else ''}")

        train_ladder(run, archs, seeds, _parse_options(option, {"scale": scale, "k": k}), train,
                     variants=VARIANTS if controls else ("trained",), on_rung=show)
        console.print(f"-> {run / 'saes'}; compare them with `recprobe compare --run {run}`")
        return
    if len(archs) != 1:
        raise ConfigError(f"--arch: one architecture for RUN/sae (several only with --seeds), got {arch!r}")
    from recprobe.runs.sae import train_sae_run

    metrics = train_sae_run(
        run, _parse_options(option, {"scale": scale, "k": k, "seed": seed, "arch": archs[0]}), train,
    )
    if not metrics:  # a rank other than 0 under torchrun: rank 0 reports
        return
    after, before = metrics["after"], metrics["before"]
    for part in ("train", "test"):
        if f"reconstruction_{part}" in after:
            r = after[f"reconstruction_{part}"]
            console.print(f"{part} ({r['vectors']:,} vectors): FVU {r['fvu']:.4f}  L0 {r['l0']:.2f}  "
                          f"dead {r['dead_fraction']:.1%}  dense {r['dense_fraction']:.1%}")
    processes = f", data-parallel over {metrics['processes']} processes" if metrics["processes"] > 1 else ""
    console.print(f"best epoch {metrics['best_epoch']} ({metrics['selected_on']}){processes}")
    console.print(metrics_table("test ranking: original, spliced at random init, spliced after training", {
        "original": after["original_test"], "random init": before["spliced_test"], "trained": after["spliced_test"],
    }))
    console.print(splice_table(before["splice_test"], after["splice_test"]))
    console.print(f"-> {run / 'sae'}")


@app.command()
def compare(
    run: RunOption,
    max_cases: Annotated[int, typer.Option(help="Cases drawn (seeded) for every basis and seed.")] = SAMPLED_CASES,
) -> None:
    """Every SAE of RUN/saes against its controls (raw dimensions, untrained, frozen decoder, frozen encoder,
    random directions) on probing, output, steering and hard-negative metrics, over seeds (RUN/compare.json)."""
    from recprobe.runs.compare import compare_run

    if max_cases < 100:
        raise ConfigError(f"--max-cases: at least 100 cases are needed to hold users out, got {max_cases}")
    result = compare_run(run, max_cases=max_cases,
                         on_seed=lambda s, bases: err.print(f"seed {s}: {len(bases)} bases measured"))
    console.print(compare_table(result))
    console.print(f"{result['cases']['n']:,} {result['cases']['kind']} cases, seeds {result['seeds']}, "
                  f"{result['seconds']:.0f} s -> {run / 'compare.json'}")


def compare_table(result: dict) -> Table:
    """Rows: metrics; columns: the best trained architecture, its best control, the gap with its interval."""
    from recprobe.runs.compare import headline

    table = Table(title="trained SAE (best arch) minus its best control, per seed; means over seeds")
    table.add_column("metric", no_wrap=True)
    for column in ("trained", "best control", "gap [95% CI]", "verdict"):
        table.add_column(column)
    for row in headline(result):
        gap = row["gap"]
        low_high = f"[{gap['low']:+.3f}, {gap['high']:+.3f}]" if gap["low"] is not None else "(one seed)"
        control = f"{row['control']} {row['control_mean']:.3f}" if row["control"] else "-"
        table.add_row(row["metric"], f"{row['arch']} {row['trained']:.3f}", control, f"{gap['mean']:+.3f} {low_high}",
                      row["verdict"])
    return table


def splice_table(before: dict[str, float | None], after: dict[str, float | None]) -> Table:
    table = Table("test, against mean ablation (0) and the original (1)", "random init", "trained")
    for key, label in (("NDCG@10_recovered", "NDCG@10 recovered"), ("loss_recovered", "full-softmax loss recovered"),
                       ("top10_overlap", "top-10 overlap with the original")):
        table.add_row(label, *("n/a" if m[key] is None else f"{m[key]:.3f}" for m in (before, after)))
    return table


@app.command()
def interpret(
    run: RunOption,
    n: Annotated[int, from_config(InterpretOptions, "n", "--n")] = default(InterpretOptions, "n"),
    latents: Annotated[str | None, from_config(InterpretOptions, "latents")] = None,
    level_mode: Annotated[str, from_config(InterpretOptions, "level_mode")] = default(InterpretOptions, "level_mode"),
    describer: Annotated[str, from_config(InterpretOptions, "describer")] = default(InterpretOptions, "describer"),
    verifier: Annotated[str, from_config(InterpretOptions, "verifier")] = default(InterpretOptions, "verifier"),
    llm: Annotated[str, from_config(InterpretOptions, "llm")] = default(InterpretOptions, "llm"),
    raw: Annotated[bool, typer.Option("--raw", help="Interpret the representation's raw dimensions (BaseModel row): --basis raw.")] = False,
    basis: Annotated[str, from_config(InterpretOptions, "basis")] = default(InterpretOptions, "basis"),
    cases: Annotated[str, from_config(InterpretOptions, "cases")] = default(InterpretOptions, "cases"),
    folder: Annotated[str | None, from_config(InterpretOptions, "folder")] = default(InterpretOptions, "folder"),
    seed: Annotated[int, from_config(InterpretOptions, "seed")] = default(InterpretOptions, "seed"),
    overwrite: Annotated[bool, from_config(InterpretOptions, "overwrite")] = default(InterpretOptions, "overwrite"),
    max_cases: Annotated[int, from_config(InterpretOptions, "max_cases")] = default(InterpretOptions, "max_cases"),
    top_cases: Annotated[int | None, from_config(InterpretOptions, "top_cases")] = default(InterpretOptions, "top_cases"),
) -> None:
    """Describe each SAE latent, verify the description on unseen cases, and score it (RUN/concepts/)."""
    from recprobe.runs.interpret import interpret_run

    if raw and basis != "sae":
        raise ConfigError(f"--raw: it means --basis raw; give one of them, not --raw with --basis {basis}")
    summary = interpret_run(run, InterpretOptions(  # type: ignore[arg-type]
        n=n, latents=_parse_latents(latents), level_mode=level_mode, describer=describer, verifier=verifier, llm=llm,
        basis="raw" if raw else basis, cases=cases, folder=folder, seed=seed, overwrite=overwrite,
        max_cases=max_cases, top_cases=top_cases))
    if not summary:  # a rank other than 0 under torchrun: it recorded its share of the cases; rank 0 reports
        return
    counts = summary["concepts"]
    if summary["item_text"] != "titles":
        err.print(f"note: {summary['item_text']}")
    if summary.get("repair_note"):
        err.print(f"note: {summary['repair_note']}")
    console.print(f"{summary['n_cases']} {summary['cases']} cases of {summary['users']} users (on them, "
                  f"{summary['dead_on_cases']:.1%} of the latents never fire, {summary['dense_on_cases']:.1%} fire on "
                  f"over {DENSE_RATE:.0%} of the cases); "
                  f"{summary['interpreted']} of {summary['latents']} latents ({summary['insufficient']} with too few "
                  f"activated users, {summary['unparsable']} unparsable, {summary['undescribed']} undescribed: nothing "
                  f"stands out, or an LLM repeated its prompt's example); concepts at C=1.0: {counts['C=1.0']}, "
                  f">=0.9: {counts['C>=0.9']}, >=0.8: {counts['C>=0.8']}, all: {counts['all']}; mean confidence {_number(summary['mean_confidence'])}, "
                  f"random-description baseline {_number(summary['mean_baseline_confidence'])}; intra-concept similarity "
                  f"{_number(summary['intra_similarity'])}, inter {_number(summary['inter_similarity'])} -> {summary['folder']}")
    if "controls" in summary:  # the trained SAE's counts only: a control's are the measure itself
        console.print(summary["controls"])


MAX_LATENTS = 1 << 20  # more latents than any SAE has: a longer --latents range is a typo, not a request


def _parse_latents(spec: str | None) -> list[int] | None:
    if spec is None:
        return None
    out: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ConfigError(f"--latents: expected ranges like 0-99 or 3,17, got {spec!r}") from None
        if high < low:
            raise ConfigError(f"--latents: the range {part!r} runs backwards; write it low-high, e.g. {high}-{low}")
        if high - low >= MAX_LATENTS or low < 0:
            raise ConfigError(f"--latents: the range {part!r} is not latents of an SAE (0 up to at most {MAX_LATENTS:,} of "
                              "them); give the ones to interpret, e.g. 0-99")
        out.extend(range(low, high + 1))
    return out


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _steering_table(title: str, effect: dict) -> Table:
    table = Table("scale", "Hit@10 of concept items", "HR@10", title=title)
    for row in effect["scales"]:
        table.add_row(f"{row['scale']:g}x", _share(row["hit@10"]), _share(row["HR@10"]))
    return table


@app.command()
def steer(
    run: RunOption,
    latent: Annotated[int | None, typer.Option(help="The latent to scale.")] = None,
    scale: Annotated[list[float], typer.Option(help="Factor for the latent (repeatable), e.g. --scale -10 --scale 10.")] = [],  # noqa: B006
    table7: Annotated[bool, typer.Option("--table7", help="Paper Table 7: the 3 most confident concepts at -10x, 1x, +10x (needs `recprobe interpret`).")] = False,
    every: Annotated[bool, typer.Option("--every", help="With --table7: every confident concept of every interpreted basis "
                                                        "(the SAE and its controls), the share that passes the paper's rule.")] = False,
    user: Annotated[str | None, typer.Option(help="With --latent: this user's (raw id) top 10 at each scale, nothing written.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --user: print the lists as JSON.")] = False,
    max_cases: Annotated[int | None, typer.Option(help="With --table7 --every: the cases steered, a seeded sample of those "
                                                       f"the concepts were read from (default {SAMPLED_CASES:,}).")] = None,
) -> None:
    """Scale a latent and re-rank: how often its concept items reach the top 10, over the test users it fires on
    (with --table7 --every, over the cases its concepts were read from)."""
    from recprobe.runs.steering import SteeringRun

    if (user is not None or as_json) and (latent is None or table7):
        raise ConfigError("--user: one user's lists need --latent J (with --scale F); --json goes with --user")
    if user is not None:
        _user_lists(run, user, latent, scale or [-10.0, 10.0], as_json)
        return
    if every and not table7:
        raise ConfigError("--every: it widens --table7 to every concept; give --table7 --every")
    if table7 == (latent is not None):
        raise ConfigError("--latent: give --latent J (with --scale F) or --table7")
    if table7 and scale:
        raise ConfigError("--scale goes with --latent J; --table7 always steers at the paper's -10x, 1x and +10x")
    if max_cases is not None and not every:
        raise ConfigError("--max-cases goes with --table7 --every, which steers a sample of cases")
    if every:
        _table7_every(run, SAMPLED_CASES if max_cases is None else max_cases)
        return
    steering = SteeringRun(run)
    found = steering.table7() if table7 else {"latents": [steering.steer(latent, scale or [-10.0, 10.0])], "skipped": []}
    for skipped in found["skipped"]:
        console.print(Text(f"skipped latent {skipped['latent']} ({skipped['description']}): {skipped['reason']}"))
    for row in found["latents"]:
        console.print(_steering_table(f"latent {row['latent']}: items with {row['feature']} "
                                      f"({row['metadata']['concept_items']} items, fires on {row['metadata']['n_active']} test users)",
                                      row["metadata"]))
        if "decoder" in row:
            console.print(_steering_table(f"latent {row['latent']}: the 20 items its decoder direction promotes", row["decoder"]))
    console.print(f"-> {steering.folder}")


def _user_lists(run: Path, user: str, latent: int, scales: list[float], as_json: bool) -> None:
    from recprobe.runs.steering import SteeringRun
    from recprobe.steering import LatentEdit

    steering = SteeringRun(run)
    scales = sorted({1.0, *scales})
    lists = {scale: steering.user_top(user, [LatentEdit(latent, scale=scale)]) for scale in scales}
    if as_json:
        console.print(json.dumps({"user": user, "latent": latent,
                                  "lists": [{"scale": s, "items": items} for s, items in lists.items()]}), soft_wrap=True)
        return
    titles = dict(zip(steering.split.item_ids.tolist(), steering.split.catalog.titles, strict=True))
    table = Table("rank", *(f"x{s:g}" for s in scales), title=f"user {user}'s top 10, latent {latent} scaled")
    for rank, row in enumerate(zip(*lists.values(), strict=True), 1):
        table.add_row(str(rank), *(Text(f"{item} {titles[item]}") for item in row))
    console.print(table)


def _table7_every(run: Path, max_cases: int) -> None:
    from recprobe.runs.layout import RunLayout
    from recprobe.runs.table7_every import TABLE7_EVERY, table7_every_run, verdict_lines

    found = table7_every_run(run, max_cases=max_cases)
    table = Table("basis", "concepts C >= 0.8", "measured", "pass", "pass share [95% CI]", "decoder raises its items",
                  "not measured",
                  title="Table 7 over every confident concept: +10x puts an item in >= 90% of top-10s, -10x in <= 10% "
                        f"({found['n_cases']:,} cases, {describe_kind(found['cases'])})")
    for basis, row in found["bases"].items():
        share = row["share"]
        table.add_row(basis, str(row["confident"]), str(row["measured"]), str(row["passed"]),
                      "n/a" if share["mean"] is None else f"{share['mean']:.3f} [{share['low']:.3f}, {share['high']:.3f}]",
                      f"{row['grounded']} of {row['measured']}",
                      "; ".join(f"{n} {reason}" for reason, n in row["unmeasured"].items()) or "-")
    console.print(table)
    for line in verdict_lines(found):
        console.print(line)
    console.print(f"-> {RunLayout(run).steering / TABLE7_EVERY}")


def _parse_strengths(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--strengths: expected numbers separated by commas, e.g. 0,1,2,4; got {text!r}") from None


def sweep_tables(result: dict) -> list[Table]:
    """One row per method and strength: accuracy and beyond-accuracy metrics at K = 10, then NDCG@10 by group."""
    k = result["k"]
    main = [f"NDCG@{k}", f"HR@{k}", f"Gini@{k}", f"ARP@{k}", f"Coverage@{k}", f"Tail@{k}"]
    groups = [*(f"NDCG@{k} {g}" for g in ITEM_GROUPS), *(f"NDCG@{k} {g} users" for g in USER_GROUPS)]
    titles = [f"de-biasing sweep: every test user's top {k} ({result['n_latents']} latents, random control over "
              f"{result['seeds']} seeds)", f"NDCG@{k} by test item popularity and by user activity"]
    tables = []
    for keys, title in zip((main, groups), titles, strict=True):
        table = Table("method", "strength", *(key.replace(f"NDCG@{k} ", "").replace(f"@{k}", "") for key in keys),
                      title=title)
        for row in result["rows"]:
            label = row["method"] + (f" ({row['selection']})" if row["selection"] else "")
            table.add_row(label, f"{row['strength']:g}",
                          *(f"{row[key]:.1f}" if key.startswith("ARP") else _number(row[key]) for key in keys))
        tables.append(table)
    return tables


@app.command()
def debias(
    run: RunOption,
    latents: Annotated[int | None, typer.Option(help=DebiasOptions.model_fields["n_latents"].description + " With --sweep: "
                                                     + SweepOptions.model_fields["n_latents"].description)] = None,
    niche_scale: Annotated[float, from_config(DebiasOptions, "niche_scale")] = default(DebiasOptions, "niche_scale"),
    popular_scale: Annotated[float, from_config(DebiasOptions, "popular_scale")] = default(DebiasOptions, "popular_scale"),
    sweep: Annotated[bool, typer.Option("--sweep", help="Run every method (SAE by each selection rule, random latents, IPR, P-Calibration) over a range of strengths -> steering/debias-sweep.json.")] = False,
    strengths: Annotated[str | None, typer.Option(help=f"With --sweep: comma-separated, {SweepOptions.model_fields['strengths'].description} (default {','.join(f'{s:g}' for s in default(SweepOptions, 'strengths'))}).")] = None,
    selection: Annotated[str | None, typer.Option(help="With --sweep: " + SweepOptions.model_fields["selections"].description)] = None,
) -> None:
    """Rescale the latents that track predicted popularity; report top-10 popularity, coverage and HR@10 (or,
    with --sweep, trace every de-biasing method's accuracy against its Gini@10, ARP and coverage)."""
    from recprobe.runs.steering import DEBIAS, DEBIAS_SWEEP, SteeringRun

    if not sweep:
        if strengths is not None or selection is not None:
            raise ConfigError("--strengths and --selection go with --sweep; add --sweep")
        options = DebiasOptions(n_latents=latents, niche_scale=niche_scale, popular_scale=popular_scale)
        steering = SteeringRun(run)
        report = steering.debias(options)
        table = Table("metric", "before", "after", "change", title="top-10 lists of every test user")
        for key, before in report["before"].items():
            change = report["change"][key]
            table.add_row(key, f"{before:.4f}", f"{report['after'][key]:.4f}", "n/a" if change is None else f"{change:+.1%}")
        console.print(table)
        console.print(f"-> {steering.folder / DEBIAS}")
        return
    options = SweepOptions(n_latents=latents, selections=None if selection is None else (selection,),  # type: ignore[arg-type]
                           **({} if strengths is None else {"strengths": _parse_strengths(strengths)}))
    steering = SteeringRun(run)
    result = steering.debias_sweep(options)
    for table in sweep_tables(result):
        console.print(table)
    console.print(f"{result['seconds']:.0f} s -> {steering.folder / DEBIAS_SWEEP}")


@app.command()
def explain(
    run: RunOption,
    user: Annotated[str | None, typer.Option(help="Raw user id (as in the dataset) whose recommendation to explain.")] = None,
    item: Annotated[str | None, typer.Option(help="Raw item id (default: the user's top recommendation).")] = None,
    fidelity: Annotated[bool, typer.Option("--fidelity", help="Measure the explanations' fidelity over every test user instead.")] = False,
    m: Annotated[int, typer.Option("--m", help="Latents ablated by the fidelity check, both ways.")] = 3,
    seed: int = 0,
) -> None:
    """Why the model recommends an item to a user: the active latents that contribute most to its score."""
    from recprobe.runs.explain import explain_user, fidelity_run

    if fidelity == (user is not None):
        raise ConfigError("--user: give --user U (with --item I) or --fidelity")
    if fidelity:
        result = fidelity_run(run, m=m, seed=seed)
        if not result["users"]:
            console.print(f"no test user has {2 * m} active latents; lower --m")
            return
        console.print(f"top-{m} explaining latents ablated push the top item further down than {m} other random active "
                      f"latents for {result['share_top_beats_random']:.1%} of {result['users']} users; mean rank drop "
                      f"{result['mean_rank_drop_top']:.1f} against {result['mean_rank_drop_random']:.1f} "
                      f"-> {run / 'explanations' / 'fidelity.json'}")
        return
    found = explain_user(run, user, item)
    seen = "; in the user's history, so ranked as if it were not" if found["in_history"] else ""
    table = Table("latent", "description", "activation", "contribution", "share",
                  title=Text(f"user {found['user']}: {found['title']} (item {found['item']}, rank {found['rank']}{seen})"))
    for entry in found["latents"]:
        described = entry["description"] or "(not described: not interpreted, or too few users)"
        table.add_row(str(entry["latent"]), Text(described + (f" [broad: {entry['broad']}]" if entry["broad"] else "")),
                      f"{entry['activation']:.3f}",
                      f"{entry['contribution']:+.3f}", f"{entry['share']:+.0%}")
    console.print(table)


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/quickstart"),
    llm: Annotated[str, typer.Option(help="LLM whose likelihoods verify the most confident concepts a second time.")] = "smollm2",
    llm_latents: Annotated[int, typer.Option(help="How many of the most confident concepts the LLM checks (0: none).")] = 3,
) -> None:
    """Every stage on MovieLens-100K with the embedded defaults, ending with the HTML report."""
    from recprobe.quickstart import quickstart as run_quickstart

    run_quickstart(out, llm=llm, llm_latents=llm_latents, console=console)


@app.command()
def report(
    run: Annotated[Path, typer.Option(help="Run folder with a trained SAE (concepts and steering are shown when present).")],
) -> None:
    """Write RUN/report/: a static HTML overview and one page per latent; prints the path to open."""
    from recprobe.report import build_report

    console.print(f"report: {build_report(run).resolve()}")


@app.command()
def push(
    run: Annotated[Path, typer.Option(help="Run folder with a trained SAE (and, if interpreted, its concepts).")],
    repo: Annotated[str, typer.Option(help="Hub model repo id, e.g. you/ml100k-sasrec-sae.")],
    private: Annotated[bool, typer.Option(help="Create the repo as private.")] = False,
) -> None:
    """Upload RUN/sae (and the cases and concepts as Parquet tables) to a Hugging Face Hub model repo."""
    import tempfile

    from recprobe.concepts.export import export_tables
    from recprobe.runs import Run
    from recprobe.sae.hub import check_repo_id, push_to_hub

    check_repo_id(repo)
    opened = Run.open(run)
    opened.sae()  # refuse an SAE that is not this run's own
    records = opened.concepts()
    with tempfile.TemporaryDirectory() as tables_dir:
        tables = export_tables(opened.cases(), records, opened.split.catalog, tables_dir) if records else None
        console.print(f"-> {push_to_hub(opened.layout.sae, repo, tables=tables, private=private)}")


@app.command()
def adapters() -> None:
    """List every adapter (built-in and from installed plugins) with the package that provides it."""
    from recprobe.plugins import adapters as registered

    table = Table("adapter", "package", "version", "loads")
    for name, entry in sorted(registered().items()):
        table.add_row(name, entry.package, entry.version, entry.adapter.description)
    console.print(table)


@app.command()
def datasets(
    data_dir: DataDir = None,
    fetch: Annotated[str | None, typer.Option(help="Fetch this dataset into the cache now (as fit does on first use).")] = None,
) -> None:
    """List the named datasets: where each was found, what is cached, what can be fetched and its size."""
    from recprobe.data import DATASETS, find_dataset
    from recprobe.data.fetch import cache_dir
    from recprobe.data.fetch import fetch as fetch_dataset
    from recprobe.data.sources import SOURCES, expected_sha256

    if fetch is not None:
        if fetch not in SOURCES:
            raise ConfigError(f"--fetch: {fetch!r} cannot be fetched; these can: {', '.join(SOURCES)}")
        folder = fetch_dataset(fetch, log=lambda line: console.print(line, soft_wrap=True))
        console.print(f"{fetch}: ready at {folder}", soft_wrap=True)
        return
    table, unchecked = Table("dataset", "found at", "download"), []
    table.columns[1].overflow = "fold"  # a path is shown whole, folded over lines
    for name in DATASETS:
        source = SOURCES.get(name)
        try:
            found = str(find_dataset(name, data_dir)[1])
        except RecprobeError:
            found = None
        if source is None:
            download = "-"
        elif expected_sha256(source)[0] is None:
            if found is None:  # listed once below, not a row each
                unchecked.append(name)
                continue
            download = "checksum needed"
        else:
            download = f"{source.size / 1e6:,.0f} MB" if source.size else "fetchable"
        table.add_row(name, found or Text("missing", "red"), download)
    console.print(table)
    if unchecked:
        console.print(f"also fetchable with a checksum you supply (RECPROBE_DATASETS_CHECKSUMS; RecBole publishes "
                      f"none): {', '.join(unchecked)}")
    console.print(f"fetched datasets are cached in {cache_dir()} (RECPROBE_CACHE_DIR)", soft_wrap=True)


@app.command()
def serve(
    run: RunOption,
    host: Annotated[str, typer.Option(help="Address to bind (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Explore a run in the browser: search latents, read their cards, move sliders to steer a user's top 10."""
    try:
        import uvicorn

        from recprobe.serve import create_app
    except ImportError as e:
        raise ConfigError(f"recprobe serve needs the 'serve' extra ({e.name} is missing): pip install 'recprobe[serve]'") from None
    application = create_app(run)
    console.print(f"exploring {run} at http://{host}:{port}/ (Ctrl-C stops; the run is only read)", soft_wrap=True)
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command()
@reads_raw_files
def export(
    out: Annotated[Path, typer.Option(help="Folder to write <name>/<name>.{train,valid,test}.inter (and .item) into.")],
    dataset: Annotated[str | None, typer.Option(help="Dataset name or folder (or give --run).")] = None,
    run: Annotated[Path | None, typer.Option(help="Export the split this run was made on.")] = None,
    name: Annotated[str | None, typer.Option(help="Dataset name in RecBole (default: recprobe-<dataset>, so RecBole never swaps in its own copy).")] = None,
    filters: DataFilter = DEFAULT_FILTERS,
) -> None:
    """Export a split as RecBole atomic benchmark files, so RecBole trains on exactly the same data."""
    from recprobe.data import export_recbole, recbole_settings

    if (dataset is None) == (run is None):
        raise ConfigError("--dataset: give --dataset D or --run RUN")
    if run is not None and filters != DEFAULT_FILTERS:
        given = ", ".join(f"--{name.replace('_', '-')}" for name, value in filters
                          if value != getattr(DEFAULT_FILTERS, name))
        raise ConfigError(f"{given}: --run exports the split the run was made on, filtered as it was; "
                          "these options apply to --dataset D")
    if run is not None:
        from recprobe.runs.run import load_split

        split = load_split(run)
    else:
        split = filters.applied_to(dataset).load()
    folder = export_recbole(split, out, f"recprobe-{split.name}" if name is None else name)
    console.print(f"wrote {folder}; RecBole reads it as this split with these settings (config_dict):")
    console.print(json.dumps(recbole_settings(folder)), soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: an expected failure becomes one plain-text line and exit code 2 (a bug keeps its
    traceback); Ctrl-C says how to go on and exits with 130."""
    from recprobe.cli_errors import INTERRUPTED, user_message

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _plugin_warnings_as_lines(warnings.showwarning)
            # not standalone: a mistyped command or option reaches user_message instead of a boxed panel
            code = app(args=argv, prog_name="recprobe", standalone_mode=False)
    except SystemExit as e:  # raised inside a command (a plugin's sys.exit): its code, read as a return's
        code = e.code
    except Exception as e:
        message = user_message(e)
        if message is None:
            raise
        if message:
            err.print(Text("error: ", style="bold red") + Text(" ".join(message.split())), soft_wrap=True)
        raise SystemExit(2) from None
    if code == 130:  # typer's answer to Ctrl-C (a command returns None)
        err.print(Text(INTERRUPTED), soft_wrap=True)
    if not code:
        DataParallel.current().leave()  # under torchrun: every rank leaves together, once rank 0 is done
    raise SystemExit(code or 0)


def _plugin_warnings_as_lines(show):
    """``warnings.showwarning`` with a broken plugin left out shown as one ``warning:`` line (others by ``show``)."""
    from recprobe.plugins import PluginWarning

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, PluginWarning):
            err.print(Text("warning: ", style="yellow") + Text(" ".join(str(message).split())), soft_wrap=True)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


click_command = typer.main.get_command(app)  # the CLI as click sees it: the docs' CLI reference reads it

if __name__ == "__main__":
    main()
