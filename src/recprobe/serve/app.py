"""The explorer: a Starlette app over one run, read once and never written.

    GET /                        the page (``page.html``: search, a latent's card, sliders, the top 10)
    GET /api/latents?q=TEXT      interpreted latents whose description or attribute values hold TEXT
    GET /api/latents/J           latent J's card: description, firing, strongest cases, items and values it raises
    GET /api/users?q=PREFIX      raw user ids starting with PREFIX
    GET /api/top?user=U&edit=J:S one user's top 10 with latent J scaled by S (repeatable): as `recprobe steer --user`
    GET /api/explain?user=U      the latents behind the user's top recommendation, as `recprobe explain`
    GET /api/sweep               the de-biasing curve (`recprobe debias --sweep`), when the run holds one

Every answer is JSON; a bad request is HTTP 400 with ``{"error": "<one line>"}``, recprobe's own message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from recprobe.errors import ConfigError, RecprobeError
from recprobe.report.notebook import SWEEP_COLUMNS
from recprobe.report.pages import STYLE

if TYPE_CHECKING:
    from recprobe.runs.run import Run

SHOWN = 8  # rows of a card's tables
MATCHES = 50  # latents or users a search answers with


class Explorer:
    """What the pages ask of a run, computed from what it holds (loaded once)."""

    def __init__(self, run: Run | str | Path):
        from recprobe.runs.steering import SteeringRun
        from recprobe.steering.effects import LatentEffects

        self.steering = SteeringRun(run)
        self.run, self.split, self.cases = self.steering.opened, self.steering.split, self.steering.cases
        self.records = {r["latent"]: r for r in self.run.concepts()}
        self.effects = LatentEffects(self.steering.target, self.steering.sae, self.split)
        self.users_firing = self.cases.users_per_latent(self.steering.sae.n_latents)
        self.titles = dict(zip(self.split.item_ids.tolist(), self.split.catalog.titles, strict=True))

    def latents(self, query: str) -> list[dict[str, Any]]:
        query = query.strip().lower()
        found = [r for r in self.records.values() if r["status"] == "ok" and query in (r.get("description") or "").lower()]
        found.sort(key=lambda r: (-(r.get("confidence") or 0), r["latent"]))
        return [{"latent": r["latent"], "description": r["description"], "confidence": r.get("confidence"),
                 "users": int(self.users_firing[r["latent"]])} for r in found[:MATCHES]]

    def latent(self, latent: int) -> dict[str, Any]:
        facts = self.run.latent(latent).facts(SHOWN, cases=self.cases, effects=self.effects,
                                              record=self.records.get(latent, {}))
        return {**facts, "users": int(self.users_firing[latent])}

    def users(self, prefix: str) -> list[str]:
        ids = self.split.user_ids
        return [str(u) for u in ids[np.char.startswith(ids.astype(str), prefix.strip())][:MATCHES]]

    def top(self, user: str, edits: list[str]) -> dict[str, Any]:
        from recprobe.steering import LatentEdit

        parsed = []
        for edit in edits:
            latent, _, scale = edit.partition(":")
            try:
                parsed.append(LatentEdit(int(latent), scale=float(scale)))
            except ValueError:
                raise ConfigError(f"edit {edit!r}: give LATENT:SCALE, e.g. 12:5") from None
        items = self.steering.user_top(user, parsed)
        return {"user": user, "edits": edits, "items": [{"item": i, "title": self.titles[i]} for i in items]}

    def explain(self, user: str) -> dict[str, Any]:
        from recprobe.runs.explain import explain_user

        return explain_user(self.run, user)

    def sweep(self) -> dict[str, Any]:
        from recprobe.runs.steering import DEBIAS_SWEEP, read_result

        found = read_result(self.run, DEBIAS_SWEEP, "recprobe debias --sweep")
        if found is None:
            return {"rows": [], "command": f"recprobe debias --run {self.run.root} --sweep"}
        return {"rows": [{k: row.get(k) for k in SWEEP_COLUMNS} for row in found["rows"]]}


def create_app(run: Run | str | Path) -> Starlette:
    """The explorer's app over ``run``, a folder or an opened Run (a target handed over in Python); opened now, so
    a run that cannot be opened fails here, not on a page."""
    explorer = Explorer(run)
    page = (Path(__file__).with_name("page.html").read_text().replace("/*STYLE*/", STYLE)
            .replace("RUN_NAME", str(explorer.run.root.name)))

    def answer(work) -> JSONResponse:
        try:
            return JSONResponse(work())
        except RecprobeError as e:
            return JSONResponse({"error": " ".join(str(e).split())}, status_code=400)

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def latents(request: Request) -> JSONResponse:
        return answer(lambda: explorer.latents(request.query_params.get("q", "")))

    async def latent(request: Request) -> JSONResponse:
        return answer(lambda: explorer.latent(int(request.path_params["latent"])))

    async def users(request: Request) -> JSONResponse:
        return answer(lambda: explorer.users(request.query_params.get("q", "")))

    async def top(request: Request) -> JSONResponse:
        return answer(lambda: explorer.top(request.query_params.get("user", ""), request.query_params.getlist("edit")))

    async def explain(request: Request) -> JSONResponse:
        return answer(lambda: explorer.explain(request.query_params.get("user", "")))

    async def sweep(request: Request) -> JSONResponse:
        return answer(explorer.sweep)

    return Starlette(routes=[Route("/", index), Route("/api/latents", latents), Route("/api/latents/{latent:int}", latent),
                             Route("/api/users", users), Route("/api/top", top), Route("/api/explain", explain),
                             Route("/api/sweep", sweep)])
