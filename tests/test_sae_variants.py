"""The SAE's controls and relatives: frozen decoder or encoder, BatchTopK, Matryoshka; and planted ground truth
that training finds and the controls do not."""

from __future__ import annotations

import pytest
import torch

from recprobe.activations.store import ActivationStore
from recprobe.errors import RecprobeError
from recprobe.planted import plant, recovered_share, to_store
from recprobe.sae import SAEConfig, SAETrainConfig, load_sae, save_sae, train_sae
from recprobe.sae.topk import TopKSAE
from recprobe.sae.train import initial_sae


@pytest.fixture
def planted_store(tmp_path):
    planted = plant(n=6_000, d=16, m=24, s=2, seed=0)
    return planted, to_store(planted.vectors, tmp_path / "store")


def config(**fields) -> SAEConfig:
    return SAEConfig(d_in=16, n_latents=64, scale=None, k=2, **fields)


@pytest.mark.parametrize("freeze, frozen, moving", [("decoder", ("W_dec",), ("W_enc", "b_enc")),
                                                     ("encoder", ("W_enc", "b_enc"), ("W_dec",))])
def test_a_frozen_part_is_bit_identical_to_its_initialisation_and_the_rest_trains(planted_store, freeze, frozen, moving):
    _, store = planted_store
    start = initial_sae(store, config(freeze=freeze))
    trained, _ = train_sae(store, config(freeze=freeze), SAETrainConfig(epochs=1), progress=False)
    for name in frozen:
        assert torch.equal(getattr(trained, name), getattr(start, name)), name
    for name in moving:
        assert not torch.equal(getattr(trained, name), getattr(start, name)), name
    assert not torch.equal(trained.b_dec, start.b_dec)


def test_planted_directions_are_recovered_by_training_and_not_by_the_controls(planted_store):
    planted, store = planted_store
    shares = {}
    for freeze in ("none", "decoder"):
        sae, _ = train_sae(store, config(freeze=freeze), SAETrainConfig(epochs=4, batch_size=128, lr=3e-3),
                           progress=False)
        shares[freeze] = recovered_share(sae.W_dec, planted.directions)
    shares["untrained"] = recovered_share(initial_sae(store, config()).W_dec, planted.directions)
    assert shares["none"] >= 0.5, shares
    assert shares["none"] >= 3 * max(shares["decoder"], shares["untrained"]) and shares["decoder"] < 0.1, shares


def test_batchtopk_keeps_k_per_vector_on_average_and_its_threshold_at_inference(planted_store, tmp_path):
    _, store = planted_store
    sae, _ = train_sae(store, config(arch="batchtopk"), SAETrainConfig(epochs=2), progress=False)
    x = store.load("dev").activations
    values, indices = sae.encode(x)
    assert values.shape == (len(x), sae.config.k_max) and float(sae.threshold) > 0
    fired = (values > 0).sum(1).float()
    assert 1.0 <= float(fired.mean()) <= 4.0 and fired.max() > fired.min()  # k on average, not per vector
    assert bool(((values == 0) | (values > sae.threshold)).all())
    loaded, cfg = load_sae(save_sae(sae, tmp_path / "sae", {}))
    assert cfg["architecture"] == "jumprelu" and float(loaded.threshold) == float(sae.threshold)
    torch.testing.assert_close(loaded.reconstruct(x), sae.reconstruct(x))


def test_the_untrained_batchtopk_control_fires_as_sparsely_as_training_will(planted_store):
    _, store = planted_store
    untrained = initial_sae(store, config(arch="batchtopk"))
    fired = (untrained.encode(store.load("train").activations)[0] > 0).sum(1).float().mean()
    assert 1.5 <= float(fired) <= 2.5  # k = 2 on average, by the calibrated threshold


def test_matryoshka_loss_is_the_mean_over_nested_prefix_reconstructions():
    sae = TopKSAE(config(arch="matryoshka", prefixes=[8, 32, 64]))
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    out = sae(x)
    z = out.values
    by_hand = torch.stack([(x - (z[:, :m] @ sae.W_dec[:m] + sae.b_dec)).pow(2).sum(-1).mean() for m in (8, 32, 64)]).mean()
    torch.testing.assert_close(sae.reconstruction_loss(x, out), by_hand)
    assert not torch.allclose(by_hand, (x - out.x_hat).pow(2).sum(-1).mean())  # not the plain loss


def test_bad_architecture_settings_are_refused_in_one_line():
    with pytest.raises(ValueError, match="prefixes must ascend"):
        config(arch="matryoshka", prefixes=[32, 8, 64])
    with pytest.raises(ValueError, match="prefixes are for arch='matryoshka' only"):
        config(prefixes=[8, 64])


def test_a_frozen_control_resumes_from_its_checkpoint_exactly(planted_store, tmp_path):
    _, store = planted_store
    train = SAETrainConfig(epochs=2, checkpoint_every=20)
    whole, _ = train_sae(store, config(freeze="decoder", seed=3), train, progress=False)

    class Stop(Exception):
        pass

    calls = {"n": 0}
    original = ActivationStore.batches

    def interrupted(self, split, batch_size, generator=None, device=None):
        for x in original(self, split, batch_size, generator, device):
            calls["n"] += 1
            if calls["n"] == 70:
                raise Stop
            yield x

    checkpoint = tmp_path / "ckpt.safetensors"
    ActivationStore.batches = interrupted
    try:
        with pytest.raises(Stop):
            train_sae(store, config(freeze="decoder", seed=3), train, progress=False, checkpoint=checkpoint)
    finally:
        ActivationStore.batches = original
    resumed, _ = train_sae(store, config(freeze="decoder", seed=3), train, progress=False, checkpoint=checkpoint)
    for name in ("W_enc", "b_enc", "b_dec", "W_dec"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name


def test_a_jumprelu_folder_not_saved_by_recprobe_is_refused(tmp_path):
    import json

    folder = save_sae(TopKSAE(config(arch="batchtopk")), tmp_path / "sae", {})
    cfg = json.loads((folder / "cfg.json").read_text())
    del cfg["recprobe"]
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(RecprobeError, match="'jumprelu' with a recprobe config"):
        load_sae(folder)


def test_batchtopk_on_a_batch_of_one_is_topk_exactly():
    """B * k over a batch of one vector is k for that vector: the dense path must then give TopK's loss and
    gradients, bit for bit up to float error."""
    x = torch.randn(1, 16, generator=torch.Generator().manual_seed(0))
    grads = {}
    for arch in ("topk", "batchtopk"):
        sae = TopKSAE(config(arch=arch, seed=1))
        with torch.no_grad():
            sae.b_enc.normal_(std=0.1, generator=torch.Generator().manual_seed(0))
        sae.reconstruction_loss(x, sae(x)).backward()
        grads[arch] = {name: p.grad for name, p in sae.named_parameters()}
    for name, grad in grads["topk"].items():
        torch.testing.assert_close(grads["batchtopk"][name], grad, atol=1e-5, rtol=1e-5)
