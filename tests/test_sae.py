"""TopK SAE: fast path against the dense reference, AuxK, decoder constraints, trainer, files, config."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recprobe.activations.store import ActivationStore, ActivationWriter, Rows
from recprobe.errors import RecprobeError
from recprobe.sae import SAEConfig, SAETrainConfig, TopKSAE, load_sae, save_sae, train_sae
from recprobe.sae.topk import geometric_median


def low_rank_store(folder, n=600, d=8, seed=0, shard_rows=256) -> ActivationStore:
    """Vectors that are sparse sums of 12 fixed directions: what a TopK SAE can recover exactly."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(12, d, generator=g)
    writer = ActivationWriter(folder, d, {"target": "synthetic"}, shard_rows=shard_rows)
    for part, rows in (("train", n), ("dev", n // 4), ("test", n // 4)):
        codes = torch.rand(rows, 12, generator=g) * (torch.rand(rows, 12, generator=g) < 0.2)
        writer.append(part, Rows(codes @ atoms + 0.5, torch.arange(rows), torch.zeros(rows, dtype=torch.long)))
    return ActivationStore(writer.close())


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 4), st.integers(1, 9), st.integers(0, 10_000))
def test_sparse_decode_matches_the_dense_reference(d_in, scale, batch, seed):
    k = min(3, scale * d_in - 1)
    sae = TopKSAE(SAEConfig(d_in=d_in, scale=scale, k=k, seed=seed))
    with torch.no_grad():
        sae.b_enc.normal_(generator=torch.Generator().manual_seed(seed))
    x = torch.randn(batch, d_in, generator=torch.Generator().manual_seed(seed + 1))
    out = sae(x)
    assert out.values.shape == out.indices.shape == (batch, k)
    torch.testing.assert_close(out.x_hat, sae.reconstruct_reference(x), rtol=1e-5, atol=1e-5)
    dense = sae.dense_latents(x)
    assert ((dense > 0).sum(1) <= k).all() and (dense >= 0).all()
    values, _ = sae.encode(x)  # ReLU after the top-k keeps the values of ReLU before it; any leading shape
    torch.testing.assert_close(values.sort(1).values, sae.pre_acts(x).topk(k).values.sort(1).values)
    torch.testing.assert_close(sae.encode(x[0])[0], values[0])
    torch.testing.assert_close(sae.encode(torch.stack([x, x]))[0][1], values)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 4), st.integers(1, 9), st.integers(0, 8), st.integers(0, 10_000))
def test_sparse_backward_matches_autograd_through_the_dense_reference(d_in, scale, batch, n_dead, seed):
    n = scale * d_in
    sae = TopKSAE(SAEConfig(d_in=d_in, scale=scale, k=min(3, n - 1), k_aux=2, seed=seed))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_enc.normal_(generator=generator)
        sae.b_dec.normal_(generator=generator)
    x = torch.randn(batch, d_in, generator=generator).requires_grad_()  # the input's gradient too
    dead = torch.zeros(n, dtype=torch.bool)
    dead[torch.randperm(n, generator=generator)[:min(n_dead, n)]] = True

    def loss_and_grads(loss_fn):
        sae.zero_grad()
        x.grad = None
        loss_fn().backward()
        return [p.grad.clone() for p in (sae.W_enc, sae.b_enc, sae.b_dec, sae.W_dec, x)]

    def sparse_loss():
        out = sae(x, dead)
        return (x - out.x_hat).pow(2).sum(-1).mean() + sae.aux_loss(x, out)

    def dense_loss():  # autograd through [B, n] matrices; AuxK picks the top k_aux dead pre-activations
        pre = sae.pre_acts(x)
        x_hat = sae.dense_latents(x) @ sae.W_dec + sae.b_dec
        loss = (x - x_hat).pow(2).sum(-1).mean()
        if dead.any():
            k_aux = min(2, int(dead.sum()))
            values, indices = pre.masked_fill(~dead, -1.0).topk(k_aux, dim=-1)
            e_hat = torch.zeros_like(pre).scatter(1, indices, values) @ sae.W_dec
            loss = loss + min(int(dead.sum()) / 2, 1.0) * ((x - x_hat).detach() - e_hat).pow(2).sum(-1).mean()
        return loss

    for sparse, dense in zip(loss_and_grads(sparse_loss), loss_and_grads(dense_loss), strict=True):
        torch.testing.assert_close(sparse, dense, rtol=1e-4, atol=1e-5)


