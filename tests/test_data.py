from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recprobe.data import export_recbole, load_dataset
from recprobe.data.prepare import given_split, k_core, leave_one_out
from recprobe.data.readers import read_atomic_inter, read_atomic_item, read_movielens_ratings, read_rechorus
from recprobe.errors import DataFormatError, DatasetNotFoundError, EmptySplitError, UnknownNameError

from .conftest import synthetic_frame, write_atomic

frames = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 50)), min_size=0, max_size=200
).map(lambda rows: pd.DataFrame(
    [(str(u), str(i), float(t)) for u, i, t in rows], columns=["user", "item", "time"]
).drop_duplicates(["user", "item"]))


@settings(max_examples=60, deadline=None)
@given(frames, st.integers(1, 6))
def test_k_core_leaves_only_dense_users_and_items_and_is_idempotent(frame, k):
    core = k_core(frame, k)
    assert (core["user"].value_counts() >= k).all()
    assert (core["item"].value_counts() >= k).all()
    assert len(k_core(core, k)) == len(core)


@settings(max_examples=40, deadline=None)
@given(frames)
def test_leave_one_out_holds_out_each_users_last_two_by_time(frame):
    try:
        split = leave_one_out(frame, "h", {}, min_rating=None, core=3)
    except EmptySplitError:
        assert len(k_core(frame, 3)) == 0
        return
    kept = k_core(frame, 3)
    assert len(split.train_items) + 2 * split.n_users == len(kept)
    for u in range(split.n_users):
        rows = kept[kept["user"] == split.user_ids[u]].reset_index(drop=True)
        order = np.lexsort((np.arange(len(rows)), rows["time"].to_numpy()))
        chronological = rows["item"].to_numpy()[order]
        assert split.item_ids[split.test_items[u]] == chronological[-1]
        assert split.item_ids[split.dev_items[u]] == chronological[-2]
        train = split.train_items[split.train_offsets[u] : split.train_offsets[u + 1]]
        assert list(split.item_ids[train]) == list(chronological[:-2])


def test_histories_are_the_last_items_oldest_first_padded_at_the_end(split):
    history, lengths = split.histories("test", 4)
    offsets, items = split.sequences("test")
    for u in range(split.n_users):
        seq = items[offsets[u] : offsets[u + 1]]
        assert seq[-1] == split.dev_items[u]
        assert list(history[u, : lengths[u]]) == list(seq[-4:])
        assert (history[u, lengths[u] :] == split.pad_item).all()


def test_exclusions_mask_train_and_the_other_held_out_item_never_the_target(split):
    for phase, other in (("dev", split.test_items), ("test", split.dev_items)):
        offsets, items = split.exclusions(phase)
        for u in range(split.n_users):
            row = set(items[offsets[u] : offsets[u + 1]])
            train = set(split.train_items[split.train_offsets[u] : split.train_offsets[u + 1]])
            assert row == train | {other[u]}
            assert split.targets(phase)[u] not in row


def test_atomic_reader_names_missing_columns(tmp_path):
    path = tmp_path / "bad.inter"
    path.write_text("uid:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['user_id'\].*RecBole atomic"):
        read_atomic_inter(path)


def test_atomic_reader_names_the_bad_row(tmp_path):
    path = tmp_path / "bad.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n1\t3\tyesterday\n")
    with pytest.raises(DataFormatError, match="'timestamp' must be a finite number, found 'yesterday' on data row 2"):
        read_atomic_inter(path)


def test_an_inter_file_read_in_chunks_is_the_file_read_whole(tmp_path, monkeypatch):
    """Chunks of 7 rows (ids spread over several chunks, " 12.0" normalised to "12") give the same frame, the same
    split, and a bad row is named by its number in the file, not in its chunk."""
    frame = synthetic_frame()
    frame.loc[3, "user"] = " 12.0"
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\trating:float\n" + "".join(
        f"{u}\t{i}\t{t}\t{r}\n" for u, i, t, r in frame.itertuples(index=False)))
    whole = read_atomic_inter(path)
    monkeypatch.setattr("recprobe.data.readers.CHUNK_ROWS", 7)
    chunked = read_atomic_inter(path)
    assert isinstance(chunked["user"].dtype, pd.CategoricalDtype)
    for column in ("user", "item", "time", "rating"):
        assert chunked[column].tolist() == whole[column].tolist()
    assert whole["user"].tolist()[3] == "12"
    made = leave_one_out(chunked, "x", {}, min_rating=None, core=3)
    as_text = whole.astype({"user": str, "item": str})
    assert made.fingerprint == leave_one_out(as_text, "x", {}, min_rating=None, core=3).fingerprint
    lines = path.read_text().splitlines()
    lines[20] = lines[20].rsplit("\t", 2)[0] + "\tyesterday\t4.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="found 'yesterday' on data row 20;"):
        read_atomic_inter(path)


