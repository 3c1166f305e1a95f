"""Print the interpretation columns of paper Table 3 (docs/results.md) from interpreted run folders.

    python benchmarks/interpretation_table.py runs/ml-100k-sasrec runs/ml-100k-bprmf ...

One markdown row per concepts folder of each run (every basis `recprobe interpret --basis` wrote: sae, raw,
raw-both, untrained; and any --folder), read from its summary.json: the cases, intra- and inter-concept
similarity, concept counts at C = 1.0, >= 0.9, >= 0.8, how many latents were scored of how many, and the
mean confidence beside the random-description baseline.
"""

from __future__ import annotations

import sys

from recprobe.io import read_json
from recprobe.runs import Run
from recprobe.runs.layout import SETTINGS, SUMMARY

BASIS_NAMES = {"sae": "SAE", "raw": "raw dims (BaseModel)", "raw-both": "raw dims, both signs", "untrained": "untrained SAE"}


def rows(run: Run) -> list[str]:
    out = []
    for folder in run.layout.concept_folders():
        settings = read_json(folder / SETTINGS)
        if not (folder / SUMMARY).is_file() or settings["describer"] != "metadata":
            continue
        s = read_json(folder / SUMMARY)
        counts = s["concepts"]
        cases = f"{s['cases']} ({s['n_cases']:,})" if "cases" in s else "test"
        out.append("| " + " | ".join([
            f"{run.record['target']['name']} / {run.split.name}", BASIS_NAMES.get(settings.get("basis", "sae"), "?"),
            folder.name, cases, _num(s["intra_similarity"]), _num(s["inter_similarity"]), str(counts["C=1.0"]),
            str(counts["C>=0.9"]), str(counts["C>=0.8"]), f"{counts['all']} of {s['latents']}",
            f"{_num(s['mean_confidence'], 2)} ({_num(s['mean_baseline_confidence'], 2)})"]) + " |")
    return out


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main() -> None:
    print("| model / data | basis | folder | cases | intra | inter | C = 1.0 | C >= 0.9 | C >= 0.8 | scored | "
          "mean C (random-description baseline) |")
    print("|" + "---|" * 11)
    for path in sys.argv[1:]:
        print("\n".join(rows(Run.open(path))))


if __name__ == "__main__":
    main()
