"""A run: one recommender (any ProbeTarget) on one dataset split, and every stage made from it, in one folder.

``Run.create`` records what the run probes in ``run.json`` (adapter and options, dataset, package versions,
the recommender's fingerprint); ``Run.open`` reopens the target through the adapter registry, so built-ins,
RecBole checkpoints and plugins are handled alike. A target built in Python (``recprobe.wrap``) gets the same
stages in-process: ``Run.create(folder, target, split)`` and later ``Run.open(folder, target=target)``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recprobe.activations.store import ActivationStore
from recprobe.batches import phase_batches
from recprobe.data import load_dataset
from recprobe.data.prepare import CORE
from recprobe.data.source import DataSource
from recprobe.data.split import Split
from recprobe.data.stored import read_split, write_split
from recprobe.errors import ConfigError, DataFormatError, RunFolderError, StaleArtifactError
from recprobe.hashing import file_hash
from recprobe.io import read_json, write_json
from recprobe.plugins import adapters, open_target
from recprobe.runs.align import align, unwrapped
from recprobe.runs.layout import BASES, CASES, CONTROL_BASES, SETTINGS, RunLayout
from recprobe.runs.lock import run_lock
from recprobe.runs.provenance import check_made_from, target_fingerprint
from recprobe.sae.io import CONFIG, METRICS, WEIGHTS, load_sae
from recprobe.schemas import ConceptSettings, RunRecord, SaeMetrics, read_checked
from recprobe.target import ProbeTarget
from recprobe.testing import lookups_checked, ranking_check, represent_check, require_probe_target
from recprobe.version import __version__

FORMAT = 1
IN_MEMORY = "in-memory"  # run.json's adapter for a target handed over in Python


class Run:
    """An opened run folder: ``target`` (in the split's numbering), ``split``, ``layout``, and what it was made
    from. Each stage reads its inputs through the methods below, which refuse stale or foreign ones."""

    def __init__(self, root: Path, record: dict[str, Any], target: ProbeTarget, split: Split):
        self.layout, self.record, self.target, self.split = RunLayout(root), record, target, split
        self._sae_hash: tuple[tuple, str] = ((), "")

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def fingerprint(self) -> str:
        """The recommender's fingerprint (its weights' hash), as recorded when the run was created."""
        return self.record["target"]["fingerprint"]

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r}, {self.target.name} on {self.split.name})"

    def _repr_html_(self) -> str:
        """A card for a notebook: the run's size and stages, with the command that makes each missing one."""
        from recprobe.report.notebook import run_card

        return run_card(self)

    def latent(self, index: int):
        """One latent of the run's SAE (``recprobe.report.notebook.Latent``), shown as a card in a notebook."""
        from recprobe.report.notebook import Latent
        from recprobe.steering.edit import is_integer_id

        n_latents = self.sae().n_latents
        if not is_integer_id(index) or not 0 <= index < n_latents:
            raise ConfigError(f"latent {index!r} is not one of this SAE's 0..{n_latents - 1}")
        return Latent(self, index)

    # --- creating and opening --------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, target: ProbeTarget, split: Split, *, adapter: str | None = None,
               options: dict[str, Any] | None = None, untrained_ok: bool = False, overwrite: bool = False,
               command: str | None = None) -> Run:
        """Create a run folder for ``target`` on ``split``. ``adapter`` and ``options`` say how to reopen the
        target (omit them for a target built in Python). The target's ids are mapped onto the split's by raw
        token when it declares them; a target that ranks the split's held-out items near random is refused
        unless ``untrained_ok``. A folder holding another run is refused unless ``overwrite``, which also
        clears every stage made from the old recommender."""
        with run_lock(folder, "probe"):
            return create_run(folder, target, split, adapter=adapter, options=options, untrained_ok=untrained_ok,
                              overwrite=overwrite, command=command)

    @classmethod
    def open(cls, folder: str | Path, *, target: ProbeTarget | None = None, split: Split | None = None) -> Run:
        """Reopen a run folder: its target through the adapter registry (or the ``target`` given, for a run
        created in Python), its split from the run folder (``load_split``); both are checked against the
        fingerprints recorded at creation. ``open`` never writes."""
        if not isinstance(folder, str | os.PathLike):
            raise ConfigError(f"a run is opened from its folder's path, got {type(folder).__name__} {folder!r}")
        root = Path(folder)
        if target is not None:
            require_probe_target(target)
        record = read_record(root)
        if target is None and record["target"]["adapter"] == IN_MEMORY:
            raise RunFolderError(
                f"{root} was created from a model object in Python (Run.create), so no command can rebuild its target: "
                "open it with recprobe.Run.open(folder, target=your_target), or create the run with `recprobe probe "
                "--adapter torch --option factory=your.module:make_target`")
        split = split or load_split(root)
        if split.fingerprint != record["dataset"]["fingerprint"]:
            raise RunFolderError(
                f"the {record['dataset']['name']} data given (fingerprint {split.fingerprint}) is not the data {root} "
                f"was made on ({record['dataset']['fingerprint']})")
        given = target if target is not None else _load_target(record, root, split)
        target = align(given, split)
        fingerprint = target_fingerprint(target, _probe_batch(target, split))
        now = declared(unwrapped(given))
        changed = [f"{key} {record['target'][key]!r} -> now {now[key]!r}" for key in now
                   if key in record["target"] and record["target"][key] != now[key]]  # weights alike, wrapper not
        if fingerprint != record["target"]["fingerprint"] or changed:
            what = ", ".join(changed) if changed else f"fingerprint {record['target']['fingerprint']}, now {fingerprint}"
            raise StaleArtifactError(
                f"the recommender {root} probes has changed since the run was created ({what}); recreate the run with "
                f"`{recreate_command(record, root)} --overwrite`, which also clears what was made from the old one")
        return cls(root, record, target, split)

    # --- the stages' inputs, checked -----------------------------------------------------------------------
    def activations(self, verify: bool = False):
        """The activation store, refused when it was captured from another recommender or split; with ``verify``
        (before training on it) also when its shards are not the ones it recorded (``ActivationStore.verify``)."""
        if not ActivationStore.finished(self.layout.activations):
            raise RunFolderError(f"{self.root} has no activations; run `recprobe capture --run {self.root}` first")
        store = ActivationStore(self.layout.activations)
        check_made_from(str(self.layout.activations), store.provenance, self.made_from(),
                        f"recprobe capture --run {self.root}")
        if verify:
            store.verify(f"recprobe capture --run {self.root}")
        return store

    def made_from(self) -> dict[str, str]:
        """What every artifact of this run is made from, at the least."""
        return {"recommender": self.fingerprint, "dataset": self.split.fingerprint}

    def sae(self):
        """The run's SAE, refused when it was trained on another run or on activations captured since."""
        if not (self.layout.sae / CONFIG).is_file():
            raise RunFolderError(f"{self.root} has no SAE; run `recprobe train-sae --run {self.root}` first")
        sae, cfg = load_sae(self.layout.sae)
        recorded = cfg.get("recprobe", {}).get("provenance", {})
        rebuild = f"recprobe train-sae --run {self.root}"
        if "recommender" not in recorded:
            raise StaleArtifactError(f"{self.layout.sae} does not say which recommender it was trained on (it was not "
                                     f"trained in this run); train this run's own with `{rebuild}`")
        current = self.made_from()
        if ActivationStore.finished(self.layout.activations):
            current["activations"] = ActivationStore(self.layout.activations).content
        check_made_from(str(self.layout.sae), recorded, current, rebuild)
        return sae

    def sae_metrics(self) -> dict[str, Any]:
        """What train-sae measured (faithfulness before and after training) of the run's SAE."""
        self.sae()  # refused when stale
        path = self.layout.sae / METRICS
        if not path.is_file():
            raise RunFolderError(f"{path} is missing (an SAE saved elsewhere, e.g. by SAELens, has none); train this "
                                 f"run's SAE with `recprobe train-sae --run {self.root}`")
        return read_checked(path, SaeMetrics, f"recprobe train-sae --run {self.root}")

    def sae_hash(self) -> str:
        """The SAE weights' content hash, computed again only when the file changed (train-sae replaced it)."""
        path = self.layout.sae / WEIGHTS
        stat = path.stat()
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._sae_hash[0] != key:
            self._sae_hash = (key, file_hash(path))
        return self._sae_hash[1]

    def cases_made_from(self, basis: str = "sae") -> dict[str, str]:
        def control() -> str:
            from recprobe.runs.ladder import control_rung

            weights = self.layout.ladder(control_rung(self, basis).name) / WEIGHTS
            return f"{basis}:{file_hash(weights) if weights.is_file() else 'none'}"

        sae = {"sae": self.sae_hash, "untrained": lambda: f"untrained:{self.sae_hash()}",
               **dict.fromkeys(CONTROL_BASES, control)}.get(basis, lambda: basis)()
        return {**self.made_from(), "sae": sae}

    def basis_width(self, name: str = "sae") -> int:
        """How many latents a basis has, without building it (the controls share the run's SAE config)."""
        if name in ("raw", "raw-both"):
            return self.target.d_model * (2 if name == "raw-both" else 1)
        return self.sae().n_latents

    def basis(self, name: str = "sae"):
        """What a basis encodes with: the run's SAE, the raw dimensions (one or both signs), the SAE as its
        training started (same config and seed: the untrained control), or the SAE trained with its decoder or
        encoder frozen (``recprobe.runs.ladder.train_controls`` makes them)."""
        from recprobe.concepts.baseline import RawDimensions
        from recprobe.runs.ladder import load_control
        from recprobe.sae.train import initial_sae

        if name not in BASES:
            raise ConfigError(f"--basis must be one of {', '.join(BASES)}, got {name!r}")
        if name in ("raw", "raw-both"):
            return RawDimensions(self.target.d_model, both_signs=name == "raw-both")
        if name in CONTROL_BASES:
            return load_control(self, name)
        sae = self.sae()
        return sae if name == "sae" else initial_sae(self.activations(), sae.config).eval()

    def interpret_command(self, folder: Path, basis: str = "sae", *, overwrite: bool = True) -> str:
        """The command that rebuilds a concepts folder (without ``overwrite``: that goes on with it, repairing it)."""
        default = self.layout.concepts(basis=basis)
        return (f"recprobe interpret --run {self.root}{'' if basis == 'sae' else f' --basis {basis}'}"
                f"{'' if folder == default else f' --folder {folder.name}'}{' --overwrite' if overwrite else ''}")

    def cases(self, folder: Path | None = None, *, basis: str = "sae"):
        """The cases under the current SAE (or another basis): the concepts folder's recorded cases when they were
        made from it, else every test user's, recorded now (in memory; only interpret writes them)."""
        from recprobe.concepts.cases import CaseSet, record_cases

        folder = folder or self.layout.concepts(basis=basis)
        path = folder / CASES
        if path.exists():
            try:
                cases = CaseSet.load(path)
            except ValueError as error:
                raise RunFolderError(f"{path} is not a case set interpret writes ({error}); rebuild it with "
                                     f"`{self.interpret_command(folder, basis)}`") from None
            check_made_from(str(path), cases.made_from, self.cases_made_from(basis), self.interpret_command(folder, basis))
            if not np.isfinite(cases.values).all() or (cases.indices < 0).any():
                raise RunFolderError(f"{path} holds NaN, infinite or negative entries, which interpret never writes; "
                                     f"rebuild it with `{self.interpret_command(folder, basis)}`")
            return cases
        cases = record_cases(self.target, self.basis(basis), self.split)
        cases.made_from = self.cases_made_from(basis)
        return cases

    def concepts(self, folder: Path | None = None) -> list[dict[str, Any]]:
        """The finished concept records of a concepts folder (none when it does not exist), refused when they
        were made from another SAE. Reading never changes the file."""
        from recprobe.concepts.records import read_records

        folder = folder or self.layout.concepts()
        if not (folder / SETTINGS).is_file():
            return []
        settings = read_checked(folder / SETTINGS, ConceptSettings, self.interpret_command(folder))
        basis = settings["basis"]
        check_made_from(str(folder), settings["made_from"], self.cases_made_from(basis),
                        self.interpret_command(folder, basis))
        return read_records(folder, self.basis_width(basis)).records

    # --- every stage, in Python ------------------------------------------------------------------------------
    def capture(self, options=None, **fields: Any):
        """``recprobe capture``: a ``CaptureOptions`` or its fields by name (and ``progress``)."""
        from recprobe.runs.capture import capture_run

        return capture_run(self, options, **fields)

    def train_sae(self, *, progress: bool = True, **fields: Any) -> dict[str, Any]:
        """``recprobe train-sae``: any SAEConfig field (scale, k, alpha...) and SAETrainConfig field (epochs,
        batch_size, lr, device...) by name."""
        from recprobe.runs.sae import train_sae_run

        sae, train = _sae_fields(fields)
        return train_sae_run(self, sae, train, progress=progress)

    def train_ladder(self, archs: Sequence[str] = ("topk",), seeds: int = 5, *, progress: bool = True,
                     **fields: Any) -> list:
        """``recprobe train-sae --seeds``: the ladder of SAEs and frozen controls for ``compare``; SAEConfig and
        SAETrainConfig fields by name, as ``train_sae``."""
        from recprobe.runs.ladder import train_ladder

        sae, train = _sae_fields(fields)
        return train_ladder(self, archs, seeds, sae, train, progress=progress)

    def interpret(self, options=None, **fields: Any) -> dict[str, Any]:
        """``recprobe interpret``: an ``InterpretOptions`` or its fields by name (and ``progress``)."""
        from recprobe.runs.interpret import interpret_run

        return interpret_run(self, options, **fields)

    def steering(self):
        """The run's SteeringRun: ``steer(latent, scales)``, ``table7()``, ``debias(...)``."""
        from recprobe.runs.steering import SteeringRun

        return SteeringRun(self)

    def explain(self, user: str, item: str | None = None) -> dict[str, Any]:
        """``recprobe explain``: the latents behind ``item`` (raw id; default: the top recommendation) for ``user``
        (raw id)."""
        from recprobe.report.notebook import Explanation
        from recprobe.runs.explain import explain_user

        return Explanation(explain_user(self, user, item))

    def fidelity(self, **options: Any) -> dict[str, Any]:
        """``recprobe explain --fidelity``: options as ``recprobe.runs.explain.fidelity_run``."""
        from recprobe.runs.explain import fidelity_run

        return fidelity_run(self, **options)

    def debias(self, options=None, **fields: Any) -> dict[str, Any]:
        """``recprobe debias``: a ``DebiasOptions`` or its fields by name (``n_latents``, ``niche_scale``,
        ``popular_scale``)."""
        return self.steering().debias(options, **fields)

    def debias_sweep(self, options=None, **fields: Any) -> dict[str, Any]:
        """``recprobe debias --sweep``: a ``SweepOptions`` or its fields by name."""
        from recprobe.report.notebook import Sweep

        return Sweep(self.steering().debias_sweep(options, **fields))

    def compare(self, **options: Any) -> dict[str, Any]:
        """``recprobe compare``: options as ``recprobe.runs.compare.compare_run``."""
        from recprobe.runs.compare import compare_run

        return compare_run(self, **options)

    def report(self) -> Path:
        """``recprobe report``: writes the HTML report; returns its index.html."""
        from recprobe.report import build_report

        return build_report(self)

    def evaluate(self, phase: str = "test", *, sampled: bool = False, mask_seen: bool = True) -> dict[str, float | None]:
        """``recprobe evaluate``: full-ranking HR@K / NDCG@K of the target on the run's split, then the
        beyond-accuracy metrics at K = 10 from the same rankings (not with ``sampled``). Under torchrun the users
        are shared out between the processes, and every process returns the whole figures."""
        from recprobe.models.evaluate import evaluate_model
        from recprobe.parallel import DataParallel

        return evaluate_model(self.target, self.split, phase, sampled=sampled, mask_seen=mask_seen,  # type: ignore[arg-type]
                              beyond=not sampled, parallel=DataParallel.from_env("cpu"))


