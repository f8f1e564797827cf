"""Lesson 10 plumbing (course_utils.clinic): the synthetic data sets, the augmenting dataset,
the curve and symptom-chart figures. PyTorch is the oracle where there is one."""

import math

import pytest
import torch
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, get_worker_info

from course_utils.clinic import (COLOUR_NAMES, AugmentedImages, blobs, curves, rings,
                                 symptom_chart, tinted_images)


def test_blobs_are_balanced_reproducible_and_separable():
    x, y = blobs(400, classes=4, dim=8, seed=0)
    assert x.shape == (400, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [100] * 4
    x2, y2 = blobs(400, classes=4, dim=8, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, blobs(400, classes=4, dim=8, seed=1)[0])
    # nearest class mean classifies almost everything: the blobs are separable
    means = torch.stack([x[y == c].mean(0) for c in range(4)])
    pred = torch.cdist(x, means).argmin(1)
    assert (pred == y).float().mean() > 0.95


def test_blobs_and_rings_reject_bad_sizes():
    with pytest.raises(ValueError, match="n >= classes"):
        blobs(3, classes=4)
    with pytest.raises(ValueError):
        rings(1)


def test_rings_are_two_radii_not_linearly_separable():
    x, y = rings(600, seed=0)
    r = x.norm(dim=1)
    assert r[y == 0].mean() < 1.2 < r[y == 1].mean()
    # the best linear classifier in the least-squares sense stays far from perfect
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1)                   # (N, 3)
    w = torch.linalg.lstsq(design, (2 * y - 1).float()[:, None]).solution   # (3, 1)
    assert ((design @ w)[:, 0] > 0).long().eq(y).float().mean() < 0.75


def test_tinted_images_are_channel_last_and_tinted_by_label():
    img, lab = tinted_images(90, size=12, seed=0)
    assert img.shape == (90, 12, 12, 3) and img.is_contiguous()
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert torch.bincount(lab).tolist() == [30, 30, 30] and len(COLOUR_NAMES) == 3
    brightest = img.mean(dim=(1, 2)).argmax(dim=1)          # channel-last: channels are dim 3
    assert torch.equal(brightest, lab)
    # the lesson's case 2: view() scrambles the layout, permute() keeps it
    chw = img.permute(0, 3, 1, 2)
    assert torch.equal(chw.mean(dim=(2, 3)).argmax(1), lab)
    viewed = img.view(90, 3, 12, 12)
    assert (viewed.mean(dim=(2, 3)).argmax(1) == lab).float().mean() < 0.6


def test_augmented_images_records_its_augmentation():
    base = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    ds = AugmentedImages(base, torch.tensor([0, 1]), seed=0, max_shift=1)
    assert len(ds) == 2
    for _ in range(10):
        x, label, params = ds[1]
        flip, shift = bool(params[0]), int(params[1])
        expected = base[1].flip(-1) if flip else base[1]
        assert torch.equal(x, expected.roll(shift, dims=-2))
        assert label == 1 and -1 <= shift <= 1
    with pytest.raises(ValueError, match="N, C, H, W"):
        AugmentedImages(torch.zeros(2, 4, 5), torch.zeros(2))


def _params(loader):
    return torch.cat([p for _, _, p in loader])


def _reseed(worker_id):
    info = get_worker_info()
    info.dataset.generator.manual_seed(info.seed)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="the worker copies need the fork start method here")
def test_augmentation_repeats_across_workers_until_reseeded():
    ds = AugmentedImages(torch.zeros(32, 1, 4, 4), torch.zeros(32, dtype=torch.long), seed=0)
    p = _params(DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context="fork"))
    assert torch.equal(p[:8], p[8:16]) and torch.equal(p[16:24], p[24:32])   # worker 0 == worker 1
    fixed = _params(DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context="fork",
                               worker_init_fn=_reseed))
    assert not torch.equal(fixed[:8], fixed[8:16])


def test_curves_draws_each_series_and_marks_non_finite_values():
    fig = curves({"loss": [1.0, 0.5, float("nan"), float("inf")], "other": [2, 1, 0.5, 0.1]},
                 title="t", lines={"ln 4": math.log(4)})
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert {"loss", "other", "loss: non-finite", "ln 4"} <= set(labels)
    assert len(curves({"a": [1, 2], "b": [3, 4]}, separate=True).axes) == 2
    with pytest.raises(ValueError, match="at least one"):
        curves({})


def test_symptom_chart_one_row_per_case_with_a_colour_per_tool():
    cases = [dict(id="G2", name="a", symptom="s1", tool="draw_graph"),
             dict(id="G3", name="b", symptom="s2", tool="show_batch"),
             dict(id="G4", name="c", symptom="s3", tool="draw_graph")]
    fig = symptom_chart(cases)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("draw_graph") == 2 and "show_batch" in texts and "s3" in texts
    boxes = {t.get_text(): t.get_bbox_patch().get_facecolor() for t in fig.axes[0].texts
             if t.get_text() in ("draw_graph", "show_batch")}
    assert boxes["draw_graph"] != boxes["show_batch"]
    with pytest.raises(ValueError, match="lacks"):
        symptom_chart([dict(id="G2", name="a", symptom="s")])
    with pytest.raises(ValueError, match="no cases"):
        symptom_chart([])
