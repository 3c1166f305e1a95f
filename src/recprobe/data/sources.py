"""Where each fetchable dataset comes from: its canonical public file, its size and sha256, and who published
that checksum. ``recprobe.data.fetch`` downloads and verifies; ``recprobe.data.convert`` turns the file into
what the readers take.

The MovieLens sizes and sha256 sums are TensorFlow Datasets' published list,
``tensorflow_datasets/url_checksums/movielens.txt`` (github.com/tensorflow/datasets, commit 1c076ac3). RecBole
publishes no checksum for its atomic files (``recbole/properties/dataset/url.yaml`` lists only URLs), so an
Amazon category is fetched only with a checksum the user supplies (``RECPROBE_DATASETS_CHECKSUMS``): recprobe
never trusts an unverified download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recprobe.errors import DataFormatError
from recprobe.settings import settings

TFDS = "TensorFlow Datasets, tensorflow_datasets/url_checksums/movielens.txt (commit 1c076ac3)"
GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
RECBOLE_AMAZON = "https://recbole.s3-accelerate.amazonaws.com/ProcessedDatasets/Amazon_ratings/"


@dataclass(frozen=True)
class Source:
    name: str  # the dataset name recprobe knows it by
    url: str  # the canonical public file
    size: int | None  # bytes, where published
    sha256: str | None  # where published; None: only a checksum the user supplies makes it fetchable
    published_by: str | None  # who published the checksum
    format: str  # how ``recprobe.data.convert`` reads it: "ml-100k", "ml-1m", "ml-20m", "recbole-atomic"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


# Amazon review categories of RecBole's atomic release (2014 ratings-only files), as RecBole names them.
AMAZON = {
    "amazon-apps-for-android": "Apps_for_Android", "amazon-automotive": "Automotive", "amazon-baby": "Baby",
    "amazon-beauty": "Beauty", "amazon-books": "Books", "amazon-cds-vinyl": "CDs_and_Vinyl",
    "amazon-cell-phones-accessories": "Cell_Phones_and_Accessories",
    "amazon-clothing-shoes-jewelry": "Clothing_Shoes_and_Jewelry", "amazon-digital-music": "Digital_Music",
    "amazon-electronics": "Electronics", "amazon-grocery-gourmet-food": "Grocery_and_Gourmet_Food",
    "amazon-health-personal-care": "Health_and_Personal_Care", "amazon-home-kitchen": "Home_and_Kitchen",
    "amazon-instant-video": "Instant_Video", "amazon-kindle-store": "Kindle_Store", "amazon-movies-tv": "Movies_and_TV",
    "amazon-musical-instruments": "Musical_Instruments", "amazon-office-products": "Office_Products",
    "amazon-patio-lawn-garden": "Patio_Lawn_and_Garden", "amazon-pet-supplies": "Pet_Supplies",
    "amazon-sports-outdoors": "Sports_and_Outdoors", "amazon-tools-home-improvement": "Tools_and_Home_Improvement",
    "amazon-toys-games": "Toys_and_Games", "amazon-video-games": "Video_Games",
}

SOURCES = {
    source.name: source
    for source in (
        Source("ml-100k", GROUPLENS + "ml-100k.zip", 4924029,
               "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", TFDS, "ml-100k"),
        Source("ml-1m", GROUPLENS + "ml-1m.zip", 5917549,
               "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", TFDS, "ml-1m"),
        Source("ml-20m", GROUPLENS + "ml-20m.zip", 198702078,
               "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", TFDS, "ml-20m"),
        *(Source(name, f"{RECBOLE_AMAZON}Amazon_{category}.zip", None, None, None, "recbole-atomic")
          for name, category in AMAZON.items()),
    )
}


def source_url(source: Source) -> str:
    """The URL to fetch: the canonical one, or the same file name under ``RECPROBE_DATASETS_URL`` (a mirror)."""
    mirror = settings().datasets_url
    return f"{mirror.rstrip('/')}/{source.filename}" if mirror else source.url


def expected_sha256(source: Source) -> tuple[str | None, str | None]:
    """(sha256, who says so): from ``RECPROBE_DATASETS_CHECKSUMS`` where it names the file, else the published one."""
    given = user_checksums().get(source.filename)
    if given is not None:
        return given, str(settings().datasets_checksums)
    return source.sha256, source.published_by


def user_checksums() -> dict[str, str]:
    """file name -> sha256 from the file ``RECPROBE_DATASETS_CHECKSUMS`` names: lines ``<sha256>  <file name>``
    (what ``sha256sum`` prints), for a mirror that re-packs the files or a source that publishes none."""
    path = settings().datasets_checksums
    if path is None:
        return {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise DataFormatError(f"RECPROBE_DATASETS_CHECKSUMS={path} cannot be read ({e.strerror}); point it at a file "
                              "of `<sha256>  <file name>` lines, as sha256sum prints them") from None
    found = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()) or not name:
            raise DataFormatError(f"{path}, line {number}: expected `<sha256>  <file name>` (64 hex digits, as "
                                  f"sha256sum prints), got {line.strip()[:80]!r}")
        found[name] = digest.lower()
    return found