def _sae_fields(fields: dict[str, Any]):
    """SAEConfig fields (a dict) and the SAETrainConfig of the rest, from one set of keyword options."""
    from recprobe.runs.options import built
    from recprobe.sae.config import SAEConfig, SAETrainConfig

    unknown = set(fields) - set(SAEConfig.model_fields) - set(SAETrainConfig.model_fields)
    if unknown:
        raise ConfigError(f"unknown options {sorted(unknown)}: give SAEConfig or SAETrainConfig fields")
    train = built(SAETrainConfig, **{k: v for k, v in fields.items() if k in SAETrainConfig.model_fields})
    return {k: v for k, v in fields.items() if k in SAEConfig.model_fields}, train


def create_run(folder: str | Path, target: ProbeTarget, split: Split, *, adapter: str | None = None,
               options: dict[str, Any] | None = None, untrained_ok: bool = False, overwrite: bool = False,
               command: str | None = None, enforce_ranking: bool = True) -> Run:
    """``Run.create`` for a caller that already holds the run's lock (``fit`` records the ranking check without
    enforcing it: a built-in model's ids are the split's by construction)."""
    root = Path(folder)
    if not isinstance(split, Split):
        raise ConfigError(f"a run needs a recprobe Split (recprobe.load_dataset(...)) as its split, got "
                          f"{type(split).__name__}: the order is Run.create(folder, target, split)")
    require_probe_target(target)
    aligned = align(target, split)
    probe_batch = _probe_batch(aligned, split)
    represent_check(aligned, probe_batch, split)
    with lookups_checked(aligned, split):
        check = ranking_check(aligned, split, shift_inputs=enforce_ranking)
    if not check.ok and not untrained_ok and enforce_ranking:
        escape = ("to create it all the same" if check.off_by else "if the weights are fresh on purpose")
        raise RunFolderError(f"{check.message()}. Nothing was written; pass --untrained-ok (untrained_ok=True) {escape}")
    record = {
        "format": FORMAT,
        "target": {"adapter": adapter or IN_MEMORY, "options": _portable(adapter, options or {}, root),
                   **declared(unwrapped(target)),
                   "fingerprint": target_fingerprint(aligned, probe_batch),
                   "ids": "mapped by raw token" if aligned is not target else "as given"},
        "dataset": {"name": split.name, **split.origin, "fingerprint": split.fingerprint,
                    "n_users": split.n_users, "n_items": split.n_items, "notes": split.notes},
        "ranking_check": check.as_dict(), "untrained_ok": untrained_ok,
        "versions": _versions(adapter),
        "command": command or _command(adapter, options or {}, split, root),
    }
    layout = RunLayout(root)
    if layout.run_file.exists():
        previous = read_json(layout.run_file)
        if _identity(previous) != _identity(record) and not overwrite:
            raise RunFolderError(
                f"{root} already holds a run of {previous['target']['name']} on {previous['dataset']['name']} "
                f"(fingerprint {previous['target']['fingerprint']}); choose a new --out, or pass --overwrite to "
                "replace it and everything made from it")
        if _identity(previous) != _identity(record):
            clear_downstream(layout)
    write_split(split, layout.split)  # before run.json: a run never records a split it does not hold
    write_json(layout.run_file, record)
    return Run(root, record, aligned, split)


