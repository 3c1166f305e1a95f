"""Turn a fetched dataset's canonical archive into the files recprobe's readers take, into a new folder.

- ``ml-100k`` (GroupLens ``ml-100k.zip``: ``u.data``, ``u.item``, ``u.user``): RecBole atomic files, as RecBole
  writes them (``ml-100k.inter``, ``.item`` with the title, release year and genres, ``.user``);
- ``ml-1m`` (``ml-1m.zip``): ``ratings.dat``, ``movies.dat`` and ``users.dat`` as they are;
- ``ml-20m`` (``ml-20m.zip``: ``ratings.csv``, ``movies.csv``): atomic ``ml-20m.inter`` and ``ml-20m.item``,
  streamed (20M lines are never held at once);
- ``recbole-atomic`` (RecBole's release): its ``.inter``, ``.item`` and ``.user`` files as they are.

Only the named members are read from an archive, never extracted by their own paths.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from recprobe.errors import DataFormatError

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")  # u.item's 19 genre flags, in u.genre's order
TITLE_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")  # "Toy Story (1995)"


def member(archive: zipfile.ZipFile, name: str, path: Path) -> zipfile.ZipInfo:
    """The archive's one member whose file name is ``name`` (at any depth)."""
    found = [info for info in archive.infolist() if info.filename.rsplit("/", 1)[-1] == name and not info.is_dir()]
    if len(found) != 1:
        raise DataFormatError(f"{path} holds {len(found)} files named {name}, not one; it is not the canonical archive "
                              "(delete it and fetch again)")
    return found[0]


def lines(archive: zipfile.ZipFile, name: str, path: Path, encoding: str = "utf-8") -> Iterator[str]:
    with archive.open(member(archive, name, path)) as raw:
        yield from io.TextIOWrapper(raw, encoding=encoding, newline="")


def write_lines(path: Path, header: str, rows: Iterator[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(header + "\n")
        for row in rows:
            out.write(row + "\n")


def split_title(title: str) -> tuple[str, str]:
    """("Toy Story", "1995") from "Toy Story (1995)"; the title as it is and no year when it names none."""
    match = TITLE_YEAR.search(title)
    return (title[:match.start()], match.group(1)) if match else (title.strip(), "")


def movielens_100k(path: Path, out: Path, name: str) -> None:
    out.mkdir(parents=True)
    with zipfile.ZipFile(path) as archive:
        write_lines(out / f"{name}.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float",
                    (line.rstrip("\r\n") for line in lines(archive, "u.data", path) if line.strip()))

        def items() -> Iterator[str]:
            for line in lines(archive, "u.item", path, encoding="latin-1"):  # GroupLens wrote u.item in Latin-1
                fields = line.rstrip("\r\n").split("|")
                if len(fields) != 5 + len(ML100K_GENRES):
                    continue
                title, _ = split_title(fields[1])
                year = fields[2][-4:] if fields[2] else ""
                genres = " ".join(g for g, flag in zip(ML100K_GENRES, fields[5:], strict=True) if flag == "1")
                yield f"{fields[0]}\t{title}\t{year}\t{genres}"

        write_lines(out / f"{name}.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
                    items())
        write_lines(out / f"{name}.user", "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
                    (line.rstrip("\r\n").replace("|", "\t") for line in lines(archive, "u.user", path) if line.strip()))


def movielens_1m(path: Path, out: Path, name: str) -> None:
    out.mkdir(parents=True)
    with zipfile.ZipFile(path) as archive:
        for wanted in ("ratings.dat", "movies.dat", "users.dat"):
            with archive.open(member(archive, wanted, path)) as src, (out / wanted).open("wb") as dst:
                shutil.copyfileobj(src, dst)


def movielens_20m(path: Path, out: Path, name: str) -> None:
    out.mkdir(parents=True)
    with zipfile.ZipFile(path) as archive:
        ratings = csv.reader(lines(archive, "ratings.csv", path))
        _expect(next(ratings, None), ["userId", "movieId", "rating", "timestamp"], "ratings.csv", path)
        write_lines(out / f"{name}.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float",
                    ("\t".join(row) for row in ratings))
        movies = csv.reader(lines(archive, "movies.csv", path))
        _expect(next(movies, None), ["movieId", "title", "genres"], "movies.csv", path)

        def items() -> Iterator[str]:
            for movie, title, genres in movies:
                title, year = split_title(title)
                kept = "" if genres == "(no genres listed)" else genres.replace("|", " ")
                yield f"{movie}\t{title.replace(chr(9), ' ')}\t{year}\t{kept}"

        write_lines(out / f"{name}.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq",
                    items())


def recbole_atomic(path: Path, out: Path, name: str) -> None:
    out.mkdir(parents=True)
    with zipfile.ZipFile(path) as archive:
        atomic = [i for i in archive.infolist() if not i.is_dir() and i.filename.endswith((".inter", ".item", ".user"))]
        if not any(i.filename.endswith(".inter") for i in atomic):
            raise DataFormatError(f"{path} holds no .inter file; it is not a RecBole atomic archive (delete it and "
                                  "fetch again)")
        for info in atomic:
            suffix = info.filename.rsplit(".", 1)[1]
            with archive.open(info) as src, (out / f"{name}.{suffix}").open("wb") as dst:
                shutil.copyfileobj(src, dst)


def _expect(header: list[str] | None, columns: list[str], file: str, path: Path) -> None:
    if header != columns:
        raise DataFormatError(f"{path}: {file} starts with {header}, not {columns}; it is not GroupLens' file (delete "
                              "it and fetch again)")


CONVERTERS: dict[str, Callable[[Path, Path, str], None]] = {
    "ml-100k": movielens_100k, "ml-1m": movielens_1m, "ml-20m": movielens_20m, "recbole-atomic": recbole_atomic,
}
