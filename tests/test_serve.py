"""`recprobe serve`: the explorer over a real (small) run, driven in headless Chromium (Debian's `chromium`, which
`make chromium` installs; never skipped), and its JSON API."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import pytest
import uvicorn
from starlette.testclient import TestClient

from recprobe.runs import Run
from recprobe.serve import create_app
from tests.conftest import sae_run, synthetic_split
from tests.test_cli import run_cli
from tests.test_cli_errors import digest


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """An interpreted SASRec run on the synthetic split."""
    monkeypatch = pytest.MonkeyPatch()
    run = Run.open(sae_run(synthetic_split(), tmp_path_factory.mktemp("serve"), monkeypatch, model="sasrec"))
    run.interpret(n=2, verifier="llm", llm="fake", progress=False)
    yield run
    monkeypatch.undo()


def steered_user(run: Run) -> tuple[str, int, str]:
    """A user on whom an interpreted latent fires strongly, that latent, and a word of its description."""
    record = next(r for r in run.concepts() if r["status"] == "ok")
    rows, _ = run.cases().fired(record["latent"])
    return str(run.split.user_ids[run.cases().users[rows[0]]]), record["latent"], record["description"].split()[0]


def cli_list(capsys, run: Run, user: str, latent: int, scale: float) -> list[str]:
    code, out, _ = run_cli(capsys, "steer", "--run", str(run.root), "--latent", str(latent), "--scale", str(scale),
                           "--user", user, "--json")
    assert code == 0
    lists = json.loads(out)["lists"]
    return next(entry["items"] for entry in lists if entry["scale"] == scale)


def test_the_api_answers_with_the_runs_own_figures_and_one_line_errors(explored):
    user, latent, word = steered_user(explored)
    client = TestClient(create_app(explored.root))
    found = client.get("/api/latents", params={"q": word}).json()
    assert latent in [row["latent"] for row in found]
    card = client.get(f"/api/latents/{latent}").json()
    assert card["cases"] == len(explored.cases().fired(latent)[0])
    base = client.get("/api/top", params={"user": user}).json()["items"]
    assert [row["item"] for row in base] == explored.steering().user_top(user)
    assert client.get("/api/explain", params={"user": user}).json()["user"] == user
    bad = client.get("/api/top", params={"user": "nobody"})
    assert bad.status_code == 400 and "'nobody' is not one of this run's users" in bad.json()["error"]
    assert client.get("/api/top", params={"user": user, "edit": "x:1"}).json()["error"].startswith("edit 'x:1'")
    assert client.get("/api/latents/999").status_code == 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(explored):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(explored.root), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


def test_a_slider_moves_the_top_10_as_recprobe_steer_does(explored, served, capsys):
    """Types a search, picks the latent, types the user, moves the slider: the list changes, and equals
    `recprobe steer --user` for the same user, latent and scale. The run folder is only read."""
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    user, latent, word = steered_user(explored)
    before = digest(explored.root)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                             args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(served)
        page.fill("#search", word)
        page.locator(f'#latents li[data-latent="{latent}"]').click()
        page.wait_for_selector(f"#slider-{latent}")
        page.fill("#user", user)
        page.wait_for_function("document.querySelectorAll('#top10 li').length === 10")
        unedited = page.eval_on_selector_all("#top10 li", "items => items.map(li => li.dataset.item)")
        page.locator(f"#slider-{latent}").fill("-10")
        page.wait_for_function(f"document.getElementById('top10').dataset.edits === '&edit={latent}:-10'")
        steered = page.eval_on_selector_all("#top10 li", "items => items.map(li => li.dataset.item)")
        browser.close()
    assert not errors, errors
    assert unedited == cli_list(capsys, explored, user, latent, 1.0)
    assert steered == cli_list(capsys, explored, user, latent, -10.0)
    assert steered != unedited  # the latent fires on this user: turning it around changes their list
    assert digest(explored.root) == before


def test_a_users_lists_need_a_latent(explored, capsys):
    from tests.test_cli import assert_one_line_error

    code, _, err = run_cli(capsys, "steer", "--run", str(explored.root), "--user", "1")
    assert_one_line_error(code, err, "--user: one user's lists need --latent J (with --scale F)")
    code, _, err = run_cli(capsys, "steer", "--run", str(explored.root), "--latent", "0", "--user", "nobody")
    assert_one_line_error(code, err, "'nobody' is not one of this run's users")


def test_the_explorer_serves_a_model_handed_over_in_python(split, tmp_path):
    """A target handed over in Python (as `wrap()` gives), which the explorer takes as an opened Run."""
    from tests.targets import Oracle

    run = Run.create(tmp_path / "run", Oracle(split), split)
    run.capture(progress=False)
    run.train_sae(scale=1, k=2, epochs=2, progress=False)
    run.interpret(n=2, verifier="llm", llm="fake", progress=False)
    user, latent, _ = steered_user(run)
    client = TestClient(create_app(run))
    shown = client.get("/api/top", params={"user": user, "edit": f"{latent}:10"}).json()["items"]
    from recprobe.steering import LatentEdit

    assert [row["item"] for row in shown] == run.steering().user_top(user, [LatentEdit(latent, scale=10.0)])
    assert client.get(f"/api/latents/{latent}").json()["users"] >= 1
