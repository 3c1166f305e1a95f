"""Train a TopK SAE on an ActivationStore: AuxK on dead latents, unit-norm decoder rows, selection on dev FVU."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.progress import TextColumn

from recprobe.activations.store import ActivationStore
from recprobe.errors import ConfigError, RunFolderError
from recprobe.parallel import DataParallel
from recprobe.progress import stage_bar
from recprobe.sae.checkpoint import TrainingProgress, fingerprint, load_checkpoint, save_checkpoint
from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.faithfulness import reconstruction_metrics
from recprobe.sae.topk import TopKSAE, geometric_median

INIT_SAMPLE = 16_384
FIGURES_EVERY = 32  # steps between the progress bar's figures off the CPU (reading them waits for the device)


@dataclass
class SAEFitResult:
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    selected_on: str = "dev"  # the split whose FVU chose the epoch: "train" when the store has no dev rows


def init_sample(store: ActivationStore) -> torch.Tensor:
    """Up to INIT_SAMPLE train vectors, read in store order."""
    parts, n = [], 0
    for x in store.batches("train", INIT_SAMPLE):
        parts.append(x)
        n += len(x)
        if n >= INIT_SAMPLE:
            break
    return torch.cat(parts)[:INIT_SAMPLE]


@torch.no_grad()
def initial_sae(store: ActivationStore, config: SAEConfig) -> TopKSAE:
    """The SAE as training starts: seeded weights, b_dec at the train activations' centre, and for the
    thresholded architectures the threshold at which k latents fire per vector on average over the init sample
    (so the untrained control fires as sparsely as the trained SAE)."""
    sae = TopKSAE(config)
    sample = init_sample(store)
    sae.b_dec.copy_(geometric_median(sample) if config.init == "geometric_median" else sample.mean(0))
    if config.arch != "topk":
        pre = sae.pre_acts(sample).flatten()
        sae.threshold.fill_(pre.topk(min(len(sample) * config.k, pre.numel())).values[-1].clamp(min=0))
    return sae


class DeadLatents:
    """Counts the training vectors seen since each latent last fired (a zero value picked by TopK is not a fire),
    on the training device: no step waits for a GPU to hand its counts back."""

    def __init__(self, n_latents: int, window: int, device: torch.device):
        self.window = window
        self.since_fired = torch.zeros(n_latents, dtype=torch.long, device=device)

    def fired(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """[n_latents] bool: the latents that fired on these vectors."""
        if values.shape[-1] == len(self.since_fired):  # a dense code (the thresholded architectures)
            return (values > 0).any(0)
        counts = torch.zeros(len(self.since_fired), dtype=torch.int32, device=indices.device)
        return counts.index_add_(0, indices.flatten(), (values > 0).flatten().int()) > 0

    def update(self, fired: torch.Tensor, n_vectors: int) -> None:
        self.since_fired += n_vectors
        self.since_fired.masked_fill_(fired.to(self.since_fired.device), 0)

    @property
    def mask(self) -> torch.Tensor:
        return self.since_fired >= self.window

    @property
    def fraction(self) -> float:
        return float(self.mask.float().mean())


class RunningFit:
    """The epoch's running reconstruction sums behind the train FVU and L0, kept on the training device and
    written into ``state`` (a wait on a GPU) only by ``read``. The additions are a float sum's, in its order."""

    def __init__(self, state: TrainingProgress, total: torch.Tensor, device: torch.device):
        self.state = state
        self.sse = torch.tensor(state.sse, dtype=torch.float64, device=device)
        self.square = torch.tensor(state.square, dtype=torch.float64, device=device)
        self.l0 = torch.tensor(int(state.l0), dtype=torch.long, device=device)
        self.total = total.to(device)  # [d] float64: the sum of the vectors seen, for the variance around their mean

    def add(self, x: torch.Tensor, values: torch.Tensor, mse: torch.Tensor) -> None:
        self.sse += mse.double() * len(x)
        self.l0 += (values > 0).sum()
        self.total += x.sum(0).double()
        self.square += x.pow(2).sum().double()
        self.state.seen += len(x)

    def read(self) -> TrainingProgress:
        self.state.sse, self.state.square, self.state.l0 = float(self.sse), float(self.square), float(self.l0)
        return self.state

    def fvu(self) -> float:
        """The running FVU: squared error over the variance around the running mean."""
        state = self.read()
        variance = state.square - float(self.total.pow(2).sum()) / max(state.seen, 1)
        return state.sse / max(variance, 1e-12)

    def figures(self, dead: DeadLatents) -> dict[str, float]:
        return {"fvu": self.fvu(), "l0": self.state.l0 / max(self.state.seen, 1), "dead": dead.fraction}


