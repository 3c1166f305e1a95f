"""Every benchmark script still loads: the names it takes from recprobe exist (a constant renamed in the package
once broke one without a test noticing). Their measurements are long and run by hand; this loads each module, as
``python benchmarks/NAME.py`` would, and never calls its ``main()``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(script: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as a script run from there sees its siblings
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda path: path.stem)
def test_a_benchmark_script_loads(script, monkeypatch):
    assert callable(load(script, monkeypatch).main)


def test_table7_push_steers_a_trained_sae_along_its_encoder_rows_at_its_decoder_norms(monkeypatch):
    """``benchmarks/table7_push.py``'s last measure: the same latents, pushed along other directions. A trained
    SAE's encoder rows differ from its decoder rows, so a variant that kept the decoder would measure nothing new."""
    import torch

    from recprobe.sae.config import SAEConfig
    from recprobe.sae.topk import TopKSAE

    module = load(BENCHMARKS / "table7_push.py", monkeypatch)
    sae = TopKSAE(SAEConfig(d_in=8, scale=None, n_latents=12, k=3))
    with torch.no_grad():
        sae.W_enc.add_(torch.randn_like(sae.W_enc))  # as training leaves it: no longer the decoder's transpose
        sae.W_dec.mul_(torch.linspace(0.5, 2.0, 12)[:, None])
    along = module.AlongEncoder(sae)
    x = torch.randn(5, 8)
    assert all(torch.equal(a, b) for a, b in zip(along.encode(x), sae.encode(x), strict=True))
    assert along.n_latents == 12
    assert torch.allclose(along.W_dec.norm(dim=1), sae.W_dec.norm(dim=1))
    cosine = torch.nn.functional.cosine_similarity(along.W_dec, sae.W_enc.T, dim=1)
    assert torch.allclose(cosine, torch.ones(12), atol=1e-5)
    assert torch.nn.functional.cosine_similarity(along.W_dec, sae.W_dec, dim=1).max() < 0.99


def test_describe_from_cuts_many_release_years_into_decades_for_the_describer_and_table7_then_restores(monkeypatch):
    """``benchmarks/describe_from.py --items decades``: an item's year is read as its decade where an attribute has
    more distinct integer values than the attribute metrics keep, by the describer's features and by Table 7's
    concept items alike; another attribute, and everything after the block, is as before."""
    from recprobe.concepts.attributes import MAX_VALUES
    from recprobe.concepts.labelers import item_features, items_with
    from recprobe.data.split import Catalog

    module = load(BENCHMARKS / "describe_from.py", monkeypatch)
    years = [str(1920 + i) for i in range(MAX_VALUES + 5)]
    catalog = Catalog([f"Film {i}" for i in range(len(years))],
                      [{"release_year": [year], "genre": ["Drama"]} for year in years])
    before = item_features(catalog, 26)
    with module.years_in_decades(catalog):
        assert module.labelers.item_features(catalog, 26) == {"release_year: 1940-1949", "genre: Drama", '"Film 26"'}
        assert items_with(catalog, "release_year: 1940-1949").sum() == 10
        assert not items_with(catalog, "release_year: 1946").any()
    assert module.labelers.item_features(catalog, 26) == before == {"release_year: 1946", "genre: Drama", '"Film 26"'}
    assert items_with(catalog, "release_year: 1946").sum() == 1
