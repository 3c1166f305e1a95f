"""Which interactions a run is made from: a dataset, where it is read from, and the filters applied to it.

The one place the filters' defaults and help are written: ``recprobe fit``, ``probe`` and ``export`` (the commands
that read raw files, with ``quickstart``, which fits on MovieLens-100K) take their options from ``DataFilter``,
and ``fit_run`` records the ``DataSource``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from recprobe.data.prepare import CORE, MIN_RATING
from recprobe.data.split import Split


class DataFilter(BaseModel):
    """Where named datasets are found and which interactions are kept: the options of every command that reads raw
    files, whatever dataset they apply to."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    data_dir: Path | None = Field(
        None, description="Folder holding the datasets (default: $RECPROBE_DATA_DIR, then ./data).")
    min_rating: float | None = Field(MIN_RATING, description="Ratings at least this are positives (None: keep all).")
    core: int = Field(CORE, description="Iterative k-core filter on users and items (at least 3).")

    def applied_to(self, dataset: str) -> DataSource:
        """These filters applied to ``dataset``."""
        return DataSource(dataset=dataset, **self.model_dump())


class DataSource(DataFilter):
    """A dataset by name or folder, the folder to find named datasets in, and the positive / k-core filters."""

    dataset: str = Field(description="ml-100k, ml-1m, grocery, or a folder of RecBole/ReChorus files.")

    def load(self, **options) -> Split:
        """The leave-one-out split (``options``: ``recprobe.data.load_dataset``'s, e.g. ``progress``)."""
        from recprobe.data.registry import load_dataset

        return load_dataset(self.dataset, self.data_dir, min_rating=self.min_rating, core=self.core, **options)

    @property
    def source(self) -> str:
        """What ``load_dataset`` reads back: a folder's absolute path, else the name."""
        return str(Path(self.dataset).resolve()) if Path(self.dataset).is_dir() else self.dataset

    def flags(self) -> list[str]:
        """The command-line options that load this data again (defaults left out; the folder is the user's own)."""
        defaults = DataSource(dataset=self.dataset)
        flags = ["--dataset", self.dataset]
        if self.min_rating != defaults.min_rating:
            flags += ["--min-rating", str(-1 if self.min_rating is None else self.min_rating)]
        if self.core != defaults.core:
            flags += ["--core", str(self.core)]
        return flags


def data_source(data: str | DataSource) -> DataSource:
    """A dataset name or folder with the default filters, or the given source."""
    return data if isinstance(data, DataSource) else DataSource(dataset=str(data))
