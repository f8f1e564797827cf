"""Lesson 04's helpers: pad_collate, the slow datasets, show_batch, the loader timeline, the benchmark.

PyTorch is the oracle (pad_sequence, default_collate, DataLoader with 0 workers);
timings are never asserted, only their structure and ordering.
"""

import importlib.util
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from course_utils.collate import lengths_to_mask, pad_collate
from course_utils.data.slow import SlowDataset, UnshardedStream, VariableLengthDataset, python_busy_work
from course_utils.viz.images import show_batch
from course_utils.viz.loader_timeline import (LoaderTimeline, TimedCollate, record_timeline,
                                              show_loader_timeline, timed_loader)

ROOT = Path(__file__).resolve().parents[1]


# -- pad_collate ---------------------------------------------------------------------------
def test_pad_collate_pairs_matches_pad_sequence():
    seqs = [torch.tensor([5, 2, 9]), torch.tensor([4]), torch.tensor([7, 7])]
    padded, lengths, labels = pad_collate([(s, k) for k, s in enumerate(seqs)], pad_value=-1)
    assert torch.equal(padded, pad_sequence(seqs, batch_first=True, padding_value=-1))
    assert padded.dtype == torch.long and padded.shape == (3, 3)
    assert torch.equal(lengths, torch.tensor([3, 1, 2]))
    assert lengths.dtype == torch.long
    assert torch.equal(labels, torch.tensor([0, 1, 2]))


def test_pad_collate_bare_sequences_and_time_first():
    seqs = [torch.tensor([1, 2]), torch.tensor([3]), [4, 5, 6]]  # a list of ints is accepted too
    padded, lengths, labels = pad_collate(seqs, batch_first=False)
    assert labels is None
    assert padded.shape == (3, 3)                                  # [T_max, B]
    assert torch.equal(padded[:, 2], torch.tensor([4, 5, 6]))
    assert torch.equal(padded[:, 1], torch.tensor([3, 0, 0]))
    assert torch.equal(lengths, torch.tensor([2, 1, 3]))


def test_pad_collate_features_and_tensor_labels():
    seqs = [torch.randn(4, 3), torch.randn(2, 3)]
    padded, lengths, labels = pad_collate([(seqs[0], torch.tensor(1.5)), (seqs[1], torch.tensor(0.5))])
    assert padded.shape == (2, 4, 3) and padded.dtype == torch.float32
    assert torch.equal(padded[1, 2:], torch.zeros(2, 3))
    assert torch.equal(labels, torch.tensor([1.5, 0.5]))


def test_pad_collate_in_a_dataloader_pads_to_the_batch_max():
    ds = VariableLengthDataset(n=20, min_len=1, max_len=9)
    for padded, lengths, labels in DataLoader(ds, batch_size=6, collate_fn=pad_collate):
        assert padded.shape == (len(lengths), int(lengths.max()))
        mask = lengths_to_mask(lengths)
        assert torch.equal(mask.sum(1), lengths)
        assert bool((padded[~mask] == 0).all()) and bool((padded[mask] > 0).all())
        assert labels.shape == lengths.shape


@pytest.mark.parametrize("batch, message", [
    ([], "non-empty"),
    ([(torch.tensor([1]), 0), torch.tensor([2])], "mix"),
    ([torch.tensor(3)], "0-dim"),
    ([torch.zeros(2, 3), torch.zeros(2, 4)], "beyond the time dim"),
    (["abc"], "tensor of shape"),
])
def test_pad_collate_rejects_bad_batches(batch, message):
    with pytest.raises(ValueError, match=message):
        pad_collate(batch)


# -- slow datasets -------------------------------------------------------------------------
def test_slow_dataset_items_shapes_and_determinism():
    ds = SlowDataset(n=5, sleep_s=0.0, shape=(3, 4, 4), num_classes=3)
    assert len(ds) == 5
    x, y = ds[4]
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32 and y == 4 % 3
    assert torch.equal(ds[4][0], x) and not torch.equal(ds[3][0], x)
    assert torch.equal(ds[-1][0], x)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError):
        SlowDataset(n=3, sleep_s=-1)


def test_slow_dataset_is_actually_slow():
    ds = SlowDataset(n=4, sleep_s=0.01)
    t = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    assert time.perf_counter() - t >= 4 * 0.01  # sleep guarantees at least this much
    assert python_busy_work(10) == pytest.approx(sum((k + 1) ** 0.5 for k in range(10)))


def test_slow_dataset_pickles_by_module_reference_and_works_in_workers():
    ds = SlowDataset(n=12, sleep_s=0.0, shape=(2, 3))
    blob = pickle.dumps(ds)
    assert b"course_utils.data.slow" in blob and b"__main__" not in blob
    ref = list(DataLoader(ds, batch_size=4))
    got = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert len(got) == len(ref)
    for (xg, yg), (xr, yr) in zip(got, ref):
        assert torch.equal(xg, xr) and torch.equal(yg, yr)


