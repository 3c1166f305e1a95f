"""The TopK sparse autoencoder: config, model, trainer and files."""

from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.io import load_sae, save_sae
from recprobe.sae.topk import SAEOutput, TopKSAE
from recprobe.sae.train import SAEFitResult, train_sae

__all__ = ["SAEConfig", "SAEFitResult", "SAEOutput", "SAETrainConfig", "TopKSAE", "load_sae", "save_sae", "train_sae"]
