"""Datasets that fetch themselves, against a real HTTP server (a thread in the test) serving each source's
canonical archive format. The archives are built here from the copies in ../shared/data, since the originals
(GroupLens' zips, RecBole's release) cannot be reached from the test machines; their own checksums are given
through RECPROBE_DATASETS_CHECKSUMS, as a mirror that re-packs the files would give them."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from recprobe.cli import console
from recprobe.data import load_dataset
from recprobe.data.convert import ML100K_GENRES
from recprobe.data.fetch import fetch
from recprobe.data.sources import SOURCES
from recprobe.errors import DataFormatError, DatasetFetchError
from tests.test_cli import assert_one_line_error, run_cli


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (name -> bytes) with byte ranges; ``behaviour`` (name -> "truncate" or "drop-once")
    sends a short file, or cuts the first connection half-way; every request is kept in ``seen``."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.behaviour, self.seen = {}, {}, []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mirror"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[1]
        self.server.seen.append((name, self.headers.get("Range")))
        if name not in self.server.files:
            self.send_error(404)
            return
        body, start = self.server.files[name], 0
        behaviour = self.server.behaviour.get(name)
        if behaviour == "truncate":
            body = body[: len(body) // 2]
        ranged = self.headers.get("Range")
        if ranged:
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if behaviour == "drop-once":
            del self.server.behaviour[name]
            self.wfile.write(body[start: start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


def serving(monkeypatch, tmp_path) -> Server:
    """A started server, named by RECPROBE_DATASETS_URL, with the cache in ``tmp_path``; stopped at exit."""
    served = Server()
    threading.Thread(target=served.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("RECPROBE_DATASETS_URL", served.url)
    monkeypatch.setenv("RECPROBE_CACHE_DIR", str(tmp_path / "cache"))
    return served


@pytest.fixture
def server(monkeypatch, tmp_path):
    served = serving(monkeypatch, tmp_path)
    yield served
    served.shutdown()
    served.server_close()


def publish(server, monkeypatch, tmp_path, files: dict[str, bytes], checksums: dict[str, bytes] | None = None) -> None:
    """Serve ``files`` and name their sha256 (of ``checksums``' bytes where given: the file the mirror should serve)."""
    server.files.update(files)
    listing = tmp_path / "SHA256SUMS"
    lines = [f"{hashlib.sha256((checksums or {}).get(n, body)).hexdigest()}  {n}" for n, body in server.files.items()]
    listing.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("RECPROBE_DATASETS_CHECKSUMS", str(listing))


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def atomic(shared: Path, suffix: str) -> pd.DataFrame:
    return pd.read_csv(shared / "movielens-100k" / f"ml-100k.{suffix}", sep="\t", dtype=str, keep_default_na=False)


def grouplens_100k(shared: Path) -> bytes:
    """GroupLens' ml-100k.zip layout (u.data tab-separated; u.item and u.user pipe-separated, u.item in Latin-1
    with the year in the title and 19 genre flags), rebuilt from RecBole's conversion of it."""
    inter, item, user = atomic(shared, "inter"), atomic(shared, "item"), atomic(shared, "user")
    data = "".join(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\n" for r in inter.itertuples(index=False))
    rows = []
    for number, title, year, genres in item.itertuples(index=False):
        flags = "|".join("1" if g in genres.split(" ") else "0" for g in ML100K_GENRES)
        year = year if year.isdigit() else ""  # RecBole's "unkonwn" (item 267) has no title or date in u.item
        named = f"{title} ({year})" if year else title
        rows.append(f"{number}|{named}|{'01-Jan-' + year if year else ''}||http://us.imdb.com/x|{flags}\n")
    users = "".join("|".join(r) + "\n" for r in user.itertuples(index=False))
    return zipped({"ml-100k/u.data": data.encode(), "ml-100k/u.item": "".join(rows).encode("latin-1"),
                   "ml-100k/u.user": users.encode(), "ml-100k/README": b"MovieLens 100K"})


def grouplens_1m(shared: Path) -> bytes:
    folder = shared / "movielens-1m"
    ratings = gzip.decompress((folder / "ratings_users0001-2999.dat.gz").read_bytes())
    return zipped({"ml-1m/ratings.dat": ratings, "ml-1m/movies.dat": (folder / "movies.dat").read_bytes(),
                   "ml-1m/users.dat": (folder / "users.dat").read_bytes(), "ml-1m/README": b"MovieLens 1M"})


def grouplens_20m_layout(shared: Path) -> bytes:
    """ml-20m.zip's layout (ratings.csv, movies.csv with 'Title (year)' and '|'-joined genres), filled with
    MovieLens-100K's interactions so it loads as the same split."""
    inter, item = atomic(shared, "inter"), atomic(shared, "item")
    ratings = "userId,movieId,rating,timestamp\n" + "".join(f"{r[0]},{r[1]},{r[2]},{r[3]}\n" for r in inter.itertuples(index=False))
    movies = pd.DataFrame({"movieId": item.iloc[:, 0],
                           "title": [f"{t} ({y})" if y else t for t, y in zip(item.iloc[:, 1], item.iloc[:, 2], strict=True)],
                           "genres": [g.replace(" ", "|") or "(no genres listed)" for g in item.iloc[:, 3]]})
    return zipped({"ml-20m/ratings.csv": ratings.encode(), "ml-20m/movies.csv": movies.to_csv(index=False).encode()})


def same_data(fetched, reference) -> None:
    """The same interactions, split, titles and attributes (but for RecBole's placeholder "unkonwn" year)."""
    assert fetched.fingerprint == reference.fingerprint
    dated = [i for i, a in enumerate(reference.catalog.attributes) if a.get("release_year") != ["unkonwn"]]
    assert len(dated) >= len(reference.catalog) - 1
    for side in ("titles", "attributes"):
        assert [getattr(fetched.catalog, side)[i] for i in dated] == [getattr(reference.catalog, side)[i] for i in dated]


def test_ml_100k_is_fetched_converted_and_reads_as_recboles_copy(server, monkeypatch, tmp_path, shared_data):
    publish(server, monkeypatch, tmp_path, {"ml-100k.zip": grouplens_100k(shared_data)})
    folder = fetch("ml-100k", progress=False, log=lambda line: None)
    assert sorted(p.name for p in folder.iterdir()) == ["ml-100k.inter", "ml-100k.item", "ml-100k.user"]
    fetched = load_dataset("ml-100k", tmp_path / "empty", fetch_missing=False)  # the cache comes before RecBole's copy
    same_data(fetched, load_dataset(str(shared_data / "movielens-100k")))
    assert fetched.user_attributes["occupation"][0] != ""


def test_a_missing_dataset_is_fetched_on_first_use_and_never_again(server, monkeypatch, tmp_path, shared_data):
    publish(server, monkeypatch, tmp_path, {"ml-1m.zip": grouplens_1m(shared_data)})
    first = load_dataset("ml-1m", tmp_path / "empty", progress=False)
    assert [name for name, _ in server.seen] == ["ml-1m.zip"]
    again = load_dataset("ml-1m", tmp_path / "empty", progress=False)
    assert len(server.seen) == 1 and again.fingerprint == first.fingerprint
    same_data(first, load_dataset("ml-1m", shared_data))
    assert set(first.user_attributes) >= {"gender", "age", "occupation"}


def test_ml_20m_is_converted_from_its_csv_layout(server, monkeypatch, tmp_path, shared_data):
    publish(server, monkeypatch, tmp_path, {"ml-20m.zip": grouplens_20m_layout(shared_data)})
    fetched = load_dataset("ml-20m", tmp_path / "empty", progress=False)
    reference = load_dataset(str(shared_data / "movielens-100k"))
    assert fetched.fingerprint == reference.fingerprint
    item = reference.item_ids.tolist().index("242")
    assert fetched.catalog.attributes[item] == reference.catalog.attributes[item]  # year and genres carried over


def test_a_dropped_connection_is_resumed_where_it_stopped(server, monkeypatch, tmp_path, shared_data):
    publish(server, monkeypatch, tmp_path, {"ml-1m.zip": grouplens_1m(shared_data)})
    server.behaviour["ml-1m.zip"] = "drop-once"
    load_dataset("ml-1m", tmp_path / "empty", progress=False)
    (first, _), (second, ranged) = server.seen
    assert first == second == "ml-1m.zip" and ranged is not None and int(ranged.split("=")[1].rstrip("-")) > 0


@pytest.mark.parametrize("fault", ["truncate", "tampered"])
def test_a_truncated_or_tampered_file_is_refused_and_nothing_is_left_to_read(server, monkeypatch, tmp_path, shared_data,
                                                                              fault, capsys):
    good = grouplens_1m(shared_data)
    if fault == "tampered":
        publish(server, monkeypatch, tmp_path, {"ml-1m.zip": good[:100] + b"X" + good[101:]}, {"ml-1m.zip": good})
    else:
        publish(server, monkeypatch, tmp_path, {"ml-1m.zip": good})
        server.behaviour["ml-1m.zip"] = "truncate"
    code, _, err = run_cli(capsys, "fit", "--model", "bprmf", "--dataset", "ml-1m", "--out", str(tmp_path / "r"),
                           "--data-dir", str(tmp_path / "empty"))
    digest = hashlib.sha256(good).hexdigest()
    assert_one_line_error(code, err, "dataset 'ml-1m'", f"{server.url}/ml-1m.zip gave a file whose sha256 is",
                          f"not {digest}", "it was deleted")
    cache = tmp_path / "cache"
    assert not (cache / "ml-1m").exists() and list((cache / "downloads").iterdir()) == []
    assert not (tmp_path / "r").exists()


def test_offline_fit_names_the_url_and_where_to_put_the_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RECPROBE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "fit", "--model", "bprmf", "--dataset", "ml-1m", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "cannot fetch http://127.0.0.1:9/offline/ml-1m.zip",
                          f"put it at {tmp_path / 'cache' / 'downloads' / 'ml-1m.zip'}", "--data-dir")
    assert not (tmp_path / "cache" / "ml-1m").exists() and not (tmp_path / "r").exists()


def test_the_published_checksums_are_the_ones_named_in_the_code():
    assert SOURCES["ml-100k"].sha256 == "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
    assert SOURCES["ml-1m"].url == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert all("tensorflow_datasets/url_checksums/movielens.txt" in SOURCES[n].published_by
               for n in ("ml-100k", "ml-1m", "ml-20m"))


def test_an_amazon_category_needs_a_checksum_and_then_reads_as_recbole_atomic_files(server, monkeypatch, tmp_path):
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"u{u}\ti{(u * 7 + t) % 40}\t5\t{1000 + t}\n" for u in range(30) for t in range(8))
    body = zipped({"Amazon_Baby/Amazon_Baby.inter": inter.encode()})
    server.files["Amazon_Baby.zip"] = body
    with pytest.raises(DatasetFetchError, match="no published checksum for Amazon_Baby.zip .* RECPROBE_DATASETS_CHECKSUMS"):
        fetch("amazon-baby", progress=False, log=lambda line: None)
    assert server.seen == []  # nothing was downloaded to be trusted later
    publish(server, monkeypatch, tmp_path, {})
    split = load_dataset("amazon-baby", tmp_path / "empty", progress=False, core=3)
    assert split.n_users == 30 and split.name == "amazon-baby"


