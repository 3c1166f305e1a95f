"""What the JSON files of a run must hold, as pydantic models, and one reader that checks a file against its model.

A file that is valid JSON of the wrong shape (``{}``, ``[]``, ``null``, a field of the wrong type, a shard path
that leaves its folder) is one error naming the file, the field and the command that rebuilds it, never a
``KeyError`` later. The models accept extra fields, so a newer recprobe's files still read.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recprobe.errors import RunFolderError
from recprobe.io import read_json


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class TargetRecord(Record):
    adapter: str
    options: dict[str, Any]
    name: str
    d_model: int = Field(ge=1)
    n_items: int = Field(ge=1)
    max_history: int = Field(ge=0)
    fingerprint: str


class DatasetRecord(Record):
    name: str
    fingerprint: str
    n_users: int = Field(ge=1)
    n_items: int = Field(ge=1)


class RunRecord(Record):
    """``run.json``."""

    format: int
    target: TargetRecord
    dataset: DatasetRecord
    command: str
    untrained_ok: bool
    ranking_check: dict[str, int | float] = {}  # HR@10 and the like; a run written before it existed has none


class TrainedOn(Record):
    name: str
    fingerprint: str
    source: str | None = None
    min_rating: float | None = None
    core: int = Field(5, ge=3)


class RecommenderConfig(Record):
    """``recommender/config.json``: the built-in model, its options and training, and the data it was fit on."""

    model: str
    options: dict[str, Any] = Field(alias="model_config")  # pydantic keeps the name model_config for itself
    train_config: dict[str, Any]
    dataset: TrainedOn


class ConceptRecord(Record):
    """A line of ``concepts.jsonl``: one latent's record."""

    model_config = ConfigDict(extra="allow", strict=True)
    latent: int = Field(ge=0)
    status: str
    confidence: float | None = Field(None, ge=0, le=1)
    description: str | None = None


class Shard(Record):
    file: str
    rows: int = Field(ge=0)

    @field_validator("file")
    @classmethod
    def inside_the_store(cls, file: str) -> str:
        path = PurePosixPath(file)
        if path.name != file or file in (".", "..") or "\\" in file:
            raise ValueError(f"a shard is a file name inside the store, got {file!r}")
        return file


class SplitShards(Record):
    rows: int = Field(ge=0)
    shards: list[Shard]

    @model_validator(mode="after")
    def rows_are_its_shards(self) -> SplitShards:
        found = sum(shard.rows for shard in self.shards)
        if self.rows != found:
            raise ValueError(f"rows {self.rows} is not the sum of its shards' rows, {found}")
        return self


class StoreIndex(Record):
    """``activations/index.json``."""

    d: int = Field(ge=1)
    provenance: dict[str, Any]
    splits: dict[str, SplitShards]
    content: str


class Reconstruction(Record):
    fvu: float
    l0: float
    dead_fraction: float
    dense_fraction: float


class Faithfulness(Record):
    original_test: dict[str, float | None]
    spliced_test: dict[str, float | None]
    splice_test: dict[str, float | None] = {}  # SAEs trained before it was measured have none


class Measured(Faithfulness):
    reconstruction_train: Reconstruction


class SaeMetrics(Record):
    """``sae/metrics.json``: what train-sae measured before and after training."""

    after: Measured
    before: Faithfulness
    best_epoch: int


class ConceptSummary(Record):
    """``concepts/summary.json``: interpret's counts."""

    concepts: dict[str, int]
    interpreted: int = Field(ge=0)
    insufficient: int = Field(ge=0)
    n_cases: int = Field(ge=0)
    users: int = Field(ge=0)
    intra_similarity: float | None
    inter_similarity: float | None


class ConceptSettings(Record):
    """``concepts/settings.json``: how a concepts folder was made (older folders lack ``basis`` and ``cases``)."""

    basis: str = "sae"
    cases: str = "test"
    describer: str
    verifier: str
    n: int = Field(ge=1)
    seed: int = Field(ge=0)
    made_from: dict[str, str]


class AttributeHeatmap(Record):
    latents: list[int]
    labels: list[str]
    auroc: list[list[float | None]]


class AttributeTable(Record):
    """``concepts/attributes.json``: every basis's best AUROC per attribute value (only the counts when no label
    was frequent enough to score)."""

    cases: int = Field(ge=0)
    labels: int = Field(ge=0)
    bases: list[str] = []
    mean_best_auroc: dict[str, dict[str, float | None]] = {}
    heatmap: AttributeHeatmap | None = None


class StoredCatalog(Record):
    """``split/catalog.json``: each item's title and attributes."""

    titles: list[str]
    attributes: list[dict[str, list[str]]]
    has_titles: bool


class Result(Record):
    """A result file that records what it was made from (steering, de-biasing, compare...)."""

    made_from: dict[str, str]


class Table7Row(Record):
    latent: int = Field(ge=0)


class Table7Result(Result):
    """``steering/table7.json``."""

    latents: list[Table7Row]
    skipped: list[dict[str, Any]]


def read_checked(path: Path, model: type[BaseModel], rebuild: str) -> Any:
    """The JSON at ``path`` once it fits ``model``, as the plain dicts and lists it holds (numbers written as
    strings read as numbers); else one error naming the file, the first field at fault and ``rebuild``, the
    command that writes it again."""
    data = read_json(path)  # not JSON at all: read_json's own error
    try:
        return model.model_validate(data).model_dump(by_alias=True)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the whole file"
        raise RunFolderError(f"{path} is not what recprobe writes there ({where}: {first['msg']}); rebuild it with "
                             f"`{rebuild}`") from None
