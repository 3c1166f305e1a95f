"""Prompt templates, versioned as files (``prompts/<version>/``) and recorded with every result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from recprobe.errors import RecprobeError

PROMPTS = Path(__file__).parent / "prompts"
VERSION = "v1"
DOMAINS = ("movies", "grocery", "music", "generic")


@dataclass(frozen=True)
class Prompts:
    version: str
    system: str
    describe: str
    verify: str
    examples: dict[str, dict[str, str]]

    def example(self, domain: str) -> dict[str, str]:
        """The domain's one-shot example: its ``cases`` and their ``description``."""
        return self.examples.get(domain, self.examples["generic"])

    def describe_messages(self, domain: str, cases: str) -> list[dict[str, str]]:
        """System prompt, the domain's one-shot example (question and answer), then the latent's cases."""
        example = self.example(domain)
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.describe.format(cases=example["cases"])},
            {"role": "assistant", "content": json.dumps({"description": example["description"]})},
            {"role": "user", "content": self.describe.format(cases=cases)},
        ]

    def verify_messages(self, description: str, case: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.verify.format(description=description, case=case)}]


@cache
def load_prompts(version: str = VERSION) -> Prompts:
    folder = PROMPTS / version
    if not folder.is_dir():
        known = sorted(p.name for p in PROMPTS.iterdir() if p.is_dir())
        raise RecprobeError(f"no prompt version {version!r}; known: {', '.join(known)}")
    read = lambda name: (folder / name).read_text(encoding="utf-8").strip()  # noqa: E731
    return Prompts(version, read("system.txt"), read("describe.txt"), read("verify.txt"),
                   json.loads(read("examples.json")))


def domain_of(dataset: str) -> str:
    """The one-shot example's domain for a dataset name."""
    name = dataset.lower()
    if "ml-" in name or "movie" in name:
        return "movies"
    if "grocery" in name or "amazon" in name:
        return "grocery"
    if "music" in name or "lastfm" in name:
        return "music"
    return "generic"
