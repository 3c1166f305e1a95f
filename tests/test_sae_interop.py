"""Our SAE folders are SAELens folders: each library loads what the other saved and reconstructs the same.

Runs where `sae-lens` is installed (`make test` installs the `peers` extra)."""

from __future__ import annotations

import pytest
import torch

from recprobe.sae import SAEConfig, TopKSAE, load_sae, save_sae

sae_lens = pytest.importorskip("sae_lens", reason="install recprobe[peers] to check SAELens interoperability")


def seeded_sae() -> TopKSAE:
    sae = TopKSAE(SAEConfig(d_in=16, scale=4, k=4, seed=3))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # non-zero biases, so a dropped or misplaced bias would show
        sae.b_enc.normal_(std=0.1, generator=generator)
        sae.b_dec.normal_(generator=generator)
    return sae


def test_sae_lens_loads_our_folder_and_reconstructs_the_same(tmp_path):
    ours = seeded_sae()
    folder = save_sae(ours, tmp_path / "sae", {"target": "sasrec", "dataset": "ml-100k"})
    theirs = sae_lens.SAE.load_from_disk(str(folder))
    assert type(theirs).__name__ == "TopKSAE" and theirs.cfg.d_sae == 64 and theirs.cfg.k == 4
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), ours.dense_latents(x))
        torch.testing.assert_close(theirs(x), ours.reconstruct(x))


def test_we_load_a_folder_sae_lens_saved(tmp_path):
    from sae_lens.saes.topk_sae import TopKSAE as SAELensTopK
    from sae_lens.saes.topk_sae import TopKSAEConfig

    torch.manual_seed(0)
    theirs = SAELensTopK(TopKSAEConfig(d_in=16, d_sae=64, k=4, device="cpu"))
    with torch.no_grad():
        theirs.W_dec.copy_(torch.nn.functional.normalize(torch.randn(64, 16), dim=1))  # our decoder rows are unit norm
        theirs.W_enc.normal_()
        theirs.b_enc.normal_(std=0.1)
        theirs.b_dec.normal_()
    theirs.save_model(str(tmp_path / "theirs"))
    ours, cfg = load_sae(tmp_path / "theirs")
    assert ours.n_latents == 64 and ours.k == 4 and "recprobe" not in cfg
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.reconstruct(x), theirs(x))


def test_sae_lens_reads_our_batchtopk_folder_as_jumprelu_with_the_same_code(tmp_path):
    ours = TopKSAE(SAEConfig(d_in=16, scale=4, k=4, seed=3, arch="batchtopk"))
    with torch.no_grad():
        ours.threshold.fill_(1.6)  # high enough that no vector keeps more than k_max = 16 latents
    folder = save_sae(ours, tmp_path / "sae", {"target": "sasrec"})
    theirs = sae_lens.SAE.load_from_disk(str(folder))
    assert type(theirs).__name__ == "JumpReLUSAE"
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert 0 < int((ours.pre_acts(x) > 1.6).sum(1).max()) < 16
        torch.testing.assert_close(theirs.encode(x), ours.dense_latents(x))
        torch.testing.assert_close(theirs(x), ours.reconstruct(x))