def test_unsharded_stream_duplicates_with_two_workers():
    items = list(DataLoader(UnshardedStream(5), batch_size=None, num_workers=2))
    ids = sorted(int(i) for i, _ in items)
    assert ids == sorted(list(range(5)) * 2)
    assert len({int(p) for _, p in items}) == 2


def test_variable_length_dataset():
    ds = VariableLengthDataset(n=30, min_len=3, max_len=7, vocab_size=10)
    lengths = {len(ds[i][0]) for i in range(30)}
    assert lengths <= set(range(3, 8)) and len(lengths) > 1
    tokens, label = ds[2]
    assert tokens.dtype == torch.long and int(tokens.min()) >= 1 and int(tokens.max()) < 10
    assert torch.equal(ds[2][0], tokens) and label == 0
    with pytest.raises(ValueError):
        VariableLengthDataset(min_len=5, max_len=2)


# -- show_batch ----------------------------------------------------------------------------
def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_show_batch_grid_titles_and_grey():
    x = torch.rand(10, 1, 8, 8)
    fig = show_batch(x, torch.arange(10) % 3, class_names=["a", "b", "c"], nrow=4)
    assert isinstance(fig, Figure)
    axes = _image_axes(fig)
    assert len(axes) == 10 and len(fig.axes) == 12                      # 3 rows x 4 columns
    assert [ax.get_title() for ax in axes[:4]] == ["a", "b", "c", "a"]
    assert np.allclose(axes[3].images[0].get_array(), x[3, 0].numpy())
    assert len(_image_axes(show_batch(torch.rand(3, 5, 5)))) == 3        # [N, H, W]


def test_show_batch_frames_every_tile():
    # white pixels at a tile's edge must not merge with the white page: each tile has a frame
    axes = _image_axes(show_batch(torch.ones(4, 1, 3, 3), nrow=4))
    assert len(axes) == 4
    for ax in axes:
        assert ax.axison and all(sp.get_visible() for sp in ax.spines.values())
        assert not ax.get_xticks().size and not ax.get_yticks().size


def test_show_batch_unnormalises_and_reads_uint8():
    rgb = torch.rand(2, 3, 4, 4)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.1]
    normed = (rgb - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    fig = show_batch(normed, mean=mean, std=std)
    shown = _image_axes(fig)[1].images[0].get_array()
    assert np.allclose(shown, rgb[1].permute(1, 2, 0).numpy(), atol=1e-5)
    u8 = (rgb * 255).to(torch.uint8)
    shown = _image_axes(show_batch(u8))[0].images[0].get_array()
    assert np.allclose(shown, u8[0].permute(1, 2, 0).numpy() / 255.0, atol=1e-6)


def test_show_batch_rescales_out_of_range_and_caps_images():
    fig = show_batch(torch.randn(5, 1, 4, 4) * 3, max_images=2)
    assert len(_image_axes(fig)) == 2
    assert "first 2 of 5" in fig._suptitle.get_text() and "rescaled" in fig._suptitle.get_text()


@pytest.mark.parametrize("kwargs, message", [
    (dict(images=torch.rand(4, 4)), r"\[N, C, H, W\]"),
    (dict(images=torch.rand(2, 8, 8, 3)), "channels-last"),
    (dict(images=torch.rand(2, 1, 4, 4), labels=[1]), "2 labels|1 labels"),
    (dict(images=torch.rand(2, 1, 4, 4), labels=[0, 5], class_names=["a", "b"]), "class_names"),
    (dict(images=torch.rand(2, 3, 4, 4), mean=[0.5, 0.5, 0.5]), "both mean and std"),
    (dict(images=torch.rand(2, 3, 4, 4), mean=[0.5, 0.5], std=[1, 1]), "one value per channel"),
    (dict(images="not images"), "pass a tensor"),
    (dict(images=torch.zeros(2, 1, 4, 4, dtype=torch.int32)), "dtype"),
    (dict(images=torch.rand(0, 1, 4, 4)), "empty"),
])
def test_show_batch_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        show_batch(**kwargs)


# -- loader timeline -----------------------------------------------------------------------
def _step(batch):
    x, y = batch
    assert x.shape[1:] == (3, 4, 4)
    time.sleep(0.01)


def test_timeline_zero_workers_alternates_without_overlap():
    loader = timed_loader(SlowDataset(24, sleep_s=0.002, shape=(3, 4, 4)), batch_size=4)
    tl = record_timeline(loader, _step, n_batches=5)
    assert isinstance(tl, LoaderTimeline) and tl.num_workers == 0
    assert len(tl.fetches) == len(tl.steps) == 5
    assert {f["worker"] for f in tl.fetches} == {-1}
    events = sorted([(f["start"], f["end"]) for f in tl.fetches] + [(s["start"], s["end"]) for s in tl.steps])
    for (s0, e0), (s1, e1) in zip(events, events[1:]):
        assert e0 <= s1 + 1e-9, "with 0 workers fetch and step must not overlap"
    for f, s in zip(tl.fetches, tl.steps):
        assert s["wait_start"] <= f["start"] <= f["end"] <= s["wait_end"] <= s["start"] < s["end"]
        assert f["size"] == 4
    summary = tl.summary()
    assert summary["batches"] == 5 and summary["total_s"] > 0 and 0 < summary["wait_fraction"] < 1
    assert summary["samples_per_s"] > 0 and summary["steady_s_per_batch"] > 0


def test_timeline_two_workers_round_robin_and_figure():
    loader = timed_loader(SlowDataset(40, sleep_s=0.002, shape=(3, 4, 4)), batch_size=4, num_workers=2)
    tl = record_timeline(loader, _step, n_batches=6, label="two")
    assert [f["worker"] for f in tl.fetches] == [0, 1, 0, 1, 0, 1]   # batch b from worker b % 2
    assert len({f["pid"] for f in tl.fetches}) == 2
    for f, s in zip(tl.fetches, tl.steps):
        assert f["start"] < f["end"] <= s["wait_end"] + 0.005         # clocks line up across processes
    loader0 = timed_loader(SlowDataset(40, sleep_s=0.002, shape=(3, 4, 4)), batch_size=4)
    tl0 = record_timeline(loader0, _step, n_batches=3)
    fig = show_loader_timeline([tl0, tl])
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_yticklabels()]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["main process"]
    assert [t.get_text() for t in axes[1].get_yticklabels()] == ["worker 0", "worker 1", "main process"]
    assert axes[1].get_title(loc="left").startswith("two: 6 batches")