def read_record(root: Path) -> dict[str, Any]:
    """The run's run.json, or an error saying how to make one."""
    layout = RunLayout(root)
    if not layout.run_file.is_file():
        hint = (f"{root} is a run of an older recprobe (recommender/ without run.json); refit it with `recprobe fit "
                f"--out {root} ...` (the same options reuse the trained model)" if layout.recommender.is_dir() else
                f"create it with `recprobe probe --adapter NAME --dataset D --out {root}` (or `recprobe fit`)")
        raise RunFolderError(f"{root} is not a recprobe run (no {layout.run_file.name}); {hint}")
    try:
        return read_checked(layout.run_file, RunRecord, "recprobe probe ... --overwrite (or recprobe fit ... --overwrite)")
    except DataFormatError as e:
        raise RunFolderError(f"{layout.run_file} is not valid JSON ({e}); recreate the run with `recprobe probe ... "
                             "--overwrite`") from e


def load_split(folder: str | Path) -> Split:
    """The split a run was made on: the one ``fit``/``probe`` stored in it (a run made before splits were stored
    reads its recorded dataset again from the data folder), checked by fingerprint."""
    root = Path(folder)
    record = read_record(root)
    data, layout = record["dataset"], RunLayout(root)
    if layout.split.is_dir():
        split = read_split(layout.split, recreate_command(record, root))
    elif "source" not in data:
        raise RunFolderError(f"{root}'s dataset was handed over in Python and is not stored in the run; pass it: "
                             "recprobe.Run.open(folder, target=..., split=your_split)")
    else:
        split = load_dataset(data["source"], min_rating=data.get("min_rating"), core=data.get("core", 5))
    if split.fingerprint != data["fingerprint"]:
        raise RunFolderError(
            f"the {data['name']} data found now (fingerprint {split.fingerprint}) is not the data {root} was made on "
            f"({data['fingerprint']}); set RECPROBE_DATA_DIR to the original files, or recreate the run with "
            f"`{recreate_command(record, root)} --overwrite`")
    return split


