"""Every file of a finished run, damaged every way a careless colleague or a broken disk would, read by the
commands that read it: each ends in a correct result or exactly one `error:` line (exit 2), never a traceback,
and the damaged file and every other file that was there before stay as they were.

The table in test_cli_errors.py holds the documented cases with their exact messages; this sweep is the net
under them, for damage nobody wrote a row for."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from recprobe.cli import main
from tests.test_cli_errors import digest, finished_run  # noqa: F401 (finished_run: a fixture)

pytestmark = pytest.mark.slow


def wrong_types(value):
    """The same shape, every leaf of another type: numbers become strings, strings lists, lists numbers."""
    if isinstance(value, dict):
        return {key: wrong_types(item) for key, item in value.items()}
    if isinstance(value, list):
        return 7
    if isinstance(value, str):
        return ["x"]
    if isinstance(value, bool) or value is None:
        return "yes"
    return str(value)


def per_record(damage: Callable[[object], object]) -> Callable[[str], str]:
    """A JSON file's text with ``damage`` applied to its value (to every line's value for a .jsonl file)."""
    def apply(text: str) -> str:
        return json.dumps(damage(json.loads(text)))

    return apply


DAMAGES: dict[str, Callable[[str], str]] = {
    "empty": lambda text: "",
    "not-json": lambda text: text[: len(text) // 2],
    "object": lambda text: "{}",
    "array": lambda text: "[]",
    "null": lambda text: "null",
    "wrong-types": per_record(wrong_types),
}
JSONL_DAMAGES: dict[str, Callable[[str], str]] = {
    "empty": lambda text: "",
    "cut-line": lambda text: text[: len(text) // 2],
    "array-lines": lambda text: "\n".join("[]" for _ in text.splitlines()) + "\n",
    "wrong-types": lambda text: "\n".join(json.dumps(wrong_types(json.loads(line))) for line in text.splitlines()) + "\n",
}
def nan_inside(path: Path) -> None:
    """One value of the file's first float tensor set to NaN, the file otherwise whole."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(path)
    name = next(n for n, t in tensors.items() if t.dtype.kind == "f" and t.size)
    tensors[name].flat[0] = float("nan")
    save_file(tensors, path)


BINARY_DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda data: b"",
    "cut": lambda data: data[: len(data) // 2],
    "garbage": lambda data: bytes((7 * i + 13) % 256 for i in range(len(data))),
    "nan": lambda data: data,  # applied by nan_inside: a refusal is the only right answer
}
# Which commands read a file, by its folder; `report` reads nearly everything.
READERS = {"run.json": ("evaluate", "report"), "explanations": ("report",), "split": ("evaluate", "report"), "recommender": ("evaluate", "report"),
           "activations": ("report", "ladder"), "sae": ("report", "explain"), "concepts": ("report", "steer"),
           "steering": ("report",)}
UNREAD = {("activations/train-00000.safetensors", "report")}  # the report reads the store's index, not its rows
COMMANDS = {"evaluate": "evaluate --run {run}", "report": "report --run {run}",
            "ladder": "train-sae --run {run} --seeds 1 --no-controls --epochs 1 --scale 1 --k 2",
            "steer": "steer --run {run} --table7", "explain": "explain --run {run} --user 1"}


FILES = ("activations/index.json", "concepts/attributes.json", "concepts/concepts.jsonl", "concepts/settings.json",
         "concepts/summary.json", "explanations/fidelity.json", "recommender/config.json", "recommender/metrics.json",
         "run.json", "sae/cfg.json", "sae/metrics.json", "split/catalog.json", "split/split.json",
         "steering/debias-sweep.json", "steering/debias.json", "steering/table7.json")
BINARY = ("activations/train-00000.safetensors", "concepts/cases.safetensors", "recommender/model.safetensors",
          "sae/sae_weights.safetensors", "split/item_ids.npy", "split/train_items.npy")


def damages_of(name: str) -> dict[str, Callable]:
    if name in BINARY:
        return BINARY_DAMAGES if name.endswith(".safetensors") else {k: v for k, v in BINARY_DAMAGES.items() if k != "nan"}
    return JSONL_DAMAGES if name.endswith(".jsonl") else DAMAGES


CASES = [(name, damage, command) for name in FILES + BINARY for command in READERS[name.split("/")[0]]
         for damage in damages_of(name)]


def json_files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.suffix in (".json", ".jsonl")
                  and "report" not in p.relative_to(run).parts)


def test_the_sweep_covers_every_json_file_of_the_run(finished_run):  # noqa: F811
    assert json_files(finished_run[0]) == list(FILES)  # a new file joins FILES, and so the sweep


@pytest.mark.parametrize(("name", "damage", "command"), CASES, ids=["-".join(case) for case in CASES])
def test_a_damaged_file_is_one_line_or_a_correct_result(finished_run, name, damage, command, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    damaged = run / name
    if damage == "nan":
        nan_inside(damaged)
    elif name in BINARY:
        damaged.write_bytes(BINARY_DAMAGES[damage](damaged.read_bytes()))
    else:
        damaged.write_text(damages_of(name)[damage](damaged.read_text()))
    before = digest(run)
    with pytest.raises(SystemExit) as exit_info:
        main(COMMANDS[command].format(run=run).split())
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    where = f"{name} damaged ({damage}), `recprobe {command}`"
    assert exit_info.value.code in (0, 2), f"{where}: exit {exit_info.value.code}\n{err[-2000:]}"
    if exit_info.value.code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{where}:\n{err[-2000:]}"
    if damage == "nan" and (name, command) not in UNREAD:  # a NaN read gives no right answer: it must be refused
        assert exit_info.value.code == 2, f"{where}: exit {exit_info.value.code}\n{err[-2000:]}"
    after = digest(run)
    changed = [path for path, sha in before.items() if after.get(path) != sha and not path.startswith(("report/", "steering/", "saes/"))]
    assert not changed, f"{where} changed {changed}"
