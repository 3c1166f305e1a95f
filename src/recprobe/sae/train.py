"""Train a TopK SAE on an ActivationStore: AuxK on dead latents, unit-norm decoder rows, selection on dev FVU."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recprobe.evaluate import reconstruction_metrics
from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.topk import TopKSAE, geometric_median
from recprobe.store import ActivationStore

INIT_SAMPLE = 16_384


@dataclass
class SAEFitResult:
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


def initial_b_dec(store: ActivationStore, config: SAEConfig) -> torch.Tensor:
    """Geometric median (or mean) of up to INIT_SAMPLE train vectors, read in store order."""
    parts, n = [], 0
    for x in store.batches("train", INIT_SAMPLE):
        parts.append(x)
        n += len(x)
        if n >= INIT_SAMPLE:
            break
    sample = torch.cat(parts)[:INIT_SAMPLE]
    return geometric_median(sample) if config.init == "geometric_median" else sample.mean(0)


def initial_sae(store: ActivationStore, config: SAEConfig) -> TopKSAE:
    """The SAE as training starts: seeded weights, b_dec at the train activations' centre."""
    sae = TopKSAE(config)
    with torch.no_grad():
        sae.b_dec.copy_(initial_b_dec(store, config))
    return sae


class DeadLatents:
    """Counts the training vectors seen since each latent last fired (a zero value picked by TopK is not a fire)."""

    def __init__(self, n_latents: int, window: int):
        self.window = window
        self.since_fired = torch.zeros(n_latents, dtype=torch.long)

    def update(self, values: torch.Tensor, indices: torch.Tensor) -> None:
        self.since_fired += len(values)
        self.since_fired.index_fill_(0, indices.masked_select(values > 0).cpu(), 0)

    @property
    def mask(self) -> torch.Tensor:
        return self.since_fired >= self.window

    @property
    def fraction(self) -> float:
        return float(self.mask.float().mean())


def train_sae(store: ActivationStore, config: SAEConfig, train: SAETrainConfig | None = None, *,
              progress: bool = True) -> tuple[TopKSAE, SAEFitResult]:
    """Train on the store's ``train`` rows and keep the epoch with the lowest ``dev`` FVU (train FVU when the
    store has no dev rows). Deterministic for ``config.seed`` on one device."""
    train = train or SAETrainConfig()
    if config.d_in != store.d:
        raise ValueError(f"SAEConfig.d_in is {config.d_in} but the stored activations are {store.d} wide")
    device = torch.device(train.device)
    sae = initial_sae(store, config).to(device)
    optimiser = torch.optim.Adam(sae.parameters(), lr=train.lr, fused=True)  # no weight decay on an SAE
    n_train = store.n_rows("train")
    dead = DeadLatents(config.n_latents, config.dead_window or n_train)
    select_on = "dev" if "dev" in store.splits() else "train"
    generator = torch.Generator().manual_seed(config.seed)
    result, best_fvu, best_state = SAEFitResult(best_epoch=0), float("inf"), None
    started = time.perf_counter()
    columns = (TextColumn("SAE epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("FVU {task.fields[fvu]:.4f}  L0 {task.fields[l0]:.1f}  dead {task.fields[dead]:.1%}"),
               TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("sae", total=n_train, epoch=1, fvu=float("nan"), l0=0.0, dead=0.0)
        for epoch in range(1, train.epochs_for(n_train) + 1):
            bar.reset(task, total=n_train, epoch=epoch, fvu=float("nan"), l0=0.0, dead=dead.fraction)
            sae.train()
            sse, l0, seen, total, square = 0.0, 0.0, 0, torch.zeros(store.d, dtype=torch.float64), 0.0
            for x in store.batches("train", train.batch_size, generator):
                x = x.to(device)
                out = sae(x, dead.mask.to(device))
                mse = (x - out.x_hat).pow(2).sum(-1).mean()
                loss = mse + config.alpha * sae.aux_loss(x, out)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                sae.remove_parallel_gradient()
                optimiser.step()
                sae.normalize_decoder()
                dead.update(out.values.detach(), out.indices)
                sse += mse.item() * len(x)
                l0 += float((out.values > 0).sum())
                total += x.sum(0).double().cpu()
                square += float(x.pow(2).sum())
                seen += len(x)
                bar.update(task, advance=len(x), fvu=sse / max(square - float(total.pow(2).sum()) / seen, 1e-12),
                           l0=l0 / seen, dead=dead.fraction)
            selected = reconstruction_metrics(sae, store, select_on, device=device)
            train_fvu = sse / max(square - float(total.pow(2).sum()) / seen, 1e-12)
            result.history.append({"epoch": epoch, "train_fvu": train_fvu,
                                   f"{select_on}_fvu": selected["fvu"], "l0": selected["l0"],
                                   "dead_fraction": dead.fraction})
            if selected["fvu"] < best_fvu:
                best_fvu, best_state, result.best_epoch = selected["fvu"], copy.deepcopy(sae.state_dict()), epoch
    sae.load_state_dict(best_state)
    result.train_seconds = time.perf_counter() - started
    return sae.cpu().eval(), result
