"""recprobe: open up recommendation models.

Probe the user representation a recommender builds right before its prediction layer, train a TopK
sparse autoencoder on it, name its latents, and steer the model with them.
"""

from recprobe.adapters.torch import LastValid, Position, wrap
from recprobe.batches import phase_batches
from recprobe.data import Catalog, Split, load_dataset
from recprobe.errors import RecprobeError
from recprobe.models import build_model
from recprobe.plugins import adapters, load_target
from recprobe.ranking.metrics import evaluate_ranking
from recprobe.runs import Run
from recprobe.sae import SAEConfig, TopKSAE
from recprobe.target import Batch, ProbeTarget
from recprobe.version import __version__

__all__ = [
    "Batch",
    "Catalog",
    "LastValid",
    "Position",
    "ProbeTarget",
    "RecprobeError",
    "Run",
    "SAEConfig",
    "Split",
    "TopKSAE",
    "adapters",
    "build_model",
    "evaluate_ranking",
    "load_dataset",
    "load_target",
    "phase_batches",
    "wrap",
    "__version__",
]
