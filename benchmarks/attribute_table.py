"""Print the attribute-metric rows of docs/results.md from interpreted run folders.

    python benchmarks/attribute_table.py runs/ml-100k-sasrec runs/ml-1m-bprmf ...

One markdown row per run and attribute: the mean over the attribute's values of the best direction's AUROC,
for each basis of `concepts/attributes.json` (SAE latents, their encoder read-out, raw dimensions both ways,
the untrained SAE), and how many values were scored.
"""

from __future__ import annotations

import sys

from recprobe.io import read_json
from recprobe.runs import Run
from recprobe.runs.layout import ATTRIBUTES


def main() -> None:
    header = None
    for path in sys.argv[1:]:
        run = Run.open(path)
        found = read_json(run.layout.concepts() / ATTRIBUTES)
        if header is None:
            header = found["bases"]
            print("| model / data | cases | attribute | values | " + " | ".join(header) + " |")
            print("|" + "---|" * (4 + len(header)))
        means = found["mean_best_auroc"]
        values = {}
        for row in found["per_label"]:
            attribute = row["label"].split(": ", 1)[0]
            values[attribute] = values.get(attribute, 0) + 1
        for attribute in means["sae"]:
            best = max(header, key=lambda basis: means[basis][attribute])
            cells = [f"**{means[b][attribute]:.3f}**" if b == best else f"{means[b][attribute]:.3f}" for b in header]
            print(f"| {run.record['target']['name']} / {run.split.name} | {found['measured_on']:,} of {found['cases']:,} | {attribute} | "
                  f"{values[attribute]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
