"""Where the course keeps data: ``COURSE_DATA`` if set, else the per-user cache dir."""

import os
import tempfile
from pathlib import Path

from platformdirs import user_cache_dir

APP_NAME = "pytorch-under-the-hood"


def data_dir() -> Path:
    """The data cache root (created if missing)."""
    configured = os.environ.get("COURSE_DATA", "").strip()
    root = Path(configured).expanduser() if configured else Path(user_cache_dir(APP_NAME))
    root.mkdir(parents=True, exist_ok=True)
    return root


def downloads_dir() -> Path:
    """Raw downloaded archives, one file per manifest entry, verified by hash."""
    path = data_dir() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def allow_download() -> bool:
    """Whether code may go to the network for data.

    Off by default (the course runs offline); ``COURSE_ALLOW_DOWNLOAD=1`` turns
    it on, and the Colab setup cell sets that for you.
    """
    return os.environ.get("COURSE_ALLOW_DOWNLOAD", "").strip().lower() in {"1", "true", "yes", "on"}


def staging_dir(prefix: str, parent: Path) -> Path:
    """A new empty folder in ``parent`` to build a dataset in, then ``os.replace`` it into place.

    ``mkdtemp`` makes it private (0700); once renamed it is the dataset's folder, which other
    users of a shared cache and the grading sandbox's unprivileged kernels must be able to read.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o755 & ~umask)
    return path
