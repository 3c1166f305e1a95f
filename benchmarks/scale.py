"""Every stage's wall time and peak memory as the users grow: a scale ladder on synthetic interactions.

    python benchmarks/scale.py [--quick] [--sizes 20000,100000,1000000] [--items N] [--sae-scale 8]
                               [--sae-batch 64] [--positions auto] [--stages probe,capture,...] [--cases auto]
                               [--json FILE] [--folder DIR]

The data: ``--sizes`` users (``--quick``: 1,000, 2,000 and 4,000), a catalog of ``--items`` items (default: a
fifth as many as the users, at least 500; a fixed catalog measures growth in users alone, since any full ranking
is users x items), 20 interactions per user in time order. Item popularity follows a power law (Zipf, exponent 1.1); each
item has one of 18 genres, a release year and a title; each user keeps to a favourite genre for 70% of their
items (sessions of taste), the rest drawn by popularity from the whole catalog. The target is sequential: a user
is the mean of their history's item embeddings (genre centroid plus noise, d = 64), scored by dot product, so
the SAE has genre structure to find and every stage runs as it does on a real sequential model.

The generator writes RecBole atomic files (``.inter``, ``.item``) a block of users at a time; its time is printed
apart. Each stage runs in a fresh process on the same run folder and reports its wall time and peak RSS
(ru_maxrss): probe (the files read and split as a user's are, then Run.create: the split stored, the ranking
check), capture (``--positions``), train-sae (1 epoch, ``--sae-scale`` x 64
latents, k 8, batches of ``--sae-batch``),
interpret (metadata describer, embedding verifier, the default cases), steer (Table 7), debias-sweep and report.
The growth exponent of each stage is the slope of log(seconds) and of log(peak RSS above the interpreter's own)
against log(users), fitted over the sizes; 1 is linear. ``--json`` writes
``{"stages": {"<stage>": {"exponent": e, "rss_exponent": r, "peak_rss_gb": g, "seconds": [...]}}, "sizes": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

GENRES = 18
D = 64
PER_USER = 20
STAGES = ("probe", "capture", "train-sae", "interpret", "steer", "debias-sweep", "report")


WRITE_USERS = 100_000  # users generated and written at a time


def write_synthetic(n_users: int, folder: Path, n_items: int | None = None, seed: int = 0) -> Path:
    """Power-law popularity, genres, years and titles; users with a favourite genre (see the module doc), written
    as RecBole atomic files (``.inter`` and ``.item``) a block of users at a time; returns the folder."""
    rng = np.random.default_rng(seed)
    n_items = n_items or max(500, n_users // 5)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.1
    genre = rng.integers(GENRES, size=n_items)  # the generator's first draw: item_genres repeats it
    by_genre = [np.flatnonzero(genre == g) for g in range(GENRES)]
    years = 1950 + rng.integers(70, size=n_items)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"synthetic-{n_users}"
    with open(folder / f"{name}.item", "w") as f:
        f.write("item_id:token\ttitle:token\tgenre:token\trelease_year:token\n")
        f.writelines(f"{i}\tItem {i}\tgenre {genre[i]}\t{years[i]}\n" for i in range(n_items))
    with open(folder / f"{name}.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for first in range(0, n_users, WRITE_USERS):
            block = min(WRITE_USERS, n_users - first)
            favourite = rng.integers(GENRES, size=block)
            own = rng.random((block, PER_USER)) < 0.7
            items = np.empty((block, PER_USER), dtype=np.int64)
            items[~own] = rng.choice(n_items, size=int((~own).sum()), p=popularity / popularity.sum())
            for g in range(GENRES):
                rows, cols = np.nonzero(own & (favourite[:, None] == g))
                pool = by_genre[g]
                items[rows, cols] = rng.choice(pool, size=len(rows), p=popularity[pool] / popularity[pool].sum())
            users = np.repeat(np.arange(first, first + block), PER_USER)
            times = np.tile(np.arange(PER_USER), block)
            np.savetxt(f, np.stack([users, items.ravel(), times], 1), fmt="%d", delimiter="\t")
    return folder


def item_genres(n_users: int, n_items: int | None = None, seed: int = 0) -> np.ndarray:
    """The genre of every generated item, as ``write_synthetic`` draws it, without generating the interactions."""
    return np.random.default_rng(seed).integers(GENRES, size=n_items or max(500, n_users // 5))


class MeanPool(torch.nn.Module):
    """A sequential ProbeTarget: the mean of the history's item embeddings, scored by dot product."""

    name, max_history, d_model = "benchmark:meanpool", 20, D

    def __init__(self, split, genre: np.ndarray):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        centroids = torch.randn(GENRES, D, generator=generator)
        genre = torch.from_numpy(genre[split.item_ids.astype(int)])  # the split keeps the items that were interacted with
        table = centroids[genre] + 0.5 * torch.randn(split.n_items, D, generator=generator)
        self.n_items = split.n_items
        self.items = torch.nn.Embedding(split.n_items + 1, D, padding_idx=split.n_items,
                                        _weight=torch.cat([table, torch.zeros(1, D)]))

    @torch.no_grad()
    def represent(self, batch):
        return self.items(batch.history).sum(1) / batch.lengths.clamp(min=1)[:, None]

    def score(self, reps, batch):
        return reps @ self.items.weight[:-1].T

    def predict(self, batch):
        return self.score(self.represent(batch), batch)

    def item_embeddings(self):
        return self.items.weight[:-1]


