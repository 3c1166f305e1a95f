"""The LLM describer: a system prompt, one one-shot example, and the latent's construction cases with levels."""

from __future__ import annotations

import re

import numpy as np

from recprobe.concepts.cases import CaseSet, LatentSample
from recprobe.concepts.llm import LLM
from recprobe.concepts.prompts import Prompts
from recprobe.concepts.schemas import ConceptDescription
from recprobe.concepts.texts import case_text
from recprobe.data.split import Catalog

DESCRIBE_TOKENS = 60


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class LLMDescriber:
    name = "llm"

    def __init__(self, llm: LLM, prompts: Prompts, domain: str, cases: CaseSet, catalog: Catalog, levels: np.ndarray):
        self.llm, self.prompts, self.domain = llm, prompts, domain
        self.cases, self.catalog, self.levels = cases, catalog, levels

    def describing_rows(self, latent: int, sample: LatentSample) -> list[int]:
        """The N construction cases, as the paper's prompt shows them."""
        return sample.construction

    def level(self, latent: int, row: int) -> int:
        return int(np.where(self.cases.indices[row] == latent, self.levels[row], 0).max())

    def repeats_example(self, description: str) -> bool:
        """Whether a description is the one-shot example's own (case, spacing and punctuation aside), which says
        nothing of this latent: a small model copies it (SmolLM2-135M did for 16 latents of 16 on MovieLens-100K).
        A latent that really is the example's concept loses its description too, the price of never counting a copy."""
        return _words(description) == _words(self.prompts.example(self.domain)["description"])

    def describe(self, latent: int, rows: list[int]) -> str | None:
        """The description, or None when the model's answer does not parse."""
        cases = "\n\n".join(f"{case_text(self.cases, r, self.catalog)}\nLevel: {self.level(latent, r)}" for r in rows)
        answer = self.llm.generate([self.prompts.describe_messages(self.domain, cases)], ConceptDescription,
                                   DESCRIBE_TOKENS)[0]
        return answer.description.strip() if answer is not None else None