def test_timeline_stops_at_the_end_and_accepts_ax():
    import matplotlib.pyplot as plt
    tl = record_timeline(timed_loader(SlowDataset(6, sleep_s=0.0, shape=(3, 4, 4)), batch_size=4),
                         _step, n_batches=10)
    assert len(tl.steps) == 2 and [f["size"] for f in tl.fetches] == [4, 2]
    fig, ax = plt.subplots()
    assert show_loader_timeline(tl, ax=ax) is fig
    plt.close(fig)


def test_timeline_validates():
    with pytest.raises(ValueError, match="timed_loader"):
        record_timeline(DataLoader(SlowDataset(4, 0.0)), _step, 2)
    with pytest.raises(ValueError, match="n_batches"):
        record_timeline(timed_loader(SlowDataset(4, 0.0)), _step, 0)
    with pytest.raises(ValueError, match="LoaderTimeline"):
        show_loader_timeline([])
    with pytest.raises(ValueError, match="map-style"):
        timed_loader(UnshardedStream(3))
    out = TimedCollate()([((torch.zeros(2), 1), (0, 1, 0.5, 0.7)), ((torch.ones(2), 0), (0, 1, 0.4, 0.9))])
    (x, y), info = out
    assert x.shape == (2, 2) and torch.equal(y, torch.tensor([1, 0]))
    assert info["start"] == 0.4 and info["size"] == 2 and info["end"] > 0


# -- benchmark -----------------------------------------------------------------------------
def _load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_dataloader", ROOT / "benchmarks" / "dataloader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_functions_on_a_tiny_dataset():
    bench = _load_benchmark()
    ds = SlowDataset(8, sleep_s=0.0, shape=(3, 4, 4))
    configs = [(0, False, False), (1, True, False), (2, False, True)]
    rows = bench.run_benchmark(ds, configs=configs, batch_size=4, epochs=2)
    assert [(r["num_workers"], r["persistent_workers"], r["pin_memory"]) for r in rows] == configs
    for r in rows:
        assert r["samples"] == 2 * len(ds)
        assert r["samples_per_s"] > 0 and r["first_epoch_s"] > 0 and r["later_epoch_s"] > 0
        assert r["speedup"] > 0
    assert rows[0]["speedup"] == 1.0
    table = bench.format_table(rows, "tiny")
    lines = table.splitlines()
    assert lines[0] == "tiny" and "samples/s" in lines[1] and len(lines) == 3 + len(rows)
    info = bench.machine_info()
    assert info["os.cpu_count()"] == __import__("os").cpu_count() and info["torch.get_num_threads()"] >= 1
    with pytest.raises(ValueError):
        bench.run_benchmark(ds, configs=[(0, True, False)], batch_size=4, epochs=1)


def test_benchmark_cli_quick(capsys):
    bench = _load_benchmark()
    torch_threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--no-cpu", "--epochs", "2"]) == 0
    finally:
        torch.set_num_threads(torch_threads)
    out = capsys.readouterr().out
    assert "os.cpu_count()" in out and "I/O-like items" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit() and "x" in line.split()[-1]]
    assert len(rows) == len(bench.CONFIGS)
