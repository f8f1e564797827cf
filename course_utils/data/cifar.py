"""CIFAR-10 from the course cache, a verified download, or the offline stand-in (lesson 05).

    train = cifar10(train=True, transform=ToTensor())
    print(describe_source(train))       # says in plain words when it is NOT CIFAR-10

Sources, in order:

1. the extracted cache ``data_dir()/cifar10/cifar-10-batches-py``;
2. the archive ``cifar-10-python.tar.gz`` in the download cache (checked by hash);
3. ``fetch("cifar-10-python.tar.gz")``: the official URL, then every mirror
   (``COURSE_MIRRORS``), each download verified against the manifest's sha256
   by pooch *before* anything is extracted, with a progress bar.

Extraction goes to a temporary folder next to the cache and is renamed into
place in one step, so the cache never holds a half-extracted dataset. With no
source available, :func:`cifar10` raises :class:`CIFARUnavailable` saying how
to pre-seed the cache (``course data add``), unless the stand-in is allowed
(``allow_standin=True``; the default in fast mode): then it loads
:mod:`course_utils.data.cifar_standin` and warns loudly.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import warnings
from pathlib import Path

from torchvision.datasets import CIFAR10

from course_utils.data import cifar_standin
from course_utils.data.cache import data_dir, staging_dir
from course_utils.data.fetch import FetchError, fetch
from course_utils.data.pypi import package_file
from course_utils.fast import is_fast

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


class CIFARUnavailable(FetchError):
    """Neither the cache nor any download source could provide CIFAR-10."""


class StandInWarning(UserWarning):
    """Numbers computed on the stand-in are not CIFAR-10 numbers."""


def cifar_root(root: str | Path | None = None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py``: ``data_dir()/cifar10``."""
    return Path(root) if root is not None else data_dir() / "cifar10"


def _complete(root: Path) -> bool:
    return all((root / FOLDER / name).is_file() for name in FILES)


