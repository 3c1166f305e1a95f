"""RecBole 1.2.1 checkpoints as ProbeTargets (extra ``recbole``). Importing this module does not import RecBole."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from recprobe.adapters.base import Adapter, AdapterOptions
from recprobe.hookspecs import hookimpl


class RecBoleOptions(AdapterOptions):
    checkpoint: Path = Field(description="A .pth file saved by RecBole's Trainer (saved=True).")
    trust_checkpoint: bool = Field(
        False, description="RecBole checkpoints are pickles, which can run code when loaded: set only for files you trust."
    )
    data_path: Path | None = Field(
        None, description="Folder holding the dataset's folder, when it moved since training (RecBole's data_path)."
    )
    site: str | None = Field(
        None, description="Module(s) whose outputs are the user representation, comma-separated (e.g. "
                          "user_mf_embedding,user_mlp_embedding for NeuMF); default: the model's own reading."
    )


def _load(options: RecBoleOptions):
    from recprobe.adapters.recbole.target import load_recbole

    return load_recbole(options.checkpoint, trust_checkpoint=options.trust_checkpoint, data_path=options.data_path,
                        site=options.site)


@hookimpl
def register_adapters(register) -> None:
    register(Adapter(
        "recbole", "a RecBole 1.2.1 checkpoint of any general or sequential model with a user representation "
        "(read inside the model's own scoring; site=MODULE to choose it)", RecBoleOptions, _load,
    ))