def open_run(run: Run | str | Path) -> Run:
    """``run`` itself when it is an opened Run, else the folder opened."""
    return run if isinstance(run, Run) else Run.open(run)


def clear_downstream(layout: RunLayout) -> None:
    """Remove every stage made from the recommender (the caller holds the run's lock)."""
    for path in layout.downstream_of_recommender():
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def declared(target: ProbeTarget) -> dict[str, Any]:
    """What a target says it is, recorded with its fingerprint: a wrapper reading another site or history
    window over the same weights declares something else."""
    site = getattr(target, "site", None)
    return {"name": target.name, "d_model": target.d_model, "n_items": target.n_items,
            "max_history": target.max_history, **({"site": site} if isinstance(site, str) else {})}


def _probe_batch(target: ProbeTarget, split: Split):
    return phase_batches(split, "test", target.max_history)(range(min(64, split.n_users)))


def _identity(record: dict[str, Any]) -> tuple:
    return record["target"]["fingerprint"], record["dataset"]["fingerprint"]


def _path_options(adapter: str | None) -> set[str]:
    """The names of the adapter's options that are file or folder paths."""
    registered = adapters().get(adapter or "")
    if registered is None:
        return set()
    return {key for key, field in registered.adapter.Options.model_fields.items() if field.annotation in (Path, Path | None)}


