"""Every RecBole 1.2.1 model recprobe can probe, checked against RecBole's own evaluation.

    python benchmarks/recbole_models.py [--models BPR,SASRec,...] [--epochs 1] [--settings JSON] [--json FILE]

For each model: export recprobe's MovieLens-100K split, train the model with RecBole's own Trainer (small
sizes, ``recprobe.adapters.recbole.training``), open the checkpoint with the RecBole adapter, check the
ProbeTarget rules (``check_probe_target``: probing changes nothing, edits move the scores), and compare
recprobe's full-ranking test HR@10 and NDCG@10 with RecBole's under RecBole's protocol (seen items masked for
general models, not for sequential ones). With ``--stages``, a supported model then goes through every stage
of the command line (probe, capture, a small train-sae, interpret, steer --table7, report). Prints one row per
model: its status, how it is read, d, the two HR@10 and the gap, and seconds; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

import recprobe
from recprobe.adapters.recbole.training import train_checkpoint
from recprobe.models.evaluate import evaluate_model
from recprobe.runs.align import align
from recprobe.testing import check_probe_target

GENERAL = ["BPR", "NeuMF", "DMF", "MultiVAE", "MultiDAE", "RecVAE", "SimpleX", "CDAE", "ENMF", "LightGCN", "NGCF",
           "SpectralCF", "DGCF", "SGL", "NCL", "LINE", "MacridVAE", "ConvNCF", "FISM", "NAIS", "NNCF", "GCMC", "RaCT",
           "DiffRec", "LDiffRec", "Pop", "ItemKNN", "EASE", "SLIMElastic", "ADMMSLIM", "NCEPLRec", "Random", "AsymKNN"]
SEQUENTIAL = ["SASRec", "BERT4Rec", "Caser", "NextItNet", "FPMC", "GRU4Rec", "NARM", "STAMP", "GCSAN", "LightSANs",
              "CORE", "HGN", "SHAN", "RepeatNet", "SRGNN", "TransRec", "FOSSIL", "NPE", "HRM", "SINE", "FEARec"]
TOLERANCE = 0.002
STAGES = (("capture",), ("train-sae", "--scale", "2", "--k", "4", "--epochs", "2"), ("interpret",),
          ("steer", "--table7"), ("report",))


def cli_stages(checkpoint: Path, run: Path, data_dir: Path | None) -> float:
    """Every stage through the command line; the seconds they took (a failing stage raises with its error)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"RECPROBE_DATA_DIR": str(data_dir)} if data_dir else {})}
    started = time.perf_counter()
    probe = ("probe", "--adapter", "recbole", "--option", f"checkpoint={checkpoint}", "--option", "trust_checkpoint=true",
             "--dataset", "ml-100k", "--out", str(run))
    for stage in (probe, *((name, "--run", str(run), *rest) for name, *rest in STAGES)):
        done = subprocess.run([sys.executable, "-m", "recprobe.cli", *stage], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{stage[0]}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return time.perf_counter() - started


def measure(model: str, export: Path, split, work: Path, epochs: int, settings: dict, stages: bool = False,
            data_dir: Path | None = None) -> dict:
    row: dict = {"model": model}
    started = time.perf_counter()
    try:
        checkpoint, theirs = train_checkpoint(model, export, work / model, epochs=epochs, **settings)
    except Exception as e:  # noqa: BLE001 (a model RecBole cannot train here is a row, not a crash)
        return {**row, "status": "RecBole cannot train it here", "error": f"{type(e).__name__}: {e}"[:300]}
    row["train_seconds"] = round(time.perf_counter() - started, 1)
    try:
        target = recprobe.load_target("recbole", checkpoint=checkpoint, trust_checkpoint=True)
    except recprobe.RecprobeError as e:
        return {**row, "status": "refused", "error": str(e)[:300]}
    row |= {"read": target.site, "d": target.d_model}
    try:
        aligned = align(target, split)
        batch = recprobe.phase_batches(split, "test", aligned.max_history)(range(min(64, split.n_users)))
        check_probe_target(aligned, batch)
        ours = evaluate_model(aligned, split, "test", mask_seen=not target.sequential, beyond=False)
    except Exception as e:  # noqa: BLE001
        return {**row, "status": "fails", "error": f"{type(e).__name__}: {e}"[:300], "trace": traceback.format_exc()[-800:]}
    gaps = {"hit@10": abs(ours["HR@10"] - theirs["hit@10"]), "ndcg@10": abs(ours["NDCG@10"] - theirs["ndcg@10"])}
    row |= {"recbole_HR@10": round(theirs["hit@10"], 4), "recprobe_HR@10": round(ours["HR@10"], 4),
            "recbole_NDCG@10": round(theirs["ndcg@10"], 4), "recprobe_NDCG@10": round(ours["NDCG@10"], 4),
            "max_gap": round(max(gaps.values()), 4), "seconds": round(time.perf_counter() - started, 1)}
    row["status"] = "supported" if row["max_gap"] <= TOLERANCE else "metrics differ"
    if stages and row["status"] == "supported":
        try:
            row["stages_seconds"] = round(cli_stages(checkpoint, work / f"run-{model}", data_dir), 1)
        except RuntimeError as e:
            row |= {"status": "a stage fails", "error": str(e)[:300]}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(GENERAL + SEQUENTIAL))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", type=json.loads, default={}, help="RecBole settings for every model, as JSON")
    parser.add_argument("--stages", action="store_true", help="Also run every stage of the command line on each")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = recprobe.load_dataset("ml-100k", args.data_dir)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        export = recprobe.data.export_recbole(split, work / "data", "recprobe-ml-100k")
        for model in args.models.split(","):
            rows.append(measure(model.strip(), export, split, work, args.epochs, args.settings, args.stages, args.data_dir))
            row = rows[-1]
            print(f"{row['model']:<12} {row['status']:<28} {row.get('read', '-')!s:<36} d={row.get('d', '-')!s:<4} "
                  f"HR@10 RecBole {row.get('recbole_HR@10', '-')} recprobe {row.get('recprobe_HR@10', '-')} "
                  f"gap {row.get('max_gap', '-')}  {row.get('seconds', '-')} s  stages {row.get('stages_seconds', '-')} s  "
                  f"{row.get('error', '')}", flush=True)
            if args.json:  # after every model, so an interrupted sweep keeps what it measured
                args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