def test_leave_one_out_reads_ids_as_text_whatever_their_dtype():
    """Object strings, categoricals and integers give one split; 1 and "1" are one user."""
    frame = synthetic_frame()
    as_text = leave_one_out(frame, "x", {}, min_rating=None, core=3)
    categorical = frame.astype({"user": "category", "item": "category"})
    numbers = frame.astype({"user": int, "item": int})
    mixed = frame.astype({"user": object})
    mixed.loc[mixed["user"] == "1", "user"] = 1
    mixed.loc[mixed.index[mixed["user"].eq(1)][:3], "user"] = "1"
    for other in (categorical, numbers, mixed):
        assert leave_one_out(other, "x", {}, min_rating=None, core=3).fingerprint == as_text.fingerprint
    floats = leave_one_out(frame.astype({"user": float}), "x", {}, min_rating=None, core=3)
    assert list(floats.user_ids[:3]) == ["1.0", "2.0", "3.0"]  # numeric order: "10.0" does not come second


def test_rows_without_an_id_are_dropped_with_a_note_never_joined_to_another_id():
    frame = synthetic_frame().astype({"user": object})
    frame.loc[::9, "user"] = None
    made = leave_one_out(frame, "x", {}, min_rating=None, core=3)
    without = leave_one_out(frame.dropna(), "x", {}, min_rating=None, core=3)
    assert made.fingerprint == without.fingerprint
    assert made.notes[0] == f"{frame['user'].isna().sum()} interactions without a user or item id dropped"
    categorical = leave_one_out(frame.astype({"user": "category"}), "x", {}, min_rating=None, core=3)
    assert categorical.fingerprint == without.fingerprint


def test_rechorus_reader_rejects_non_numeric_ids(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("user_id\titem_id\ttime\n1\tB00X\t5\n")
    with pytest.raises(DataFormatError, match="'item_id' must be an integer, found 'B00X'"):
        read_rechorus(path)


def test_movielens_reader_accepts_original_ratings_dat_and_rejects_other_lines(tmp_path):
    good = tmp_path / "ratings.dat"
    good.write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    frame = read_movielens_ratings(good)
    assert list(frame.columns) == ["user", "item", "time", "rating"] and len(frame) == 2
    bad = tmp_path / "bad.dat"
    bad.write_text("1::1193::5\n")
    with pytest.raises(DataFormatError, match="line 1 has 3 fields, expected 4"):
        read_movielens_ratings(bad)


def test_item_reader_builds_titles_and_attributes(tmp_path):
    path = tmp_path / "toy.item"
    path.write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n7\tHeat\t1995\tAction Crime\n")
    assert read_atomic_item(path) == {"7": ("Heat (1995)", {"release_year": ["1995"], "genre": ["Action", "Crime"]})}


def test_folder_of_atomic_files_loads_as_a_dataset(tmp_path):
    folder = write_atomic(tmp_path / "toy", synthetic_frame())
    split = load_dataset(str(folder), min_rating=None, core=3)
    assert split.n_users == 40 and split.name == "toy"


def test_filtering_everything_away_is_a_clear_error(tmp_path):
    folder = write_atomic(tmp_path / "toy", synthetic_frame())
    with pytest.raises(EmptySplitError, match="no interaction is left.*lower --min-rating or --core"):
        load_dataset(str(folder), min_rating=None, core=50)


def test_missing_dataset_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("grocery", tmp_path)
    message = str(e.value)
    assert str(tmp_path / "amazon-grocery-rechorus") in message and "--data-dir" in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="choose one of: amazon-apps-for-android, .*, grocery, ml-100k, ml-1m, ml-20m"):
        load_dataset("netflix")


