"""Table 7's rule over every concept (``recprobe.steering.table7``, ``steer --table7 --every``), the frozen controls of a
run's own SAE as interpretable bases, and the shares' intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.batches import position_batches
from recprobe.concepts.baseline import RawDimensions
from recprobe.concepts.cases import case_rows
from recprobe.concepts.highlights import DECODER_ITEMS, Highlights
from recprobe.errors import RunFolderError
from recprobe.runs import Run, table7_every
from recprobe.runs.interpret import interpret_run
from recprobe.runs.table7_every import table7_every_run, trained_minus_best_control
from recprobe.sae.train import initial_sae
from recprobe.stats import proportion, proportion_gap
from recprobe.steering.edit import LatentEdit, latent_values, steered
from recprobe.steering.effects import LatentEffects
from recprobe.steering.steer import decoder_items, decoder_scores, steering_effect
from recprobe.steering.table7 import SCALES, concept_hits, passes
from tests.conftest import sae_run


def test_wilson_and_newcombe_intervals_match_the_published_examples():
    # Newcombe (1998), Statistics in Medicine 17: 81/263 has Wilson interval 0.2553-0.3662 (his table I), and
    # 56/70 - 48/80 = 0.2000 has the hybrid score interval 0.0524-0.3339 (his table II, method 10)
    share = proportion(81, 263)
    assert (share["low"], share["high"]) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    gap = proportion_gap(proportion(56, 70), proportion(48, 80))
    assert (gap["mean"], gap["low"], gap["high"]) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    assert proportion(0, 0)["mean"] is None and proportion(0, 5)["low"] == 0.0 and proportion(5, 5)["high"] == 1.0


def test_the_paper_rule_needs_both_directions():
    assert passes(0.1, 0.9) and passes(0.0, 1.0)
    assert not passes(0.11, 1.0) and not passes(0.0, 0.89)


@pytest.mark.parametrize("basis", ["sae", "raw"])
def test_every_concept_in_one_pass_equals_steering_each_latent_alone(split, tmp_path, monkeypatch, basis):
    run = Run.open(sae_run(split, tmp_path, monkeypatch))
    encoder = run.basis(basis)
    concepts = {}
    for latent in range(encoder.n_latents):
        scores = decoder_scores(run.target, encoder, latent)  # the items its direction raises, or a fixed set
        concepts[latent] = decoder_items(scores, 5) if scores is not None else np.arange(split.n_items) < 5
    found = concept_hits(run.target, encoder, split, concepts, batch_size=7)  # batches cut through the users
    assert any(row["n_active"] for row in found.values())
    for latent, items in concepts.items():
        alone = steering_effect(run.target, encoder, split, latent, items, SCALES)
        assert found[latent]["n_active"] == alone["n_active"]
        hits = [s["hit@10"] for s in alone["scales"]]
        assert [found[latent][key] for key in ("down", "unedited", "up")] == pytest.approx(hits) if hits[0] is not None \
            else found[latent]["up"] is None



def test_cases_inside_a_sequence_are_steered_at_their_own_position(split, tmp_path, monkeypatch):
    run = Run.open(sae_run(split, tmp_path, monkeypatch, model="sasrec"))
    encoder, target = run.basis("sae"), run.target
    plan = case_rows(split, "all", target.max_history)
    users, positions = plan.at(np.arange(0, len(plan), 3))  # every third case, most of them inside a sequence
    concepts = {latent: decoder_items(decoder_scores(target, encoder, latent), 5) for latent in range(encoder.n_latents)}
    found = concept_hits(target, encoder, split, concepts, (users, positions), batch_size=7)
    pushed = concept_hits(target, encoder, split, concepts, (users, positions), push=2.0, batch_size=7)
    offsets, items = split.sequences("test")
    for latent, concept in concepts.items():  # each case alone: its own history, its own seen items
        fired, hits, pushed_hits, values = set(), np.zeros(len(SCALES)), np.zeros(len(SCALES)), []
        for user, position in zip(users, positions, strict=True):
            batch = next(position_batches(split, np.array([user]), np.array([position]), target.max_history, 1))
            reps = target.represent(batch).float()
            value = latent_values(encoder, reps, latent).item()
            if value <= 0:
                continue
            fired.add(int(user))
            values.append(value)
            seen = items[offsets[user]:offsets[user] + position]  # the history before this case, by hand

            def top(moved, batch=batch, seen=seen):
                scores = target.score(moved, batch).float()
                scores[0, torch.tensor(seen)] = -torch.inf
                return scores.topk(10).indices[0]

            for column, scale in enumerate(SCALES):
                hits[column] += concept[top(steered(encoder, reps, [LatentEdit(latent, scale=scale)]))].any()
                moved = reps + (scale - 1) * 2.0 * encoder.W_dec[latent].detach()  # the same push for every case
                pushed_hits[column] += concept[top(moved)].any()
        n = found[latent]["n_active"]
        assert n == len(values) and found[latent]["n_users"] == len(fired)
        if not n:
            assert found[latent]["up"] is None and found[latent]["mean_value"] is None
            continue
        assert found[latent]["mean_value"] == pytest.approx(np.mean(values), rel=1e-5)
        assert [found[latent][key] for key in ("down", "unedited", "up")] == pytest.approx(hits / n)
        assert [pushed[latent][key] for key in ("down", "unedited", "up")] == pytest.approx(pushed_hits / n)
    at_test_time = concept_hits(target, encoder, split, concepts)
    assert any(found[j]["n_active"] != at_test_time[j]["n_active"] for j in concepts)  # not the test-time cases
    assert any(0 < found[j]["n_users"] < found[j]["n_active"] for j in concepts)  # users, not cases, counted
    with pytest.raises(ValueError, match="give the cases in user order"):
        concept_hits(target, encoder, split, concepts, (users[::-1], positions[::-1]))


def test_every_concept_table_steers_the_cases_its_concepts_were_read_from(split, tmp_path, monkeypatch):
    run = Run.open(sae_run(split, tmp_path, monkeypatch, model="sasrec"))
    for basis in ("sae", "untrained"):
        interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis=basis, cases="all", progress=False)
    every_position = len(case_rows(split, "all", run.target.max_history))
    assert every_position > split.n_users
    steered = {}

    def recording(target, basis, split, items, cases, push=None):
        steered[basis] = cases
        return concept_hits(target, basis, split, items, cases, push)

    monkeypatch.setattr(table7_every, "concept_hits", recording)
    found = table7_every_run(run, max_cases=40)
    assert (found["cases"], found["n_cases"], found["max_cases"]) == ("all", 40, 40)
    (users, positions), *others = steered.values()
    assert len(steered) == 2 and all(np.array_equal(users, u) and np.array_equal(positions, p) for u, p in others)
    assert len(users) == 40 and (positions < np.diff(split.train_offsets)[users] + 1).any()  # inside a sequence
    assert all(row["n_active"] <= 40 for basis in found["bases"].values() for row in basis["latents"])
    for basis in found["bases"].values():
        assert basis["grounded"] == sum(row["decoder_share"] > row["catalog_share"] for row in basis["latents"])
    assert table7_every_run(run)["n_cases"] == every_position  # under the default budget: all of them
    other = run.basis("untrained")  # a diagnostic's encoder steers the SAE's concepts in its place
    table7_every.measure_basis(run, "sae", (users, positions), encoder=other)
    assert list(steered)[-1] is other
    interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis="untrained", cases="test",
                  overwrite=True, progress=False)
    with pytest.raises(RunFolderError, match=r"the bases' concepts were read from different cases \(sae: all, "
                                             r"untrained: test\); interpret every basis with the same --cases"):
        table7_every_run(run)


def test_a_damaged_concepts_line_is_named_not_the_table_made_from_it(split, tmp_path, monkeypatch):
    """A cut line in a basis's concepts.jsonl changes the file's hash, and the report used to call the table
    stale; it now names the damaged file and the command that repairs it, after which the table reads again."""
    from recprobe.runs.table7_every import read_table7_every

    run = Run.open(sae_run(split, tmp_path, monkeypatch))
    for basis in ("sae", "untrained"):
        interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis=basis, progress=False)
    table7_every_run(run, max_cases=40)
    path = run.layout.concepts(basis="untrained") / "concepts.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines[:1], lines[1][:10] + "\n", *lines[2:]]))
    with pytest.raises(RunFolderError, match=rf"concepts-untrained/concepts.jsonl has 1 damaged line\(s\), so "
                                             rf"table7-every.json, made from it, cannot be checked; `recprobe interpret "
                                             rf"--run {run.root} --basis untrained` moves them aside"):
        read_table7_every(run)
    interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis="untrained", progress=False)
    assert read_table7_every(run)["bases"].keys() == {"sae", "untrained"}  # the same records again: the same file


def test_a_concept_is_decoder_grounded_when_its_direction_raises_its_own_items(split, tmp_path, monkeypatch):
    run = Run.open(sae_run(split, tmp_path, monkeypatch))
    encoder = run.basis("sae")
    highlights = Highlights(run.cases(), split.catalog, LatentEffects(run.target, encoder, split))
    raised = decoder_items(decoder_scores(run.target, encoder, 0), DECODER_ITEMS)
    own = np.zeros(split.n_items, dtype=bool)
    own[raised] = True
    assert highlights.decoder_shares(0, own) == pytest.approx((1.0, DECODER_ITEMS / split.n_items))
    assert highlights.decoder_shares(0, ~own) == pytest.approx((0.0, 1 - DECODER_ITEMS / split.n_items))

def test_raw_dimensions_steer_one_coordinate_as_a_decoder_row_would():
    x = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 4.0, 1.0]])
    raw, both = RawDimensions(3), RawDimensions(3, both_signs=True)
    torch.testing.assert_close(raw.encode(x)[0] @ raw.W_dec, x.clamp(min=0))  # the positive part, one sign
    torch.testing.assert_close(both.encode(x)[0] @ both.W_dec, x)  # all of it, both signs
    # -10x of dimension 0 where it fires (positive), and of its negative side (latent 3) where that fires
    assert steered(raw, x, [LatentEdit(0, scale=-10.0)]).tolist() == [[-20.0, -1.0, 0.5], [-3.0, 4.0, 1.0]]
    assert steered(both, x, [LatentEdit(3, scale=10.0)]).tolist() == [[2.0, -1.0, 0.5], [-30.0, 4.0, 1.0]]


def test_a_frozen_control_is_trained_once_from_the_runs_own_sae_and_keeps_its_decoder(split, tmp_path, monkeypatch):
    run = Run.open(sae_run(split, tmp_path, monkeypatch))
    with pytest.raises(RunFolderError, match=r"has no frozen-decoder control of its SAE; `recprobe interpret --run .* "
                                             r"--basis frozen-decoder` trains it"):
        run.basis("frozen-decoder")
    interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis="frozen-decoder", progress=False)
    control, sae = run.basis("frozen-decoder"), run.sae()
    start = initial_sae(run.activations(), sae.config)
    assert control.config == sae.config.model_copy(update={"freeze": "decoder"})
    assert torch.equal(control.W_dec, start.W_dec) and not torch.equal(control.W_enc, start.W_enc)
    assert run.cases(basis="frozen-decoder").made_from["sae"].startswith("frozen-decoder:")
    weights = next(run.layout.saes.glob("*frozen-decoder*")) / "sae_weights.safetensors"
    before = weights.read_bytes()
    interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis="frozen-decoder", progress=False)
    assert weights.read_bytes() == before  # kept, not trained again
    with pytest.raises(RunFolderError, match=r"needs the SAE's concepts and at least one control's \(interpreted: "
                                             r"frozen-decoder\)"):
        table7_every_run(run)


def test_the_verdict_takes_the_control_that_passes_most():
    def basis(passed, measured):
        return {"measured": measured, "share": proportion(passed, measured)}

    found = trained_minus_best_control({"sae": basis(90, 100), "raw": basis(10, 100), "untrained": basis(40, 100)})
    assert found["best_control"] == "untrained" and found["verdict"] == "trained ahead"
    assert found["trained_minus_best_control"]["mean"] == pytest.approx(0.5)
    found = trained_minus_best_control({"sae": basis(9, 46), "untrained": basis(22, 59)})
    assert found["verdict"] == "control ahead"
    assert trained_minus_best_control({"sae": basis(3, 10), "raw": basis(0, 0)})["verdict"] == "not measurable"
