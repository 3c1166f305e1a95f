"""Built-in recommenders (BPRMF, LightGCN, SASRec, TiMiRec), their trainer and their run folder."""

from recprobe.models.base import Recommender
from recprobe.models.checkpoint import load_recommender, save_recommender
from recprobe.models.evaluate import evaluate_model
from recprobe.models.registry import MODELS, build_model, model_class
from recprobe.models.train import FitResult, TrainConfig, fit
from recprobe.target import Batch

__all__ = [
    "MODELS", "Batch", "FitResult", "Recommender", "TrainConfig", "build_model", "evaluate_model", "fit",
    "load_recommender", "model_class", "save_recommender",
]
