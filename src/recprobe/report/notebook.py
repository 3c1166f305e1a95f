"""How recprobe's objects show in Jupyter (``_repr_html_``): compact cards made from the report's own templates,
macros and style, escaped by the same autoescape.

- a run (``Run``): what it holds and the command that makes what it lacks;
- a latent (``run.latent(j)``): its description, how often it fires, its strongest cases, the items it raises;
- an explanation (``run.explain(user)``) and a de-biasing sweep (``run.debias_sweep()``): their tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recprobe.report.pages import STYLE, render

if TYPE_CHECKING:
    from recprobe.runs.run import Run

# The report's stylesheet, scoped to the card so a notebook's own page keeps its look.
SCOPED_STYLE = "\n".join(f".recprobe-card {line}" if line.startswith((".", "table", "th", "a", "svg")) else ""
                         for line in STYLE.strip().splitlines()) + "\n.recprobe-card h3 { font-size: 13px; margin: 12px 0 4px; }"
SHOWN = 5  # rows per table in a card


@dataclass
class Section:
    caption: str
    header: list[str]
    rows: list[tuple]
    numeric: tuple[int, ...] = ()
    empty: str = "nothing yet"


@dataclass
class Card:
    title: str
    subtitle: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    note: str = ""

    def html(self) -> str:
        return render("notebook.html", style=SCOPED_STYLE, title=self.title, subtitle=self.subtitle,
                      figures=self.figures, sections=self.sections, note=self.note)


def run_card(run: Run) -> str:
    from recprobe.runs.layout import SUMMARY
    from recprobe.sae.io import CONFIG

    layout, split = run.layout, run.split
    stages = [("recommender", True, ""), ("activations", (layout.activations / "index.json").is_file(),
                                           f"recprobe capture --run {run.root}"),
              ("SAE", (layout.sae / CONFIG).is_file(), f"recprobe train-sae --run {run.root}"),
              ("concepts", (layout.concepts() / SUMMARY).is_file(), f"recprobe interpret --run {run.root}"),
              ("report", (layout.report / "index.html").is_file(), f"recprobe report --run {run.root}")]
    figures = [("users", f"{split.n_users:,}"), ("items", f"{split.n_items:,}"), ("d", str(run.target.d_model))]
    if stages[2][1]:
        sae = run.sae()
        figures += [("latents", f"{sae.n_latents:,}"), ("k", str(sae.config.k))]
    if stages[3][1]:
        records = run.concepts()
        confident = sum(r["status"] == "ok" and (r.get("confidence") or 0) >= 0.8 for r in records)
        figures.append(("concepts at C >= 0.8", f"{confident:,}"))
    rows = [(name, "done" if done else "to do", "" if done else command) for name, done, command in stages]
    return Card(f"{run.target.name} on {split.name}", str(run.root), figures,
                [Section("stages", ["stage", "state", "makes it"], rows)]).html()


@dataclass
class Latent:
    """One latent of a run's SAE, as a notebook card and the explorer's card show it (``Run.latent(j)``)."""

    run: Run
    index: int

    @property
    def record(self) -> dict[str, Any] | None:
        """Its concept record (description, confidence...), None when not interpreted."""
        return next((r for r in self.run.concepts() if r["latent"] == self.index), None)

    def facts(self, shown: int = SHOWN, *, cases=None, effects=None, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Its description, confidence, firing, ``shown`` strongest cases and the items and attribute values it
        raises most; ``cases``, ``effects`` and ``record`` when the caller holds them already."""
        from recprobe.concepts.interpret import card_description
        from recprobe.steering.effects import LatentEffects

        run, titles = self.run, self.run.split.catalog.titles
        cases = cases if cases is not None else run.cases()
        effects = effects if effects is not None else LatentEffects(run.target, run.sae(), run.split)
        record = (record if record is not None else self.record) or {}
        rows, values = cases.fired(self.index)
        summary = effects.summary(self.index)
        return {"latent": self.index, "description": record.get("description"), "status": record.get("status"),
                "shown": card_description(record),
                "confidence": record.get("confidence"), "cases": cases.fired_count(self.index), "of_cases": cases.n_cases,
                "strongest": [{"activation": float(v), "predicted": titles[int(cases.predicted[r])],
                               "history": [titles[i] for i in cases.history[r] if i >= 0][-3:]}
                              for r, v in zip(rows[:shown], values[:shown], strict=True)],
                "raised": [{"title": titles[i], "effect": e} for i, e in summary["raised"][:shown]],
                "values": [{"value": label, "effect": e} for label, e, _ in summary["raised_values"][:shown]],
                "method": summary["method"]}

    def _repr_html_(self) -> str:
        facts = self.facts()
        strongest = facts["strongest"]
        figures = [("cases it fires on", f"{facts['cases']:,} of {facts['of_cases']:,}"),
                   ("peak activation", f"{strongest[0]['activation']:.3f}" if strongest else "-")]
        if facts["confidence"] is not None:
            figures.append(("confidence C", f"{facts['confidence']:.2f}"))
        description = facts["shown"]
        return Card(f"Latent {self.index}", description, figures, [
            Section("strongest cases", ["activation", "last items", "predicted"],
                    [(c["activation"], "; ".join(c["history"]), c["predicted"]) for c in strongest], (0,), "it never fires"),
            Section(f"items it raises most ({facts['method']})", ["item", "score change"],
                    [(r["title"], r["effect"]) for r in facts["raised"]], (1,)),
        ]).html()


class Explanation(dict):
    """``run.explain``'s result: a dict, shown in a notebook as a table of the latents behind the item."""

    def _repr_html_(self) -> str:
        rows = [(entry["latent"], entry.get("description") or "", entry["activation"], entry["contribution"],
                 entry["share"]) for entry in self["latents"][:10]]
        return Card(f"Why user {self['user']} gets {self['title']}", f"rank {self['rank']} in their list",
                    sections=[Section("latents behind it, largest contribution first",
                                      ["latent", "description", "activation", "contribution", "share"], rows,
                                      (2, 3, 4))]).html()


SWEEP_COLUMNS = ("method", "selection", "strength", "NDCG@10", "Gini@10", "ARP@10", "Tail@10")


class Sweep(dict):
    """``run.debias_sweep``'s result: a dict, shown in a notebook as its rows (``SWEEP_COLUMNS``)."""

    def _repr_html_(self) -> str:
        rows = [tuple(row.get(k) for k in SWEEP_COLUMNS) for row in self.get("rows", [])]
        return Card("De-biasing sweep", f"{len(rows)} rows: each method at each strength",
                    sections=[Section("rows", list(SWEEP_COLUMNS), rows, (2, 3, 4, 5, 6))]).html()
