"""The JSON shapes LLM outputs are constrained to (Outlines ignores numeric bounds, so levels are a Literal)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_DESCRIPTION = 160


class ConceptDescription(BaseModel):
    """What the activating cases have in common, as a short phrase."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)


class LevelPrediction(BaseModel):
    """How strongly a case shows the concept: 0 (not at all) to 10 (fully)."""

    model_config = ConfigDict(extra="forbid")
    level: Literal[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
