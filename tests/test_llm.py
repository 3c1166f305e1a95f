"""Language-model backends: spec strings, the OpenAI-compatible client, the fake, and the real embedded model."""

from __future__ import annotations

import numpy as np
import pytest

from recprobe.concepts.llm import FakeLLM, OpenAILLM, load_llm
from recprobe.concepts.prompts import domain_of, load_prompts
from recprobe.concepts.schemas import ConceptDescription, LevelPrediction
from recprobe.errors import RecprobeError


def test_unknown_spec_lists_the_forms():
    with pytest.raises(RecprobeError, match="unknown language model 'llama'; use smollm2, hf:"):
        load_llm("llama")
    with pytest.raises(RecprobeError, match="no GGUF file at /nope.gguf"):
        load_llm("gguf:/nope.gguf")


def test_prompts_are_versioned_files_with_a_one_shot_example_per_domain():
    prompts = load_prompts()
    assert prompts.version == "v1" and set(prompts.examples) == {"movies", "grocery", "music", "generic"}
    messages = prompts.describe_messages(domain_of("ml-100k"), "History: ...")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "1980s science-fiction" in messages[2]["content"]
    with pytest.raises(RecprobeError, match="no prompt version 'v9'"):
        load_prompts("v9")


def test_fake_answers_fit_the_schemas_and_repeat():
    fake = FakeLLM()
    conversation = [[{"role": "user", "content": "x"}]]
    level = fake.generate(conversation * 2, LevelPrediction, 5)
    assert level[0] == level[1] and 0 <= level[0].level <= 10
    assert fake.generate(conversation, ConceptDescription, 5)[0].description.startswith("fake concept")


def test_openai_backend_keeps_requests_in_flight_and_retries():
    """The real client code against a local stand-in server (tests/openai_standin.py)."""
    from tests.openai_standin import OpenAIStandIn

    with OpenAIStandIn(fail_every=3) as server:
        llm = OpenAILLM(server.base_url, retries=3, concurrency=4)
        assert llm.model == "standin-model"
        answers = llm.generate([[{"role": "user", "content": str(i)}] for i in range(6)], LevelPrediction, 8)
        assert [a.level for a in answers] == [7] * 6
        assert server.received[0]["response_format"]["json_schema"]["name"] == "LevelPrediction"
        assert server.received[0]["response_format"]["json_schema"]["schema"]["properties"]["level"]["enum"] == list(range(11))
        with pytest.raises(RecprobeError, match="no token log-probabilities"):
            llm.log_likelihood(["a"], ["b"])
    with pytest.raises(RecprobeError, match="cannot reach openai:http://127.0.0.1:9/v1 after 2 tries"):
        OpenAILLM("http://127.0.0.1:9/v1", model="m", retries=1, timeout=1).generate(
            [[{"role": "user", "content": "x"}]], LevelPrediction, 4)


@pytest.mark.slow
def test_the_embedded_model_generates_constrained_json_and_scores_likelihoods():
    pytest.importorskip("gguf", reason="pip install 'recprobe[llm]'")
    llm = load_llm("smollm2")
    prompts = load_prompts()
    case = "History:\n- Scream (1996) [genre: Horror]\nPredicted next: Halloween (1978) [genre: Horror]"
    levels = llm.generate([prompts.verify_messages("horror movies", case)] * 2, LevelPrediction, 12)
    assert all(isinstance(a, LevelPrediction) for a in levels) and levels[0] == levels[1]
    description = llm.generate([prompts.describe_messages("movies", case + "\nLevel: 10")], ConceptDescription, 40)[0]
    assert description is not None and 0 < len(description.description) <= 160
    texts = ["Scream (1996) [genre: Horror]", "Toy Story (1995) [genre: Animation, Children's]"]
    ratio = llm.log_likelihood(["Theme: horror movies\n"] * 2, texts) - llm.log_likelihood(["", ""], texts)
    assert np.isfinite(ratio).all() and ratio[0] > ratio[1]  # measured here: 2.09 vs 0.78


@pytest.mark.slow
def test_the_likelihood_verifier_scores_a_matching_case_above_an_unrelated_one():
    """The real SmolLM2 through LikelihoodVerifier: log P(description | case) ranks the horror history first."""
    pytest.importorskip("gguf", reason="pip install 'recprobe[llm]'")
    from recprobe.concepts.cases import CaseSet
    from recprobe.concepts.verify import LikelihoodVerifier
    from recprobe.data.split import Catalog

    catalog = Catalog(["Scream (1996)", "Halloween (1978)", "Toy Story (1995)", "Aladdin (1992)"],
                      [{"genre": ["Horror"]}, {"genre": ["Horror"]}, {"genre": ["Animation", "Children's"]},
                       {"genre": ["Animation", "Children's"]}])
    history = np.array([[0] + [-1] * 8, [2] + [-1] * 8])
    cases = CaseSet(np.arange(2), history, np.array([1, 3]), np.ones((2, 1), np.float32), np.zeros((2, 1), np.int64))
    verifier = LikelihoodVerifier(load_llm("smollm2"), cases, catalog)
    assert verifier.text(0) == "Items:\nScream (1996) [genre: Horror]\nHalloween (1978) [genre: Horror]\nTheme: "
    horror, children = verifier.scores("genre: Horror", [0, 1])
    assert horror > children
    assert np.argmax(verifier.scores("genre: Animation, Children's", [0, 1])) == 1
    # the second time the cases' prefixes come from the key/value cache, cut back after each text
    np.testing.assert_allclose(verifier.scores("genre: Horror", [0, 1]), [horror, children], rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True])
def test_the_console_carries_no_third_party_progress_bar_unless_verbose(split, tmp_path, monkeypatch, capfd, verbose):
    """The real SmolLM2 through `recprobe interpret`: a description it wrote, verified by the likelihood verifier
    (or left undescribed when it copies its prompt's example, as it does on these cases).
    Loading it draws transformers' "Loading weights" and GGUF conversion bars; recprobe's console keeps them out,
    and --verbose lets them through."""
    pytest.importorskip("gguf", reason="pip install 'recprobe[llm]'")
    from recprobe.cli import main
    from tests.conftest import sae_run

    run = sae_run(split, tmp_path, monkeypatch)
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*(["--verbose"] if verbose else []), "interpret", "--run", str(run), "--describer", "llm",
              "--verifier", "llm-likelihood", "--llm", "smollm2", "--latents", "0", "--n", "2"])
    out, err = capfd.readouterr()
    assert exit_info.value.code == 0, err
    noise = [line for line in (out + err).splitlines() if "it/s]" in line or "Loading weights" in line
             or "GGUF tensors" in line or "Warning" in line]
    assert bool(noise) == verbose, noise
    from recprobe.runs import Run

    (record,) = Run.open(run).concepts()  # a description it wrote, or the copy of its example it writes here
    assert ((record["status"] == "ok" and not record["description"].startswith("fake") and 0 <= record["confidence"] <= 1)
            or (record["status"] == "undescribed" and "repeated its prompt's example" in record["reason"])), record
