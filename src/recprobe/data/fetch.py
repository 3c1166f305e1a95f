"""Fetch a named dataset on first use: download its canonical file into the user cache, resume a partial
download, verify its sha256, and convert it to the files recprobe reads.

    <cache>/downloads/<file>         the verified original (kept, so a later conversion needs no network)
    <cache>/downloads/<file>.part    an unfinished download, resumed by the next fetch
    <cache>/<dataset>/               the converted dataset, moved into place whole (never half-written)

``<cache>`` is ``RECPROBE_CACHE_DIR``, or the platform's user cache folder + ``recprobe/datasets``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import platformdirs
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from recprobe.data.convert import CONVERTERS
from recprobe.data.sources import SOURCES, Source, expected_sha256, source_url
from recprobe.errors import DataFormatError, DatasetFetchError
from recprobe.settings import settings

CHUNK = 1 << 20
TIMEOUT = 30  # seconds without a byte before a connection counts as dropped
ATTEMPTS = 3  # a dropped connection is resumed this many times in one fetch


def cache_dir() -> Path:
    return settings().cache_dir or platformdirs.user_cache_path("recprobe") / "datasets"


def fetched_folder(name: str) -> Path:
    """Where a fetched dataset lives once converted (it may not exist yet)."""
    return cache_dir() / name


def fetch(name: str, *, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """The converted folder of ``name``, downloading and converting it first when it is not cached."""
    source = SOURCES[name]
    folder = fetched_folder(name)
    if folder.is_dir():
        return folder
    archive = download(source, progress=progress, log=log)
    staging = folder.with_name(f".{name}.converting-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        CONVERTERS[source.format](archive, staging, name)
        staging.rename(folder)
    except zipfile.BadZipFile:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataFormatError(f"{archive} is not a zip archive although its checksum matched; delete it and check "
                              "RECPROBE_DATASETS_CHECKSUMS") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"{name}: converted into {folder}")
    return folder


def download(source: Source, *, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """The verified original file of ``source`` in the cache, downloaded (or resumed) when missing."""
    digest, published_by = expected_sha256(source)
    url = source_url(source)
    target = cache_dir() / "downloads" / source.filename
    by_hand = f"download {url} yourself and put it at {target}"
    if digest is None:
        raise DatasetFetchError(
            f"{source.name}: no published checksum for {source.filename} (RecBole publishes none), so recprobe will "
            f"not trust a download of it; {by_hand}, then list its sha256 in a file named by "
            "RECPROBE_DATASETS_CHECKSUMS (`sha256sum` output)")
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        log(f"{source.name}: fetching {url}")
        _download(url, partial, source.size, progress, by_hand)
        partial.rename(target)
    found = sha256_of(target)
    if found != digest:
        target.unlink()
        raise DatasetFetchError(
            f"{source.name}: {url} gave a file whose sha256 is {found}, not {digest} ({published_by}); it was deleted. "
            f"Fix: check the mirror (RECPROBE_DATASETS_URL) or {by_hand}")
    return target


def _download(url: str, partial: Path, size: int | None, progress: bool, by_hand: str) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(partial.name.removesuffix(".part"), total=size)
        for attempt in range(1, ATTEMPTS + 1):
            done = partial.stat().st_size if partial.is_file() else 0
            request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    resumed = response.status == 206
                    total = _total(response, done if resumed else 0)
                    bar.update(task, total=total or size, completed=done if resumed else 0)
                    with partial.open("ab" if resumed else "wb") as out:
                        while chunk := response.read(CHUNK):
                            out.write(chunk)
                            bar.advance(task, len(chunk))
                if total is None or partial.stat().st_size >= total:
                    return
            except urllib.error.HTTPError as e:
                if e.code == 416 and done:  # asked past the end: the partial file is whole already
                    return
                raise DatasetFetchError(f"{url} answered HTTP {e.code} ({e.reason}); {by_hand}") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # offline, refused, dropped
                if attempt == ATTEMPTS or not partial.is_file():
                    reason = getattr(e, "reason", None) or e
                    kept = f"; the {partial.stat().st_size:,} bytes received are kept and the next run resumes" \
                        if partial.is_file() else ""
                    raise DatasetFetchError(f"cannot fetch {url} ({reason}){kept}; or {by_hand}") from None
    raise DatasetFetchError(f"{url} kept ending early after {ATTEMPTS} attempts; run again to resume, or {by_hand}")


def _total(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