def extract(archive: str | Path, root: str | Path) -> Path:
    """Extract ``cifar-10-batches-py`` from ``archive`` into ``root`` atomically.

    The archive is unpacked into a temporary folder inside ``root`` (same file
    system) and the finished folder is renamed into place, so a crash or a bad
    archive never leaves a half-written cache. Only regular files under
    ``cifar-10-batches-py/`` are taken (no links, no absolute paths).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and m.name.startswith(FOLDER + "/") and ".." not in m.name]
            tar.extractall(tmp, members=members, filter="data")
        if not _complete(tmp):
            missing = [n for n in FILES if not (tmp / FOLDER / n).is_file()]
            raise CIFARUnavailable(f"{archive} is not a CIFAR-10 python archive (missing {missing}).")
        target = root / FOLDER
        if target.exists():  # an incomplete or corrupt earlier extraction
            shutil.rmtree(target)
        os.replace(tmp / FOLDER, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cifar10(train: bool = True, transform=None, *, allow_standin: bool | None = None,
            download: bool | None = None, root: str | Path | None = None,
            urls: list[str] | None = None, known_hash: str | None = None,
            target_transform=None) -> CIFAR10:
    """CIFAR-10 as a ``torchvision.datasets.CIFAR10`` (or the stand-in when allowed).

    Args:
        train: the 50,000 training images (True) or the 10,000 test images.
        transform: applied to each PIL image (e.g. ``transforms.ToTensor()``).
        allow_standin: use the offline stand-in when CIFAR-10 cannot be had
            (default: True in fast mode, False otherwise).
        download: allow the network (default: ``COURSE_ALLOW_DOWNLOAD``).
        root: where to extract (default ``data_dir()/cifar10``).
        urls, known_hash: override the manifest's sources and hash (tests).

    The returned dataset carries ``is_standin`` (bool) and ``source`` (text);
    :func:`describe_source` turns them into a sentence for the notebook.

    Raises:
        CIFARUnavailable: no source and no stand-in allowed; the message says
            how to pre-seed the cache with ``course data add``.
    """
    root = cifar_root(root)
    allow_standin = is_fast() if allow_standin is None else allow_standin
    for attempt in range(2):
        if _complete(root):
            try:
                ds = CIFAR10(root, train=train, transform=transform,
                             target_transform=target_transform, download=False)
            except RuntimeError:  # md5 mismatch: a damaged extraction; extract again once
                if attempt:
                    raise
                shutil.rmtree(root / FOLDER, ignore_errors=True)
                continue
            ds.is_standin, ds.source = False, f"CIFAR-10 from {root / FOLDER}"
            return ds
        try:
            archive = fetch(ARCHIVE, urls=urls, known_hash=known_hash, download=download)
        except FetchError as exc:
            if not allow_standin:
                raise CIFARUnavailable(
                    f"{exc}\nThen run this cell again. Or, to continue offline on the course's "
                    "stand-in (NOT CIFAR-10), call cifar10(..., allow_standin=True) "
                    "or set COURSE_FAST=1.") from None
            reasons = [line.strip(" -") for line in str(exc).splitlines() if line.startswith("  - ")]
            return _standin(train, transform, target_transform, reason="; ".join(reasons) or str(exc))
        extract(archive, root)
    raise CIFARUnavailable(f"CIFAR-10 in {root} failed its md5 check twice.")  # pragma: no cover


def _standin(train, transform, target_transform, reason: str) -> CIFAR10:
    ds = cifar_standin.load(train, transform, small=is_fast())
    ds.target_transform = target_transform
    ds.is_standin = True
    ds.source = (f"the course's offline STAND-IN ({len(ds):,} generated images, classes "
                 f"{', '.join(ds.classes)}) because CIFAR-10 is unavailable: {reason}")
    warnings.warn("CIFAR-10 is not available, using the offline STAND-IN. Accuracies and "
                  "pictures are NOT CIFAR-10 results.", StandInWarning, stacklevel=3)
    return ds


def describe_source(dataset) -> str:
    """A sentence for the learner: which data this is and what its numbers mean."""
    if getattr(dataset, "is_standin", False):
        return ("!!! STAND-IN DATA, NOT CIFAR-10 !!!\n"
                f"This run uses {getattr(dataset, 'source', 'the stand-in')}.\n"
                "Every accuracy below is an accuracy on the stand-in; it says nothing about "
                "CIFAR-10. Pre-seed the cache with `course data add cifar-10-python.tar.gz` "
                "for the real thing.")
    return f"Real CIFAR-10: {getattr(dataset, 'source', type(dataset).__name__)} ({len(dataset):,} images)."


# -- twenty real CIFAR-10 test images, offline (lesson 05) -----------------------------------
# The foolbox 3.3.4 wheel on PyPI ships the first 20 images of the CIFAR-10 *test* split as
# PNGs, the label in the file name (``foolbox/data/cifar10_<index>_<label>.png``). ``course data
# prepare`` fetches the wheel with pip (checksummed, like the review sentences) and extracts
# them into the cache. They are never committed and never trained on: too few to learn from,
# but real pictures with the real class names, beside the stand-in.
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
SAMPLES_PACKAGE = "foolbox==3.3.4"
SAMPLES_WHEEL = "foolbox-3.3.4-py3-none-any.whl"
SAMPLES_WHEEL_SHA256 = "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb"
SAMPLES_COUNT = 20


class SamplesUnavailable(FetchError):
    """The 20 real CIFAR-10 test images are not in the cache and cannot be fetched now."""


def samples_dir() -> Path:
    """``data_dir()/cifar10-samples``: the 20 PNGs, named ``cifar10_<index>_<label>.png``."""
    return data_dir() / "cifar10-samples"


def _sample_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("cifar10_[0-9][0-9]_[0-9].png"))


def samples_ready() -> bool:
    return len(_sample_files(samples_dir())) == SAMPLES_COUNT and (samples_dir() / "SOURCE").is_file()


def prepare_samples(wheel: str | Path | None = None, *, quiet: bool = False) -> Path:
    """Extract the 20 real CIFAR-10 test images from the foolbox wheel into the cache.

    Idempotent. The wheel comes from ``wheel=``, else the download cache, else
    ``pip download --no-deps foolbox==3.3.4``; its SHA-256 is checked before
    anything is read from it. Returns :func:`samples_dir`.
    """
    import zipfile

    target = samples_dir()
    if samples_ready():
        if not quiet:
            print(f"cifar10-samples: already prepared at {target}")
        return target
    source = package_file(SAMPLES_PACKAGE, SAMPLES_WHEEL, SAMPLES_WHEEL_SHA256, binary=True,
                          given=wheel, error=SamplesUnavailable, quiet=quiet)
    staging = staging_dir(".samples-", data_dir())
    try:
        with zipfile.ZipFile(source) as zf:
            names = [n for n in zf.namelist()
                     if n.startswith("foolbox/data/cifar10_") and n.endswith(".png")]
            for name in names:
                (staging / Path(name).name).write_bytes(zf.read(name))
        if len(_sample_files(staging)) != SAMPLES_COUNT:
            raise SamplesUnavailable(f"{source} holds {len(_sample_files(staging))} CIFAR-10 "
                                     f"PNGs, expected {SAMPLES_COUNT}.")
        (staging / "SOURCE").write_text(
            f"The first {SAMPLES_COUNT} images of the CIFAR-10 test split, as shipped in the "
            f"{SAMPLES_PACKAGE} wheel on PyPI (foolbox/data/), SHA-256 {SAMPLES_WHEEL_SHA256}.\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # never half a folder in the cache
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not quiet:
        print(f"cifar10-samples: wrote {SAMPLES_COUNT} real CIFAR-10 test images to {target}")
    return target


def real_samples():
    """(images uint8 [20, 3, 32, 32], labels int64 [20], test-split indices [20]): real CIFAR-10.

    Raises :class:`SamplesUnavailable` (saying how to prepare them) when they are not cached.
    """
    import numpy as np
    import torch
    from PIL import Image

    files = _sample_files(samples_dir())
    if len(files) != SAMPLES_COUNT:
        raise SamplesUnavailable(
            f"The {SAMPLES_COUNT} real CIFAR-10 test images are not in the data cache ({samples_dir()}).\n"
            f"Run `course data prepare` once with a network: it downloads the {SAMPLES_PACKAGE} "
            "wheel with pip and extracts them. Or in Python: "
            "from course_utils.data.cifar import prepare_samples; prepare_samples()")
    images, labels, index = [], [], []
    for path in files:
        _, i, y = path.stem.split("_")
        with Image.open(path) as im:
            images.append(np.asarray(im.convert("RGB")))
        labels.append(int(y))
        index.append(int(i))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()   # [20, H, W, C] -> [20, C, H, W]
    return x, torch.tensor(labels), torch.tensor(index)
