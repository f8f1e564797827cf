"""The offline CIFAR-10 stand-in: 32x32 colour images the course draws itself (lesson 05).

Real CIFAR-10 needs a 163 MiB download that is not always possible (offline
machines, CI). The stand-in keeps lesson 05 runnable anywhere: ten classes of
shapes and textures in random colours, positions, sizes and orientations, over
a tinted, textured, noisy background. Deterministic by seed.

Its classes are its own (``disc``, ``ring``, ...), not airplane/automobile:
numbers measured on it are NOT CIFAR-10 numbers. It is built to separate
model families like CIFAR-10 does: shapes move, turn, change size and colour,
so a linear classifier can lean only on a weak class-colour preference. Measured
with lesson 05's models (20k training images, 3 epochs, 5k test images, CPU):
linear classifier 45 %, MLP 64 %, small CNN 77 % test accuracy (the lesson
prints its own numbers).

On disk it uses the real CIFAR-10 *python* format, byte-level compatible
with the files of ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/`` holds
``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (each a pickled dict:
``b'data'`` uint8 [N, 3072], each row the R plane then G then B, 32x32
row-major; ``b'labels'`` list of ints; ``b'batch_label'``; ``b'filenames'``)
and ``batches.meta`` (``b'label_names'``, ...). The pickles are protocol 2
with Python-2 ``str`` keys like the originals, so both
``pickle.load(f, encoding='bytes')`` (the CIFAR site's recipe) and
torchvision's ``encoding='latin1'`` read them.

torchvision's ``CIFAR10`` checks the md5 of every batch file against the
official list, which the stand-in's files cannot match. :class:`StandInCIFAR10`
is therefore a subclass that only replaces those md5 lists (``train_list``,
``test_list``, ``meta``) with the ones computed when the files were written
(saved in ``standin.json``); loading, decoding and ``__getitem__`` are
torchvision's own code path.

    prepare()                       # what `course data prepare` runs
    ds = load(train=True)           # a StandInCIFAR10 (a torchvision CIFAR10)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10

from course_utils.data.cache import data_dir, staging_dir

CLASS_NAMES = ["disc", "ring", "block", "frame", "plus", "wedge", "stripes", "checks", "bar", "dots"]
SEED = 2024
FULL = (50_000, 10_000)    # train, test: the size of CIFAR-10
SMALL = (10_000, 2_000)    # what fast mode generates when the full set is missing
BATCHES = 5
_SIZE = 32
COLOUR_BIAS = 0.7  # fraction of images whose foreground takes its class's hue (the linear model's cue)
# one hue per class, evenly around the colour wheel (a class prefers it, without owning it)
_PALETTE = np.array([[0.5 + 0.4 * np.cos(2 * np.pi * (k / 10 + j / 3)) for j in range(3)] for k in range(10)])


# -- drawing -------------------------------------------------------------------
def _rotated(n, rng, yy, xx, margin):
    """Per-image centre, rotation -> coordinates (u, v) [n, 32, 32] in the shape's frame."""
    cy = rng.uniform(margin, _SIZE - 1 - margin, (n, 1, 1)).astype(np.float32)
    cx = rng.uniform(margin, _SIZE - 1 - margin, (n, 1, 1)).astype(np.float32)
    a = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    dy, dx = yy - cy, xx - cx
    return np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy


