"""Real datasets from ../shared/data: their statistics, and a smoke run of every built-in model."""

from __future__ import annotations

import pytest

from recprobe.data import load_dataset
from recprobe.io import read_json
from recprobe.models import MODELS
from recprobe.runs.fit import fit_run

pytestmark = pytest.mark.slow


def test_grocery_is_loaded_exactly_as_given(shared_data):
    split = load_dataset("grocery", shared_data)
    assert (split.n_users, split.n_items, len(split.train_items)) == (14681, 8713, 121892)
    assert split.summary()["interactions"] == 151254
    assert sum("category" in a for a in split.catalog.attributes) == 8713 - 8349


def test_movielens_100k_positives_5_core(shared_data):
    split = load_dataset("ml-100k", shared_data)
    assert split.n_users == 938 and split.n_items == 1008
    assert split.catalog.titles[0] == "Toy Story (1995)"
    assert "Animation" in split.catalog.attributes[0]["genre"]


def test_movielens_1m_partial_copy_loads_with_a_note(shared_data):
    split = load_dataset("ml-1m", shared_data)
    assert 2900 < split.n_users <= 2999
    assert any("partial" in note for note in split.notes)
    assert split.catalog.attributes[0]["genre"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_on_movielens_100k(name, shared_data, tmp_path):
    from recprobe.data.source import DataSource
    from recprobe.models.train import TrainConfig

    metrics, reused = fit_run(tmp_path / name, name, DataSource(dataset="ml-100k", data_dir=shared_data),
                              train=TrainConfig(epochs=2, patience=2), progress=False)
    assert not reused
    saved = read_json(tmp_path / name / "recommender" / "metrics.json")
    assert saved["test"] == metrics["test"]
    assert {"HR@10", "NDCG@10", "HR@20", "NDCG@20", "HR@50"} <= set(metrics["test"])
    assert metrics["test"]["HR@10"] > 2 * 10 / 1008  # well above random after two epochs
    assert metrics["seconds_per_epoch"] > 0


def test_grocery_items_read_as_category_labels(shared_data):
    """Grocery ships category ids only: the catalog says so and falls back to category labels."""
    catalog = load_dataset("grocery", shared_data).catalog
    assert not catalog.has_titles
    labelled = [catalog.describe(i) for i in range(len(catalog)) if catalog.attributes[i]]
    assert labelled and all("[category: category " in text for text in labelled[:50])
    assert load_dataset("ml-100k", shared_data).catalog.has_titles


def test_user_attributes_of_both_movielens_copies(shared_data):
    small, large = load_dataset("ml-100k", shared_data), load_dataset("ml-1m", shared_data)
    assert sorted(small.user_attributes) == ["age", "gender", "occupation", "zip_code"]
    assert sorted(large.user_attributes) == ["age", "gender", "occupation", "zip_code"]
    first = list(small.user_ids).index("1")  # ml-100k.user: 1  24  M  technician  85711
    assert [small.user_attributes[a][first] for a in ("age", "gender", "occupation")] == ["24", "M", "technician"]
    first = list(large.user_ids).index("1")  # users.dat: 1::F::1::10::48067
    assert [large.user_attributes[a][first] for a in ("gender", "age", "occupation")] == ["F", "1", "10"]
    assert (small.user_attributes["gender"] == "F").sum() == 271 and (large.user_attributes["gender"] == "F").sum() == 821
