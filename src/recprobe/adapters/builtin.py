"""The four built-in recommenders, registered through the same public hook a third-party plugin uses."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from recprobe.adapters.base import Adapter, AdapterOptions
from recprobe.errors import RecprobeError
from recprobe.hookspecs import hookimpl
from recprobe.models import MODELS, Recommender, load_recommender


class RunOptions(AdapterOptions):
    run: Path = Field(description="Run folder written by `recprobe fit` (holds recommender/).")


def _loader(model_name: str):
    def load(options: RunOptions) -> Recommender:
        model, _ = load_recommender(options.run)
        if model.name != model_name:
            raise RecprobeError(
                f"{options.run} holds a {model.name} model, not {model_name}; use the adapter {model.name!r}"
            )
        return model

    return load


@hookimpl
def register_adapters(register) -> None:
    for name, cls in MODELS.items():
        register(Adapter(name, f"built-in {cls.__name__} from a `recprobe fit` run folder", RunOptions, _loader(name)))
