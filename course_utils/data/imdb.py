"""The IMDB Large Movie Review Dataset, read straight from its archive (lesson 06, X6).

Maas, Daly, Pham, Huang, Ng & Potts (2011), "Learning Word Vectors for
Sentiment Analysis", ACL. 50,000 full-length reviews, 25,000 for training and
25,000 for testing, half positive (rating >= 7 of 10) and half negative
(rating <= 4). The archive (84 MB, ``aclImdb_v1.tar.gz``) is downloaded once by
:func:`course_utils.data.fetch.fetch` (checksummed, with a progress bar; only
when downloads are allowed) and then read member by member with ``tarfile``'s
streaming mode: nothing is extracted to disk.

    for label, text in imdb("train"):   # label 1 = positive, 0 = negative
        ...

Texts are returned as stored, HTML line breaks (``<br />``) included.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Iterator

from course_utils.data.cache import downloads_dir
from course_utils.data.fetch import fetch

ARCHIVE = "aclImdb_v1.tar.gz"
SPLITS = ("train", "test")
LABELS = {"pos": 1, "neg": 0}
# aclImdb/<split>/<pos|neg>/<id>_<stars>.txt  (train/unsup and the .feat/.vocab files are skipped)
_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


def imdb_path(*, urls: list[str] | None = None, known_hash: str | None = None,
              download: bool | None = None) -> Path:
    """The verified archive in the cache (fetched first if missing and downloads are allowed)."""
    return fetch(ARCHIVE, urls=urls, known_hash=known_hash, download=download)


def imdb_is_cached() -> bool:
    """True when the archive sits in the download cache (checksum not verified here)."""
    return (downloads_dir() / ARCHIVE).is_file()


def iter_imdb_members(path: str | Path, split: str) -> Iterator[tuple[str, int, int, str]]:
    """Yield ``(member_name, label, stars, text)`` for ``split`` from the archive at ``path``.

    Reads the gzip stream once, in archive order (``r|gz``: no seeking, no extraction).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r} (IMDB has no "
                         "validation split: carve one out of 'train').")
    with tarfile.open(path, mode="r|gz") as archive:
        for member in archive:
            match = _MEMBER.match(member.name)
            if not member.isfile() or match is None or match.group(1) != split:
                continue
            handle = archive.extractfile(member)
            text = handle.read().decode("utf-8", errors="replace")
            yield member.name, LABELS[match.group(2)], int(match.group(4)), text


def imdb(split: str, *, urls: list[str] | None = None, known_hash: str | None = None,
         download: bool | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(label, text)`` for ``split`` (``"train"`` or ``"test"``): 1 = positive, 0 = negative.

    ``urls``/``known_hash``/``download`` go to :func:`~course_utils.data.fetch.fetch`
    (defaults: the manifest entry, and downloads only when ``COURSE_ALLOW_DOWNLOAD=1``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    path = imdb_path(urls=urls, known_hash=known_hash, download=download)
    for _, label, _, text in iter_imdb_members(path, split):
        yield label, text