def prediction_kl(x: torch.Tensor, x_hat: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Mean KL(softmax(x items^T) || softmax(x_hat items^T)): how far the reconstruction moves the item scores."""
    truth = torch.log_softmax(x @ items.T, dim=-1)
    return torch.nn.functional.kl_div(torch.log_softmax(x_hat @ items.T, dim=-1), truth, log_target=True,
                                      reduction="batchmean")


def train_sae(store: ActivationStore, config: SAEConfig, train: SAETrainConfig | None = None, *,
              progress: bool = True, checkpoint: str | Path | None = None,
              items: torch.Tensor | None = None) -> tuple[TopKSAE, SAEFitResult]:
    """Train on the store's ``train`` rows and keep the epoch with the lowest ``dev`` FVU (train FVU when the
    store has no dev rows). Deterministic for ``config.seed`` on one device. Inside a ``torch.distributed``
    process group, each rank trains on its slice of every batch (``recprobe.parallel``). With ``checkpoint``,
    the full training state is saved there every ``train.checkpoint_every`` steps and at each epoch's end, and
    a run started with the same settings over the same store resumes from it with identical results. With
    ``train.kl_weight`` > 0, ``items`` [n_items, d] (the target's item embeddings) score each vector and its
    reconstruction for the prediction-aware term."""
    train = train or SAETrainConfig()
    if train.kl_weight > 0 and (items is None or items.shape[-1] != store.d):
        width = "none" if items is None else f"{items.shape[-1]}-wide ones"
        raise ConfigError(f"--kl-weight needs the target's item embeddings as wide as its {store.d}-wide representation "
                          f"(it has {width}); train without --kl-weight")
    if config.d_in != store.d:
        raise ConfigError(f"the SAE reads {config.d_in}-wide vectors (d_in) but {store.folder} holds {store.d}-wide "
                          f"activations; use d_in={store.d}")
    n_train = store.n_rows("train")
    if n_train == 0:
        raise RunFolderError(f"{store.folder} holds no train activations; capture with --splits including train")
    device = torch.device(train.device)
    items = items.detach().float().to(device) if train.kl_weight > 0 else None
    parallel = DataParallel.current()
    shards_to = device if parallel.world == 1 else None  # under torchrun each rank moves its slice alone
    sae = initial_sae(store, config).to(device)
    trainable = sae.trainable_parameters()
    optimiser = torch.optim.Adam(trainable, lr=train.lr, fused=True)  # no weight decay on an SAE
    dead = DeadLatents(config.n_latents, config.dead_window or n_train, device)
    select_on = "dev" if "dev" in store.splits() else "train"
    generator = torch.Generator().manual_seed(config.seed)
    state, best_state, total = TrainingProgress(), None, torch.zeros(store.d, dtype=torch.float64)
    # encoder_scale joins the key only when set, so a checkpoint written before the field existed still resumes
    how = config.model_dump(exclude={"encoder_scale"} if config.encoder_scale == 1 else None)
    key = fingerprint(how, train.model_dump(exclude={"device", "checkpoint_every"}), store.index)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state, extra, best_state = load_checkpoint(checkpoint, key, sae, optimiser)
        dead.since_fired, total = extra["since_fired"].to(device), extra["total"]
        generator.set_state(extra["epoch_rng"])
    epoch_rng = generator.get_state()
    running = RunningFit(state, total, device)

    def save() -> None:
        if checkpoint is not None and parallel.main:
            save_checkpoint(checkpoint, key, running.read(), sae, optimiser,
                            {"since_fired": dead.since_fired.cpu(), "total": running.total.cpu(),
                             "epoch_rng": epoch_rng}, best_state)

    started, steps = time.perf_counter() - state.seconds, 0
    figures = TextColumn("FVU {task.fields[fvu]:.4f}  L0 {task.fields[l0]:.1f}  dead {task.fields[dead]:.1%}")
    with stage_bar(progress and parallel.main, info=figures) as bar:
        task = bar.add_task("SAE epoch 1", total=n_train, unit="vectors", fvu=float("nan"), l0=0.0, dead=0.0)
        while state.epoch <= train.epochs_for(n_train):
            bar.reset(task, total=n_train, completed=state.batches_done * train.batch_size,
                      description=f"SAE epoch {state.epoch}", fvu=float("nan"), l0=0.0, dead=dead.fraction)
            sae.train()
            for batch_index, x in enumerate(store.batches("train", train.batch_size, generator, device=shards_to)):
                if batch_index < state.batches_done:  # done before a restart: same order, skipped
                    continue
                mine = parallel.part(x).to(device)
                out = sae(mine, dead.mask)
                optimiser.zero_grad(set_to_none=False)
                if len(mine):
                    loss = sae.reconstruction_loss(mine, out)
                    if items is not None:
                        loss = loss + train.kl_weight * prediction_kl(mine, out.x_hat, items)
                    # weighted by this rank's share, the ranks' gradients sum to the global batch mean's
                    ((loss + config.alpha * sae.aux_loss(mine, out)) * (len(mine) / len(x))).backward()
                    mse = (mine - out.x_hat.detach()).pow(2).sum(-1).mean()
                else:  # a last batch smaller than the world: this rank adds nothing to the sum
                    mse = mine.new_zeros(())
                    for p in trainable:
                        p.grad = torch.zeros_like(p)
                parallel.sum_gradients(trainable)
                sae.remove_parallel_gradient()
                optimiser.step()
                sae.normalize_decoder()
                dead.update(parallel.fired_anywhere(dead.fired(out.values.detach(), out.indices)), len(x))
                state.batches_done += 1
                running.add(mine, out.values, mse)  # this rank's rows: the progress shown is rank 0's
                shown = progress and parallel.main and (device.type == "cpu" or state.batches_done % FIGURES_EVERY == 0)
                bar.update(task, advance=len(x), **(running.figures(dead) if shown else {}))
                steps += 1
                if steps % train.checkpoint_every == 0:
                    state.seconds = time.perf_counter() - started
                    save()
            selected = reconstruction_metrics(sae, store, select_on, device=device)
            state.history.append({"epoch": state.epoch, "train_fvu": running.fvu(),
                                  f"{select_on}_fvu": selected["fvu"], "l0": selected["l0"],
                                  "dead_fraction": dead.fraction})
            if selected["fvu"] < state.best_fvu:
                state.best_fvu, state.best_epoch = selected["fvu"], state.epoch
                best_state = copy.deepcopy(sae.state_dict())
            state.new_epoch()
            running = RunningFit(state, torch.zeros_like(total), device)
            epoch_rng = generator.get_state()
            state.seconds = time.perf_counter() - started
            save()
    sae.load_state_dict(best_state)
    result = SAEFitResult(best_epoch=state.best_epoch, history=state.history,
                          train_seconds=time.perf_counter() - started, selected_on=select_on)
    return sae.cpu().eval(), result

