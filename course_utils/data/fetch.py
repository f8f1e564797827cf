"""Checksummed downloads with ordered mirrors, built on ``pooch``.

pooch already gives hashing, a cache, progress bars and atomic writes (it
downloads to a temporary file and moves it into place only after the hash
matched). What it lacks, and this module adds: a manifest of known files, an
ordered list of mirrors per file, a clean cache after any failure, and an
offline error that says how to pre-seed the cache by hand.

    path = fetch("cifar-10-python.tar.gz")         # cache, then each URL in order
    add_to_cache("~/Downloads/cifar-10-python.tar.gz")   # what `course data add` does
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import resources
from pathlib import Path

from course_utils.data.cache import allow_download, downloads_dir


class FetchError(RuntimeError):
    """No source could provide a file with the right hash."""


def manifest() -> dict[str, dict]:
    """The known third-party files: name -> {hash, size, urls, description}."""
    packaged = resources.files("course_utils.data") / "manifest.json"
    if packaged.is_file():  # inside a built wheel
        text = packaged.read_text()
    else:  # a source checkout: the manifest lives in datasets/
        text = (Path(__file__).resolve().parents[2] / "datasets" / "manifest.json").read_text()
    return json.loads(text)["files"]


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_matches(path: str | Path, known_hash: str) -> bool:
    """``known_hash`` is pooch-style: ``"sha256:<hex>"`` or ``"md5:<hex>"``."""
    algorithm, _, expected = known_hash.partition(":")
    return file_hash(path, algorithm).lower() == expected.lower()


def mirror_urls(name: str, urls: list[str]) -> list[str]:
    """The manifest URLs followed by ``COURSE_MIRRORS`` (comma-separated base URLs)."""
    extra = [u.strip() for u in os.environ.get("COURSE_MIRRORS", "").split(",") if u.strip()]
    return list(urls) + [base.rstrip("/") + "/" + name for base in extra]


def fetch(name: str, *, urls: list[str] | None = None, known_hash: str | None = None,
          download: bool | None = None, progressbar: bool = True) -> Path:
    """Return a verified local copy of ``name``, downloading it if allowed.

    Args:
        name: a file name from the manifest (or any name when ``urls`` and
            ``known_hash`` are given).
        urls: sources to try in order; default: the manifest's, then mirrors.
        known_hash: pooch-style hash; default: the manifest's.
        download: allow the network (default: :func:`allow_download`).

    Raises:
        FetchError: when neither the cache nor any source gives a file whose
            hash matches. The message lists every source's reason and how to
            pre-seed the cache with ``course data add``.
    """
    entry = manifest().get(name, {})
    known_hash = known_hash or entry.get("hash")
    if not known_hash:
        raise FetchError(f"'{name}' is not in the data manifest; pass known_hash= and urls=.")
    sources = mirror_urls(name, urls if urls is not None else entry.get("urls", []))
    target = downloads_dir() / name

    if target.exists():
        if hash_matches(target, known_hash):
            return target
        target.unlink()  # a corrupt or stale copy is worse than none

    download = allow_download() if download is None else download
    if not download:
        raise FetchError(_offline_message(name, target, ["downloads are off (set "
                                                         "COURSE_ALLOW_DOWNLOAD=1 to allow them)"]))
    import pooch  # imported late: only downloads need it

    import shutil
    import tempfile

    reasons = []
    target.parent.mkdir(parents=True, exist_ok=True)
    for url in sources:
        # Each attempt downloads into a folder of its own: a failure removes only what
        # this attempt wrote, never another download's files in the same cache folder.
        attempt = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
        try:
            path = pooch.retrieve(url, known_hash=known_hash, fname=name, path=attempt,
                                  progressbar=progressbar)
            Path(path).replace(target)  # verified: moved into place in one step
            return target
        except Exception as exc:  # noqa: BLE001 - every failure moves on to the next mirror
            reasons.append(f"{url}: {_short_reason(exc)}")
        finally:
            shutil.rmtree(attempt, ignore_errors=True)
    raise FetchError(_offline_message(name, target, reasons or ["no URLs known"]))


def _short_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "hash" in text.lower() and "match" in text.lower():
        return "checksum mismatch (corrupt, truncated or a different file)"
    return f"{type(exc).__name__}: {text[:160]}"


def _offline_message(name: str, target: Path, reasons: list[str]) -> str:
    lines = [f"Could not get '{name}' with a matching checksum."]
    lines += [f"  - {r}" for r in reasons]
    lines += [
        "To use a copy you obtained elsewhere, pre-seed the cache:",
        f"  course data add /path/to/{name}",
        f"(it checks the hash and files it as {target}).",
    ]
    return "\n".join(lines)


def add_to_cache(path: str | Path, name: str | None = None) -> Path:
    """Verify a local file against the manifest and copy it into the cache.

    ``name`` defaults to the file's own name; a renamed download is matched by hash.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise FetchError(f"{source} is not a file.")
    files = manifest()
    if name is None:
        name = source.name if source.name in files else _name_by_hash(source, files)
    if name not in files:
        raise FetchError(f"{source.name} matches no file in the data manifest "
                         f"(known: {', '.join(sorted(files))}).")
    if not hash_matches(source, files[name]["hash"]):
        raise FetchError(f"{source} does not match the known checksum of {name} "
                         f"({files[name]['hash']}); the copy is corrupt or a different file.")
    target = downloads_dir() / name
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)  # atomic: the cache never holds half a file
    return target


def _name_by_hash(source: Path, files: dict[str, dict]) -> str | None:
    digests: dict[str, str] = {}
    for name, entry in files.items():
        algorithm, _, expected = entry["hash"].partition(":")
        if algorithm not in digests:
            digests[algorithm] = file_hash(source, algorithm)
        if digests[algorithm] == expected.lower():
            return name
    return None
