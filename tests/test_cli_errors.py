"""Every bad input on the command line, as a user meets it: a subprocess, exit code 2, one plain line on stderr
naming the problem and the fix, no traceback, and the run folder exactly as it was (so it still works).

Each case here is a row of docs/errors.md (``test_cli_errors.py::test_cli_bad_input[ID]``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import synthetic_frame, write_atomic

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    id: str
    args: str  # {run}: a copy of a finished run; {data}: its dataset folder; {tmp}: a scratch folder
    expected: str  # what the one line on stderr says (a fragment)
    setup: Callable[[Path], None] | None = None  # damages the copy, or writes bad input under {tmp}
    env: tuple[tuple[str, str], ...] = ()


def write(path: str, text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text(text)

    return setup


def cut(path: str, keep: int = 40) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        target = tmp / "run" / path
        target.write_bytes(target.read_bytes()[:keep])

    return setup


def remove(path: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        target = tmp / "run" / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return setup


def edit_json(path: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        target = tmp / "run" / path
        data = json.loads(target.read_text())
        change(data)
        target.write_text(json.dumps(data))

    return setup


def nan_in_sae(tmp: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = tmp / "run" / "sae" / "sae_weights.safetensors"
    tensors = load_file(path)
    tensors["W_enc"][0, 0] = float("nan")
    save_file(tensors, path)


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for one in setups:
            one(tmp)

    return setup


INTER = "user_id:token\titem_id:token\ttimestamp:float\n"
TOY = "--min-rating -1 --core 3"
CASES = [
    # data
    Case("inter-is-a-folder", "fit --model bprmf --dataset {tmp}/d --out {tmp}/r " + TOY, "is a folder, not an .inter file",
         lambda tmp: (tmp / "d" / "x.inter").mkdir(parents=True)),
    Case("rechorus-train-only", "fit --model bprmf --dataset {tmp}/g --out {tmp}/r",
         "is a ReChorus dataset without dev_positives.csv or dev.csv", write("g/train.csv", "user_id\titem_id\ttime\n1\t2\t3\n")),
    Case("filters-on-a-given-split", "fit --model bprmf --dataset {tmp}/g --out {tmp}/r --core 3",
         "is split already (ReChorus), so it is loaded as given: --min-rating and --core filter only",
         both(*(write(f"g/{part}.csv", "user_id\titem_id\ttime\n1\t2\t3\n") for part in ("train", "dev", "test")))),
    Case("core-below-3", "fit --model bprmf --dataset {data} --out {tmp}/r --min-rating -1 --core 2", "--core must be at least 3"),
    Case("dataset-is-a-file", "fit --model bprmf --dataset {data}/toy.inter --out {tmp}/r", "is a file; --dataset takes a dataset name"),
    Case("two-inter-files", "fit --model bprmf --dataset {tmp}/d --out {tmp}/r " + TOY, "holds 2 .inter files (a.inter, b.inter)",
         both(write("d/a.inter", INTER + "1\t2\t3\n"), write("d/b.inter", INTER + "1\t2\t3\n"))),
    Case("tab-inside-a-title", "fit --model bprmf --dataset {tmp}/d --out {tmp}/r " + TOY,
         "line 3 has 3 tab-separated fields, the header has 2; a tab or a line break inside a field",
         both(write("d/d.inter", INTER + "1\t2\t3\n"), write("d/d.item", "item_id:token\ttitle:token\n1\tA\n2\tB\tC\n"))),
    Case("line-break-inside-a-title", "fit --model bprmf --dataset {tmp}/d --out {tmp}/r " + TOY,
         "line 3 has 1 tab-separated fields, the header has 2",
         both(write("d/d.inter", INTER + "1\t2\t3\n"), write("d/d.item", "item_id:token\ttitle:token\n1\tA\nB\n"))),
    Case("infinite-timestamp", "fit --model bprmf --dataset {tmp}/d --out {tmp}/r " + TOY,
         "column 'timestamp' must be a finite number, found 'inf' on data row 2", write("d/d.inter", INTER + "1\t2\t3\n1\t3\tinf\n")),
    Case("item-listed-twice", "fit --model bprmf --dataset {tmp}/d --out {tmp}/r " + TOY,
         "d.item lists item '1' more than once (lines 2, 4); keep one row per item",
         both(write("d/d.inter", INTER + "1\t2\t3\n"), write("d/d.item", "item_id:token\ttitle:token\n1\tA\n2\tB\n1\tC\n"))),
    Case("markup-in-a-path", "fit --model bprmf --dataset {tmp}/[bold]a[/x]b --out {tmp}/r",
         "[bold]a[/x]b holds neither a RecBole .inter file", lambda tmp: (tmp / "[bold]a[/x]b").mkdir(parents=True)),
    Case("option-not-key-value", "fit --model bprmf --dataset {data} --out {tmp}/r --option n_layers " + TOY,
         "--option: expected KEY=VALUE, got 'n_layers'"),
    # training settings
    Case("fit-lr-infinite", "fit --model bprmf --dataset {data} --out {tmp}/r --lr inf " + TOY,
         "invalid TrainConfig option 'lr': Input should be a finite number"),
    Case("fit-no-cuda", "fit --model bprmf --dataset {data} --out {tmp}/r --device cuda " + TOY, "no CUDA device is available here"),
    Case("train-sae-no-cuda", "train-sae --run {run} --device cuda", "no CUDA device is available here"),
    Case("train-sae-lr-infinite", "train-sae --run {run} --lr inf", "invalid SAETrainConfig option 'lr': Input should be a finite number"),
    Case("option-set-twice", "train-sae --run {run} --k 2 --option k=3", "--option: k is set by its own option (--k)"),
    Case("fit-into-a-file", "fit --model bprmf --dataset {data} --out {data}/toy.inter " + TOY, "is a file; give a folder path"),
    # run folders: missing, damaged, foreign
    Case("not-a-run", "evaluate --run {tmp}", "is not a recprobe run (no run.json); create it with `recprobe probe"),
    Case("truncated-run-json", "evaluate --run {run}", "run.json is not valid JSON", cut("run.json")),
    Case("run-json-empty-object", "evaluate --run {run}", "run.json is not what recprobe writes there (format: Field required)",
         write("run/run.json", "{}")),
    Case("run-json-a-list", "evaluate --run {run}", "run.json is not what recprobe writes there (the whole file: Input should be "
         "a valid dictionary", write("run/run.json", "[]")),
    Case("run-json-null", "evaluate --run {run}", "run.json is not what recprobe writes there (the whole file:",
         write("run/run.json", "null")),
    Case("run-json-wrong-type", "evaluate --run {run}", "run.json is not what recprobe writes there (target.d_model: Input "
         "should be a valid integer", edit_json("run.json", lambda d: d["target"].update(d_model="wide"))),
    Case("run-json-ranking-check-a-word", "evaluate --run {run}", "run.json is not what recprobe writes there "
         "(ranking_check.HR@10.int: Input should be a valid integer",
         edit_json("run.json", lambda d: d["ranking_check"].update({"HR@10": "high"}))),
    Case("activation-index-empty-object", "train-sae --run {run}", "activations/index.json is not what recprobe writes "
         "there (d: Field required); rebuild it with `recprobe capture", write("run/activations/index.json", "{}")),
    Case("activation-shard-swapped", "train-sae --run {run}", "activations holds other activations than it recorded "
         "(content hash", lambda tmp: shutil.copy(tmp / "run/activations/dev-00000.safetensors",
                                                  tmp / "run/activations/train-00000.safetensors")),
    Case("a-users-file-where-the-report-goes", "report --run {run}", "report is a file recprobe did not write, where it "
         "writes a folder; move it away", both(remove("report"), write("run/report", "my notes\n"))),
    Case("sae-metrics-a-list", "report --run {run}", "sae/metrics.json is not what recprobe writes there (the whole file: "
         "Input should be a valid dictionary", write("run/sae/metrics.json", "[]")),
    Case("concept-summary-empty", "report --run {run}", "concepts/summary.json is not what recprobe writes there (concepts: "
         "Field required); rebuild it with `recprobe interpret", write("run/concepts/summary.json", "{}")),
    Case("nan-in-the-sae-weights", "steer --run {run} --latent 0", "sae_weights.safetensors holds NaN or infinite values in "
         "W_enc", nan_in_sae),
    Case("activation-rows-not-its-shards", "train-sae --run {run}", "activations/index.json is not what recprobe "
         "writes there (splits.train: Value error, rows 5 is not the sum of its shards' rows",
         edit_json("activations/index.json", lambda d: d["splits"]["train"].update(rows=5))),
    Case("activation-shard-outside-the-store", "train-sae --run {run}", "activations/index.json is not what recprobe "
         "writes there (splits.train.shards.0.file: Value error, a shard is a file name inside the store, got '../x'",
         edit_json("activations/index.json", lambda d: d["splits"]["train"]["shards"][0].update(file="../x"))),
    Case("truncated-recommender-config", "evaluate --run {run}", "recommender/config.json is damaged: not valid JSON",
         cut("recommender/config.json")),
    Case("truncated-recommender-weights", "evaluate --run {run}", "recommender/model.safetensors is damaged",
         cut("recommender/model.safetensors", 100)),
    Case("truncated-activation-index", "train-sae --run {run}", "activations/index.json is damaged: not valid JSON",
         cut("activations/index.json")),
    Case("sae-without-metrics", "report --run {run}", "sae/metrics.json is missing", remove("sae/metrics.json")),
    Case("train-sae-without-capture", "train-sae --run {run}", "has no activations; run `recprobe capture --run", remove("activations")),
    Case("report-without-an-sae", "report --run {run}", "has no SAE; run `recprobe train-sae --run", remove("sae")),
    Case("sae-k-true", "report --run {run}", "does not describe a TopK SAE",
         edit_json("sae/cfg.json", lambda cfg: cfg["recprobe"]["config"].update(k=True))),
    Case("sae-k-disagrees", "report --run {run}", "the SAELens fields {'k': 3} disagree with recprobe's own config",
         edit_json("sae/cfg.json", lambda cfg: cfg.update(k=3))),
    Case("sae-from-elsewhere", "report --run {run}", "does not say which recommender it was trained on",
         edit_json("sae/cfg.json", lambda cfg: cfg["recprobe"].update(provenance={}))),
    Case("concepts-of-another-sae", "steer --run {run} --table7", "was made from another sae than the run has now",
         edit_json("concepts/settings.json", lambda s: s["made_from"].update(sae="0123456789abcdef"))),
    # options
    Case("capture-batch-size-0", "capture --run {run} --batch-size 0", "--batch-size: Input should be greater than or equal to 1 (got 0)"),
    Case("capture-no-split", "capture --run {run} --splits ,", "no split to capture"),
    Case("capture-positions-unknown", "capture --run {run} --positions some", "--positions: Input should be 'auto', 'last' or 'all' (got 'some')"),
    Case("capture-all-positions-of-a-general-model", "capture --run {run} --positions all", "positions='all' needs a sequential model"),
    Case("interpret-n-0", "interpret --run {run} --n 0", "--n: Input should be greater than or equal to 1 (got 0)"),
    Case("interpret-n-negative", "interpret --run {run} --n -1", "--n: Input should be greater than or equal to 1 (got -1)"),
    Case("interpret-latents-beyond-the-sae", "interpret --run {run} --latents 6-9", "latents 8, 9 do not exist"),
    Case("interpret-latents-backwards", "interpret --run {run} --latents 5-3", "--latents: the range '5-3' runs backwards"),
    Case("interpret-latents-not-a-range", "interpret --run {run} --latents a-b", "--latents: expected ranges like 0-99"),
    Case("interpret-folder-of-another-stage", "interpret --run {run} --folder report", "'report' is the run's report/ folder"),
    Case("interpret-folder-outside", "interpret --run {run} --folder ../x", "must be a plain name inside the run folder"),
    Case("interpret-level-mode", "interpret --run {run} --level-mode deciles", "--level-mode: Input should be 'max' or 'quantile' (got 'deciles')"),
    Case("interpret-cases-unknown", "interpret --run {run} --cases some", "--cases: Input should be 'auto', 'test' or 'all' (got 'some')"),
    Case("interpret-top-cases", "interpret --run {run} --top-cases 3",
         "--top-cases: at least 2N = 10 (a latent's construction and verification cases) are kept (got 3)"),
    Case("interpret-max-cases", "interpret --run {run} --max-cases 0", "--max-cases: Input should be greater than or equal to 1 (got 0)"),
    Case("interpret-all-cases-of-a-general-model", "interpret --run {run} --cases all",
         "--cases all needs a target that reads histories: one that reads user ids only"),
    Case("interpret-raw-and-basis", "interpret --run {run} --raw --basis untrained",
         "--raw: it means --basis raw; give one of them, not --raw with --basis untrained"),
    Case("interpret-unknown-basis", "interpret --run {run} --basis pca", "--basis: Input should be 'sae', 'raw', 'raw-both', 'untrained', 'frozen-decoder' or 'frozen-encoder' (got 'pca')"),
    Case("interpret-unknown-describer", "interpret --run {run} --describer vibes", "--describer: Input should be 'metadata' or 'llm' (got 'vibes')"),
    Case("interpret-unknown-llm", "interpret --run {run} --describer llm --llm gpt-9 --folder other",
         "unknown language model 'gpt-9'"),
    Case("interpret-other-settings", "interpret --run {run} --n 3", "holds concepts made with another llm, n, verifier"),
    Case("steer-latent-and-table7", "steer --run {run} --table7 --latent 0", "--latent: give --latent J (with --scale F) or --table7"),
    Case("steer-every-alone", "steer --run {run} --every", "--every: it widens --table7 to every concept; give --table7 --every"),
    Case("steer-max-cases-without-every", "steer --run {run} --table7 --max-cases 100",
         "--max-cases goes with --table7 --every, which steers a sample of cases"),
    Case("steer-every-no-cases", "steer --run {run} --table7 --every --max-cases 0",
         "--max-cases: give at least 1 case to steer, got 0"),
    Case("steer-every-without-controls", "steer --run {run} --table7 --every",
         "needs the SAE's concepts and at least one control's (interpreted: sae)"),
    Case("steer-latent-beyond-the-sae", "steer --run {run} --latent 99 --scale 2", "latent 99 does not exist"),
    Case("steer-scale-overflows", "steer --run {run} --latent 0 --scale 1e39", "is too large (float32 scores overflow)"),
    Case("debias-scale-overflows", "debias --run {run} --latents 2 --niche-scale 1e39", "is too large (float32 scores overflow)"),
    Case("debias-no-latents", "debias --run {run} --sweep --latents 0", "--latents: Input should be greater than or equal to 1 (got 0)"),
    Case("explain-fidelity-m-beyond-k", "explain --run {run} --fidelity --m 2",
         "--m 2: the control ablates 2 active latents besides the top 2, so a user needs 4 and this SAE fires at most k = 2; give --m 1 or less"),
    Case("debias-unknown-selection", "debias --run {run} --sweep --selection pearson",
         "--selection: Input should be 'spearman' or 'cohens-d' (got 'pearson')"),
    Case("debias-strength-not-finite", "debias --run {run} --sweep --strengths 0,nan", "--strengths: nan is not a finite number >= 0"),
    Case("debias-strengths-not-numbers", "debias --run {run} --sweep --strengths 0,strong", "--strengths: expected numbers separated by commas"),
    Case("debias-strengths-without-sweep", "debias --run {run} --strengths 1,2", "--strengths and --selection go with --sweep"),
    Case("debias-cohens-d-on-a-general-model", "debias --run {run} --sweep --selection cohens-d", "reads user ids only: use --selection spearman"),
    Case("explain-user-and-fidelity", "explain --run {run} --user 1 --fidelity", "--user: give --user U (with --item I) or --fidelity"),
    Case("explain-unknown-user", "explain --run {run} --user nobody", "--user 'nobody' is not one of this run's users"),
    Case("explain-unknown-item", "explain --run {run} --user 1 --item 99999", "--item '99999' is not one of this run's items"),
    Case("mistyped-option", "train-sae --run {run} --epoch 2",
         "No such option: --epoch (Possible options: --arch, --epochs); see `recprobe train-sae --help`"),
    Case("unknown-command", "trian-sae --run {run}", "No such command 'trian-sae'. Did you mean 'train-sae'? See `recprobe --help`"),
    Case("push-bad-repo-id", "push --run {run} --repo ../../etc", "'../../etc' is not a Hub repo id"),
    Case("push-offline", "push --run {run} --repo me/sae", "offline mode (HF_HUB_OFFLINE is set)", env=(("HF_HUB_OFFLINE", "1"),)),
    # a port nothing listens on: the connection is refused on this machine, as with no network
    Case("push-unreachable", "push --run {run} --repo me/sae", "could not reach the Hugging Face Hub at http://127.0.0.1:9",
         env=(("HF_HUB_OFFLINE", "0"), ("HF_ENDPOINT", "http://127.0.0.1:9"), ("HF_TOKEN", "hf_test"))),
    Case("export-neither-dataset-nor-run", "export --out {tmp}/e", "--dataset: give --dataset D or --run RUN"),
    Case("export-run-with-filters", "export --run {run} --out {tmp}/e --core 3",
         "--core: --run exports the split the run was made on, filtered as it was; these options apply to --dataset D"),
    Case("probe-unknown-adapter", "probe --adapter nope --dataset {data} --out {tmp}/r " + TOY, "unknown adapter 'nope'"),
    # options checked before anything is written
    Case("fit-negative-seed", "fit --model bprmf --dataset {data} --out {tmp}/r --seed -1 " + TOY,
         "invalid TrainConfig option 'seed': Input should be greater than or equal to 0"),
    Case("interpret-latents-beyond-any-sae", "interpret --run {run} --latents 0-1000000000",
         "--latents: the range '0-1000000000' is not latents of an SAE"),
    Case("quickstart-negative-llm-latents", "quickstart --out {tmp}/q --llm-latents -1", "--llm-latents: how many concepts"),
    Case("debias-more-latents-than-the-sae", "debias --run {run} --latents 100000",
         "--latents 100000: give a count from 1 to 8, the SAE's number of latents"),
    Case("steer-table7-with-scale", "steer --run {run} --table7 --scale 5", "--scale goes with --latent J"),
    Case("evaluate-sampled-on-a-small-catalog", "evaluate --run {run} --sampled",
         "--sampled ranks the held-out item among 99 distinct items the user has not seen; this catalog has"),
    Case("probe-adapter-option-missing", "probe --adapter bprmf --dataset {data} --out {tmp}/r " + TOY,
         "invalid RunOptions option 'run': Field required"),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, Path]:
    """A run of a built-in model on a toy dataset, taken through every stage (its SAE has 8 latents)."""
    from recprobe.data.source import DataSource
    from recprobe.models import TrainConfig
    from recprobe.runs import Run
    from recprobe.runs.fit import fit_run

    root = tmp_path_factory.mktemp("cli-errors")
    data = write_atomic(root / "toy", synthetic_frame())
    fit_run(root / "run", "bprmf", DataSource(dataset=str(data), min_rating=None, core=3), model_options={"d": 8},
            train=TrainConfig(epochs=1), progress=False)
    run = Run.open(root / "run")
    run.capture(progress=False)
    run.train_sae(scale=1, k=2, epochs=2, progress=False)
    run.interpret(n=2, verifier="llm", llm="fake", progress=False)
    run.steering().table7()
    run.debias(n_latents=1)
    run.debias_sweep(strengths=[0.0, 1.0], seeds=1, n_latents=1)
    run.fidelity(m=1)
    run.report()
    return root / "run", data


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".recprobe.lock"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_cli_bad_input(finished_run, tmp_path, case):
    run, data = finished_run
    shutil.copytree(run, tmp_path / "run")
    if case.setup is not None:
        case.setup(tmp_path)
    before = digest(tmp_path)
    args = case.args.format(run=tmp_path / "run", data=data, tmp=tmp_path).split()
    env = {**os.environ, "RECPROBE_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "0", **dict(case.env)}
    done = subprocess.run([sys.executable, "-m", "recprobe.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert case.expected in lines[0], lines[0]
    assert digest(tmp_path) == before  # nothing written, nothing lost: the run works as it did


def test_every_case_is_a_row_of_the_errors_page():
    page = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text()
    missing = [case.id for case in CASES if f"test_cli_errors.py::test_cli_bad_input[{case.id}]" not in page]
    assert not missing, f"docs/errors.md lacks rows for {missing}"


def test_a_full_disk_is_one_line_and_keeps_the_saved_sae(finished_run, tmp_path, monkeypatch, capsys):
    """The disk cannot be filled here: the write fails the way a full disk makes it fail (ENOSPC)."""
    import errno

    from recprobe.cli import main

    run, _ = finished_run
    shutil.copytree(run, tmp_path / "run")
    before = digest(tmp_path / "run" / "sae")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "sae-new"))

    monkeypatch.setattr("recprobe.sae.io.save_file", full)
    with pytest.raises(SystemExit) as exit_info:
        main(["train-sae", "--run", str(tmp_path / "run"), "--scale", "1", "--k", "2", "--epochs", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: no space left on the device while writing") and "free some space and rerun" in err
    assert digest(tmp_path / "run" / "sae") == before


def test_a_folder_it_may_not_write_is_one_line(finished_run, tmp_path, monkeypatch, capsys):
    """Tests run as root here, which writes anywhere: the refusal is the one a read-only folder gives."""
    from recprobe.cli import main

    run, _ = finished_run
    shutil.copytree(run, tmp_path / "run")

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "run" / ".recprobe.lock"))

    monkeypatch.setattr("recprobe.runs.lock.open", read_only, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["capture", "--run", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert ".recprobe.lock: permission denied; make it writable (or readable) for you, or choose another folder" in err


def test_ctrl_c_during_train_sae_says_how_to_go_on_and_keeps_the_checkpoint(finished_run, tmp_path):
    import signal
    import time

    run, _ = finished_run
    shutil.copytree(run, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "sae")
    args = [sys.executable, "-m", "recprobe.cli", "train-sae", "--run", str(tmp_path / "run"), "--scale", "1", "--k", "2",
            "--epochs", "10000000"]  # far longer than the test waits
    env = {**os.environ, "RECPROBE_LOAD_PLUGINS": ""}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:  # a file, not a pipe: nothing can block on a full pipe or hold it open
        # pytest-xdist workers ignore SIGINT, and a child inherits that: give it the default disposition back
        training = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        checkpoint = tmp_path / "run" / "sae-checkpoint.safetensors"
        deadline = time.time() + 300
        while not checkpoint.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert training.poll() is None, log.read_text()  # still training, with a checkpoint to resume from
        time.sleep(0.5)
        training.send_signal(signal.SIGINT)
        try:
            training.wait(timeout=300)
        finally:
            training.kill()
    err = log.read_text()
    assert training.returncode == 130
    assert err.strip().splitlines()[-1].startswith("interrupted; nothing already finished was lost: rerun the same command")
    assert checkpoint.exists() and not (tmp_path / "run" / "sae").exists()
