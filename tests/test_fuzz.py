"""Fuzzing the readers: whatever bytes a file holds, a reader either loads it or raises recprobe's own error,
never a pandas, json or safetensors exception."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recprobe.activations.store import ActivationStore, ActivationWriter, Rows
from recprobe.data.readers import (
    normalize_id,
    read_atomic_inter,
    read_atomic_item,
    read_movielens_movies,
    read_movielens_ratings,
    read_rechorus,
    read_rechorus_item_meta,
)
from recprobe.errors import DataFormatError, RecprobeError
from recprobe.sae import SAEConfig, TopKSAE, load_sae, save_sae

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
cells = st.one_of(st.integers(-5, 10**6).map(str), st.floats(allow_nan=True).map(str), st.text(max_size=6),
                  st.sampled_from(["", "nan", "1e999", "-", "\t", '"', "user_id:token", "9" * 30]))


def table_text(separator: str, header: str) -> st.SearchStrategy[str]:
    """A plausible header with junk rows, or junk altogether."""
    row = st.lists(cells, min_size=0, max_size=6).map(separator.join)
    rows = st.lists(row, max_size=8).map("\n".join)
    return st.one_of(rows.map(lambda body: header + "\n" + body), rows, st.text(max_size=200))


def loads_or_refuses(read, path) -> None:
    """Loading or a RecprobeError are both fine; any other exception fails the test."""
    with contextlib.suppress(RecprobeError):
        read(path)


READERS = [
    (read_atomic_inter, "x.inter", "\t", "user_id:token\titem_id:token\trating:float\ttimestamp:float"),
    (read_atomic_item, "x.item", "\t", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"),
    (read_rechorus, "train.csv", "\t", "user_id\titem_id\ttime"),
    (read_rechorus_item_meta, "item_meta.csv", "\t", "item_id\ti_category"),
    (read_movielens_ratings, "ratings.dat", "::", "1::2::5::978300760"),
    (read_movielens_movies, "movies.dat", "::", "1::Toy Story (1995)::Animation|Children's"),
]


@pytest.mark.parametrize(("read", "name", "separator", "header"), READERS, ids=[r[1] for r in READERS])
def test_data_readers_load_or_refuse(tmp_path, read, name, separator, header):
    @FUZZ
    @given(table_text(separator, header), st.binary(max_size=64), st.booleans())
    def check(text, noise, as_bytes):
        path = tmp_path / name
        if as_bytes:
            path.write_bytes(text.encode("utf-8", "surrogatepass") + noise)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        loads_or_refuses(read, path)

    check()


@FUZZ
@given(st.dictionaries(st.sampled_from(["architecture", "d_in", "d_sae", "k", "recprobe", "dtype"]),
                       st.one_of(st.integers(-3, 40), st.text(max_size=8), st.none(), st.just("topk"),
                                 st.dictionaries(st.sampled_from(["config", "provenance"]), st.just({"d_in": 4}))),
                       max_size=6),
       st.booleans())
def test_sae_cfg_json_loads_or_refuses(tmp_path, cfg, broken_json):
    folder = save_sae(TopKSAE(SAEConfig(d_in=4, scale=2, k=2)), tmp_path / "sae", {})
    (folder / "cfg.json").write_text(json.dumps(cfg)[:-1] if broken_json else json.dumps(cfg))
    loads_or_refuses(load_sae, folder)


@FUZZ
@given(st.integers(0, 300), st.binary(max_size=64), st.sampled_from(["truncate", "header", "append"]))
def test_safetensors_headers_load_or_refuse(tmp_path, cut, noise, how):
    """Damaged SAE weights and activation shards: cut short, a forged header length, junk appended."""
    folder = save_sae(TopKSAE(SAEConfig(d_in=4, scale=2, k=2)), tmp_path / "sae", {})
    shutil.rmtree(tmp_path / "store", ignore_errors=True)  # hypothesis reuses tmp_path across examples
    writer = ActivationWriter(tmp_path / "store", 4, {})
    writer.append("train", Rows(torch.zeros(5, 4), torch.arange(5), torch.zeros(5, dtype=torch.long)))
    store = ActivationStore(writer.close())
    for path in (folder / "sae_weights.safetensors", tmp_path / "store" / "train-00000.safetensors"):
        data = path.read_bytes()
        if how == "truncate":
            data = data[:cut]
        elif how == "header":
            data = struct.pack("<Q", cut * 997) + data[8:]
        else:
            data = data + noise
        path.write_bytes(data)
    loads_or_refuses(load_sae, folder)
    loads_or_refuses(lambda s: list(s.batches("train", 2)), store)


# ---- content, not just "loads or refuses" ----

ids = st.one_of(st.integers(0, 10**6).map(str), st.text(alphabet="abcdefXYZ_-0123456789", min_size=1, max_size=8))
interactions = st.lists(st.tuples(ids, ids, st.floats(-1e9, 1e9, allow_nan=False)), min_size=1, max_size=40)


@FUZZ
@given(interactions)
def test_an_inter_file_reads_back_exactly_what_was_written(tmp_path, rows):
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(f"{u}\t{i}\t{t!r}\n" for u, i, t in rows))
    frame = read_atomic_inter(path)
    assert frame["user"].tolist() == [normalize_id(u) for u, _, _ in rows]
    assert frame["item"].tolist() == [normalize_id(i) for _, i, _ in rows]
    assert frame["time"].tolist() == [t for _, _, t in rows]


titles = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
                 min_size=3, max_size=30).filter(lambda t: t.strip() == t and len(t) >= 3)


@FUZZ
@given(st.lists(titles, min_size=1, max_size=20), st.integers(0, 19), st.sampled_from(["\t", "\n", ""]))
def test_item_titles_read_back_exactly_or_the_bad_line_is_named(tmp_path, names, broken, inside):
    path = tmp_path / "x.item"
    written = [f"{name[:2]}{inside}{name[2:]}" if i == broken % len(names) else name for i, name in enumerate(names)]
    path.write_text("item_id:token\ttitle:token_seq\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(written)))
    if inside:  # a tab or line break inside one title (never at its ends)
        with pytest.raises(DataFormatError, match=f"line {broken % len(names) + 2 + (inside == chr(10))} has"):
            read_atomic_item(path)
        return
    meta = read_atomic_item(path)
    assert [meta[str(i)][0] for i in range(len(names))] == names


@FUZZ
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 15), st.integers(0, 30)), min_size=30, max_size=200))
def test_every_split_holds_out_items_that_are_never_in_train(tmp_path, rows):
    import pandas as pd

    from recprobe.data.prepare import leave_one_out
    from recprobe.errors import EmptySplitError

    frame = pd.DataFrame([(str(u), str(i), float(t)) for u, i, t in rows], columns=["user", "item", "time"])
    try:
        split = leave_one_out(frame, "fuzz", {}, min_rating=None, core=3)
    except EmptySplitError:
        return
    for u in range(split.n_users):
        train = set(split.train_items[split.train_offsets[u]:split.train_offsets[u + 1]].tolist())
        assert split.dev_items[u] != split.test_items[u]
        assert split.test_items[u] not in train and split.dev_items[u] not in train
    kept = frame.drop_duplicates(["user", "item"])
    assert len(split.train_items) + 2 * split.n_users <= len(kept)
