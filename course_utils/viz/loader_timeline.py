"""When did each worker fetch each batch, and when did the training step run? (lesson 04, D6)

An instrumented loader records real timestamps; :func:`show_loader_timeline`
draws them as a Gantt chart, one row per worker process plus one row for the
main (training) process::

    loader = timed_loader(SlowDataset(64, sleep_s=0.005), batch_size=8, num_workers=2)
    timeline = record_timeline(loader, train_step, n_batches=8, label="2 workers")
    fig = show_loader_timeline([timeline_0_workers, timeline])   # shared time axis

How the timestamps travel: :class:`TimedDataset` wraps your dataset and
returns ``(sample, stamp)`` with the worker id, the process id and the
``time.perf_counter()`` at the start and end of ``__getitem__``; the
:class:`TimedCollate` collates the samples as usual and attaches one small dict
per batch. The dict rides back to the main process inside the batch, through
the same queue as the data.

About the clock: Python only promises that differences of ``perf_counter()``
*within one process* mean something. In CPython it reads a system-wide
monotonic clock (``CLOCK_MONOTONIC`` on Linux, ``mach_absolute_time`` on macOS,
``QueryPerformanceCounter`` on Windows), so stamps from different processes of
one machine line up. :func:`record_timeline` checks this (a batch cannot be
finished after it arrived) and warns when it does not hold.

Colour legend: blue = fetching a batch (``__getitem__`` for each sample, then
collate), orange = the training step in the main process, grey hatched = the
main process waiting inside ``next(iterator)``, light grey = start-up
(``iter(loader)`` in the main process, until the first fetch in a worker).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

__all__ = ["TimedDataset", "TimedCollate", "timed_loader", "LoaderTimeline",
           "record_timeline", "show_loader_timeline"]

FETCH_COLOR = "tab:blue"
STEP_COLOR = "tab:orange"
WAIT_COLOR = "0.85"
START_COLOR = "0.93"


class TimedDataset(Dataset):
    """Wrap a map-style dataset; each item becomes ``(sample, (worker, pid, start, end))``.

    ``worker`` is ``-1`` in the main process (``num_workers=0``).
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        start = time.perf_counter()
        sample = self.dataset[index]
        end = time.perf_counter()
        info = get_worker_info()
        return sample, (info.id if info is not None else -1, os.getpid(), start, end)


class TimedCollate:
    """Collate the samples with ``collate_fn`` and attach one timing dict per batch.

    Returns ``(batch, {"worker", "pid", "start", "end", "size"})``; ``start`` is
    when the first sample's fetch began, ``end`` when collation finished.
    """

    def __init__(self, collate_fn=None):
        self.collate_fn = collate_fn if collate_fn is not None else default_collate

    def __call__(self, items):
        samples = [sample for sample, _ in items]
        stamps = [stamp for _, stamp in items]
        batch = self.collate_fn(samples)
        end = time.perf_counter()
        worker, pid = stamps[0][0], stamps[0][1]
        return batch, {"worker": worker, "pid": pid, "start": min(s[2] for s in stamps),
                       "end": end, "size": len(samples)}


def timed_loader(dataset, collate_fn=None, **loader_kwargs) -> DataLoader:
    """A ``DataLoader`` over ``TimedDataset(dataset)`` that yields ``(batch, timing)``.

    Any DataLoader option passes through (``batch_size``, ``num_workers``,
    ``prefetch_factor``, ``persistent_workers``, ``pin_memory`` ...). Only
    map-style datasets are supported.
    """
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise ValueError("timed_loader: pass a map-style dataset (with __getitem__ and __len__), "
                         f"got {type(dataset).__name__}.")
    if "batch_size" in loader_kwargs and loader_kwargs["batch_size"] is None:
        raise ValueError("timed_loader: batch_size=None is not supported; pass an int.")
    return DataLoader(TimedDataset(dataset), collate_fn=TimedCollate(collate_fn), **loader_kwargs)


@dataclass
class LoaderTimeline:
    """Events recorded by :func:`record_timeline`; times in seconds since ``iter(loader)``.

    ``fetches``: one dict per consumed batch: ``batch, worker (-1 = main), pid,
    start, end``. ``steps``: one dict per batch: ``batch, wait_start, wait_end``
    (inside ``next()``), ``start, end`` (the training step).
    """
    label: str
    num_workers: int
    batch_size: int | None
    fetches: list = field(default_factory=list)
    steps: list = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return self.steps[-1]["end"] if self.steps else 0.0

    def summary(self) -> dict:
        """Totals a lesson prints: wall time, time the main process waited, samples/s, and
        ``steady_s_per_batch`` (time per batch once the first batch has arrived)."""
        wait = sum(s["wait_end"] - s["wait_start"] for s in self.steps)
        step = sum(s["end"] - s["start"] for s in self.steps)
        fetch = sum(f["end"] - f["start"] for f in self.fetches)
        samples = sum(f["size"] for f in self.fetches)
        total = self.total_s
        # Steady state: time per batch between the first and the last step (start-up excluded).
        steady = ((self.steps[-1]["end"] - self.steps[0]["end"]) / (len(self.steps) - 1)
                  if len(self.steps) > 1 else float("nan"))
        return {"steady_s_per_batch": steady, "label": self.label, "num_workers": self.num_workers, "batches": len(self.steps),
                "total_s": total, "wait_s": wait, "step_s": step, "fetch_s": fetch,
                "wait_fraction": wait / total if total else 0.0,
                "samples_per_s": samples / total if total else 0.0}


