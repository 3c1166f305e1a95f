"""What a notebook shows of a run, a latent, an explanation and a sweep: cards from the report's templates,
with the figures the library computes and every text escaped."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser

import pytest

from recprobe.errors import ConfigError
from recprobe.runs import Run
from recprobe.runs.explain import explain_user
from recprobe.steering.effects import LatentEffects
from tests.conftest import sae_run


class Text(HTMLParser):
    """The text a reader sees, and whether any element outside the card's own was made from the data."""

    def __init__(self, html: str):
        super().__init__()
        self.parts, self.tags = [], set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


@pytest.fixture
def run(split, tmp_path, monkeypatch):
    titles = [f"<script>x()</script>Film {i} & co" for i in range(split.n_items)]  # markup in the data stays text
    split = replace(split, catalog=replace(split.catalog, titles=titles))
    return Run.open(sae_run(split, tmp_path, monkeypatch, model="sasrec"))


def test_a_run_shows_its_size_and_the_command_for_each_missing_stage(run):
    before = Text(run._repr_html_()).text
    assert f"{run.split.n_users:,} users" in before and "8 latents" in before
    assert f"concepts to do recprobe interpret --run {run.root}" in before
    run.interpret(n=2, verifier="llm", llm="fake", progress=False)
    after = Text(run._repr_html_()).text
    assert "concepts done" in after and "concepts at C >= 0.8" in after


def test_a_latent_card_shows_its_description_cases_and_raised_items(run):
    run.interpret(n=2, verifier="llm", llm="fake", progress=False)
    record = next(r for r in run.concepts() if r["status"] == "ok")
    card = Text(run.latent(record["latent"])._repr_html_())
    rows, _ = run.cases().fired(record["latent"])
    assert record["description"] in card.text
    assert f"{len(rows):,} of {len(run.cases()):,} cases it fires on" in card.text
    top_item = LatentEffects(run.target, run.sae(), run.split).summary(record["latent"])["raised"][0][0]
    assert run.split.catalog.titles[top_item] in card.text  # escaped in the HTML, read back whole
    assert "script" not in card.tags  # the titles' <script> never became an element
    with pytest.raises(ConfigError, match="latent 8 is not one of this SAE's 0..7"):
        run.latent(8)


def test_an_explanation_is_the_same_dict_and_shows_its_latents(run):
    user = str(run.split.user_ids[0])
    explanation = run.explain(user)
    assert explanation == explain_user(run, user)
    shown = Text(explanation._repr_html_()).text
    assert f"Why user {user} gets" in shown
    assert all(str(entry["latent"]) in shown for entry in explanation["latents"][:10])


def test_a_sweep_is_the_same_dict_and_shows_each_method_at_each_strength(run):
    sweep = run.debias_sweep(strengths=[0.0, 1.0], seeds=1, n_latents=1)
    shown = Text(sweep._repr_html_()).text
    assert isinstance(sweep, dict) and f"{len(sweep['rows'])} rows" in shown
    first = sweep["rows"][0]
    assert f"{first['method']} {first['selection']} {first['strength']:.3f} {first['NDCG@10']:.3f}" in shown
