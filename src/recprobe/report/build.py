"""Build ``runs/<name>/report/``: static HTML (no server, no network) from what the run folder holds.

    report/index.html             overview: recommender, faithfulness, concepts, steering, de-biasing
    report/latents/<j>.html       one page per latent that fires on a test case
    report/style.css

Stages a run has not reached yet are left out of the overview, with the command that adds them.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recprobe.concepts.cases import levels
from recprobe.concepts.interpret import most_confident
from recprobe.io import read_json, write_folder
from recprobe.report.charts import bars, histogram
from recprobe.report.pages import STYLE, Markup, card, kpis, link, page, table
from recprobe.runs.layout import SUMMARY
from recprobe.runs.lock import locked
from recprobe.runs.run import Run, open_run
from recprobe.runs.steering import DEBIAS, TABLE7, latent_file, read_result
from recprobe.steer import decoder_scores

TOP_CASES, TOP_ITEMS, TOP_COFIRING, TOP_CONCEPTS, REPORT_HISTORY = 6, 10, 6, 25, 5


def _optional_json(path: Path) -> Any:
    return read_json(path) if path.exists() else None


class RunReport:
    """Everything the pages show, read once from the run folder."""

    def __init__(self, run: Run | str | Path, data_dir: str | Path | None = None):
        self.opened = opened = open_run(run, data_dir)
        self.run, self.target, self.split = opened.root, opened.target, opened.split
        self.sae, self.cases = opened.sae(), opened.cases()
        self.model_metrics = opened.evaluate("test")
        self.sae_metrics = read_json(opened.layout.sae / "metrics.json")
        self.levels = levels(self.cases)
        self.records = {r["latent"]: r for r in opened.concepts()}
        self.summary = _optional_json(opened.layout.concepts() / SUMMARY) if self.records else None
        self.table7 = read_result(opened, TABLE7, "recprobe steer --table7")
        self.debias = read_result(opened, DEBIAS, "recprobe debias")
        fired = self.cases.values > 0
        self.fires = np.bincount(self.cases.indices[fired], minlength=self.sae.n_latents)
        self.title = f"{self.target.name} on {self.split.name}: {self.sae.n_latents} latents, k = {self.sae.k}"

    def item(self, item: int) -> str:
        return self.split.catalog.titles[item]

    # --- overview -------------------------------------------------------------------------------------------
    def overview(self) -> str:
        test = self.model_metrics
        after = self.sae_metrics["after"]
        train = after["reconstruction_train"]
        sections = [
            card("Recommender (test, full ranking)", kpis([(k, f"{test[k]:.4f}") for k in ("HR@10", "NDCG@10", "HR@20", "NDCG@20")])),
            card("SAE faithfulness", kpis([
                ("FVU (train)", f"{train['fvu']:.3f}"), ("L0", f"{train['l0']:.1f}"),
                ("dead latents", f"{train['dead_fraction']:.1%}"), ("dense latents", f"{train['dense_fraction']:.1%}"),
                ("HR@10 spliced / original", f"{after['spliced_test']['HR@10'] / max(after['original_test']['HR@10'], 1e-12):.0%}")])),
            card("How often latents fire (test users)", histogram(self.fires[self.fires > 0] / len(self.cases), 24,
                                                                  "share of users a latent fires on", log=True)),
        ]
        sections += self._concept_cards()
        sections += self._steering_cards()
        return page(self.title, f"recprobe report for {self.run.name}", '<div class="grid">' + "".join(sections) + "</div>")

    def _concept_cards(self) -> list[str]:
        if not self.summary:
            return [card("Concepts", f"<p class='muted'>Not interpreted yet: <code>recprobe interpret --run {self.run}</code></p>")]
        counts = self.summary["concepts"]
        scored = most_confident(list(self.records.values()))
        top = scored[:TOP_CONCEPTS]
        return [
            card("Concepts by confidence", bars([(k, float(v)) for k, v in counts.items()], fmt="{:.0f}") +
                 f"<p class='muted'>{self.summary['insufficient']} latents fire on too few test users to verify. "
                 f"Intra-concept similarity {_round(self.summary['intra_similarity'])}, inter {_round(self.summary['inter_similarity'])}.</p>"),
            card("Confidence of every verified concept", histogram([r["confidence"] for r in scored], 10, "confidence C")),
            card("Top concepts", table(["latent", "description", "C", "fires on"],
                                       [(link(f"latents/{r['latent']}.html", str(r["latent"])), r["description"], r["confidence"],
                                         int(self.fires[r["latent"]])) for r in top], numeric=(2, 3)), wide=True),
        ]

    def _steering_cards(self) -> list[str]:
        out = []
        if self.table7:
            rows = []
            for row in self.table7["latents"]:
                for variant in ("metadata", "decoder"):
                    if variant in row:
                        hits = [s["hit@10"] for s in row[variant]["scales"]]
                        rows.append((link(f"latents/{row['latent']}.html", str(row["latent"])), row["description"],
                                     variant, *hits))
            out.append(card("Steering (paper Table 7): Hit@10 of concept items",
                            table(["latent", "concept", "items", "-10x", "1x", "+10x"], rows, numeric=(3, 4, 5)), wide=True))
        if self.debias:
            before, after = self.debias["before"], self.debias["after"]
            out.append(card("De-biasing: every test user's top 10", table(
                ["metric", "before", "after", "change"],
                [(k, before[k], after[k], _change(self.debias["change"][k])) for k in before], numeric=(1, 2, 3))))
        if not out:
            out.append(card("Steering", f"<p class='muted'>Not run yet: <code>recprobe steer --run {self.run} --table7</code> "
                                        f"and <code>recprobe debias --run {self.run}</code></p>"))
        return out

    # --- one latent -----------------------------------------------------------------------------------------
    def latent_page(self, latent: int) -> str:
        activation = self.cases.activation(latent)
        active = np.flatnonzero(activation > 0)
        record = self.records.get(latent, {})
        facts = [("fires on", f"{len(active)} of {len(self.cases)} users"),
                 ("max activation", f"{activation.max():.3f}"), ("mean when firing", f"{activation[active].mean():.3f}")]
        if record.get("confidence") is not None:
            facts.append(("confidence C", f"{record['confidence']:.2f}"))
        description = record.get("description") or {"insufficient": "too few activated cases to describe and verify"}.get(
            record.get("status"), "not interpreted yet")
        sections = [card("Concept", f"<p><b>{escape(description)}</b></p>" + kpis(facts) + self._verification(record)),
                    card("Activation over the users it fires on", histogram(activation[active], 16, "activation")),
                    card("Top cases", self._top_cases(latent, activation), wide=True),
                    card("Items its decoder direction promotes", self._promoted(latent)),
                    card("Latents that fire with it", self._cofiring(latent, active))]
        steering = self._steering(latent)
        if steering:
            sections.append(card("Steering", steering))
        return page(f"Latent {latent}", self.title, '<div class="grid">' + "".join(sections) + "</div>", root="../")

    def _verification(self, record: dict[str, Any]) -> str:
        if record.get("confidence") is None:
            return ""
        return "<p class='muted'>Verification on unseen cases:</p>" + table(
            ["", "predicted active", "predicted inactive"],
            [("activated cases", record["tp"], record["fn"]), ("non-activated cases", record["fp"], record["tn"])], numeric=(1, 2))

    def _top_cases(self, latent: int, activation: np.ndarray) -> str:
        rows = []
        for row in np.argsort(-activation, kind="stable")[:TOP_CASES]:
            if activation[row] <= 0:
                break
            history = [self.item(int(i)) for i in self.cases.history[row] if i >= 0][-REPORT_HISTORY:]
            column = np.flatnonzero(self.cases.indices[row] == latent)
            level = int(self.levels[row, column[0]]) if len(column) else 0
            rows.append((Markup(f'<span class="level">{level}</span>'), float(activation[row]), "; ".join(history),
                         self.item(int(self.cases.predicted[row]))))
        return table(["level", "activation", f"last {REPORT_HISTORY} items of the history", "model's top prediction"], rows,
                     numeric=(1,))

    def _promoted(self, latent: int) -> str:
        scores = decoder_scores(self.target, self.sae, latent)
        if scores is None:
            return "<p class='muted'>This model has no item embeddings in the representation's space.</p>"
        top = torch.topk(scores, TOP_ITEMS)
        return table(["item", "score"], [(self.item(int(i)), float(s)) for s, i in zip(top.values, top.indices, strict=True)],
                     numeric=(1,))

    def _cofiring(self, latent: int, active: np.ndarray) -> str:
        counts: Counter = Counter()
        for row in active:
            counts.update(int(j) for j, v in zip(self.cases.indices[row], self.cases.values[row], strict=True)
                          if v > 0 and j != latent)
        rows = [(link(f"{j}.html", str(j)), self.records.get(j, {}).get("description") or "", n)
                for j, n in counts.most_common(TOP_COFIRING)]
        return table(["latent", "description", "users"], rows, numeric=(2,)) if rows else "<p class='muted'>none</p>"

    def _steering(self, latent: int) -> str:
        found = read_result(self.opened, latent_file(latent), f"recprobe steer --latent {latent}")
        if found is None and self.table7:
            found = next((row for row in self.table7["latents"] if row["latent"] == latent), None)
        if found is None:
            return ""
        rows = [(variant, *(s["hit@10"] for s in found[variant]["scales"])) for variant in ("metadata", "decoder") if variant in found]
        scales = [f"{s['scale']:g}x" for s in found["metadata"]["scales"]]
        return f"<p class='muted'>Hit@10 of concept items ({found.get('feature')}) over the users it fires on.</p>" + \
            table(["concept items", *scales], rows, numeric=tuple(range(1, len(scales) + 1)))

    def write(self) -> Path:
        def write(staging: Path) -> None:
            (staging / "style.css").write_text(STYLE, encoding="utf-8")
            (staging / "index.html").write_text(self.overview(), encoding="utf-8")
            (staging / "latents").mkdir()
            for latent in np.flatnonzero(self.fires):
                (staging / "latents" / f"{latent}.html").write_text(self.latent_page(int(latent)), encoding="utf-8")

        return write_folder(self.opened.layout.report, write)


@locked("report")
def build_report(run: Run | str | Path, data_dir: str | Path | None = None) -> Path:
    """Write the run's report folder; returns the path of its index.html."""
    return RunReport(run, data_dir).write() / "index.html"


def _round(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _change(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
