"""Wrap your own torch recommender: no change to its code, forward hooks do the probing.

    python examples/own_model.py [--data-dir ../shared/data]

GRURec below stands for your model (recprobe does not ship it). The ten lines under "Wrap it" are all the
user code recprobe needs; check_probe_target then proves that probing changes nothing.
"""

import sys

import torch
from torch import nn

import recprobe
from recprobe.testing import check_probe_target


class GRURec(nn.Module):
    """A GRU over the history; its projected last valid state scores every item."""

    def __init__(self, n_items: int, d: int = 32):
        super().__init__()
        self.items = nn.Embedding(n_items + 1, d, padding_idx=n_items)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.project = nn.Linear(d, d)  # the probing site: [B, L, d], one vector per step

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states = self.project(self.gru(self.items(history))[0])
        user = states[torch.arange(len(history)), lengths - 1]
        return user @ self.items.weight[:-1].T


# -- Wrap it -----------------------------------------------------------------------------------------------
split = recprobe.load_dataset("ml-100k", sys.argv[2] if sys.argv[1:2] == ["--data-dir"] else None)
model = GRURec(split.n_items).eval()  # train it as you usually do
target = recprobe.wrap(
    model, site="project", n_items=split.n_items, d_model=32, max_history=20,
    forward=lambda m, batch: m(batch.history, batch.lengths),
    position=recprobe.LastValid(),  # the representation is the last valid step of the sequence
)
batch = recprobe.phase_batches(split, "test", target.max_history)(torch.arange(256).numpy())
check_probe_target(target, batch)
# -----------------------------------------------------------------------------------------------------------

with torch.no_grad():
    reps = target.represent(batch)
    edited = target.score(torch.cat([reps[:, :16], torch.zeros_like(reps[:, 16:])], 1), batch)
moved = (edited.argmax(1) != target.predict(batch).argmax(1)).sum()
print(f"{target.name}: {tuple(reps.shape)} representations, probe check passed; "
      f"zeroing half the dimensions changes the top-1 item of {moved} of {len(batch)} users")
