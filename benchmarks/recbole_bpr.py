"""RecBole 1.2.1's BPR against recprobe's BPRMF on exactly the same MovieLens-100K split.

    python benchmarks/recbole_bpr.py [--data-dir ../shared/data] [--threads 2]

Exports recprobe's split to RecBole atomic benchmark files, trains RecBole's BPR (its Trainer, full-sort
evaluation, early stop on valid NDCG@10 with patience 10) and recprobe's BPRMF (same embedding size,
learning rate, batch size and patience), and prints test HR@10 / NDCG@10 and the wall-time ratio of the two.
Both count data preparation, training with per-epoch validation, and the final test evaluation.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import torch

from recprobe.adapters.recbole.shims import import_recbole
from recprobe.data import export_recbole, load_dataset
from recprobe.models import TrainConfig, build_model, evaluate_model, fit


def run_recbole(data_path: str, dataset: str, seed: int, batch_size: int, checkpoint_dir: str) -> tuple[dict, float]:
    import_recbole()
    import warnings

    warnings.filterwarnings("ignore")  # RecBole on pandas 3 / torch 2.13 warns a lot; none changes results here
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import BPR
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    started = time.perf_counter()
    config = Config(model="BPR", dataset=dataset, config_dict={
        "data_path": data_path, "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
        "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
        "epochs": 500, "stopping_step": 10, "learning_rate": 1e-3, "embedding_size": 64,
        "train_batch_size": batch_size, "use_gpu": False, "seed": seed, "show_progress": False, "checkpoint_dir": checkpoint_dir,
        "state": "WARNING",
    })
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.WARNING)
    data = create_dataset(config)
    train, valid, test = data_preparation(config, data)
    model = BPR(config, train.dataset)
    trainer = Trainer(config, model)
    trainer.fit(train, valid, saved=True, show_progress=False, verbose=False)
    # RecBole's own reload uses torch.load's old default (weights_only=False); load the best weights here
    # from the file it has just written (trusted: ours).
    checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    return {"HR@10": float(result["hit@10"]), "NDCG@10": float(result["ndcg@10"])}, time.perf_counter() - started


def run_recprobe(dataset: str, data_dir: str | None, seed: int, batch_size: int) -> tuple[dict, float]:
    started = time.perf_counter()
    split = load_dataset(dataset, data_dir)
    model = build_model("bprmf", split, seed=seed)
    fit(model, split, TrainConfig(seed=seed, batch_size=batch_size), progress=False)
    result = evaluate_model(model, split, "test", ks=(10,))
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=2048, help="for both (RecBole's default: 2048)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_dataset(args.dataset, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        name = f"recprobe-{split.name}"  # not a name RecBole would replace by its bundled copy
        export_recbole(split, tmp, name)
        ours, ours_s = run_recprobe(args.dataset, args.data_dir, args.seed, args.batch_size)
        print(f"recprobe BPRMF: {ours} in {ours_s:.1f} s", flush=True)
        theirs, theirs_s = run_recbole(tmp, name, args.seed, args.batch_size, tmp)
    print(f"{split.name}: {split.n_users} users, {split.n_items} items, {len(split.train_items)} train; "
          f"{args.threads} threads, batch size {args.batch_size}")
    print(f"{'':18s}{'HR@10':>8s}{'NDCG@10':>9s}{'wall s':>9s}")
    print(f"{'RecBole 1.2.1 BPR':18s}{theirs['HR@10']:8.4f}{theirs['NDCG@10']:9.4f}{theirs_s:9.1f}")
    print(f"{'recprobe BPRMF':18s}{ours['HR@10']:8.4f}{ours['NDCG@10']:9.4f}{ours_s:9.1f}")
    print(f"NDCG@10 ours/RecBole = {ours['NDCG@10'] / theirs['NDCG@10']:.3f}; "
          f"wall time ours/RecBole = {ours_s / theirs_s:.3f}")


if __name__ == "__main__":
    main()
