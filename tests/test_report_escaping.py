"""Every text that reaches the report's HTML is escaped: a payload in any catalog field, a description or the
run path never appears as markup, and random text in any field parses to the templates' own tags only."""

from __future__ import annotations

import stat
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from recprobe.data.prepare import leave_one_out
from recprobe.report.charts import bars, heatmap, histogram, pareto
from recprobe.report.pages import level, link, render
from recprobe.runs import Run
from tests.conftest import synthetic_frame
from tests.targets import Oracle, shuffled_order

PAYLOAD = "<svg/onload=alert(2)>"
TEMPLATE_TAGS = {"html", "head", "meta", "title", "link", "body", "header", "h1", "h2", "p", "a", "main", "div",
                 "section", "b", "span", "table", "thead", "tbody", "tr", "th", "td", "svg", "line", "rect", "text",
                 "code", "polyline", "circle"}


class Parsed(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: set[str] = set()
        self.text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)

    def handle_data(self, data):
        self.text += data


def tags_of(html: str) -> set[str]:
    return Parsed(html).tags


def payload_split():
    frame = synthetic_frame()
    meta = {str(i + 1): (f"{PAYLOAD} film {i} & \"co\" 'x'", {"genre": [PAYLOAD, f"<b>g{i % 3}</b>"], "tag": ["a&b"]})
            for i in range(30)}
    return leave_one_out(frame, f"data{PAYLOAD}", meta, min_rating=None, core=3)


def test_a_report_with_payloads_in_every_text_field_shows_none_raw(tmp_path):
    split = payload_split()
    folder = tmp_path / "run <svg onload=alert(1)>"
    run = Run.create(folder, Oracle(split, shuffled_order(split.n_items)), split)
    run.capture(progress=False)
    run.train_sae(scale=2, k=2, epochs=3, progress=False)
    run.interpret(n=2, progress=False, verifier="llm", llm="fake")  # metadata describer: payload attributes
    steering = run.steering()
    steering.table7()
    steering.steer(0, [-10.0, 10.0])
    steering.debias(n_latents=2)
    index = run.report()
    pages = [index, *sorted((index.parent / "latents").glob("*.html"))]
    assert any(str(escape(PAYLOAD)) in page.read_text() for page in pages[1:])  # the payload is shown, escaped
    for page in pages:
        html = page.read_text()
        assert "<svg/onload" not in html and "<svg onload" not in html and "<b>g0</b>" not in html, page.name
        assert tags_of(html) <= TEMPLATE_TAGS, page.name
    assert stat.S_IMODE(index.parent.stat().st_mode) == 0o755  # a web server can serve it
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in [*pages, index.parent / "style.css"])


texts = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF, blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, texts, texts, texts)
def test_random_text_in_any_field_parses_to_the_templates_tags_only(title, attribute, description, path):
    latent = render(
        "latent.html", title=f"Latent 3 {title}", subtitle=path, root="../", description=description,
        facts=[(attribute, title)], verification=[(description, 1, 2)], activation=histogram([0.1, 0.5], 4, attribute),
        history=5, cases=[(level(3), 0.5, f"{title}; {attribute}", description)],
        effects={"method": path, "raised": [(title, 0.25)], "lowered": [(description, -0.25)],
                 "values": [(attribute, 0.1, 5, title, -0.1, 6)]},
        cofiring=[(link(f"{3}.html", "3"), description, 4)],
        steering={"feature": attribute, "header": ["concept items", "-10x"], "rows": [(title, 0.5)], "numeric": (1,)})
    overview = render(
        "index.html", title=title, subtitle=path, root="", run=path, recommender=[(attribute, "0.1")],
        faithfulness=[(attribute, title)], users=3, firing=histogram([0.2], 3, description),
        controls={"rows": [(attribute, title, description, path, "trained ahead")], "note": description},
        concepts={"counts": bars([(attribute, 1.0)]), "note": description, "confidence": histogram([1.0], 2),
                  "top": [(link("latents/3.html", "3"), description, 1.0, 3)],
                  "skipped": [(link("latents/4.html", "4"), description, title)]},
        attributes={"header": ["attribute", "sae"], "rows": [(attribute, 0.7)], "numeric": (1,),
                    "heatmap": heatmap([title, description], [attribute, path], [[0.9, 0.2], [0.5, float("nan")]], path)},
        table7=[(link("latents/3.html", "3"), description, attribute, 0.1, 0.2, 0.3)], debias=[(title, 1.0, 2.0, "+1%")],
        table7_every={"rows": [(attribute, 3, 2, 1, 0.5, description)], "note": path},
        sweep={"chart": pareto([{"method": title, "selection": attribute, "strength": s, "Gini@10": s / 4,
                                 "NDCG@10": 0.1 - s / 100} for s in (0.0, 1.0)]),
               "header": [attribute, "strength"], "rows": [(title, "1")], "numeric": (1,), "note": description})
    sweep_svg = render("pareto.svg", chart=pareto([{"method": title, "selection": None, "strength": 0.0,
                                                     "Gini@10": 0.5, "NDCG@10": 0.1}]))
    explanations = render("explanations.html", title=title, subtitle=path, root="", run=path, fidelity=description,
                          examples=[{"user": title, "item": attribute, "history": description,
                                     "rows": [(link("latents/3.html", "3"), description, 0.5, 0.25, "+50%")]}])
    for html, shown in ((latent, (title, attribute, description, path)), (overview, (title, attribute, description, path)),
                        (sweep_svg, (title,)), (explanations, (title, attribute, description, path))):
        parsed = Parsed(html)
        assert parsed.tags <= TEMPLATE_TAGS
        for text in shown:  # each field reads back whole as text: none of it was taken for markup
            assert text in parsed.text, text
