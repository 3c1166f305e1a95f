"""The TopK sparse autoencoder: config, model, trainer and files."""

from recprobe.sae.config import SAEConfig, SAETrainConfig
from recprobe.sae.hub import from_pretrained, push_to_hub
from recprobe.sae.io import load_sae, save_sae
from recprobe.sae.topk import SAEOutput, TopKSAE
from recprobe.sae.train import SAEFitResult, train_sae

__all__ = ["SAEConfig", "SAEFitResult", "SAEOutput", "SAETrainConfig", "TopKSAE", "from_pretrained", "load_sae",
           "push_to_hub", "save_sae", "train_sae"]