def stage(name: str, n_users: int, n_items: int | None, folder: Path, sae_scale: int = 8, cases: str = "auto",
          positions: str = "auto", sae_batch: int = 64) -> str:
    """One stage on the run of ``n_users`` users; what it made, in a few words."""
    from recprobe.data import DataSource
    from recprobe.data.stored import read_split
    from recprobe.runs import Run

    if name == "probe":  # reads the generated files as a user's probe reads theirs
        split = DataSource(dataset=str(folder.parent / f"data-{n_users}"), min_rating=None, core=3).load(progress=False)
        Run.create(folder, MeanPool(split, item_genres(n_users, n_items)), split, untrained_ok=True, overwrite=True)
        return f"{split.n_users:,} users, {split.n_items:,} items, {len(split.train_items):,} train interactions"
    # every later stage reads the split the run stored, as a user's would
    run = Run.open(folder, target=MeanPool(read_split(folder / "split", "probe"), item_genres(n_users, n_items)))
    if name == "capture":
        store = run.capture(progress=False, positions=positions)
        return f"{store.n_rows('train'):,} train vectors"
    if name == "train-sae":
        metrics = run.train_sae(scale=sae_scale, k=8, epochs=1, batch_size=sae_batch, progress=False)
        return f"FVU {metrics['after']['reconstruction_train']['fvu']:.3f}"
    if name == "interpret":
        summary = run.interpret(progress=False, cases=cases)
        return f"{summary['n_cases']:,} {summary['cases']} cases, {summary['concepts']['C>=0.8']} concepts at C >= 0.8"
    if name == "steer":
        return f"Table 7 on {len(run.steering().table7()['latents'])} latents"
    if name == "debias-sweep":
        return f"{len(run.debias_sweep()['rows'])} rows"
    run.report()
    return "report written"


def fitted_exponent(sizes: list[int], values: list[float]) -> float:
    """The slope of log(value) against log(size), least squares (NaN from one size)."""
    if len(set(sizes)) < 2:
        return float("nan")
    x, y = np.log(np.asarray(sizes, dtype=float)), np.log(np.maximum(np.asarray(values, dtype=float), 1e-9))
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three small sizes (1,000, 2,000, 4,000 users)")
    parser.add_argument("--sizes", default="20000,100000,1000000")
    parser.add_argument("--items", type=int, help="a fixed catalog size (default: a fifth of the users, at least 500)")
    parser.add_argument("--sae-scale", type=int, default=8, help="SAE latents per dimension (64 dimensions)")
    parser.add_argument("--sae-batch", type=int, default=64, help="the SAE's batch size")
    parser.add_argument("--positions", default="auto", help="capture's positions: auto, last or all")
    parser.add_argument("--stages", default=",".join(STAGES), help="the stages to run, in order")
    parser.add_argument("--cases", default="auto", help="interpret's cases: auto, test or all")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/recprobe-scale"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--stage", choices=STAGES, help="run one stage in this process (used by the driver)")
    parser.add_argument("--users", type=int, help="with --stage: the size")
    args = parser.parse_args()
    if args.stage:
        torch.set_num_threads(2)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        what = stage(args.stage, args.users, args.items, args.folder / f"users-{args.users}", args.sae_scale, args.cases,
                     args.positions, args.sae_batch)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"seconds": time.perf_counter() - started, "peak_gb": peak / 2**20,
                          "base_gb": baseline / 2**20, "what": what}))
        return
    sizes = [1000, 2000, 4000] if args.quick else [int(s) for s in args.sizes.split(",")]
    stages = [name.strip() for name in args.stages.split(",")]
    found: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "peak_gb": [], "above_gb": []} for name in stages}
    for users in sizes:
        if "probe" in stages:
            started = time.perf_counter()
            write_synthetic(users, args.folder / f"data-{users}", args.items)
            print(f"{users:>9,} users  generated in {time.perf_counter() - started:.1f} s (the benchmark's own, not a stage)",
                  flush=True)
        for name in stages:
            items = ["--items", str(args.items)] if args.items else []
            done = subprocess.run([sys.executable, __file__, "--stage", name, "--users", str(users), "--folder",
                                   str(args.folder), "--sae-scale", str(args.sae_scale), "--cases", args.cases,
                                   "--positions", args.positions, "--sae-batch", str(args.sae_batch), *items],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name} at {users:,} users failed:\n{done.stderr[-3000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            found[name]["seconds"].append(row["seconds"])
            found[name]["peak_gb"].append(row["peak_gb"])
            found[name]["above_gb"].append(row["peak_gb"] - row["base_gb"])
            print(f"{users:>9,} users  {name:<13} {row['seconds']:8.1f} s  peak RSS {row['peak_gb']:5.2f} GiB  {row['what']}",
                  flush=True)
    print(f"\n{'stage':<13} {'time exponent':>13} {'RSS exponent':>12} {'peak RSS at the largest':>24}")
    result = {"sizes": sizes, "stages": {}}
    for name, values in found.items():
        exponent, rss = fitted_exponent(sizes, values["seconds"]), fitted_exponent(sizes, values["above_gb"])
        result["stages"][name] = {"exponent": round(exponent, 3), "rss_exponent": round(rss, 3),
                                  "peak_rss_gb": round(values["peak_gb"][-1], 3), "seconds": values["seconds"]}
        print(f"{name:<13} {exponent:13.2f} {rss:12.2f} {values['peak_gb'][-1]:20.2f} GiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
