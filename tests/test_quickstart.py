"""`recprobe quickstart` end to end on the real MovieLens-100K (slow: trains SASRec and its SAE), with the
deterministic fake LLM standing in for SmolLM2 (the embedded model itself is exercised in test_llm.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from recprobe.cli import main
from recprobe.concepts.labelers import described_attribute
from recprobe.report.build import RunReport

pytestmark = pytest.mark.slow


def quickstart(out) -> None:
    with pytest.raises(SystemExit) as exit_info:  # click ends every command with SystemExit
        main(["quickstart", "--out", str(out), "--llm", "fake", "--llm-latents", "2"])
    assert exit_info.value.code == 0


def test_quickstart_runs_every_stage_and_reuses_them(shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECPROBE_DATA_DIR", str(shared_data))
    out = tmp_path / "quickstart"
    quickstart(out)
    printed = capsys.readouterr().out
    assert "Open the report:" in printed and str((out / "report" / "index.html").resolve()) in printed.replace("\n", "")
    for path in ("recommender/model.safetensors", "activations/index.json", "sae/sae_weights.safetensors",
                 "concepts/summary.json", "concepts-llm/summary.json", "steering/table7.json", "steering/debias.json",
                 "report/index.html"):
        assert (out / path).is_file(), path
    table7 = json.loads((out / "steering" / "table7.json").read_text())
    assert len(table7["latents"]) == 3 and all(s["reason"] for s in table7["skipped"])
    assert {r["latent"] for r in table7["latents"]}.isdisjoint(s["latent"] for s in table7["skipped"])
    summary = json.loads((out / "concepts" / "summary.json").read_text())  # too few test users: every position
    assert summary["cases"] == "all" and summary["n_cases"] > 50_000 and summary["concepts"]["all"] >= 900
    assert summary["attributes"]["sae"]["genre"] > summary["attributes"]["untrained"]["genre"]
    assert not (out / "sae-checkpoint.safetensors").exists()
    top = [row[1] for row in RunReport(out)._concepts()["top"]]  # the report's top concepts: each its own
    assert len(top) == 25 and len(set(top)) == 25, top
    named = Counter(described_attribute(d) for d in top if described_attribute(d))
    assert max(named.values()) <= len(top) / 3, named  # no value (a release year) names most of them
    every = json.loads((out / "steering" / "table7-every.json").read_text())  # Table 7's rule beside the controls
    assert list(every["bases"]) == ["sae", "raw", "untrained"] and every["bases"]["sae"]["measured"] >= 20
    assert all(0 <= row["passed"] <= row["measured"] <= row["confident"] for row in every["bases"].values())
    assert f"trained minus the best control ({every['best_control']})" in printed
    assert "Steering every confident concept" in (out / "report" / "index.html").read_text()
    weights = (out / "sae" / "sae_weights.safetensors").read_bytes()
    quickstart(out)  # a rerun reuses every stage
    assert "capture: already in" in capsys.readouterr().out
    assert (out / "sae" / "sae_weights.safetensors").read_bytes() == weights