def test_given_split_requires_one_dev_and_test_row_per_user():
    train = pd.DataFrame({"user": ["1", "2"], "item": ["1", "2"], "time": [1.0, 1.0]})
    dev = pd.DataFrame({"user": ["1"], "item": ["2"], "time": [2.0]})
    with pytest.raises(EmptySplitError, match="lack a dev or test row"):
        given_split(train, dev, dev, "g", {})


def test_export_round_trips_through_recbole_atomic_files(split, tmp_path):
    folder = export_recbole(split, tmp_path)
    train = read_atomic_inter(folder / "synthetic.train.inter")
    valid = read_atomic_inter(folder / "synthetic.valid.inter")
    test = read_atomic_inter(folder / "synthetic.test.inter")
    assert list(train["item"]) == list(split.item_ids[split.train_items])
    assert list(valid["item"]) == list(split.item_ids[split.dev_items])
    assert list(test["item"]) == list(split.item_ids[split.test_items])
    assert (valid["time"].to_numpy() < test["time"].to_numpy()).all()


def test_an_export_reads_back_as_the_same_split_and_catalog(tmp_path):
    """The folder export writes is a dataset recprobe reads (its whole .inter beside RecBole's benchmark files):
    the same split, titles and attributes, a multi-valued attribute and a value with a space included."""
    meta = {str(i): (f"Film {i} (199{i % 3})", {"genre": ["Sci Fi", "Drama"][: 1 + i % 2], "release_year": [f"199{i % 3}"]})
            for i in range(1, 31)}
    split = leave_one_out(synthetic_frame(), "synthetic", meta, min_rating=None, core=3)
    folder = export_recbole(split, tmp_path, "toy")
    back = load_dataset(str(folder), min_rating=None, core=3)
    assert back.fingerprint == split.fingerprint
    assert back.catalog.titles == split.catalog.titles  # the year is not appended twice
    assert [a["release_year"] for a in back.catalog.attributes] == [a["release_year"] for a in split.catalog.attributes]
    assert [a["genre"] for a in back.catalog.attributes] == [[g.replace(" ", "_") for g in a["genre"]]
                                                             for a in split.catalog.attributes]


def test_fingerprint_changes_with_the_data(split):
    other = leave_one_out(synthetic_frame(seed=1), "synthetic", {}, min_rating=None, core=3)
    assert split.fingerprint != other.fingerprint
    same = leave_one_out(synthetic_frame(), "synthetic", {}, min_rating=None, core=3)
    assert split.fingerprint == same.fingerprint


# ---- inputs that used to load silently wrong ----

def test_repeated_interactions_are_dropped_and_never_leak_a_held_out_item(tmp_path):
    frame = synthetic_frame()
    doubled = pd.concat([frame, frame.assign(time=frame["time"] + 0.5)])  # every row twice, the copy later
    split = load_dataset(str(write_atomic(tmp_path / "d", doubled)), min_rating=None, core=3)
    clean = load_dataset(str(write_atomic(tmp_path / "c", frame)), min_rating=None, core=3)
    assert split.fingerprint == clean.fingerprint  # the same split as without the repeats
    assert (split.dev_items != split.test_items).all()
    for u in range(split.n_users):
        assert split.test_items[u] not in split.train_items[split.train_offsets[u]:split.train_offsets[u + 1]]
    assert f"{len(frame):,} repeated (user, item) interactions dropped" in split.notes[0]


def test_ids_are_normalised_alike_in_every_reader(tmp_path):
    frame = synthetic_frame()
    spaced = frame.assign(user=[f" {u}" if i % 2 else u for i, u in enumerate(frame["user"])],
                          item=[f"{v}.0" if i % 3 else v for i, v in enumerate(frame["item"])])
    split = load_dataset(str(write_atomic(tmp_path / "d", spaced, items=False)), min_rating=None, core=3)
    clean = load_dataset(str(write_atomic(tmp_path / "c", frame, items=False)), min_rating=None, core=3)
    assert (split.n_users, split.n_items, split.fingerprint) == (clean.n_users, clean.n_items, clean.fingerprint)