def _mask(k, n, rng, yy, xx):
    """Soft mask in [0, 1] [n, 32, 32] for class ``k``: 1 inside the shape, anti-aliased edge."""
    u, v = _rotated(n, rng, yy, xx, margin=9)
    r = np.hypot(u, v)
    size = lambda lo, hi: rng.uniform(lo, hi, (n, 1, 1)).astype(np.float32)  # noqa: E731
    name = CLASS_NAMES[k]
    if name == "disc":
        d = r - size(4, 9)
    elif name == "ring":
        d = np.abs(r - size(5, 10)) - size(0.8, 1.6)
    elif name == "block":
        d = np.maximum(np.abs(u), np.abs(v)) - size(3.5, 7.5)
    elif name == "frame":
        d = np.abs(np.maximum(np.abs(u), np.abs(v)) - size(4.5, 8.5)) - size(0.8, 1.6)
    elif name == "plus":
        arm, half = size(5, 10), size(1.0, 2.0)
        d = np.minimum(np.maximum(np.abs(u) - arm, np.abs(v) - half),
                       np.maximum(np.abs(v) - arm, np.abs(u) - half))
    elif name == "wedge":  # equilateral triangle: inside all three half-planes
        radius = size(5, 10)
        d = np.max([np.cos(t) * u + np.sin(t) * v for t in (0, 2 * np.pi / 3, 4 * np.pi / 3)], 0) - radius / 2
    elif name == "stripes":  # a grating inside a round patch
        period = size(3.0, 5.0)
        wave = np.sin(2 * np.pi * u / period + size(0, 2 * np.pi))
        return (np.clip(wave * 2, -1, 1) * 0.5 + 0.5) * np.clip(size(6, 11) - r + 0.5, 0, 1)
    elif name == "checks":  # a checkerboard inside a square patch
        cell = size(2.5, 4.0)
        board = np.sin(np.pi * u / cell) * np.sin(np.pi * v / cell)
        inside = np.clip(size(6, 10) - np.maximum(np.abs(u), np.abs(v)) + 0.5, 0, 1)
        return (np.clip(board * 3, -1, 1) * 0.5 + 0.5) * inside
    elif name == "bar":
        d = np.maximum(np.abs(u) - size(7, 13), np.abs(v) - size(1.0, 2.2))
    elif name == "dots":  # 3 to 5 small dots around the centre
        d = np.full((n, _SIZE, _SIZE), np.inf)
        count = rng.integers(3, 6, (n, 1, 1))
        for i in range(5):
            oy, ox = rng.uniform(-8, 8, (n, 1, 1)), rng.uniform(-8, 8, (n, 1, 1))
            di = np.hypot(u - ox, v - oy) - size(1.2, 2.2)
            d = np.where(count > i, np.minimum(d, di), d)
    else:  # pragma: no cover - CLASS_NAMES and this switch change together
        raise ValueError(f"unknown class {k}")
    return np.clip(0.5 - d, 0, 1)


def _lum(c):
    return c @ np.array([0.299, 0.587, 0.114])


