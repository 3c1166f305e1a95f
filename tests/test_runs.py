"""Runs for any target: ids mapped by raw token, near-random targets refused, every stage refusing stale or
foreign inputs with the command that rebuilds them, and nothing lost to readers or kills."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import recprobe
from recprobe.errors import IdMismatchError, RecprobeError, RunFolderError, StaleArtifactError
from recprobe.runs import Run
from recprobe.runs.steering import SteeringRun
from recprobe.testing import ProbeTargetCheckError, check_probe_target
from tests.conftest import probe_batch, sae_run, use_synthetic
from tests.targets import Oracle, shuffled_order


def oracle_run(split, tmp_path, name="run", **options) -> Run:
    """A run of the Oracle through the SAE: small, fast, and its concepts come from the fake LLM backend."""
    run = Run.create(tmp_path / name, Oracle(split, shuffled_order(split.n_items), **options), split)
    run.capture(progress=False)
    run.train_sae(scale=2, k=2, epochs=3, progress=False)
    return run


def test_ids_are_mapped_by_raw_token(split):
    target = Oracle(split, shuffled_order(split.n_items))
    run_target = recprobe.runs.align.align(target, split)
    batch = probe_batch(split, 0, n=split.n_users)
    scores = run_target.predict(batch)
    assert (scores.argmax(1).numpy() == split.test_items).all()  # in the split's numbering: the test items lead
    assert not (target.predict(batch).argmax(1).numpy() == split.test_items).all()
    check_probe_target(run_target, batch, split=split)


def test_a_target_numbered_its_own_way_without_tokens_is_refused_as_near_random(split, tmp_path):
    target = Oracle(split, shuffled_order(split.n_items), tokens=False)
    with pytest.raises(RunFolderError, match=r"ranks the synthetic split's held-out items almost at random: HR@10 .*"
                                             r"Likely causes: its user or item ids are numbered differently"):
        Run.create(tmp_path / "run", target, split)
    assert not (tmp_path / "run").exists()  # nothing written
    with pytest.raises(ProbeTargetCheckError, match="almost at random"):
        check_probe_target(target, probe_batch(split, 0), split=split)
    run = Run.create(tmp_path / "run", target, split, untrained_ok=True)
    assert run.record["untrained_ok"] and run.record["ranking_check"]["HR@10"] < 0.9


def test_a_target_trained_on_other_items_is_refused_naming_the_mismatch(split, tmp_path):
    target = Oracle(split)
    target.item_tokens = np.array([*split.item_ids[:-2], "999901", "999902"])
    with pytest.raises(IdMismatchError, match=r"2 of the split's \d+ items are unknown to the target .*2 of the target's "
                                              r"\d+ items are not in the split \(e.g. '999901', '999902'\)"):
        Run.create(tmp_path / "run", target, split)
    assert not (tmp_path / "run").exists()


def test_a_model_object_goes_through_every_stage_to_the_report(split, tmp_path):
    run = oracle_run(split, tmp_path)
    assert run.record["target"]["adapter"] == "in-memory" and run.record["target"]["ids"] == "mapped by raw token"
    summary = run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    assert summary["interpreted"] == run.sae().n_latents
    run.steering().steer(0, [-10.0, 10.0])
    user = str(split.user_ids[0])
    explained = run.explain(user)  # every stage is a method, explain and debias too
    assert explained["user"] == user and explained["latents"] and explained["rank"] >= 1
    assert run.fidelity(m=1)["users"] > 0 and (run.layout.explanations / "fidelity.json").is_file()
    debiased = run.debias(n_latents=1, niche_scale=3.0)
    written = json.loads((run.layout.steering / "debias.json").read_text())
    assert written["niche_scale"] == debiased["niche_scale"] == 3.0 and written["before"] == debiased["before"]
    index = run.report()
    assert "oracle on synthetic" in index.read_text()
    with pytest.raises(RunFolderError, match=r"created from a model object in Python .* recprobe.Run.open\(folder, target=your_target\)"):
        Run.open(run.root)
    reopened = Run.open(run.root, target=run.target.inner, split=split)
    assert reopened.fingerprint == run.fingerprint


def test_a_changed_recommender_is_refused_with_the_command_that_recreates_the_run(split, tmp_path):
    run = oracle_run(split, tmp_path)
    changed = run.target.inner
    with torch.no_grad():
        changed.table.mul_(1.01)
    with pytest.raises(StaleArtifactError, match=r"has changed since the run was created .* recreate the run"):
        Run.open(run.root, target=changed, split=split)


def test_stages_refuse_inputs_made_from_another_sae(split, tmp_path):
    run = oracle_run(split, tmp_path)
    run.interpret(describer="llm", verifier="llm", llm="fake", n=2, latents=range(4), progress=False)
    run.train_sae(scale=2, k=2, epochs=3, seed=1, progress=False)  # a new SAE: the concepts are stale now
    rebuild = f"rebuild it with `recprobe interpret --run {run.root} --overwrite`"
    with pytest.raises(StaleArtifactError, match=rf"made from another sae than the run has now .*{rebuild}"):
        run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    with pytest.raises(StaleArtifactError, match="made from another sae"):
        SteeringRun(run).table7()
    with pytest.raises(StaleArtifactError, match="made from another sae"):
        run.report()
    summary = run.interpret(describer="llm", verifier="llm", llm="fake", n=2, latents=range(4), overwrite=True, progress=False)
    assert summary["interpreted"] == 4
    run.report()


def test_an_sae_copied_from_another_run_is_refused(split, tmp_path):
    ours, theirs = oracle_run(split, tmp_path, "ours"), oracle_run(split, tmp_path, "theirs", seed=3)
    shutil.rmtree(ours.layout.sae)
    shutil.copytree(theirs.layout.sae, ours.layout.sae)
    with pytest.raises(StaleArtifactError, match=r"sae was made from another recommender .*`recprobe train-sae --run"):
        ours.sae()
    with pytest.raises(StaleArtifactError, match="another recommender"):
        ours.report()


def test_an_sae_over_activations_captured_since_is_refused(split, tmp_path):
    run = oracle_run(split, tmp_path)
    run.capture(progress=False)  # the same target and data: the same content, the SAE still holds
    run.sae()
    from recprobe.runs.options import CaptureOptions

    run.capture(CaptureOptions(parts=("train", "test")), progress=False)  # the options model, or its fields by name
    assert run.activations().splits() == ["train", "test"]
    with pytest.raises(StaleArtifactError, match=r"made from another activations .*`recprobe train-sae --run"):
        run.sae()


def test_fit_overwrite_clears_what_was_made_from_the_old_model(split, tmp_path, monkeypatch):
    from recprobe.models import TrainConfig
    from recprobe.runs.fit import fit_run

    root = sae_run(split, tmp_path, monkeypatch)
    Run.open(root).interpret(describer="llm", verifier="llm", llm="fake", n=2, latents=range(2), progress=False)
    assert {"activations", "sae", "concepts"} <= {p.name for p in root.iterdir()}
    fit_run(root, "bprmf", "synthetic", model_options={"d": 8}, train=TrainConfig(epochs=1), overwrite=True,
            progress=False)
    assert {p.name for p in root.iterdir() if not p.name.startswith(".")} == {"split", "recommender", "run.json"}
    with pytest.raises(RunFolderError, match="has no activations; run `recprobe capture"):
        Run.open(root).activations()


def test_readers_never_shorten_concepts_and_interpret_repairs_them(split, tmp_path):
    run = oracle_run(split, tmp_path)
    run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    path = run.layout.concepts() / "concepts.jsonl"
    lines = path.read_text().splitlines()
    n = len(lines)
    damaged = "\n".join([*lines[:2], '{"latent": 2, "sta', *lines[3:]]) + "\n"
    path.write_text(damaged)
    run.report()
    SteeringRun(run).table7()
    assert [r["latent"] for r in run.concepts()] == [j for j in range(n) if j != 2]
    assert path.read_text() == damaged  # readers left it as it was
    summary = run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    assert "1 damaged line(s)" in summary["repair_note"] and summary["interpreted"] == n
    assert (run.layout.concepts() / "concepts.damaged.jsonl").read_text() == '{"latent": 2, "sta\n'
    assert sorted(r["latent"] for r in run.concepts()) == list(range(n))


def test_records_of_a_latent_the_sae_lacks_or_of_the_wrong_types_are_damaged_lines(split, tmp_path):
    """Valid JSON that is not a record interpret writes: readers skip it (the report and Table 7 still run) and
    the next interpret moves it aside."""
    run = oracle_run(split, tmp_path)
    run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    path = run.layout.concepts() / "concepts.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    wrong = [{**records[0], "latent": 9999}, {**records[1], "confidence": "high"}, {**records[2], "latent": True},
             {**records[3], "confidence": 7.5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in [*wrong, *records[4:]]))
    assert sorted(r["latent"] for r in run.concepts()) == [r["latent"] for r in records[4:]]
    run.report()
    SteeringRun(run).table7()
    summary = run.interpret(describer="llm", verifier="llm", llm="fake", n=2, progress=False)
    assert "4 damaged line(s)" in summary["repair_note"]
    assert sorted(r["latent"] for r in run.concepts()) == [r["latent"] for r in records]


def test_an_llm_that_does_not_load_leaves_no_new_concepts_folder(split, tmp_path):
    run = oracle_run(split, tmp_path)
    with pytest.raises(RecprobeError):
        run.interpret(describer="llm", verifier="llm", llm="hf:nobody/nothing", n=2, folder="concepts-llm", progress=False)
    assert not run.layout.concepts("concepts-llm").exists()


class NanForOneUser(Oracle):
    def predict(self, batch):
        scores = super().predict(batch)
        scores[0, 3] = float("nan")
        return scores


class OneRowShort(Oracle):
    def predict(self, batch):
        return super().predict(batch)[1:]


class InfiniteForOneUser(Oracle):
    def represent(self, batch):
        reps = super().represent(batch)
        reps[1, 2] = float("inf")
        return reps


@pytest.mark.parametrize(("target", "message"), [
    (NanForOneUser, r"oracle scores NaN for 1 of \d+ users \(e\.g\. user .*\); a target's scores must be numbers"),
    (InfiniteForOneUser, r"oracle's representation holds NaN or inf values for 1 of \d+ users \(e\.g\. user .*\); a "
                         r"representation must be finite numbers"),
    (lambda split: torch.nn.Linear(2, 2), r"Linear is not a ProbeTarget: it lacks name, d_model, n_items, max_history, "
                                          r"represent, .* Open a torch model with recprobe.wrap\(model, site="),
    (OneRowShort, r"oracle's predict\(batch\) must return \[users, items\] scores, one row per user of the batch; for "
                  r"\d+ users it returned \(\d+, \d+\)"),
])
def test_a_target_with_broken_scores_is_refused_before_anything_is_written(split, tmp_path, target, message):
    with pytest.raises(RecprobeError, match=message):
        Run.create(tmp_path / "run", target(split), split)
    assert not (tmp_path / "run").exists()


class Failing(Oracle):
    def represent(self, batch):
        if batch.users.min() > 5:
            raise RuntimeError("the model broke mid-capture")
        return super().represent(batch)


def test_a_failed_capture_leaves_the_previous_store(split, tmp_path):
    run = oracle_run(split, tmp_path)
    before = run.activations().load("train").activations
    broken = Run(run.root, run.record, recprobe.runs.align.align(Failing(split, shuffled_order(split.n_items)), split), split)
    with pytest.raises(RuntimeError, match="mid-capture"):
        broken.capture(batch_size=4, progress=False)
    assert torch.equal(run.activations().load("train").activations, before)
    assert [p.name for p in run.root.iterdir() if p.name.startswith(".activations")] == []


def test_every_stage_reads_the_synthetic_run_through_the_builtin_adapter(split, tmp_path, monkeypatch):
    root = sae_run(split, tmp_path, monkeypatch)
    use_synthetic(monkeypatch, split)
    record = json.loads((root / "run.json").read_text())
    assert record["target"]["adapter"] == "bprmf" and record["target"]["options"] == {"run": "."}
    moved = tmp_path / "moved"
    shutil.move(root, moved)  # the built-in adapter's run path is stored relative to the folder
    assert Run.open(moved).evaluate("test").keys() >= {"HR@10", "NDCG@10"}


def test_only_the_builtin_adapter_opens_builtin_run_folders():
    """Every stage reaches its recommender through a Run and the adapter registry, never the built-in loader."""
    from pathlib import Path

    src = Path(recprobe.__file__).parent
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if "load_recommender" in p.read_text())
    assert users == ["adapters/builtin.py", "models/__init__.py", "models/checkpoint.py"]


def test_python_api_slips_are_one_error_each(split, tmp_path):
    """What a notebook user mistypes: arguments swapped, a number for a path, a dict or a wrong value for a stage's
    options, an unknown or invalid SAE option, a phase misspelt."""
    from recprobe.errors import ConfigError
    from recprobe.runs.options import CaptureOptions

    target = Oracle(split, shuffled_order(split.n_items))
    with pytest.raises(ConfigError, match=r"a run needs a recprobe Split .* got Oracle: the order is Run.create\(folder, "
                                          r"target, split\)"):
        Run.create(tmp_path / "swapped", split, target)
    with pytest.raises(ConfigError, match=r"a run is opened from its folder's path, got int 123"):
        Run.open(123)
    run = Run.create(tmp_path / "run", target, split)
    with pytest.raises(RecprobeError, match=r"Linear is not a ProbeTarget"):
        Run.open(run.root, target=torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"CaptureOptions.positions: Input should be 'auto', 'last' or 'all' \(got 'some'\)"):
        run.capture(positions="some")
    with pytest.raises(ConfigError, match=r"give a CaptureOptions \(or its fields by name\), got list"):
        run.capture(["last"])
    store = run.capture({"positions": "last", "parts": ["train"]}, progress=False)  # a dict of the fields works
    assert store.splits() == ["train"] and store.n_rows("train") <= split.n_users
    with pytest.raises(ConfigError, match=r"unknown options \['epoch'\]"):
        run.train_sae(epoch=1)
    with pytest.raises(ConfigError, match=r"SAETrainConfig.lr: Input should be a finite number \(got nan\)"):
        run.train_sae(lr=float("nan"))
    with pytest.raises(ConfigError, match=r"^SAEConfig: k \(100\) must be below n_latents"):
        run.train_sae(scale=1, k=100)
    with pytest.raises(ConfigError, match=r"phase must be 'dev' or 'test', got 'tests'"):
        run.evaluate("tests")
    assert CaptureOptions().positions == "auto"
