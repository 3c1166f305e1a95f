from __future__ import annotations

import numpy as np
import pytest
import torch

from recprobe.batches import phase_batches
from recprobe.data.stored import write_split
from recprobe.models import (
    MODELS,
    TrainConfig,
    build_model,
    evaluate_model,
    fit,
    load_recommender,
    save_recommender,
)
from recprobe.models.train import TrainingSamples

ALL = sorted(MODELS)


def small(name, split, **kw):
    options = {"d": 16, **({"max_history": 5} if MODELS[name].sequential else {}), **kw}
    return build_model(name, split, **options)


@pytest.mark.parametrize("name", ALL)
def test_represent_then_score_is_the_models_prediction(name, split):
    model = small(name, split).eval()
    batch = phase_batches(split, "test", model.max_history)(np.arange(7))
    reps = model.represent(batch)
    assert reps.shape == (7, 16) and reps.dtype == torch.float32
    scores = model.score(reps, batch)
    assert scores.shape == (7, split.n_items)
    torch.testing.assert_close(scores, model.predict(batch))


@pytest.mark.parametrize("name", ALL)
def test_training_learns_the_synthetic_preference(name, split):
    model = small(name, split)
    before = evaluate_model(model, split, "dev", ks=(10,))["HR@10"]
    result = fit(model, split, TrainConfig(epochs=25, patience=25, lr=0.01, batch_size=64), progress=False)
    after = evaluate_model(model, split, "dev", ks=(10,))["HR@10"]
    assert after > max(before, 10 / split.n_items)  # above random and above the untrained model
    assert set(result.best_epoch) == set(model.stages())


@pytest.mark.parametrize("name", ["bprmf", "sasrec"])
def test_training_is_deterministic_for_a_seed(name, split):
    runs = []
    for _ in range(2):
        model = small(name, split)
        torch.manual_seed(123)  # fit must not depend on the ambient RNG
        fit(model, split, TrainConfig(epochs=2, seed=7), progress=False)
        runs.append(model.state_dict())
    for key in runs[0]:
        torch.testing.assert_close(runs[0][key], runs[1][key], rtol=0, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_save_and_load_round_trip_keeps_predictions(name, split, tmp_path):
    model = small(name, split).eval()
    config = {"model": name, "model_config": model.config.model_dump(), "train_config": {},
              "dataset": {"name": "synthetic", "fingerprint": split.fingerprint}}
    save_recommender(tmp_path, model, config, {"test": {}})
    write_split(split, tmp_path / "split")  # as `recprobe fit` stores it beside the model
    loaded, _ = load_recommender(tmp_path)
    batch = phase_batches(split, "test", model.max_history)(np.arange(split.n_users))
    torch.testing.assert_close(loaded.predict(batch), model.predict(batch))


def test_negatives_are_never_train_items_of_their_user(split):
    samples = TrainingSamples(split, 0)
    users = np.repeat(np.arange(split.n_users), 50)
    negatives = samples.negatives(users, np.random.default_rng(0))
    keys = users * split.n_items + negatives
    assert not np.isin(keys, samples.seen_keys).any()


def test_sequential_samples_see_only_earlier_items(split):
    samples = TrainingSamples(split, 3)
    batch, pos, _ = next(samples.epoch(1000, np.random.default_rng(0)))
    assert (batch.lengths >= 1).all() and (batch.lengths <= 3).all()
    for b in range(len(pos)):
        u = batch.users[b].item()
        seq = split.train_items[split.train_offsets[u] : split.train_offsets[u + 1]].tolist()
        hist = batch.history[b, : batch.lengths[b]].tolist()
        position = next(p for p in range(len(seq)) if seq[p] == pos[b].item() and seq[max(0, p - len(hist)) : p] == hist)
        assert position >= 1


def test_lightgcn_recomputes_tables_after_training(split):
    model = small("lightgcn", split).eval()
    first = model.item_vectors().clone()
    fit(model, split, TrainConfig(epochs=1, lr=0.05), progress=False)
    assert not torch.equal(first, model.item_vectors())


def test_bad_model_options_are_rejected(split):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        build_model("sasrec", split, d=-4)
    with pytest.raises(ValidationError):
        build_model("bprmf", split, colour="blue")


def test_lightgcn_fast_backward_matches_dense_autograd(split):
    from recprobe.models.lightgcn import SymmetricSpMM

    model = small("lightgcn", split)
    dense = model.adjacency.to_dense()
    torch.testing.assert_close(dense, dense.T)
    x = torch.randn(dense.shape[0], 4, requires_grad=True)
    weight = torch.randn(dense.shape[0], 4)
    (SymmetricSpMM.apply(model.adjacency, x) * weight).sum().backward()
    fast = x.grad.clone()
    x.grad = None
    ((dense @ x) * weight).sum().backward()
    torch.testing.assert_close(fast, x.grad)
