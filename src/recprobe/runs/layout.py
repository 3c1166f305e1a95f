"""Every path of a run folder, in one place. Stages ask a ``RunLayout``; none spells a path itself.

    <run>/run.json                    what the run probes: adapter, options, dataset, versions, fingerprints
    <run>/split/                      the dataset split, stored once by fit/probe (recprobe.data.stored)
    <run>/recommender/                a built-in model trained by `recprobe fit` (config, weights, metrics)
    <run>/activations/                index.json + safetensors shards          (recprobe capture)
    <run>/sae/                        cfg.json, sae_weights.safetensors, metrics.json, README.md (train-sae)
    <run>/sae-checkpoint.safetensors  resumable SAE training state while train-sae runs
    <run>/saes/<arch>-<variant>-seed<s>/  the ladder: SAEs and trained controls over seeds (train-sae --seeds)
    <run>/compare.json                every basis against its controls, over seeds (compare)
    <run>/concepts/                   settings.json, cases.safetensors, concepts.jsonl, summary.json,
                                      attributes.json (interpret)
    <run>/concepts-<basis>/           the same for another basis: raw, raw-both, untrained, frozen-decoder,
                                      frozen-encoder (interpret --basis)
    <run>/steering/                   latent-<j>.json, table7.json, table7-every.json,  (steer)
                                      debias.json                                 (debias)
                                      debias-sweep.json                           (debias --sweep)
    <run>/explanations/fidelity.json  how faithful the explanations of single recommendations are (explain)
    <run>/report/                     index.html, latents/<j>.html, style.css     (report)
    <run>/.recprobe.lock              held by the one command writing into the run
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recprobe.data.stored import FOLDER as SPLIT
from recprobe.errors import RunFolderError

RUN_FILE = "run.json"
RECOMMENDER, ACTIVATIONS, SAE, STEERING, REPORT = "recommender", "activations", "sae", "steering", "report"
EXPLANATIONS, SAES, COMPARE = "explanations", "saes", "compare.json"
CONCEPTS = "concepts"
CONTROL_BASES = ("frozen-decoder", "frozen-encoder")  # the run's SAE retrained with one part frozen, in saes/
BASES = ("sae", "raw", "raw-both", "untrained", *CONTROL_BASES)  # what interpret can interpret; see Run.basis
SAE_CHECKPOINT = "sae-checkpoint.safetensors"
LOCK = ".recprobe.lock"
STAGE_FOLDERS = (SPLIT, RECOMMENDER, ACTIVATIONS, SAE, SAES, STEERING, EXPLANATIONS, REPORT)  # never a concepts folder's name

# concepts/ files
SETTINGS, CASES, CONCEPTS_FILE, SUMMARY, DAMAGED, ATTRIBUTES = (
    "settings.json", "cases.safetensors", "concepts.jsonl", "summary.json", "concepts.damaged.jsonl", "attributes.json")


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def split(self) -> Path:
        return self.root / SPLIT

    @property
    def recommender(self) -> Path:
        return self.root / RECOMMENDER

    @property
    def activations(self) -> Path:
        return self.root / ACTIVATIONS

    @property
    def sae(self) -> Path:
        return self.root / SAE

    @property
    def sae_checkpoint(self) -> Path:
        return self.root / SAE_CHECKPOINT

    @property
    def saes(self) -> Path:
        return self.root / SAES

    def ladder(self, name: str) -> Path:
        """One SAE of the ladder (``recprobe.runs.ladder.Rung.name``)."""
        return self.saes / name

    @property
    def compare(self) -> Path:
        return self.root / COMPARE

    @property
    def steering(self) -> Path:
        return self.root / STEERING

    @property
    def explanations(self) -> Path:
        return self.root / EXPLANATIONS

    @property
    def report(self) -> Path:
        return self.root / REPORT

    def concepts(self, name: str | None = None, *, basis: str = "sae") -> Path:
        """A concepts folder: ``concepts`` (``concepts-<basis>`` for a basis other than the SAE's latents) unless
        ``name`` picks another plain name."""
        name = name or (CONCEPTS if basis == "sae" else f"{CONCEPTS}-{basis}")
        if Path(name).name != name or name in ("", ".", "..") or name.startswith("."):
            raise RunFolderError(f"the concepts folder must be a plain name inside the run folder, got {name!r}")
        if name in STAGE_FOLDERS:
            raise RunFolderError(f"{name!r} is the run's {name}/ folder, which another stage owns; choose another "
                                 "--folder name, e.g. concepts-llm")
        return self.root / name

    def concept_folders(self) -> list[Path]:
        """Every folder in the run that holds concepts (it has a settings.json from interpret)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and (p / SETTINGS).is_file())

    def downstream_of_recommender(self) -> list[Path]:
        """What depends on the recommender and must go when it is replaced."""
        return [self.activations, self.sae, self.sae_checkpoint, self.saes, self.compare, self.steering,
                self.explanations, self.report, *self.concept_folders()]
