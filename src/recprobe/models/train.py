"""One trainer for every built-in model: sampled negatives, Adam, early stop on dev NDCG@10."""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import Progress, TextColumn

from recprobe.data.split import Split, last_window
from recprobe.device import Device
from recprobe.models.base import LossKind, Recommender
from recprobe.models.evaluate import evaluate_model
from recprobe.progress import stage_bar
from recprobe.target import Batch

EARLY_STOP_METRIC = "NDCG@10"


class TrainConfig(BaseModel):
    """How a recommender is trained. ``None`` takes the model's own default (ReChorus' tuned value)."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(200, ge=1, description="Most epochs per stage; early stopping usually ends sooner.")
    patience: int = Field(10, ge=1, description="Epochs without a better dev NDCG@10 before stopping.")
    batch_size: int = Field(256, ge=1, description="Training samples per step.")
    lr: float | None = Field(None, gt=0, allow_inf_nan=False, description="Adam learning rate.")
    l2: float | None = Field(None, ge=0, allow_inf_nan=False, description="Adam weight decay.")
    loss: LossKind | None = Field(None, description="'bpr' (one sampled negative) or 'ce' (full softmax).")
    seed: int = Field(0, ge=0, description="Seeds initialisation, sampling and shuffling.")
    device: Device = Field("cpu", description="torch device, e.g. 'cpu' or 'cuda'.")
    eval_batch_size: int = Field(1024, ge=1, description="Users scored at once when evaluating.")

    def resolved(self, model: type[Recommender] | Recommender) -> TrainConfig:
        """This config with every None replaced by the model's default."""
        return self.model_copy(
            update={
                "lr": self.lr if self.lr is not None else model.default_lr,
                "l2": self.l2 if self.l2 is not None else model.default_l2,
                "loss": self.loss or model.default_loss,
            }
        )


class TrainingSamples:
    """Every train interaction is a sample; for sequential models its history is the up to
    ``max_history`` items before it (interactions with no history are skipped, as in ReChorus)."""

    def __init__(self, split: Split, max_history: int):
        self.split, self.max_history = split, max_history
        flat = np.arange(len(split.train_items))
        if max_history:
            flat = flat[flat > split.train_offsets[split.train_users]]
        self.index = flat
        n = split.n_items
        self.seen_keys = np.unique(split.train_users * n + split.train_items)

    def __len__(self) -> int:
        return len(self.index)

    def negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item per user drawn uniformly from the items the user has not interacted with in train."""
        n = self.split.n_items
        negatives = rng.integers(0, n, size=len(users))
        for _ in range(100):
            keys = users * n + negatives
            pos = np.minimum(np.searchsorted(self.seen_keys, keys), len(self.seen_keys) - 1)
            clash = self.seen_keys[pos] == keys
            if not clash.any():
                break
            negatives[clash] = rng.integers(0, n, size=int(clash.sum()))
        return negatives

    def epoch(self, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[Batch, torch.Tensor, torch.Tensor]]:
        split = self.split
        order = rng.permutation(self.index)
        users_all = split.train_users[order]
        negatives_all = self.negatives(users_all, rng)
        for start in range(0, len(order), batch_size):
            flat = order[start : start + batch_size]
            users = users_all[start : start + batch_size]
            if self.max_history:
                history, lengths = last_window(split.train_offsets, split.train_items, users, flat,
                                               self.max_history, split.pad_item)
            else:
                history, lengths = np.empty((len(flat), 0), np.int64), np.zeros(len(flat), np.int64)
            batch = Batch(torch.from_numpy(users), torch.from_numpy(history), torch.from_numpy(lengths))
            yield (batch, torch.from_numpy(split.train_items[flat]),
                   torch.from_numpy(negatives_all[start : start + batch_size]))


@dataclass
class FitResult:
    best_epoch: dict[str, int]  # per stage
    epochs_run: dict[str, int]
    seconds_per_epoch: float  # training time only, median over epochs
    seconds: float  # wall time of the whole fit, evaluation included
    history: list[dict] = field(default_factory=list)  # per epoch: stage, epoch, loss, dev NDCG@10, seconds


def fit(model: Recommender, split: Split, config: TrainConfig, *, progress: bool = True) -> FitResult:
    """Train ``model`` on ``split``'s train interactions, stage by stage, keeping the weights with the
    best dev NDCG@10 of each stage. Deterministic for a seed on CPU."""
    config = config.resolved(model)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    model.to(device)
    samples = TrainingSamples(split, model.max_history if model.sequential else 0)
    n_steps = -(-len(samples) // config.batch_size)
    result = FitResult({}, {}, 0.0, 0.0)
    started, train_times = time.perf_counter(), []
    with _progress(progress) as bar:
        for stage in model.stages():
            model.set_stage(stage)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.l2)
            best_score, best_state, best_epoch, waited = -1.0, None, 0, 0
            label = f"{model.name}" + (f" [{stage}]" if len(model.stages()) > 1 else "")
            epochs = bar.add_task(label, total=config.epochs, info="")
            for epoch in range(1, config.epochs + 1):
                steps = bar.add_task("  batches", total=n_steps, info="")
                model.train()
                t0, total_loss = time.perf_counter(), 0.0
                for batch, pos, neg in samples.epoch(config.batch_size, rng):
                    loss = model.loss(batch.to(device), pos.to(device), neg.to(device), config.loss)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total_loss += loss.item()
                    bar.advance(steps)
                train_times.append(time.perf_counter() - t0)
                bar.remove_task(steps)
                dev = evaluate_model(model, split, "dev", ks=(10,), batch_size=config.eval_batch_size, device=device)
                score = dev[EARLY_STOP_METRIC]
                result.history.append({"stage": stage, "epoch": epoch, "loss": total_loss / n_steps,
                                       f"dev {EARLY_STOP_METRIC}": score, "seconds": train_times[-1]})
                if score > best_score:
                    best_score, best_epoch, waited = score, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    waited += 1
                info = f"loss {total_loss / n_steps:.4f}  dev NDCG@10 {score:.4f} (best {best_score:.4f} @ {best_epoch})"
                bar.update(epochs, advance=1, info=info)
                if progress and not bar.console.is_terminal:  # logs and CI get one line per epoch
                    bar.console.print(f"{label} epoch {epoch}: {info}  [{train_times[-1]:.1f} s]")
                if waited >= config.patience:
                    break
            model.load_state_dict(best_state)
            result.best_epoch[stage], result.epochs_run[stage] = best_epoch, epoch
    model.eval()
    result.seconds_per_epoch = float(np.median(train_times))
    result.seconds = time.perf_counter() - started
    return result


def _progress(enabled: bool) -> Progress:
    """The epochs' bar; it stays on a terminal, and leaves logs (one line per epoch already) without a last frame."""
    return stage_bar(enabled, info=TextColumn("{task.fields[info]}"), transient=not sys.stdout.isatty())