def _portable(adapter: str | None, options: dict[str, Any], root: Path) -> dict[str, Any]:
    """Options as JSON: paths absolute, except those inside the run folder, kept relative to it (so the folder
    can move)."""
    paths = _path_options(adapter)
    out = {}
    for key, value in options.items():
        if value is not None and (key in paths or isinstance(value, Path)):
            path = Path(value).resolve()
            out[key] = str(path.relative_to(root.resolve())) if path.is_relative_to(root.resolve()) else str(path)
        else:
            out[key] = value
    return out


def _load_target(record: dict[str, Any], root: Path, split: Split) -> ProbeTarget:
    name = record["target"]["adapter"]
    known = adapters()
    if name not in known:
        raise RunFolderError(f"{root} was made with the adapter {name!r}, which is not installed here (installed: "
                             f"{', '.join(sorted(known))}); install the package that provides it")
    options = dict(record["target"]["options"])
    for key in _path_options(name) & set(options):
        if options[key] is not None:
            path = Path(options[key])
            options[key] = path if path.is_absolute() else root / path
    return open_target(known[name], options, split)


def _versions(adapter: str | None) -> dict[str, str]:
    versions = {"recprobe": __version__, "torch": torch.__version__, "python": platform.python_version()}
    registered = adapters().get(adapter or "")
    if registered is not None:
        versions["adapter"] = f"{registered.package} {registered.version}".strip()
    return versions


def recreate_command(record: dict[str, Any], root: Path) -> str:
    """The command that made the run, writing into ``root``: a copied or moved run's record names the folder it
    was made in, and the fix a message offers must mend this one."""
    try:
        parts = shlex.split(record["command"])
    except ValueError:  # a caller's own text (Run.create(command=...)), not a command line
        return record["command"]
    if parts[:1] != ["recprobe"] or "--out" not in parts[:-1]:  # made in Python, or by another tool
        return record["command"]
    parts[parts.index("--out") + 1] = str(root)
    return shlex.join(parts)


def _command(adapter: str | None, options: dict[str, Any], split: Split, root: Path) -> str:
    if adapter is None:
        return "recprobe.Run.create(...)"
    parts = ["recprobe", "probe", "--adapter", adapter]
    for key, value in options.items():
        parts += ["--option", f"{key}={value if isinstance(value, str | Path) else json.dumps(value)}"]
    origin = split.origin  # no min_rating recorded: every rating kept
    source = DataSource(dataset=str(origin.get("source", split.name)), min_rating=origin.get("min_rating"),
                        core=origin.get("core", CORE))
    return shlex.join([*parts, *source.flags(), "--out", str(root)])
