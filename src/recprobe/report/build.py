"""Build ``runs/<name>/report/``: static HTML (no server, no network) from what the run folder holds.

    report/index.html             overview: recommender, faithfulness, concepts, steering, de-biasing
    report/debias-sweep.svg       the de-biasing sweep's NDCG@10 / Gini@10 curves (when the run has the sweep)
    report/latents/<j>.html       one page per latent that fires on a test case
    report/style.css

Stages a run has not reached yet are left out of the overview, with the command that adds them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from recprobe.concepts.cases import describe_kind, levels
from recprobe.concepts.highlights import Highlights
from recprobe.concepts.interpret import card_description, most_confident
from recprobe.io import write_folder
from recprobe.progress import stage_bar
from recprobe.ranking.beyond import ITEM_GROUPS, USER_GROUPS
from recprobe.report.charts import bars, heatmap, histogram, pareto
from recprobe.report.pages import STYLE, level, link, render
from recprobe.runs.compare import headline, read_compare
from recprobe.runs.explain import FIDELITY
from recprobe.runs.layout import ATTRIBUTES, SUMMARY
from recprobe.runs.lock import locked
from recprobe.runs.provenance import read_made_from
from recprobe.runs.run import Run, open_run
from recprobe.runs.steering import DEBIAS, DEBIAS_SWEEP, TABLE7, latent_file, read_result
from recprobe.runs.table7_every import REBUILD as TABLE7_EVERY_REBUILD
from recprobe.runs.table7_every import missing_controls, read_table7_every, verdict_lines
from recprobe.sae.faithfulness import DENSE_RATE, splice_effects, store_mean
from recprobe.schemas import AttributeTable, ConceptSummary, read_checked
from recprobe.steering.effects import LatentEffects
from recprobe.steering.explain import explain

TOP_CASES, TOP_COFIRING, TOP_CONCEPTS, REPORT_HISTORY = 6, 6, 25, 5
EXAMPLE_USERS, EXPLAINING_LATENTS = 8, 5


class RunReport:
    """Everything the pages show, read once from the run folder."""

    def __init__(self, run: Run | str | Path):
        self.opened = opened = open_run(run)
        self.run, self.target, self.split = opened.root, opened.target, opened.split
        self.sae, self.cases = opened.sae(), opened.cases()
        self.sae_metrics = opened.sae_metrics()
        self.effects = LatentEffects(self.target, self.sae, self.split)
        self.users_firing = self.cases.users_per_latent(self.sae.n_latents)
        self.n_users = self.cases.n_users
        self.user_share = self.users_firing / self.n_users
        self.case_share = self.cases.firing_share(self.sae.n_latents)
        self.fidelity = read_made_from(opened.layout.explanations / FIDELITY, opened.cases_made_from(),
                                       f"recprobe explain --run {opened.root} --fidelity")
        self.levels = levels(self.cases)
        self.records = {r["latent"]: r for r in opened.concepts()}
        self.highlights = Highlights(self.cases, self.split.catalog, self.effects,
                                     {j: r.get("description") for j, r in self.records.items()})
        summary = opened.layout.concepts() / SUMMARY
        self.summary = (read_checked(summary, ConceptSummary, f"recprobe interpret --run {opened.root}")
                        if self.records and summary.exists() else None)
        self.table7 = read_result(opened, TABLE7, "recprobe steer --table7")
        self.table7_every = read_table7_every(opened)
        self.debias = read_result(opened, DEBIAS, "recprobe debias")
        self.sweep = read_result(opened, DEBIAS_SWEEP, "recprobe debias --sweep")
        self.title = f"{self.target.name} on {self.split.name}: {self.sae.n_latents} latents, k = {self.sae.k}"

    def item(self, item: int) -> str:
        return self.split.catalog.titles[item]

    # --- overview -------------------------------------------------------------------------------------------
    def overview(self) -> str:
        after = self.sae_metrics["after"]
        test = after["original_test"]  # measured by train-sae on this run's recommender (its provenance is checked)
        return render(
            "index.html", title=self.title, subtitle=f"recprobe report for {self.run.name}", root="", run=str(self.run),
            recommender=[(k, f"{test[k]:.4f}") for k in ("HR@10", "NDCG@10", "HR@20", "NDCG@20")],
            faithfulness=self._faithfulness(), controls=self._controls(), users=self.n_users,
            firing=histogram(self.user_share[self.user_share > 0], 24, "share of users a latent fires on", log=True),
            concepts=self._concepts(), interpreted=(len(self.records), self.sae.n_latents),
            attributes=self._attributes(), table7=self._table7(),
            table7_every=self._table7_every(), debias=self._debias(), sweep=self._sweep())

    def _controls(self) -> dict[str, Any] | None:
        """The trained SAE against its controls (``recprobe compare``), when measured."""
        found = read_compare(self.opened)
        if found is None:
            return None
        rows = [(r["metric"], f"{r['arch']} {r['trained']:.3f}", f"{r['control']} {r['control_mean']:.3f}" if r["control"] else "-",
                 f"{r['gap']['mean']:+.3f}" + (f" [{r['gap']['low']:+.3f}, {r['gap']['high']:+.3f}]" if r["gap"]["low"] is not None else ""),
                 r["verdict"]) for r in headline(found)]
        ahead = sum(r[-1] == "trained ahead" for r in rows)
        return {"rows": rows, "note": f"{ahead} of {len(rows)} metrics show training ahead of every control with a 95% "
                                      f"interval excluding 0, over seeds {found['seeds']} on {found['cases']['n']:,} "
                                      f"{found['cases']['kind']} cases; the rest show no difference or a control ahead."}

    def _faithfulness(self) -> list[tuple[str, str]]:
        after, before = self.sae_metrics["after"], self.sae_metrics["before"]
        train = after["reconstruction_train"]
        spliced = after["spliced_test"]["HR@10"] / max(after["original_test"]["HR@10"], 1e-12)
        shown = [("FVU (train)", f"{train['fvu']:.3f}"), ("L0", f"{train['l0']:.1f}"),
                 ("dead latents: train vectors / interpreted cases", f"{train['dead_fraction']:.1%} / {(self.case_share == 0).mean():.1%}"),
                 ("dense latents: train vectors / interpreted cases",
                  f"{train['dense_fraction']:.1%} / {(self.case_share > DENSE_RATE).mean():.1%}"),
                 ("HR@10 spliced / original", f"{spliced:.0%}")]
        splices = (before["splice_test"], after["splice_test"]) if after["splice_test"] else self._splice_effects()
        for key, label in (("NDCG@10_recovered", "NDCG@10 recovered vs mean ablation"),
                           ("loss_recovered", "softmax loss recovered"), ("top10_overlap", "top-10 overlap")):
            shown.append((f"{label} (random init {_round(splices[0][key])})", _round(splices[1][key])))
        return shown

    def _splice_effects(self) -> tuple[dict, dict]:
        """For an SAE trained before train-sae measured them: measured now, for the random-init and trained SAE."""
        store = self.opened.activations()
        mean = store_mean(store)
        return (splice_effects(self.target, self.opened.basis("untrained"), self.split, mean),
                splice_effects(self.target, self.sae, self.split, mean))

    def _attributes(self) -> dict[str, Any] | None:
        path = self.opened.layout.concepts() / ATTRIBUTES
        found = read_checked(path, AttributeTable, self.opened.interpret_command(path.parent)) \
            if self.records and path.exists() else None
        if not found or not found.get("labels"):
            return None
        means = found["mean_best_auroc"]
        rows = [(attribute, *(means[basis].get(attribute) for basis in found["bases"])) for attribute in means["sae"]]
        heat = found["heatmap"]
        return {"header": ["attribute", *found["bases"]], "rows": rows, "numeric": tuple(range(1, len(found["bases"]) + 1)),
                "heatmap": heatmap([f"latent {j}" for j in heat["latents"]], heat["labels"], heat["auroc"],
                                   "AUROC of the top latents for each label")}

    def _concepts(self) -> dict[str, Any] | None:
        if not self.summary:
            return None
        scored = most_confident(list(self.records.values()))
        chosen, skipped = self.highlights.pick(scored, TOP_CONCEPTS)
        summary = self.summary
        cases = (f"{summary['n_cases']:,} cases of {summary['users']:,} users, one at every position of their sequences"
                 if summary.get("cases") == "all" else f"one case per test user ({self.cases.n_cases:,})")
        return {
            "counts": bars([(k, float(v)) for k, v in summary["concepts"].items()], fmt="{:.0f}"),
            "note": f"Interpreted on {cases}. {summary['insufficient']} latents fire on too few users to verify. "
                    f"Intra-concept similarity {_round(summary['intra_similarity'])}, inter {_round(summary['inter_similarity'])}.",
            "confidence": histogram([r["confidence"] for r in scored], 10, "confidence C"),
            "top": [(link(f"latents/{r['latent']}.html", str(r["latent"])), r["description"], r["confidence"],
                     int(self.users_firing[r["latent"]])) for r in chosen],
            "skipped": [(link(f"latents/{s['latent']}.html", str(s["latent"])), s["description"], s["reason"]) for s in skipped],
        }

    def _table7(self) -> list[tuple]:
        rows = []
        for row in (self.table7 or {}).get("latents", []):
            for variant in ("metadata", "decoder"):
                if variant in row:
                    rows.append((link(f"latents/{row['latent']}.html", str(row["latent"])), row["description"], variant,
                                 *(s["hit@10"] for s in row[variant]["scales"])))
        return rows

    def _table7_every(self) -> dict[str, Any] | None:
        """Table 7's rule over every confident concept, the SAE beside its controls (``steer --table7 --every``)."""
        found = self.table7_every
        if found is None:
            return None
        rows = [(basis, row["confident"], row["measured"], row["passed"], row["share"]["mean"],
                 None if row["share"]["low"] is None else f"[{row['share']['low']:.3f}, {row['share']['high']:.3f}]",
                 row.get("grounded_share", {}).get("mean"))  # older tables lack it
                for basis, row in found["bases"].items()]
        verdict = " ".join(f"{line[0].upper()}{line[1:]}." for line in verdict_lines(found))
        missing = missing_controls(found)
        also = (f" Not measured: {', '.join(missing)} (`recprobe interpret --run {self.run} --basis NAME`, then "
                f"`{TABLE7_EVERY_REBUILD} --run {self.run}`)." if missing else "")
        cases = describe_kind(found.get("cases", "test"))  # older tables steered each test user at test time
        sampled = f"{found['n_cases']:,} cases, {cases}" if "n_cases" in found else cases
        return {"rows": rows, "note": f"A concept passes when +10x puts one of its items in at least 90% of the top-10s of "
                                      f"the cases its latent fires on and -10x in at most 10% ({sampled}; Wilson 95% "
                                      f"intervals). Decoder grounded: the share of measured concepts whose decoder "
                                      f"direction raises their items (its 20 most raised items carry the concept more "
                                      f"often than the catalog). {verdict}{also}"}

    def _debias(self) -> list[tuple]:
        if not self.debias:
            return []
        before, after = self.debias["before"], self.debias["after"]
        return [(k, before[k], after[k], _change(self.debias["change"][k])) for k in before]

    def _sweep(self) -> dict[str, Any] | None:
        if not self.sweep:
            return None
        k = self.sweep["k"]
        keys = [f"NDCG@{k}", f"HR@{k}", f"Gini@{k}", f"ARP@{k}", f"Coverage@{k}", f"Tail@{k}",
                *(f"NDCG@{k} {g}" for g in ITEM_GROUPS), *(f"NDCG@{k} {g} users" for g in USER_GROUPS)]
        rows = [(row["method"] + (f" ({row['selection']})" if row["selection"] else ""), f"{row['strength']:g}",
                 *(row[key] for key in keys)) for row in self.sweep["rows"]]
        return {"chart": pareto(self.sweep["rows"], k), "header": ["method", "strength", *keys], "rows": rows,
                "numeric": tuple(range(1, len(keys) + 2)),
                "note": f"{self.sweep['n_latents']} latents; random control averaged over {self.sweep['seeds']} draws. "
                        "Up and to the left is better: accuracy kept, exposure spread more evenly."}

    def sweep_svg(self) -> str | None:
        """The sweep's Pareto chart as a standalone SVG file, or None when the run has no sweep."""
        return render("pareto.svg", chart=pareto(self.sweep["rows"], self.sweep["k"])) if self.sweep else None

    # --- explanations of single recommendations --------------------------------------------------------------
    def explanations_page(self) -> str:
        users = np.random.default_rng(0).choice(self.split.n_users, min(EXAMPLE_USERS, self.split.n_users), replace=False)
        examples = []
        sequences = self.split.sequences("test")  # built once for every example
        for user in sorted(users.tolist()):
            found = explain(self.target, self.sae, self.split, user)
            total = sum(abs(e["contribution"]) for e in found.latents) or 1.0
            leading = sorted(found.latents, key=lambda e: self.highlights.broad(e["latent"]) is not None)  # broad ones last
            rows = [(link(f"latents/{e['latent']}.html", str(e["latent"])), self.explained(e["latent"]),
                     e["activation"], e["contribution"], f"{e['contribution'] / total:+.0%}") for e in leading[:EXPLAINING_LATENTS]]
            history = [self.item(int(i)) for i in recent_items(*sequences, user, REPORT_HISTORY)]
            examples.append({"user": str(self.split.user_ids[user]), "item": self.item(found.item), "history": "; ".join(history),
                             "rows": rows})
        fidelity = None
        if self.fidelity and self.fidelity.get("users"):
            f = self.fidelity
            fidelity = (f"Fidelity over {f['users']:,} test users: ablating the top {f['m']} explaining latents pushes the item "
                        f"further down than {f['m']} random active latents for {f['share_top_beats_random']:.0%} of them "
                        f"(mean rank drop {f['mean_rank_drop_top']:.1f} against {f['mean_rank_drop_random']:.1f}).")
        return render("explanations.html", title="Why these recommendations", subtitle=self.title, root="",
                      examples=examples, fidelity=fidelity, run=str(self.run))

    def explained(self, latent: int) -> str:
        """A latent's description in an explanation, with the reason it is broad where it is."""
        description = self.records.get(latent, {}).get("description") or ""
        broad = self.highlights.broad(latent)
        return f"{description} (broad: {broad})".strip() if broad else description


    # --- one latent -----------------------------------------------------------------------------------------
    def latent_page(self, latent: int) -> str:
        active, strength = self.cases.fired(latent)  # strongest first
        record = self.records.get(latent, {})
        typical = strength if self.cases.complete else strength[self.cases.uniform[active]]  # the strongest are over-kept
        peak = float(strength[0]) if len(active) else 0.0
        mean = float(typical.mean()) if len(typical) else float("nan")
        facts = [("fires on", f"{self.users_firing[latent]:,} of {self.n_users:,} users "
                              f"({self.cases.fired_count(latent):,} of {self.cases.n_cases:,} cases)"),
                 ("max activation", f"{peak:.3f}"), ("mean when firing", f"{mean:.3f}")]
        if record.get("confidence") is not None:
            facts.append(("confidence C", f"{record['confidence']:.2f}"))
        description = card_description(record)
        verification = None if record.get("confidence") is None else [
            ("activated cases", record["tp"], record["fn"]), ("non-activated cases", record["fp"], record["tn"])]
        return render("latent.html", title=f"Latent {latent}", subtitle=self.title, root="../", description=description,
                      facts=facts, verification=verification, activation=histogram(strength, 16, "activation"),
                      history=REPORT_HISTORY, cases=self._top_cases(latent, active, strength), effects=self._effects(latent),
                      cofiring=self._cofiring(latent, active), steering=self._steering(latent))

    def _top_cases(self, latent: int, active: np.ndarray, strength: np.ndarray) -> list[tuple]:
        rows = []
        for row, value in zip(active[:TOP_CASES], strength[:TOP_CASES], strict=True):
            history = [self.item(int(i)) for i in self.cases.history[row] if i >= 0][-REPORT_HISTORY:]
            column = np.flatnonzero(self.cases.indices[row] == latent)
            rows.append((level(int(self.levels[row, column[0]]) if len(column) else 0), float(value),
                         "; ".join(history), self.item(int(self.cases.predicted[row]))))
        return rows

    def _effects(self, latent: int) -> dict[str, Any]:
        found = self.effects.summary(latent)
        return {"method": found["method"],
                "raised": [(self.item(i), e) for i, e in found["raised"]],
                "lowered": [(self.item(i), e) for i, e in found["lowered"]],
                "values": [(label, e, n, lowered, f, m) for (label, e, n), (lowered, f, m)
                           in zip(found["raised_values"], found["lowered_values"], strict=False)]}

    def _cofiring(self, latent: int, active: np.ndarray) -> list[tuple]:
        counts: Counter = Counter()
        for row in active:
            counts.update(int(j) for j, v in zip(self.cases.indices[row], self.cases.values[row], strict=True)
                          if v > 0 and j != latent)
        return [(link(f"{j}.html", str(j)), self.records.get(j, {}).get("description") or "", n)
                for j, n in counts.most_common(TOP_COFIRING)]

    def _steering(self, latent: int) -> dict[str, Any] | None:
        found = read_result(self.opened, latent_file(latent), f"recprobe steer --latent {latent}")
        if found is None and self.table7:
            found = next((row for row in self.table7["latents"] if row["latent"] == latent), None)
        if found is None:
            return None
        scales = [f"{s['scale']:g}x" for s in found["metadata"]["scales"]]
        rows = [(variant, *(s["hit@10"] for s in found[variant]["scales"])) for variant in ("metadata", "decoder")
                if variant in found]
        return {"feature": str(found.get("feature")), "header": ["concept items", *scales], "rows": rows,
                "numeric": tuple(range(1, len(scales) + 1))}

    def write(self, progress: bool = True) -> Path:
        def write(staging: Path) -> None:
            (staging / "style.css").write_text(STYLE, encoding="utf-8")
            (staging / "index.html").write_text(self.overview(), encoding="utf-8")
            (staging / "explanations.html").write_text(self.explanations_page(), encoding="utf-8")
            if (svg := self.sweep_svg()) is not None:
                (staging / "debias-sweep.svg").write_text(svg, encoding="utf-8")
            (staging / "latents").mkdir()
            latents = np.flatnonzero(self.case_share)
            with stage_bar(progress) as bar:
                task = bar.add_task("report: latent pages", total=len(latents), unit="pages")
                for latent in latents:
                    (staging / "latents" / f"{latent}.html").write_text(self.latent_page(int(latent)), encoding="utf-8")
                    bar.advance(task)

        return write_folder(self.opened.layout.report, write)


@locked("report")
def build_report(run: Run | str | Path) -> Path:
    """Write the run's report folder; returns the path of its index.html."""
    return RunReport(run).write() / "index.html"


def recent_items(offsets: np.ndarray, items: np.ndarray, user: int, n: int) -> np.ndarray:
    """The user's last ``n`` items of the CSR rows (offsets, items), oldest first (fewer when the row is shorter)."""
    return items[max(offsets[user], offsets[user + 1] - n):offsets[user + 1]]


def _round(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _change(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
