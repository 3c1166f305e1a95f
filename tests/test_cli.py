"""Bad input at the command line: one clear line, exit code 2, no traceback, nothing overwritten."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil

import numpy as np
import pytest

from recprobe.cli import main

from .conftest import synthetic_frame, write_atomic


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    assert "Traceback" not in err
    line = " ".join(err.split())  # rich may wrap
    assert line.startswith("error:")
    for needle in needles:
        assert needle in line


@pytest.fixture
def toy(tmp_path):
    return write_atomic(tmp_path / "toy", synthetic_frame())


def fit_args(dataset, out, *extra):
    return ("fit", "--model", "bprmf", "--dataset", str(dataset), "--out", str(out), "--epochs", "1",
            "--min-rating", "-1", "--core", "3", *extra)


def test_missing_data_directory(capsys, tmp_path):
    """A dataset that cannot be fetched (ReChorus' Grocery split) says where it looked; a fetchable one that cannot
    be fetched says where to put the file (tests/test_fetch.py)."""
    code, _, err = run_cli(capsys, "fit", "--model", "bprmf", "--dataset", "grocery", "--out", str(tmp_path / "r"),
                           "--data-dir", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "dataset 'grocery' not found", "nowhere", "--data-dir")
    assert not (tmp_path / "r").exists()


def test_file_with_wrong_columns(capsys, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.inter").write_text("who:token\twhat:token\twhen:float\n1\t2\t3\n")
    code, _, err = run_cli(capsys, *fit_args(folder, tmp_path / "r"))
    assert_one_line_error(code, err, "missing column(s)", "user_id")


def test_non_numeric_ids(capsys, tmp_path):
    folder = tmp_path / "grocery"
    folder.mkdir()
    for name in ("train.csv", "dev.csv", "test.csv"):
        (folder / name).write_text("user_id\titem_id\ttime\nu1\t2\t3\n")
    code, _, err = run_cli(capsys, "fit", "--model", "bprmf", "--dataset", str(folder), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "'user_id' must be an integer", "'u1'")


def test_unknown_dataset_and_model(capsys, tmp_path, toy):
    code, _, err = run_cli(capsys, "fit", "--model", "bprmf", "--dataset", "netflix", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "unknown dataset 'netflix'", "ml-100k")
    code, _, err = run_cli(capsys, "fit", "--model", "mf", "--dataset", str(toy), "--out", str(tmp_path / "r"),
                           "--min-rating", "-1", "--core", "3")
    assert_one_line_error(code, err, "unknown model 'mf'", "bprmf, lightgcn, sasrec, timirec")


def test_split_left_empty_by_filtering(capsys, tmp_path, toy):
    code, _, err = run_cli(capsys, *fit_args(toy, tmp_path / "r")[:-2], "--core", "100")
    assert_one_line_error(code, err, "no interaction is left", "--core")


def test_out_folder_holding_a_different_run_is_left_alone(capsys, tmp_path, toy):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, *fit_args(toy, out))
    assert code in (0, None) and "HR@10" in stdout
    weights = out / "recommender" / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    code, stdout, _ = run_cli(capsys, *fit_args(toy, out))  # the same run again: reused
    assert code in (0, None) and "already holds this run" in " ".join(stdout.split())
    code, _, err = run_cli(capsys, *fit_args(toy, out, "--d", "8"))
    assert_one_line_error(code, err, "already holds a different run", "model_config differs in d", "--overwrite")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest
    code, _, _ = run_cli(capsys, *fit_args(toy, out, "--d", "8", "--overwrite"))
    assert code in (0, None) and hashlib.sha256(weights.read_bytes()).hexdigest() != digest


def test_option_the_model_does_not_have(capsys, tmp_path, toy):
    code, _, err = run_cli(capsys, *fit_args(toy, tmp_path / "r", "--option", "n_layers=2"))
    assert_one_line_error(code, err, "invalid", "n_layers", "Extra inputs are not permitted")


def test_adapters_lists_each_with_its_package(capsys):
    code, out, _ = run_cli(capsys, "adapters")
    assert code == 0
    for name in ("bprmf", "lightgcn", "sasrec", "timirec", "recbole"):
        assert name in out
    assert "recprobe" in out


def test_capture_then_train_sae_writes_the_sae_folder(capsys, tmp_path, toy):
    out = tmp_path / "run"
    assert run_cli(capsys, *fit_args(toy, out, "--epochs", "1", "--model", "sasrec"))[0] == 0
    code, text, _ = run_cli(capsys, "capture", "--run", str(out), "--positions", "all")
    assert code == 0 and "vectors of width 64" in " ".join(text.split())
    code, text, _ = run_cli(capsys, "train-sae", "--run", str(out), "--epochs", "2",
                            "--scale", "2", "--k", "4")
    assert code == 0 and "random init" in text and "full-softmax loss recovered" in text
    assert "(lowest dev FVU)" in text  # a sequential model's dev vectors are held-out positions
    sae = out / "sae"
    assert sorted(p.name for p in sae.iterdir()) == ["README.md", "cfg.json", "metrics.json", "sae_weights.safetensors"]
    metrics = json.loads((sae / "metrics.json").read_text())
    assert {"original_test", "spliced_test", "reconstruction_train"} <= set(metrics["after"])
    assert metrics["before"]["spliced_test"].keys() == metrics["after"]["spliced_test"].keys()
    splice = metrics["after"]["splice_test"]
    assert 0 <= splice["top10_overlap"] <= 1 and splice["NDCG@10_original"] == metrics["after"]["original_test"]["NDCG@10"]
    assert "| test loss_recovered | 1 |" in (sae / "README.md").read_text()


def test_train_sae_without_capture_says_what_to_run(capsys, tmp_path, toy):
    out = tmp_path / "run"
    run_cli(capsys, *fit_args(toy, out, "--epochs", "1"))
    code, _, err = run_cli(capsys, "train-sae", "--run", str(out))
    assert_one_line_error(code, err, "has no activations; run `recprobe capture --run", "first")


def test_a_run_carries_its_split_so_the_raw_dataset_can_go(capsys, tmp_path, toy):
    """Only fit, probe, export and datasets read raw files: after fit, the dataset is deleted and every later stage
    still runs on the split stored in the run; no other command accepts --data-dir."""
    out = tmp_path / "run"
    assert run_cli(capsys, *fit_args(toy, out, "--model", "sasrec"))[0] == 0
    before = run_cli(capsys, "evaluate", "--run", str(out))[1]
    shutil.rmtree(toy)
    assert run_cli(capsys, "evaluate", "--run", str(out))[1] == before
    assert run_cli(capsys, "capture", "--run", str(out))[0] == 0
    assert run_cli(capsys, "train-sae", "--run", str(out), "--epochs", "1", "--scale", "2", "--k", "4")[0] == 0
    assert run_cli(capsys, "export", "--run", str(out), "--out", str(tmp_path / "exported"))[0] == 0
    code, _, err = run_cli(capsys, "capture", "--run", str(out), "--data-dir", str(tmp_path))
    assert code == 2 and "No such option: --data-dir" in err
    from recprobe.cli import click_command

    takes = {name for name, command in click_command.commands.items()
             if any("--data-dir" in param.opts for param in command.params)}
    assert takes == {"fit", "probe", "export", "datasets"}


def test_user_text_in_normal_output_is_printed_as_it_is_never_as_markup(capsys, tmp_path):
    """A folder named like rich markup: `[/x]` used to crash the closing print after the work was written, and
    `[red]` was silently eaten."""
    folder = tmp_path / "a [/x] b [red]c[/red]"
    toy = write_atomic(folder / "toy [bold]", synthetic_frame())
    out = folder / "run [/]"
    code, text, err = run_cli(capsys, *fit_args(toy, out, "--model", "sasrec"))
    assert code == 0, err
    code, text, err = run_cli(capsys, "capture", "--run", str(out))
    assert code == 0 and _squeezed(f"-> {out / 'activations'}") in _squeezed(text), (text, err)
    code, text, err = run_cli(capsys, "export", "--run", str(out), "--out", str(folder / "exported [i]"), "--name", "n[red]x")
    assert code == 0 and _squeezed(str(folder / "exported [i]" / "n[red]x")) in _squeezed(text), (text, err)


def _squeezed(text: str) -> str:
    """Without whitespace: rich wraps a long line at a space."""
    return "".join(text.split())


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ""])
def test_an_export_name_never_leaves_the_output_folder(capsys, tmp_path, toy, name):
    code, _, err = run_cli(capsys, "export", "--dataset", str(toy), "--min-rating", "-1", "--core", "3",
                           "--out", str(tmp_path / "out" / "deep"), "--name", name)
    assert_one_line_error(code, err, f"--name {name!r}: a dataset name is one folder name inside --out")
    assert not (tmp_path / "out").exists()


def test_run_json_records_the_command_that_makes_the_same_run_again(capsys, tmp_path, toy):
    """The recorded `fit` command keeps every option that is not the default (it used to drop --epochs and the
    rest), so running it again finds the same run; a fitted run never claims --untrained-ok, and data without a
    rating column records no rating threshold."""
    out = tmp_path / "run"
    assert run_cli(capsys, *fit_args(toy, out, "--model", "sasrec", "--patience", "2", "--seed", "3",
                                     "--option", "n_layers=1", "--d", "16"))[0] == 0
    record = json.loads((out / "run.json").read_text())
    command = shlex.split(record["command"])
    for flag, value in (("--epochs", "1"), ("--patience", "2"), ("--seed", "3"), ("--core", "3"), ("--d", "16"),
                        ("--option", "n_layers=1")):
        assert command[command.index(flag) + 1] == value, record["command"]
    assert record["untrained_ok"] is False
    code, text, _ = run_cli(capsys, *command[1:])
    assert code == 0 and "already holds this run" in " ".join(text.split())
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "bare.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
        f"{r.user}\t{r.item}\t{r.time}\n" for r in synthetic_frame().itertuples()))
    assert run_cli(capsys, "fit", "--model", "bprmf", "--dataset", str(bare), "--out", str(tmp_path / "bare-run"),
                   "--epochs", "1", "--core", "3")[0] == 0  # the default --min-rating 4, on data without ratings
    assert json.loads((tmp_path / "bare-run" / "run.json").read_text())["dataset"]["min_rating"] is None


def test_a_fix_names_the_run_it_is_about_and_leaves_other_text_alone(tmp_path):
    from recprobe.runs.run import recreate_command

    made = "recprobe probe --adapter torch --dataset 'my data' --out runs/a"
    assert recreate_command({"command": made}, tmp_path / "b c") == (
        f"recprobe probe --adapter torch --dataset 'my data' --out '{tmp_path / 'b c'}'")
    for other in ("python make.py --out /models/x", "Alice's notebook", "recprobe.Run.create(...)"):
        assert recreate_command({"command": other}, tmp_path) == other


def test_a_damaged_stored_split_names_the_command_that_writes_it_again(capsys, tmp_path, toy):
    made, out = tmp_path / "made", tmp_path / "copy"
    assert run_cli(capsys, *fit_args(toy, made))[0] == 0
    shutil.copytree(made, out)  # a copied run: the fix offered must mend the copy, not the run it was copied from
    arrays = out / "split" / "test_items.npy"
    np.save(arrays, np.load(arrays)[::-1])  # another split's held-out items
    code, _, err = run_cli(capsys, "evaluate", "--run", str(out))
    assert_one_line_error(code, err, "has changed since it was written", "write it again with `recprobe fit",
                          f"--out {out}")
    assert str(made) not in err
    advised = " ".join(err.split()).split("write it again with `")[1].split("`")[0]
    assert run_cli(capsys, *shlex.split(advised)[1:])[0] == 0  # the advice mends it: the split written again
    assert run_cli(capsys, "evaluate", "--run", str(out))[0] == 0
    (out / "split" / "catalog.json").unlink()
    code, _, err = run_cli(capsys, "evaluate", "--run", str(out))
    assert_one_line_error(code, err, "does not hold a whole split", "catalog.json")


def test_interpret_without_an_sae_says_what_to_run(capsys, tmp_path, toy):
    out = tmp_path / "run"
    run_cli(capsys, *fit_args(toy, out, "--epochs", "1"))
    code, _, err = run_cli(capsys, "interpret", "--run", str(out), "--llm", "fake")
    assert_one_line_error(code, err, "has no SAE; run `recprobe train-sae --run", "first")
    code, _, err = run_cli(capsys, "interpret", "--run", str(out), "--verifier", "vibes")
    assert_one_line_error(code, err, "--verifier: Input should be 'embedding', 'llm' or 'llm-likelihood'", "'vibes'")


def test_export_prints_the_settings_recbole_reads_it_with(capsys, tmp_path):
    folder = write_atomic(tmp_path / "toy", synthetic_frame())
    code, out, _ = run_cli(capsys, "export", "--dataset", str(folder), "--min-rating", "0", "--core", "3", "--out",
                           str(tmp_path / "exported"))
    assert code == 0
    settings = json.loads(out.strip().splitlines()[-1])  # the last line: the config entries, in full
    assert settings["dataset"] == "recprobe-toy" and settings["data_path"] == str(tmp_path / "exported")
    assert settings["load_col"] == {"inter": ["user_id", "item_id", "timestamp"]}
    assert settings["eval_args"]["split"] == {"LS": "valid_and_test"}
    for part in ("train", "valid", "test"):
        assert (tmp_path / "exported" / "recprobe-toy" / f"recprobe-toy.{part}.inter").is_file()