def render(labels: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Draw one image per label. Returns uint8 [N, 32, 32, 3] (N, H, W, C like ``CIFAR10.data``)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError("labels must be a 1-D array of class indices 0..9")
    rng = np.random.default_rng(seed)
    n = len(labels)
    f32 = np.float32
    yy, xx = np.mgrid[0:_SIZE, 0:_SIZE].astype(f32)
    # background: a linear gradient between two colours plus blotchy low-frequency texture
    c0, c1 = rng.random((n, 3), dtype=f32), rng.random((n, 3), dtype=f32)
    ang = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(f32)
    t = ((np.cos(ang) * (xx - 15.5) + np.sin(ang) * (yy - 15.5)) / 45 + 0.5)[..., None]  # [N, 32, 32, 1]
    coarse = rng.standard_normal((n, 5, 5, 1), dtype=f32) * f32(0.08)
    img = c0[:, None, None] + (c1 - c0)[:, None, None] * t                             # [N, 32, 32, 3]
    img += coarse.repeat(8, 1).repeat(8, 2)[:, 4:36, 4:36]                             # 8x8 blotches
    # foreground colour: a per-class hue preference (like CIFAR's blue skies) for some images,
    # random for the rest, pushed away from the background's brightness so the shape stays visible
    fg = rng.random((n, 3), dtype=f32)
    prefer = rng.random(n) < COLOUR_BIAS
    fg[prefer] = np.clip(_PALETTE[labels[prefer]] + rng.normal(0, 0.1, (int(prefer.sum()), 3)), 0, 1)
    gap = _lum(fg) - _lum((c0 + c1) / 2)
    push = np.where(np.abs(gap) < 0.3, np.sign(gap + 1e-6) * (0.3 - np.abs(gap)), 0.0)
    fg = np.clip(fg + push[:, None], 0, 1).astype(f32)
    mask = np.empty((n, _SIZE, _SIZE, 1), dtype=f32)
    for k in range(10):
        idx = np.flatnonzero(labels == k)
        if idx.size:
            mask[idx, ..., 0] = _mask(k, idx.size, rng, yy, xx)
    img += (fg[:, None, None] - img) * mask                                            # paint the shape
    img += rng.standard_normal(img.shape, dtype=f32) * rng.uniform(0.04, 0.12, (n, 1, 1, 1)).astype(f32)
    img *= 255
    img += 0.5
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def generate(n: int, seed: int = SEED, split: int = 0, chunk: int = 2_500) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images with balanced labels: (uint8 [N, 32, 32, 3], int64 [N]). Same seed, same images."""
    labels = np.random.default_rng([seed, split]).permutation(np.arange(n) % 10)
    images = np.empty((n, _SIZE, _SIZE, 3), dtype=np.uint8)
    for c, start in enumerate(range(0, n, chunk)):  # in chunks: bounded memory, same result
        images[start:start + chunk] = render(labels[start:start + chunk], seed=[seed, split, c])
    return images, labels


# -- the CIFAR-10 python format -------------------------------------------------
def _py2_pickle(obj) -> bytes:
    """Pickle ``obj`` as Python 2's cPickle (protocol 2) wrote the CIFAR-10 batches.

    Strings and bytes become Python-2 ``str`` (opcodes U/T), which Python 3 decodes
    with the ``encoding=`` given to ``pickle.load``; a uint8 array is stored as
    numpy's ``_reconstruct`` call with its raw bytes, exactly like the originals.
    """
    out = [b"\x80\x02"]

    def string(b: bytes):
        out.append(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def save(x):
        if isinstance(x, str):
            string(x.encode("latin-1"))
        elif isinstance(x, bytes):
            string(x)
        elif isinstance(x, bool) or x is None:
            out.append({True: b"\x88", False: b"\x89", None: b"N"}[x])
        elif isinstance(x, (int, np.integer)):
            x = int(x)
            out.append(b"K" + bytes([x]) if 0 <= x < 256 else
                       b"M" + struct.pack("<H", x) if 0 <= x < 65536 else b"J" + struct.pack("<i", x))
        elif isinstance(x, tuple):
            out.append(b"(")
            for item in x:
                save(item)
            out.append(b"t")
        elif isinstance(x, list):
            out.append(b"]")
            for start in range(0, len(x), 1000):  # APPENDS in groups of 1000, as pickle does
                out.append(b"(")
                for item in x[start:start + 1000]:
                    save(item)
                out.append(b"e")
        elif isinstance(x, dict):
            out.append(b"}(")
            for key, value in x.items():
                save(key)
                save(value)
            out.append(b"u")
        elif isinstance(x, np.ndarray) and x.dtype == np.uint8:
            out.append(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            save((0,))
            string(b"b")
            out.append(b"\x87R")  # TUPLE3, REDUCE -> an empty array; BUILD below fills it
            out.append(b"(K\x01")
            save(tuple(x.shape))
            out.append(b"cnumpy\ndtype\n")
            save(("u1", False, True))
            out.append(b"R")
            save((3, "|", None, None, None, -1, -1, 0))
            out.append(b"b\x89")  # BUILD the dtype; fortran_order=False
            string(np.ascontiguousarray(x).tobytes())
            out.append(b"tb")     # the state tuple, BUILD the array
        else:  # pragma: no cover - only what the CIFAR files hold
            raise TypeError(f"cannot write {type(x).__name__} in CIFAR-10 format")

    save(obj)
    out.append(b".")
    return b"".join(out)


def to_rows(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 32, 32, 3] -> [N, 3072]: each row is the R plane, then G, then B (row-major)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)


def write_cifar_batches(folder: str | Path, train: tuple, test: tuple, label_names: list[str],
                        n_batches: int = BATCHES) -> dict[str, str]:
    """Write ``cifar-10-batches-py/`` into ``folder``; return {file name: md5}.

    ``train`` and ``test`` are (uint8 [N, 32, 32, 3], int labels [N]). Also used by the
    tests to build small archives in the real format.
    """
    out = Path(folder) / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = train, test
    parts = np.array_split(np.arange(len(x_train)), n_batches)
    files = {f"data_batch_{i + 1}": (x_train[p], y_train[p], f"training batch {i + 1} of {n_batches}")
             for i, p in enumerate(parts)}
    files["test_batch"] = (x_test, y_test, "testing batch 1 of 1")
    md5 = {}
    for name, (x, y, batch_label) in files.items():
        names = [f"{label_names[int(k)]}_s_{i:06d}.png" for i, k in enumerate(y)]
        blob = _py2_pickle({"batch_label": batch_label, "labels": [int(k) for k in y],
                            "data": to_rows(x), "filenames": names})
        (out / name).write_bytes(blob)
        md5[name] = hashlib.md5(blob).hexdigest()
    meta = _py2_pickle({"num_cases_per_batch": len(parts[0]), "label_names": list(label_names),
                        "num_vis": 3072})
    (out / "batches.meta").write_bytes(meta)
    md5["batches.meta"] = hashlib.md5(meta).hexdigest()
    return md5


# -- preparing and loading ------------------------------------------------------
def standin_dir(small: bool = False) -> Path:
    """Where the stand-in lives: ``data_dir()/cifar10-standin`` (``-small`` for the fast subset)."""
    return data_dir() / ("cifar10-standin-small" if small else "cifar10-standin")


def is_prepared(small: bool = False) -> bool:
    return (standin_dir(small) / "standin.json").is_file()


def prepare(small: bool = False, seed: int = SEED) -> Path:
    """Generate the stand-in into the cache (idempotent: instant when it is there).

    Written into a temporary folder and renamed into place, so an interrupted run
    never leaves a half-written stand-in. Returns the dataset root for
    :class:`StandInCIFAR10`.
    """
    target = standin_dir(small)
    if is_prepared(small):
        return target
    n_train, n_test = SMALL if small else FULL
    tmp = staging_dir(".standin-", target.parent)
    try:
        md5 = write_cifar_batches(tmp, generate(n_train, seed, 0), generate(n_test, seed, 1), CLASS_NAMES)
        info = {"what": "CIFAR-10 stand-in generated by course_utils.data.cifar_standin (NOT CIFAR-10)",
                "seed": seed, "train": n_train, "test": n_test, "classes": CLASS_NAMES, "md5": md5}
        (tmp / "standin.json").write_text(json.dumps(info, indent=1))
        if target.exists():  # a leftover without standin.json is incomplete: replace it
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not is_prepared(small):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class StandInCorrupted(RuntimeError):
    """The generated stand-in on disk is missing a file or fails its recorded md5."""


class StandInCIFAR10(CIFAR10):
    """torchvision's ``CIFAR10`` reading the stand-in: only the expected md5s differ.

    ``root`` holds ``standin.json`` (md5s recorded at generation) and
    ``cifar-10-batches-py/``. Everything else (integrity check, unpickling,
    ``data`` [N, 32, 32, 3] uint8, ``targets``, ``classes``, ``__getitem__`` -> PIL
    image) is torchvision's code.
    """

    is_standin = True

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        info = json.loads((Path(root) / "standin.json").read_text())
        md5 = info["md5"]
        # instance attributes shadow CIFAR10's class-level lists of official md5s
        self.train_list = [[name, md5[name]] for name in sorted(md5) if name.startswith("data_batch")]
        self.test_list = [["test_batch", md5["test_batch"]]]
        self.meta = {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]}
        self.standin_info = info
        try:
            super().__init__(root, train=train, transform=transform, target_transform=target_transform,
                             download=False)
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted. You can use download=True"
            raise StandInCorrupted(
                f"The course's CIFAR-10 stand-in in {root} is corrupted: a batch file is missing "
                "or fails the md5 recorded when it was generated (torchvision's advice, "
                "download=True, does not apply: the stand-in is generated, not downloaded). "
                f"delete {root} and run `course data prepare` (or call "
                "course_utils.data.cifar_standin.prepare()) to generate it again.") from None


def load(train: bool = True, transform=None, *, small: bool = False) -> StandInCIFAR10:
    """The stand-in as a torchvision dataset; generated first if missing.

    ``small=True`` (fast mode) makes do with the 10k/2k subset, but uses the full
    set when it is already prepared.
    """
    root = standin_dir(False) if (is_prepared(False) or not small) else standin_dir(True)
    if not (root / "standin.json").is_file():
        prepare(small=root == standin_dir(True))
    return StandInCIFAR10(root, train=train, transform=transform)