def test_a_checksum_list_with_a_bad_line_is_refused_with_its_line(monkeypatch, tmp_path):
    listing = tmp_path / "SHA256SUMS"
    listing.write_text("# mirror\nnot-a-digest  ml-1m.zip\n")
    monkeypatch.setenv("RECPROBE_DATASETS_CHECKSUMS", str(listing))
    with pytest.raises(DataFormatError, match=r"SHA256SUMS, line 2: expected `<sha256>  <file name>`"):
        fetch("ml-1m", progress=False, log=lambda line: None)


def test_datasets_fetches_on_demand_and_lists_what_is_cached(server, monkeypatch, tmp_path, shared_data, capsys):
    publish(server, monkeypatch, tmp_path, {"ml-1m.zip": grouplens_1m(shared_data)})
    code, out, _ = run_cli(capsys, "datasets", "--data-dir", str(tmp_path / "empty"))
    listed = plain(out)
    assert code == 0 and "ml-1m missing 6 MB" in listed and "ml-20m missing 199 MB" in listed, listed
    assert "amazon-baby" in listed and "checksum you supply" in listed
    code, out, _ = run_cli(capsys, "datasets", "--fetch", "ml-1m")
    assert code == 0 and f"ml-1m: ready at {tmp_path / 'cache' / 'ml-1m'}" in plain(out)
    monkeypatch.setattr(console, "width", 400)  # the path on one line (a narrow console folds it)
    code, out, _ = run_cli(capsys, "datasets", "--data-dir", str(tmp_path / "empty"))
    assert f"ml-1m {tmp_path / 'cache' / 'ml-1m'} 6 MB" in plain(out)
    code, _, err = run_cli(capsys, "datasets", "--fetch", "grocery")
    assert_one_line_error(code, err, "--fetch: 'grocery' cannot be fetched; these can: ml-100k, ml-1m, ml-20m")


def plain(out: str) -> str:
    """The console's text without the table's box characters, one space between words."""
    return " ".join(out.translate({ord(c): " " for c in "│┃┏┓┗┛┡┩└┘━─┳┻╇┴"}).split())
