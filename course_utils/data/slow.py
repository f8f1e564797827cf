"""Deliberately slow datasets for the worker demos of lesson 04 (data loading).

Why these live in a module and not in the notebook: a DataLoader with
``num_workers > 0`` starts worker processes, and each worker needs the dataset
object. With the *spawn* start method (the default on macOS and Windows, and
``forkserver`` on Linux from Python 3.14) the dataset is pickled and re-created
in a fresh interpreter, and pickle stores a class by *name*
(``module.ClassName``). A class defined in a notebook lives in ``__main__``,
which the fresh interpreter does not have, so the worker dies with
``AttributeError: Can't get attribute 'SlowDataset' on <module '__main__'>``.
A class in an importable module is found again by import. (With *fork*, the
Linux default up to Python 3.13, the child is a copy of the parent's memory,
so notebook classes happen to work.)

    ds = SlowDataset(n=256, sleep_s=0.005)          # ~5 ms of "disk latency" per item
    x, y = ds[0]                                    # x: [C, H, W] float32, y: int
"""

from __future__ import annotations

import math
import time

import torch
from torch.utils.data import Dataset, IterableDataset

__all__ = ["SlowDataset", "python_busy_work", "UnshardedStream", "VariableLengthDataset"]


def python_busy_work(n: int) -> float:
    """Pure-Python arithmetic that holds the GIL for the whole loop (a stand-in for decoding).

    Threads cannot run this in parallel in CPython (one thread holds the GIL at
    a time); processes can, because each has its own interpreter and GIL.
    """
    acc = 0.0
    for k in range(n):
        acc += math.sqrt(k + 1.0)
    return acc


class SlowDataset(Dataset):
    """A map-style dataset whose ``__getitem__`` is slow on purpose.

    Each item costs ``sleep_s`` seconds of waiting (like a read from a disk or
    a network store: the GIL is released while sleeping) plus ``cpu_work``
    iterations of pure-Python arithmetic (like decoding a JPEG in Python: the
    GIL is held). The returned sample is deterministic in ``index`` so that
    results do not depend on which worker fetched it.

    Args:
        n: number of items.
        sleep_s: seconds slept per item.
        cpu_work: iterations of :func:`python_busy_work` per item (0: none).
        shape: shape of the returned tensor, default ``(C, H, W) = (3, 32, 32)``.
        num_classes: labels are ``index % num_classes``.

    Returns per item: ``(x, y)`` with ``x`` a float32 tensor of ``shape`` and
    ``y`` an int.
    """

    def __init__(self, n: int = 256, sleep_s: float = 0.005, cpu_work: int = 0,
                 shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10):
        if n < 0 or sleep_s < 0 or cpu_work < 0:
            raise ValueError("SlowDataset: n, sleep_s and cpu_work must be >= 0.")
        self.n = int(n)
        self.sleep_s = float(sleep_s)
        self.cpu_work = int(cpu_work)
        self.shape = tuple(shape)
        self.num_classes = int(num_classes)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not -self.n <= index < self.n:
            raise IndexError(f"SlowDataset index {index} out of range for length {self.n}")
        index = index % self.n if self.n else index
        if self.sleep_s:
            time.sleep(self.sleep_s)          # I/O-like wait: GIL released
        if self.cpu_work:
            python_busy_work(self.cpu_work)   # decode-like work: GIL held
        # A cheap deterministic "image": its own generator, seeded by the index.
        g = torch.Generator().manual_seed(index)
        x = torch.rand(self.shape, generator=g)  # [C, H, W]
        return x, index % self.num_classes

    def __repr__(self) -> str:
        return (f"SlowDataset(n={self.n}, sleep_s={self.sleep_s}, cpu_work={self.cpu_work}, "
                f"shape={self.shape})")


class UnshardedStream(IterableDataset):
    """A stream of the ids ``0 .. n-1`` that ignores worker info: the classic duplication bug.

    With ``num_workers=k`` every worker runs its own copy of ``__iter__``, so
    each id comes out ``k`` times. Lesson 04 shows the duplicates; fixing it
    with ``torch.utils.data.get_worker_info()`` is the lesson's exercise.
    Yields ``(id, pid)`` so you can see which process produced each item.
    """

    def __init__(self, n: int, sleep_s: float = 0.0):
        self.n = int(n)
        self.sleep_s = float(sleep_s)

    def __iter__(self):
        import os
        for i in range(self.n):
            if self.sleep_s:
                time.sleep(self.sleep_s)
            yield i, os.getpid()


class VariableLengthDataset(Dataset):
    """Random token-id sequences of different lengths, for the padding demos.

    Item ``i`` is ``(tokens [T_i] long, label int)`` with ``T_i`` in
    ``[min_len, max_len]`` and tokens in ``[1, vocab_size)`` (0 is kept free
    for ``<pad>``). Deterministic in ``i``.
    """

    def __init__(self, n: int = 100, min_len: int = 2, max_len: int = 12,
                 vocab_size: int = 50, num_classes: int = 2):
        if not 0 < min_len <= max_len:
            raise ValueError("VariableLengthDataset: need 0 < min_len <= max_len.")
        if vocab_size < 2:
            raise ValueError("VariableLengthDataset: vocab_size must be >= 2 (0 is <pad>).")
        self.n, self.min_len, self.max_len = int(n), int(min_len), int(max_len)
        self.vocab_size, self.num_classes = int(vocab_size), int(num_classes)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not 0 <= index < self.n:
            raise IndexError(f"VariableLengthDataset index {index} out of range for length {self.n}")
        g = torch.Generator().manual_seed(10_000 + index)
        length = int(torch.randint(self.min_len, self.max_len + 1, (1,), generator=g))
        tokens = torch.randint(1, self.vocab_size, (length,), generator=g)  # [T_i]
        return tokens, index % self.num_classes