def test_selecting_chunk_by_chunk_matches_the_whole_batch_and_the_dense_reference():
    """``select`` writes a few rows' pre-activations at a time into its kept block (the bias folded into the
    matmul at this many rows): the same picks, AuxK's among the dead latents too, as one chunk and as the dense
    matrix, and a training pass in chunks has the dense reference's gradients."""
    from unittest import mock

    import recprobe.sae.sparse as sparse

    generator = torch.Generator().manual_seed(3)
    x, W, b = torch.randn(300, 8, generator=generator), torch.randn(8, 512, generator=generator), torch.randn(512)
    assert sparse.encoder_operands(x, W, b)[2] is None  # folded
    dead = torch.arange(0, 512, 3)
    whole = sparse.select(x, W, b, 4, dead, 5)
    sparse._kept.block = torch.full((7, 512), float("nan"))  # a stale block of one chunk's rows
    with mock.patch.object(sparse, "CHUNK_BYTES", 4 * 512 * 7):  # 7 rows at a time
        assert sparse.chunk_rows(512, x.device) == 7
        chunked = sparse.select(x, W, b, 4, dead, 5)
    for a, c in zip(whole, chunked, strict=True):  # the same picks; the values to the matmul's rounding
        if a.is_floating_point():
            torch.testing.assert_close(a, c, rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(a, c)
    assert torch.isfinite(sparse._kept.block).all() and len(sparse._kept.block) == 7  # written, not grown
    dense = x @ W + b
    torch.testing.assert_close(whole[0].sort(-1).values, dense.topk(4).values.sort(-1).values)
    torch.testing.assert_close(dense.gather(1, whole[1]), whole[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(whole[2].sort(-1).values, dense[:, dead].topk(5).values.sort(-1).values)
    torch.testing.assert_close(dense.gather(1, whole[3]), whole[2], rtol=1e-5, atol=1e-5)
    assert torch.isin(whole[3], dead).all()

    sae = TopKSAE(SAEConfig(d_in=8, n_latents=512, scale=None, k=4, seed=3))

    def grads(loss):
        sae.zero_grad()
        loss().backward()
        return [p.grad.clone() for p in (sae.W_enc, sae.b_enc, sae.b_dec, sae.W_dec)]

    def dense_loss():  # torch's topk over the [B, n] pre-activations
        pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        values, indices = pre.topk(4, dim=-1)
        z = torch.zeros_like(pre).scatter(1, indices, values.relu())
        return (x - (z @ sae.W_dec + sae.b_dec)).pow(2).sum(-1).mean()

    with mock.patch.object(sparse, "CHUNK_BYTES", 4 * 512 * 7):
        chunked = grads(lambda: (x - sae(x).x_hat).pow(2).sum(-1).mean())
    for a, c in zip(chunked, grads(dense_loss), strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_a_non_finite_row_is_found_and_a_large_finite_sum_is_not_one():
    from recprobe.activations.store import non_finite_row

    x = torch.zeros(100, 4)
    assert non_finite_row(x) is None
    x[:3, 0] = 3e38  # the sum overflows to infinity; every row is finite
    assert non_finite_row(x) is None
    x[41, 2], x[77, 1] = float("inf"), float("nan")
    assert non_finite_row(x) == 41


def test_both_ways_of_summing_gradient_rows_give_the_same_gradients():
    """A CPU sums a weight matrix's gradient rows by a sparse matrix product, a GPU by writing the B * k weighted
    rows (``recprobe.sae.sparse.by_sparse_product``): the same gradients either way."""
    from unittest import mock

    import recprobe.sae.sparse as sparse

    sae = TopKSAE(SAEConfig(d_in=6, n_latents=24, scale=None, k=3, k_aux=4, seed=2))
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(40, 6, generator=generator)
    dead = torch.rand(24, generator=generator) < 0.5

    def grads():
        sae.zero_grad()
        out = sae(x, dead)
        ((x - out.x_hat).pow(2).sum(-1).mean() + sae.aux_loss(x, out)).backward()
        return [p.grad.clone() for p in (sae.W_enc, sae.b_enc, sae.b_dec, sae.W_dec)]

    assert sparse.by_sparse_product(x.device)
    product = grads()
    with mock.patch.object(sparse, "by_sparse_product", lambda device: False):
        rows = grads()
    for a, b in zip(product, rows, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(g.abs().sum() > 0 for g in product)


def test_aux_loss_uses_the_residual_and_no_b_dec():
    sae = TopKSAE(SAEConfig(d_in=4, n_latents=8, scale=None, k=1, k_aux=2))
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    dead = torch.zeros(8, dtype=torch.bool)
    assert sae.aux_loss(x, sae(x, dead)) == 0
    dead[[1, 2, 3]] = True
    out = sae(x, dead)
    values, indices = sae.pre_acts(x).masked_fill(~dead, -1.0).topk(2, dim=-1)
    e_hat = torch.zeros(5, 4)
    for row in range(5):
        for v, i in zip(values[row], indices[row], strict=True):
            e_hat[row] += v * sae.W_dec[i]
    expected = ((x - out.x_hat) - e_hat).pow(2).sum(-1).mean()  # scaled by min(3/2, 1) = 1
    torch.testing.assert_close(sae.aux_loss(x, out), expected)


def test_residual_variance_aux_scale_divides_by_the_residuals_variance():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    dead = torch.zeros(8, dtype=torch.bool)
    dead[[0, 5]] = True
    shape = {"d_in": 4, "n_latents": 8, "scale": None, "k": 1, "k_aux": 2}
    paper = TopKSAE(SAEConfig(**shape))
    scaled = TopKSAE(SAEConfig(**shape, aux_scale="residual_variance"))
    out = paper(x, dead)
    e = x - out.x_hat
    ratio = (x - x.mean(0)).pow(2).sum(-1).mean() / (e - e.mean(0)).pow(2).sum(-1).mean()
    torch.testing.assert_close(scaled.aux_loss(x, scaled(x, dead)), paper.aux_loss(x, out) * ratio)


def test_decoder_stays_unit_norm_and_gradient_parallel_part_is_removed():
    sae = TopKSAE(SAEConfig(d_in=4, scale=2, k=2))
    sae.W_dec.grad = sae.W_dec.detach() * 3 + torch.randn(8, 4)
    sae.remove_parallel_gradient()
    assert (sae.W_dec.grad * sae.W_dec).sum(1).abs().max() < 1e-5
    with torch.no_grad():
        sae.W_dec.mul_(5)
    sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(8))


def test_geometric_median_resists_an_outlier():
    x = torch.cat([torch.zeros(20, 2), torch.tensor([[100.0, 100.0]])])
    assert geometric_median(x).norm() < 1.0 < x.mean(0).norm()


def test_trainer_recovers_sparse_structure_and_is_deterministic(tmp_path):
    store = low_rank_store(tmp_path / "acts")
    config = SAEConfig(d_in=8, scale=4, k=4, seed=3)
    train = SAETrainConfig(epochs=40, batch_size=64, lr=3e-3)
    sae, result = train_sae(store, config, train, progress=False)
    final = result.history[result.best_epoch - 1]
    assert final["dev_fvu"] < 0.1 and final["dev_fvu"] == min(h["dev_fvu"] for h in result.history)
    again, _ = train_sae(store, config, train, progress=False)
    assert all(torch.equal(getattr(sae, n), getattr(again, n)) for n in ("W_enc", "W_dec", "b_enc", "b_dec"))
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(32))
    assert result.selected_on == "dev"


def test_the_kept_epoch_says_what_chose_it(tmp_path):
    """Without dev vectors the epoch is chosen on the train FVU, and a general model's dev vectors are its users'
    train vectors: both are said, not passed off as a held-out choice (a new user found the second unsaid)."""
    from recprobe.runs.sae import selection

    writer = ActivationWriter(tmp_path / "acts", 8, {"target": "synthetic"})
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    writer.append("train", Rows(x, torch.arange(300), torch.zeros(300, dtype=torch.long)))
    _, result = train_sae(ActivationStore(writer.close()), SAEConfig(d_in=8, scale=2, k=2),
                          SAETrainConfig(epochs=2, batch_size=64), progress=False)
    assert result.selected_on == "train" and "train_fvu" in result.history[0]
    assert selection("train", 50) == "lowest train FVU: the activations hold no dev vectors"
    assert "users' own train vectors" in selection("dev", 0) and selection("dev", 50) == "lowest dev FVU"


def test_save_load_round_trip_gives_the_same_outputs(tmp_path):
    sae = TopKSAE(SAEConfig(d_in=6, scale=2, k=3, seed=1))
    folder = save_sae(sae, tmp_path / "sae", {"target": "sasrec", "dataset": "ml-100k"}, {"metrics.json": "{}"})
    loaded, cfg = load_sae(folder)
    x = torch.randn(7, 6)
    torch.testing.assert_close(loaded(x).x_hat, sae(x).x_hat)
    assert cfg["architecture"] == "topk" and cfg["d_sae"] == 12 and cfg["recprobe"]["provenance"]["dataset"] == "ml-100k"
    save_sae(TopKSAE(SAEConfig(d_in=6, scale=2, k=3, seed=2)), folder, {})  # replaces whole
    assert not torch.equal(load_sae(folder)[0].W_dec, sae.W_dec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sae"]


def test_bad_sae_files_name_the_problem(tmp_path):
    with pytest.raises(RecprobeError, match="holds no SAE"):
        load_sae(tmp_path)
    folder = save_sae(TopKSAE(SAEConfig(d_in=4, scale=2, k=2)), tmp_path / "sae", {})
    (folder / "sae_weights.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(RecprobeError, match="not a readable safetensors file"):
        load_sae(folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps({**cfg, "architecture": "jumprelu"}))
    with pytest.raises(RecprobeError, match=r"architecture 'jumprelu' disagrees with recprobe's config \(arch 'topk'\)"):
        load_sae(folder)
    (folder / "cfg.json").write_text(json.dumps({**cfg, "architecture": "standard"}))
    with pytest.raises(RecprobeError, match=r"recprobe loads TopK SAEs \(architecture 'topk'\)"):
        load_sae(folder)
    save_sae(TopKSAE(SAEConfig(d_in=4, scale=2, k=2)), folder, {})
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["recprobe"]["config"]["d_in"] = 5
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(RecprobeError, match="cfg.json does not describe|implies"):
        load_sae(folder)


def test_config_rules_name_both_fields():
    assert SAEConfig(d_in=64).n_latents == 1024 and SAEConfig(d_in=64).k_aux == 32
    with pytest.raises(ValidationError, match="disagrees with n_latents"):
        SAEConfig(d_in=4, scale=2, n_latents=9)
    for k in (8, 9):
        with pytest.raises(ValidationError, match=f"k \\({k}\\) must be below n_latents \\(8\\)"):
            SAEConfig(d_in=4, scale=2, k=k)
    with pytest.raises(ValidationError, match="sparsity\n  Extra inputs are not permitted"):
        SAEConfig(d_in=4, sparsity=3)


def test_the_encoder_starts_at_the_decoders_transpose_times_encoder_scale(tmp_path):
    unit, scaled = TopKSAE(SAEConfig(d_in=4, scale=2, k=2)), TopKSAE(SAEConfig(d_in=4, scale=2, k=2, encoder_scale=0.5))
    assert torch.equal(unit.W_enc, unit.W_dec.T) and torch.equal(scaled.W_dec, unit.W_dec)
    torch.testing.assert_close(scaled.W_enc, unit.W_dec.T * 0.5)
    assert load_sae(save_sae(scaled, tmp_path / "sae", {}))[0].config.encoder_scale == 0.5
    with pytest.raises(ValidationError, match="encoder_scale\n  Input should be greater than 0"):
        SAEConfig(d_in=4, encoder_scale=0)


def test_store_shards_stream_in_order_and_shuffle_deterministically(tmp_path):
    store = low_rank_store(tmp_path / "acts", n=600, shard_rows=256)
    assert store.n_rows("train") == 600 and len(store.index["splits"]["train"]["shards"]) == 3
    whole = store.load("train").activations
    torch.testing.assert_close(torch.cat(list(store.batches("train", 100))), whole)
    a = torch.cat(list(store.batches("train", 100, torch.Generator().manual_seed(1))))
    b = torch.cat(list(store.batches("train", 100, torch.Generator().manual_seed(1))))
    assert torch.equal(a, b) and not torch.equal(a, whole)
    # with a device, shards move there once and the same batches are cut there ("meta": a device CI has)
    assert torch.equal(torch.cat(list(store.batches("train", 100, torch.Generator().manual_seed(1), "cpu"))), a)
    on_meta = list(store.batches("train", 100, torch.Generator().manual_seed(1), "meta"))
    assert {x.device.type for x in on_meta} == {"meta"} and sum(len(x) for x in on_meta) == 600
    assert torch.equal(a.sum(0).round(decimals=2), whole.sum(0).round(decimals=2))
    with pytest.raises(RecprobeError, match="no 'valid' activations .* capture with --splits"):
        store.n_rows("valid")


def test_push_to_hub_and_from_pretrained_round_trip(tmp_path, monkeypatch):
    """The real huggingface_hub client against a local stand-in server (tests/hub_standin.py): no network here."""
    import huggingface_hub.constants

    from tests.hub_standin import HubStandIn

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # make test sets HF_HUB_OFFLINE=1
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    sae = TopKSAE(SAEConfig(d_in=6, scale=2, k=3, seed=4))
    folder = save_sae(sae, tmp_path / "sae", {"target": "sasrec"}, {"README.md": "# card\n", "metrics.json": "{}\n"})
    (folder / "notes.txt").write_text("not for the Hub")
    with HubStandIn() as hub:
        url = TopKSAE.from_pretrained(str(folder)).push_to_hub("me/sae", endpoint=hub.endpoint, token="hf_test")
        assert "me/sae/commit/" in url
        assert sorted(hub.repos["me/sae"]) == ["README.md", "cfg.json", "metrics.json", "sae_weights.safetensors"]
        loaded = TopKSAE.from_pretrained("me/sae", endpoint=hub.endpoint, cache_dir=tmp_path / "cache", token="hf_test")
        x = torch.randn(4, 6)
        torch.testing.assert_close(loaded(x).x_hat, sae(x).x_hat)
        with pytest.raises(RecprobeError, match="neither a local SAE folder nor a Hub repo"):
            TopKSAE.from_pretrained("me/missing", endpoint=hub.endpoint, cache_dir=tmp_path / "cache", token="hf_test")


TRAIN_SCRIPT = """
import sys, torch
from safetensors.torch import save_file
from recprobe.sae import SAEConfig, SAETrainConfig, train_sae
from recprobe.activations.store import ActivationStore
torch.set_num_threads(1)
sae, result = train_sae(ActivationStore(sys.argv[1]), SAEConfig(d_in=8, scale=4, k=2, seed=3),
                        SAETrainConfig(epochs=12, batch_size=8, checkpoint_every=7), progress=False,
                        checkpoint=sys.argv[2] if sys.argv[2] != "-" else None)
save_file({n: t.contiguous() for n, t in sae.state_dict().items()}, sys.argv[3])
"""


def checkpoint_epoch(path) -> int:
    """The epoch a checkpoint was written in, from one read of the file: opening it with safetensors while the
    trainer renames a newer one into place could pair one file's header with the other's bytes."""
    data = path.read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return json.loads(header["__metadata__"]["progress"])["epoch"]


def test_training_killed_with_sigkill_resumes_to_the_same_weights(tmp_path):
    """A real `kill -9` mid-run: the rerun continues from the checkpoint and ends bit-identical to a run
    that was never interrupted (same process setup, one thread)."""
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    store = low_rank_store(tmp_path / "store", n=1200, shard_rows=500)
    run = lambda checkpoint, out: subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(store.folder),  # noqa: E731
                                                    checkpoint, str(out)])
    assert run("-", tmp_path / "reference.safetensors").wait(timeout=300) == 0
    checkpoint = tmp_path / "state.safetensors"
    process = run(str(checkpoint), tmp_path / "resumed.safetensors")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill once a checkpoint in the third epoch or later is on disk
        if checkpoint.exists() and checkpoint_epoch(checkpoint) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL and not (tmp_path / "resumed.safetensors").exists()
    assert run(str(checkpoint), tmp_path / "resumed.safetensors").wait(timeout=300) == 0
    reference, resumed = load_file(tmp_path / "reference.safetensors"), load_file(tmp_path / "resumed.safetensors")
    for name, value in reference.items():
        assert torch.equal(value, resumed[name]), name


def test_a_checkpoint_from_other_settings_is_refused(tmp_path):
    store = low_rank_store(tmp_path / "store", n=200)
    checkpoint = tmp_path / "state.safetensors"
    train_sae(store, SAEConfig(d_in=8, scale=2, k=2), SAETrainConfig(epochs=1, batch_size=32), progress=False,
              checkpoint=checkpoint)
    with pytest.raises(RecprobeError, match="other settings or data; pass the same options to resume it, or delete"):
        train_sae(store, SAEConfig(d_in=8, scale=2, k=3), SAETrainConfig(epochs=1, batch_size=32), progress=False,
                  checkpoint=checkpoint)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(RecprobeError, match="not a readable training checkpoint"):
        train_sae(store, SAEConfig(d_in=8, scale=2, k=2), SAETrainConfig(epochs=1, batch_size=32), progress=False,
                  checkpoint=checkpoint)


def _rewrite_shard(path, edit) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)


def test_bad_stores_name_the_problem(tmp_path):
    from recprobe.errors import ConfigError, DataFormatError, RunFolderError

    store = low_rank_store(tmp_path / "store", n=300, shard_rows=100)
    with pytest.raises(ConfigError, match="reads 6-wide vectors .* holds 8-wide activations; use d_in=8"):
        train_sae(store, SAEConfig(d_in=6, scale=2, k=2), progress=False)
    shard = tmp_path / "store" / "train-00001.safetensors"
    _rewrite_shard(shard, lambda t: t["activations"].__setitem__((5, 3), float("nan")))
    with pytest.raises(DataFormatError, match="train-00001.safetensors row 5 holds a non-finite activation"):
        train_sae(store, SAEConfig(d_in=8, scale=2, k=2), SAETrainConfig(epochs=1), progress=False)
    shard.write_bytes(shard.read_bytes()[:200])  # truncated
    with pytest.raises(DataFormatError, match="train-00001.safetensors is not a readable activation shard"):
        train_sae(store, SAEConfig(d_in=8, scale=2, k=2), SAETrainConfig(epochs=1), progress=False)
    writer = ActivationWriter(tmp_path / "empty", 8, {})
    writer.append("dev", Rows(torch.zeros(3, 8), torch.arange(3), torch.zeros(3, dtype=torch.long)))
    with pytest.raises(RunFolderError, match="has no 'train' activations .it has dev.; capture with --splits including train"):
        train_sae(ActivationStore(writer.close()), SAEConfig(d_in=8, scale=2, k=2), progress=False)
    writer = ActivationWriter(tmp_path / "nan", 8, {})
    rows = torch.zeros(3, 8)
    rows[2, 0] = float("inf")
    with pytest.raises(DataFormatError, match="non-finite activation for user 12 at position 7 .train split"):
        writer.append("train", Rows(rows, torch.tensor([10, 11, 12]), torch.tensor([5, 6, 7])))


def test_a_failed_training_run_leaves_the_saved_sae_as_it_was(split, tmp_path, monkeypatch):
    from recprobe.errors import DataFormatError
    from recprobe.runs.sae import train_sae_run
    from tests.conftest import sae_run

    run = sae_run(split, tmp_path, monkeypatch)
    saved = {p.name: p.read_bytes() for p in (run / "sae").iterdir()}
    _rewrite_shard(run / "activations" / "train-00000.safetensors",
                   lambda t: t["activations"].__setitem__((0, 0), float("nan")))
    # the altered shard makes training fail midway; the content check that refuses it before training starts is
    # tested on its own (test_cli_errors.py, activation-shard-swapped)
    monkeypatch.setattr(ActivationStore, "verify", lambda self, rebuild: None)
    with pytest.raises(DataFormatError, match="non-finite"):
        train_sae_run(run, {"scale": 1, "k": 2}, SAETrainConfig(epochs=3), progress=False)
    assert {p.name: p.read_bytes() for p in (run / "sae").iterdir()} == saved


def test_the_prediction_aware_term_brings_the_item_softmax_of_the_reconstruction_closer(tmp_path):
    """With k too small to reconstruct everything, the KL term trades reconstruction for what the item scores
    need: the reconstruction's item softmax is closer to the original's than without it."""
    from recprobe.errors import ConfigError
    from recprobe.sae.train import prediction_kl

    store = low_rank_store(tmp_path / "acts")
    items = torch.randn(50, 8, generator=torch.Generator().manual_seed(1)) * 3
    config = SAEConfig(d_in=8, scale=2, k=2, seed=0)
    test = torch.cat(list(store.batches("test", 1024)))
    kl = {}
    for weight in (0.0, 1.0):
        sae, _ = train_sae(store, config, SAETrainConfig(epochs=20, batch_size=64, lr=3e-3, kl_weight=weight),
                           progress=False, items=items)
        with torch.no_grad():
            kl[weight] = float(prediction_kl(test, sae.reconstruct(test), items))
    assert kl[1.0] < 0.8 * kl[0.0], kl  # measured: 0.436 against 0.650
    with pytest.raises(ConfigError, match="--kl-weight needs the target's item embeddings as wide as its 8-wide"):
        train_sae(store, config, SAETrainConfig(epochs=1, kl_weight=1.0), progress=False, items=None)


def test_encoding_on_cpu_keeps_one_block_per_thread_and_returns_fresh_values():
    """On CPU ``select`` writes its pre-activations into a block kept per thread (a fresh one each call is
    page-faulted in anew): the second call and a training pass reuse it, another thread gets its own, and no
    returned value aliases it (an earlier result stays what the dense top-k says)."""
    import threading

    from recprobe.sae import sparse

    sae = TopKSAE(SAEConfig(d_in=8, scale=4, k=3))
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))

    def dense_top(x):
        return sae.pre_acts(x).topk(3).values

    with torch.no_grad():
        first, _ = sae.encode(x)
        block = sparse._kept.block
        sae.encode(2 * x)
        assert sparse._kept.block.data_ptr() == block.data_ptr()
        assert torch.allclose(first.sort(1, descending=True).values, dense_top(x))
    block.fill_(float("nan"))
    sae(x).x_hat.sum().backward()  # a training pass writes into the same block (its forward is outside autograd)
    assert sparse._kept.block.data_ptr() == block.data_ptr() and torch.isfinite(block).all()
    assert sae.W_enc.grad.abs().sum() > 0
    theirs = []

    def encode_elsewhere():
        with torch.no_grad():
            sae.encode(x)
            theirs.append(sparse._kept.block.data_ptr())

    thread = threading.Thread(target=encode_elsewhere)
    thread.start()
    thread.join()
    assert theirs and theirs[0] != block.data_ptr()