def test_a_rating_column_of_counts_is_not_thresholded(tmp_path):
    plays = synthetic_frame().assign(rating=lambda f: np.arange(len(f)) % 40 + 1.0)  # play counts 1..40
    split = load_dataset(str(write_atomic(tmp_path / "d", plays)), min_rating=4, core=3)
    every = load_dataset(str(write_atomic(tmp_path / "e", plays)), min_rating=None, core=3)
    assert split.fingerprint == every.fingerprint  # counts under 4 are kept
    assert "counts rather than ratings: --min-rating not applied" in split.notes[0]
    stars = load_dataset(str(write_atomic(tmp_path / "s", synthetic_frame())), min_rating=4, core=3)
    assert stars.notes[0] == "positives: rating >= 4"


def item_file(folder, header: str, rows: list[str]) -> None:
    (folder / "d.item").write_text("\n".join([header, *rows]) + "\n")


def test_item_titles_come_from_a_name_column_and_a_missing_one_is_noted(tmp_path):
    folder = write_atomic(tmp_path / "d", synthetic_frame(), name="d")
    item_file(folder, "item_id:token\tartist_name:token_seq", [f"{i}\tBand {i}" for i in range(1, 31)])
    split = load_dataset(str(folder), min_rating=None, core=3)
    assert split.catalog.has_titles and split.catalog.titles[0].startswith("Band ") and split.catalog.attributes[0] == {}
    item_file(folder, "item_id:token\tlabel:token", [f"{i}\tL{i % 3}" for i in range(1, 31)])
    split = load_dataset(str(folder), min_rating=None, core=3)
    assert not split.catalog.has_titles and split.catalog.titles[0].startswith("item ")
    assert any("no title column in d.item (columns: item_id, label)" in note for note in split.notes)


def test_a_user_file_beside_the_inter_file_gives_user_attributes(tmp_path):
    from tests.conftest import synthetic_frame, write_atomic

    folder = write_atomic(tmp_path / "toy", synthetic_frame())
    (folder / "toy.user").write_text("user_id:token\tgender:token\tage:token\n1\tF\t30\n2.0\tM\t41\n")
    split = load_dataset(str(folder), min_rating=None, core=3)
    ids = list(split.user_ids)
    assert split.user_attributes["gender"][ids.index("1")] == "F" and split.user_attributes["age"][ids.index("2")] == "41"
    assert split.user_attributes["gender"][ids.index("3")] == ""  # not in the file


@pytest.mark.parametrize("command", ["fit", "probe", "export"])
def test_a_data_source_gives_the_flags_each_raw_reading_command_loads_it_again_with(command, tmp_path, monkeypatch):
    """Each command that reads raw files takes the filters declared once (``reads_raw_files``) and receives them as
    one DataFilter: the flags a DataSource writes load the same source again, and no flag gives the defaults."""
    import recprobe.cli as cli
    from recprobe.data import DataSource

    source = DataSource(dataset=str(tmp_path), data_dir=tmp_path / "d", min_rating=None, core=3)
    assert source.flags() == ["--dataset", str(tmp_path), "--min-rating", "-1", "--core", "3"]
    required = {"fit": ["--model", "bprmf", "--out", "o"], "probe": ["--adapter", "x", "--out", "o"],
                "export": ["--out", "o"]}[command]
    received = []

    class Stop(Exception):
        pass

    def load(self, **options):  # the command's source, caught where it is read
        received.append(self)
        raise Stop

    monkeypatch.chdir(tmp_path)  # where --out o would go
    monkeypatch.setattr(DataSource, "load", load)
    monkeypatch.setattr("recprobe.runs.fit.data_source", lambda data: load(data))
    for flags in ([*source.flags(), "--data-dir", str(tmp_path / "d")], ["--dataset", "ml-100k"]):
        with pytest.raises(Stop):
            cli.app([command, *required, *flags], standalone_mode=False)
    assert received == [source, DataSource(dataset="ml-100k")]
    helps = {p.name: p.help for p in cli.click_command.commands[command].params}
    assert helps["core"] == DataSource.model_fields["core"].description


def test_a_data_source_loads_what_load_dataset_loads(tmp_path):
    from recprobe.data import DataSource

    folder = write_atomic(tmp_path / "toy", synthetic_frame())
    source = DataSource(dataset=str(folder), min_rating=None, core=3)
    assert source.load(progress=False).fingerprint == load_dataset(str(folder), min_rating=None, core=3).fingerprint
    assert source.load().fingerprint != DataSource(dataset=str(folder), min_rating=4, core=3).load().fingerprint