def record_timeline(loader: DataLoader, train_step, n_batches: int,
                    label: str | None = None) -> LoaderTimeline:
    """Iterate ``loader`` for ``n_batches``, calling ``train_step(batch)``, and record timings.

    ``loader`` must come from :func:`timed_loader`. The clock starts just
    before ``iter(loader)``, so the workers' start-up shows on the chart.
    """
    if not isinstance(loader, DataLoader) or not isinstance(loader.collate_fn, TimedCollate):
        raise ValueError("record_timeline: build the loader with timed_loader(dataset, ...) so "
                         "the batches carry their timestamps.")
    if n_batches < 1:
        raise ValueError(f"record_timeline: n_batches must be >= 1, got {n_batches}.")
    label = label or f"num_workers={loader.num_workers}"
    timeline = LoaderTimeline(label, loader.num_workers, loader.batch_size)
    t0 = time.perf_counter()
    iterator = iter(loader)          # starts the worker processes (unless persistent)
    for b in range(n_batches):
        wait_start = time.perf_counter()
        try:
            batch, info = next(iterator)
        except StopIteration:
            break
        wait_end = time.perf_counter()
        train_step(batch)
        end = time.perf_counter()
        timeline.steps.append({"batch": b, "wait_start": wait_start - t0, "wait_end": wait_end - t0,
                               "start": wait_end - t0, "end": end - t0})
        timeline.fetches.append({"batch": b, "worker": info["worker"], "pid": info["pid"],
                                 "start": info["start"] - t0, "end": info["end"] - t0,
                                 "size": info["size"]})
        if info["end"] > wait_end + 0.005:
            warnings.warn("record_timeline: a batch finished after it arrived; the clocks of the "
                          "worker processes do not line up on this platform, so the chart is "
                          "only indicative.", RuntimeWarning, stacklevel=2)
    del iterator                     # shuts non-persistent workers down
    return timeline


def _draw_one(ax, tl: LoaderTimeline, show_labels: bool) -> None:
    workers = sorted({f["worker"] for f in tl.fetches if f["worker"] >= 0})
    rows = {w: i for i, w in enumerate(workers)}      # worker rows on top...
    main_row = len(workers)                           # ...the main process below
    h = 0.6
    ms = 1000.0

    def bar(row, start, end, color, text=None, hatch=None, edge="white"):
        ax.broken_barh([(start * ms, max(end - start, 1e-6) * ms)], (row - h / 2, h),
                       facecolors=color, edgecolors=edge, hatch=hatch, linewidth=0.8)
        if text is not None and show_labels:
            ax.text((start + end) / 2 * ms, row, text, ha="center", va="center",
                    fontsize=7, color="white", clip_on=True)

    for w in workers:  # start-up: from iter() to the worker's first fetch
        first = min(f["start"] for f in tl.fetches if f["worker"] == w)
        bar(rows[w], 0.0, first, START_COLOR, edge="0.8")
    bar(main_row, 0.0, tl.steps[0]["wait_start"], START_COLOR, edge="0.8")  # inside iter(loader)
    for s in tl.steps:
        bar(main_row, s["wait_start"], s["wait_end"], WAIT_COLOR, hatch="///", edge="0.6")
        bar(main_row, s["start"], s["end"], STEP_COLOR, str(s["batch"]))
    for f in tl.fetches:
        row = rows[f["worker"]] if f["worker"] >= 0 else main_row
        bar(row, f["start"], f["end"], FETCH_COLOR, str(f["batch"]))

    names = [f"worker {w}" for w in workers] + ["main process"]
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)               # worker 0 at the top
    s = tl.summary()
    steady = "" if s["batches"] < 2 else f", then {1000 * s['steady_s_per_batch']:.0f} ms per batch"
    ax.set_title(f"{tl.label}: {s['batches']} batches in {s['total_s']:.2f} s{steady}; main process "
                 f"waited {100 * s['wait_fraction']:.0f}% of the time", fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)


def show_loader_timeline(timelines, ax=None, show_labels: bool = True) -> Figure:
    """Draw one :class:`LoaderTimeline` (or a list of them on a shared time axis).

    Rows: one per worker process, then the main process. Numbers inside the
    bars are batch numbers, so you can follow batch 3 from the worker that
    fetched it to the step that used it. Pass ``ax=`` to draw a single
    timeline into an existing Axes.
    """
    if isinstance(timelines, LoaderTimeline):
        timelines = [timelines]
    if not isinstance(timelines, (list, tuple)) or not timelines or \
            not all(isinstance(t, LoaderTimeline) for t in timelines):
        raise ValueError("show_loader_timeline: pass a LoaderTimeline from record_timeline(...) "
                         "or a list of them.")
    if any(not t.steps for t in timelines):
        raise ValueError("show_loader_timeline: a timeline has no batches; record at least one.")
    if ax is not None:
        if len(timelines) != 1:
            raise ValueError("show_loader_timeline: ax= draws one timeline; pass a single one.")
        _draw_one(ax, timelines[0], show_labels)
        ax.set_xlabel("time since iter(loader) (ms)")
        return ax.figure

    heights = [len({f["worker"] for f in t.fetches if f["worker"] >= 0}) + 1 for t in timelines]
    fig = Figure(figsize=(11, 1.0 + 0.55 * sum(heights) + 0.5 * len(timelines)),
                 layout="constrained")
    axes = fig.subplots(len(timelines), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    for a, t in zip(axes, timelines):
        _draw_one(a, t, show_labels)
    axes[-1].set_xlabel("time since iter(loader) (ms)")
    legend = [Patch(facecolor=FETCH_COLOR, label="fetch batch (getitem + collate)"),
              Patch(facecolor=STEP_COLOR, label="training step"),
              Patch(facecolor=WAIT_COLOR, hatch="///", edgecolor="0.6", label="main waits for data"),
              Patch(facecolor=START_COLOR, edgecolor="0.8", label="start-up: iter(loader) starts the workers")]
    fig.legend(handles=legend, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    return fig
