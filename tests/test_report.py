"""The HTML report: built from a real (small) run, every link resolves, and headless Chromium renders it
without console errors (Debian's `chromium`; `.ci/run` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from recprobe.cli import main
from recprobe.errors import RunFolderError
from recprobe.report import build_report
from recprobe.report.build import recent_items
from recprobe.runs.interpret import interpret_run
from recprobe.runs.steering import SteeringRun
from tests.conftest import sae_run


@pytest.fixture
def reported_run(split, tmp_path, monkeypatch):
    """A run taken through interpretation (metadata describer, deterministic fake LLM verifier), steering and
    de-biasing, then reported."""
    run = sae_run(split, tmp_path, monkeypatch)
    interpret_run(run, verifier="llm", llm="fake", n=2, progress=False)
    steering = SteeringRun(run)
    steering.steer(0, [-10.0, 10.0])
    steering.debias(n_latents=2)
    return run, build_report(run)


def test_report_pages_and_links(reported_run):
    run, index = reported_run
    html = index.read_text()
    for section in ("Recommender (test, full ranking)", "SAE faithfulness", "Concepts by confidence", "Top concepts",
                    "De-biasing: every test user"):
        assert section in html
    pages = sorted((run / "report" / "latents").glob("*.html"))
    assert pages and "Top cases" in pages[0].read_text() and "Latents that fire with it" in pages[0].read_text()
    assert "Steering" in (run / "report" / "latents" / "0.html").read_text()
    assert all("Items it raises most" in p.read_text() and "Items it lowers most" in p.read_text() for p in pages)
    explanations = run / "report" / "explanations.html"
    assert explanations.read_text().count("<h2>User ") == 8 and 'href="explanations.html"' in html
    for page in [index, explanations, *pages]:  # every relative link and stylesheet points at a file of the report
        for target in re.findall(r'(?:href|src)="([^"#:]+)"', page.read_text()):
            assert (page.parent / target).resolve().is_file(), f"{page.name} links to missing {target}"


def test_an_unfinished_interpretation_is_reported_as_such(split, tmp_path, monkeypatch):
    """interpret killed after some latents (their records written, no summary yet): the report says how far it got
    and that the same command goes on, not that nothing was interpreted."""
    run = sae_run(split, tmp_path, monkeypatch)
    interpret_run(run, verifier="llm", llm="fake", n=2, progress=False, latents=[0, 1, 2])
    (run / "concepts" / "summary.json").unlink()
    html = " ".join(build_report(run).read_text().split())
    assert "Unfinished: 3 of " in html and "latents interpreted" in html and "Not interpreted yet" not in html
    shutil.rmtree(run / "concepts")
    html = " ".join(build_report(run).read_text().split())
    assert "Not interpreted yet" in html and "Unfinished" not in html


def test_report_needs_an_sae(split, tmp_path, monkeypatch, capsys):
    run = sae_run(split, tmp_path, monkeypatch)
    shutil.rmtree(run / "sae")
    with pytest.raises(RunFolderError, match="has no SAE; run `recprobe train-sae --run .*` first"):
        build_report(run)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--run", str(run)])
    assert exit_info.value.code == 2 and "has no SAE; run `recprobe train-sae" in capsys.readouterr().err


@pytest.mark.slow
def test_report_renders_in_headless_chromium(reported_run, tmp_path):
    """Never skipped: `make test` installs Chromium (`make chromium`) and fails when it cannot."""
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: run `make chromium` (apt-get install chromium)")
    run, index = reported_run
    for page in (index, run / "report" / "latents" / "0.html"):
        shot = tmp_path / f"{page.stem}.png"
        done = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--enable-logging=stderr", "--v=0", "--window-size=1280,1600", f"--screenshot={shot}",
                               page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "CONSOLE" not in done.stderr, [line for line in done.stderr.splitlines() if "CONSOLE" in line]
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              page.resolve().as_uri()], capture_output=True, text=True, timeout=120).stdout
        assert "<table>" in dom and "</main>" in dom


def test_the_report_shows_fidelity_and_refuses_one_measured_on_another_sae(split, tmp_path, monkeypatch):
    import json

    from recprobe.errors import StaleArtifactError
    from recprobe.runs.explain import fidelity_run

    run = sae_run(split, tmp_path, monkeypatch)
    interpret_run(run, verifier="llm", llm="fake", n=2, progress=False)
    result = fidelity_run(run, m=1)
    page = (build_report(run).parent / "explanations.html").read_text()
    assert f"Fidelity over {result['users']:,} test users" in page
    path = run / "explanations" / "fidelity.json"
    stale = json.loads(path.read_text())
    stale["made_from"]["sae"] = "0123456789abcdef"
    path.write_text(json.dumps(stale))
    with pytest.raises(StaleArtifactError, match=r"fidelity.json was made from another sae .* rebuild it with `recprobe explain --run .* --fidelity`"):
        build_report(run)


def test_a_short_history_is_shown_as_it_is_never_padded(split):
    """A user with fewer items than the report shows: their items only (the padding id used to reach the titles
    and end the report in an IndexError; found by benchmarks/scale.py)."""
    offsets, items = split.sequences("test")
    user = int(np.argmin(np.diff(offsets)))
    assert list(recent_items(offsets, items, user, 1000)) == list(items[offsets[user]:offsets[user + 1]])
    assert list(recent_items(offsets, items, user, 2)) == list(items[offsets[user + 1] - 2:offsets[user + 1]])
