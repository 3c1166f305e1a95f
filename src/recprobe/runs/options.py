"""Each stage's options as one pydantic model: the one place their defaults, checks and help are written.

The stage functions take them (``capture_run(run, CaptureOptions(...))``, or the fields by name), and the CLI
reads each flag's help and default from them, so a flag, its default and the library's default cannot drift
apart. A value the model refuses reaches the user as one line naming the flag (``recprobe.cli_errors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recprobe.activations.capture import SPLITS, Positions
from recprobe.concepts.budget import DEFAULT_RESERVOIR, DEFAULT_TOP, CaseBudget, default_budget
from recprobe.concepts.cases import CASE_KINDS, LevelMode
from recprobe.concepts.interpret import Describer, Verifier
from recprobe.errors import ConfigError
from recprobe.runs.layout import BASES
from recprobe.steering.debias import DEBIAS_LATENTS, SELECTIONS
from recprobe.steering.sweep import N_LATENTS, SEEDS, STRENGTHS, strengths_problem


class StageOptions(BaseModel):
    """A stage's options; a field ``name`` is the flag ``--name`` with dashes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    FLAGS: ClassVar[dict[str, str]] = {}  # a field whose flag is not its own name

    @classmethod
    def flag(cls, field: str) -> str:
        return cls.FLAGS.get(field, "--" + field.replace("_", "-"))


Options = TypeVar("Options", bound=StageOptions)


class CaptureOptions(StageOptions):
    """``recprobe capture``."""

    FLAGS: ClassVar[dict[str, str]] = {"parts": "--splits"}

    parts: tuple[Literal[SPLITS], ...] = Field(  # type: ignore[valid-type]
        SPLITS, description="Comma-separated: train, dev, test.")
    positions: Positions = Field(
        "auto", description="auto: every train position for sequential models, the last for general ones; last: one "
        "row per user; all: every train position.")
    batch_size: int = Field(1024, ge=1, description="Users probed at once.")


class InterpretOptions(StageOptions):
    """``recprobe interpret``."""

    n: int = Field(5, ge=1, description="Cases per set: N construction, N verification, N non-activated.")
    latents: tuple[int, ...] | None = Field(None, description="Latents to interpret, e.g. 0-99 or 3,17 (default: all).")
    level_mode: LevelMode = Field("max", description="max (per latent) or quantile (global deciles).")
    describer: Describer = Field("metadata", description="metadata (catalog enrichment, no LLM) or llm.")
    verifier: Verifier = Field(
        "embedding", description="embedding (MiniLM), llm (generated levels) or llm-likelihood.")
    llm: str = Field("smollm2", description="smollm2, hf:<id or path>, gguf:<file>, openai:<base url>, fake.")
    basis: Literal[BASES] = Field(  # type: ignore[valid-type]
        "sae", description="sae (its latents), raw (the raw dimensions, ReLU), raw-both (both signs), untrained (the "
        "SAE at initialisation), frozen-decoder or frozen-encoder (the SAE trained with that part kept at "
        "initialisation; trained here the first time).")
    cases: Literal[CASE_KINDS] = Field(  # type: ignore[valid-type]
        "auto", description="test (one case per test user, the paper's), all (every position of a sequential "
        "target's sequences) or auto (test where it scores 90% of latents, else all).")
    folder: str | None = Field(None, description="Folder inside RUN for the results (default: concepts, or concepts-BASIS).")
    seed: int = Field(0, description="Seeds the sampling of cases.")
    overwrite: bool = Field(
        False, description="Start the concepts folder over (it was made with other settings, another SAE or other cases).")
    max_cases: int = Field(
        DEFAULT_RESERVOIR, ge=1, description="Past this many cases, keep a uniform sample of this many (beside each "
        "latent's --top-cases strongest), so memory stays bounded.")
    top_cases: int | None = Field(
        None, ge=1, description=f"Each latent's strongest cases (one per user) always kept (default: {DEFAULT_TOP}, or "
        "2N when larger; at least 2N).")

    @field_validator("top_cases")
    @classmethod
    def _at_least_2n(cls, top: int | None, info) -> int | None:
        n = info.data.get("n", 5)
        if top is not None and top < 2 * n:
            raise ValueError(f"at least 2N = {2 * n} (a latent's construction and verification cases) are kept")
        return top

    @property
    def case_budget(self) -> CaseBudget:
        return CaseBudget(top=self.top_cases or default_budget(self.n).top, reservoir=self.max_cases)


class DebiasOptions(StageOptions):
    """``recprobe debias``: rescale the latents that track predicted popularity."""

    FLAGS: ClassVar[dict[str, str]] = {"n_latents": "--latents"}
    n_latents: int | None = Field(
        None, ge=1, description=f"How many latents of each kind (niche, popular) to rescale (default {DEBIAS_LATENTS}, "
        "at most the SAE's).")
    niche_scale: float = Field(2.0, allow_inf_nan=False,
                               description="Factor for the latents that fire with niche predictions.")
    popular_scale: float = Field(1.0, allow_inf_nan=False,
                                 description="Factor for those that fire with popular ones (0 ablates).")


class SweepOptions(StageOptions):
    """``recprobe debias --sweep``: every de-biasing method over a range of strengths."""

    FLAGS: ClassVar[dict[str, str]] = {"n_latents": "--latents", "selections": "--selection"}
    selections: tuple[Literal[SELECTIONS], ...] | None = Field(  # type: ignore[valid-type]
        None, description="The latent selection rule, spearman or cohens-d (default: both for a sequential model, "
        "spearman for a general one).")
    strengths: tuple[float, ...] = Field(
        STRENGTHS, description="SAE and random-latent strengths, in units of each latent's standard deviation.")
    n_latents: int | None = Field(None, ge=1, description=f"How many latents in all, largest |score| first (default "
                                  f"{N_LATENTS}, at most half those that fire on enough users, so the random control "
                                  "draws as many others).")
    seeds: int = Field(SEEDS, ge=1, description="Random-latent draws averaged at each strength (the control).")

    @field_validator("strengths")
    @classmethod
    def _finite_and_sorted(cls, strengths: tuple[float, ...]) -> tuple[float, ...]:
        if (problem := strengths_problem(strengths)) is not None:
            raise ValueError(problem)
        return tuple(sorted(set(strengths)))


def stage_options(kind: type[Options], options: Options | Mapping[str, Any] | None, fields: dict[str, Any]) -> Options:
    """``options`` (a ``kind``, or a dict of its fields), or a ``kind`` made from its fields given by name (a stage
    function takes either, not both); a value a field refuses is one ConfigError naming the field."""
    if options is not None and fields:
        raise ConfigError(f"give {kind.__name__} or its fields by name, not both (also got {', '.join(sorted(fields))})")
    if isinstance(options, kind):
        return options
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"give a {kind.__name__} (or its fields by name), got {type(options).__name__}")
    return built(kind, **(fields if options is None else options))


def built(kind: type[BaseModel], **fields: Any):
    """``kind(**fields)``, or one ConfigError naming the field a value does not suit (for the Python API; the
    CLI names its flags instead)."""
    try:
        return kind(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a rule between fields: its message names them
            raise ConfigError(f"{kind.__name__}: {message}") from None
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{kind.__name__}.{where}: {message} (got {first.get('input')!r})") from None


def option_flag(model: str, field: str) -> str | None:
    """The CLI flag of a stage option's ``field``, given its model's name; None for any other model."""
    kinds = {kind.__name__: kind for kind in StageOptions.__subclasses__()}
    return kinds[model].flag(field) if model in kinds else None
