"""Datasets: readers, filters, the leave-one-out Split, item catalogs, export for peer frameworks."""

from recprobe.data.export import export_recbole, recbole_settings
from recprobe.data.registry import DATASETS, find_dataset, load_dataset
from recprobe.data.source import DataSource
from recprobe.data.split import Catalog, Split

__all__ = ["DATASETS", "Catalog", "DataSource", "Split", "export_recbole", "find_dataset", "load_dataset", "recbole_settings"]
