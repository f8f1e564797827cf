"""Tests for the lesson-01 visualizers: strides, offsets and reductions through storage.

PyTorch is the oracle: offsets are checked by reading the real storage and
comparing with indexing / ``sum``; the syllabus numbers are checked literally.
"""

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

matplotlib.use("Agg")

from course_utils.viz.reduction import describe_step, reduction_trace, show_reduction  # noqa: E402
from course_utils.viz.strides import show_offset, show_strides, storage_values  # noqa: E402

X33 = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]
X222 = [[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]]


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def cell_offsets(fig):
    """The '@k' labels drawn in the logical grid, as ints."""
    return sorted(int(s[1:]) for s in texts(fig) if s.startswith("@"))


def link_dots(fig):
    """Each cell-to-slot link starts with one 'o' marker."""
    return sum(1 for ax in fig.axes for line in ax.lines if line.get_marker() == "o")


def views():
    base = torch.arange(24.0).reshape(4, 6)
    x4 = torch.arange(24.0).reshape(2, 2, 3, 2)
    return {
        "contiguous": base,
        "transpose": base.t(),
        "permute": x4.permute(3, 1, 0, 2),
        "stepped": base[::2, 1::2],
        "narrow": base.narrow(0, 1, 2).narrow(1, 2, 3),
        "expand": torch.tensor([1.0, 2.0, 3.0]).expand(4, 3),
        "offset": base[2],
        "1d": torch.arange(5),
        "3d": x4[1],
        "4d": x4,
    }


# ------------------------------------------------------------------ reduction_trace
def test_trace_syllabus_3x3():
    x = torch.tensor(X33)
    assert reduction_trace(x, 0) == [(0, 3, 6), (1, 4, 7), (2, 5, 8)]
    assert reduction_trace(x, 1) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert reduction_trace(x, -1) == reduction_trace(x, 1)


def test_trace_on_views_uses_real_strides():
    x = torch.tensor(X33)
    # transposing swaps the strides: summing x.t() over dim 0 walks x's rows
    assert reduction_trace(x.t(), 0) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert reduction_trace(x[:, 1:], 0) == [(1, 4, 7), (2, 5, 8)]
    assert reduction_trace(x[1:, ::2], 1) == [(3, 5), (6, 8)]
    assert reduction_trace(torch.tensor([1.0, 2.0]).expand(3, 2), 0) == [(0, 0, 0), (1, 1, 1)]


@pytest.mark.parametrize("dim, out_shape", [(0, (2, 3, 2)), (1, (2, 3, 2)), (2, (2, 2, 2)), (3, (2, 2, 3))])
def test_trace_2x2x3x2_matches_torch_sum(dim, out_shape):
    x = torch.arange(24.0).reshape(2, 2, 3, 2)
    assert x.stride() == (12, 6, 2, 1)
    trace = reduction_trace(x, dim)
    assert tuple(x.sum(dim).shape) == out_shape
    assert len(trace) == x.sum(dim).numel()
    assert all(len(slots) == x.shape[dim] for slots in trace)
    store = storage_values(x)
    sums = torch.stack([store[list(s)].sum() for s in trace]).reshape(out_shape)
    assert torch.equal(sums, x.sum(dim))


@pytest.mark.parametrize("name", ["transpose", "permute", "stepped", "narrow", "expand", "3d", "4d"])
def test_trace_sums_match_torch_on_views(name):
    t = views()[name]
    store = storage_values(t)
    for dim in range(t.dim()):
        trace = reduction_trace(t, dim)
        got = torch.stack([store[list(s)].sum() for s in trace]).reshape(t.sum(dim).shape)
        assert torch.allclose(got, t.sum(dim)), (name, dim)


def test_describe_step_reads_like_the_syllabus():
    x = torch.tensor(X33)
    line = describe_step(x, 0, 1)
    assert "x[0,1] + x[1,1] + x[2,1]" in line and line.endswith("slots (1, 4, 7)")
    assert "= 1.5" in line and "0.2 → 0.7 → 1.5" in line


# ------------------------------------------------------------------ show_strides
def test_storage_values_is_the_real_storage():
    base = torch.arange(12.0).reshape(3, 4)
    view = base[1:, 1::2]
    assert torch.equal(storage_values(view), base.flatten())
    storage_values(view)[0] = 99.0           # a copy on CPU? it must share memory
    assert base[0, 0].item() == 99.0


@pytest.mark.parametrize("name", list(views()))
def test_show_strides_on_views(name):
    t = views()[name]
    fig = show_strides(t, names=[name])
    assert isinstance(fig, Figure)
    words = " ".join(texts(fig))
    assert f"stride {tuple(t.stride())}" in words
    assert f"shape {tuple(t.shape)}" in words
    assert f"storage_offset {t.storage_offset()}" in words
    assert f"contiguous: {t.is_contiguous()}" in words
    # every cell's label is the offset PyTorch uses: read the storage there and compare
    expected = sorted(t.storage_offset() + sum(i * s for i, s in zip(idx, t.stride()))
                      for idx in torch.cartesian_prod(*[torch.arange(n) for n in t.shape]).reshape(
                          t.numel(), t.dim()).tolist())
    assert cell_offsets(fig) == expected
    store = storage_values(t)
    flat_view = t.reshape(-1)
    assert torch.equal(store[torch.tensor(expected)].sort().values, flat_view.sort().values)


def test_links_one_per_cell_and_expand_shares_slots():
    t = torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)
    fig = show_strides(t)
    assert link_dots(fig) == 12                       # one link per logical cell
    assert cell_offsets(fig).count(0) == 4            # stride 0: four cells -> one slot
    assert "stride (0, 1)" in " ".join(texts(fig))
    assert link_dots(show_strides(t, links=False)) == 0


def test_shared_storage_two_views():
    x = torch.tensor(X33)
    fig = show_strides(x, share_with=x.t(), names=["x", "x.t()"])
    words = " ".join(texts(fig))
    assert "x   shape (3, 3)   stride (3, 1)" in words and "x.t()   shape (3, 3)   stride (1, 3)" in words
    assert link_dots(fig) == 9                        # "auto": only the second view is linked
    assert link_dots(show_strides(x, share_with=x.t(), links=True)) == 18
    assert cell_offsets(fig) == sorted(list(range(9)) * 2)
    with pytest.raises(ValueError, match="does not share"):
        show_strides(x, share_with=x.clone())


def test_huge_storage_shows_a_window_with_ellipsis():
    big = torch.arange(10_000.0).reshape(100, 100)
    view = big[10:20:2, 5:40:3]
    fig = show_strides(view)
    slots = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert len(slots) <= view.numel() + 64
    assert "⋯" in texts(fig)
    narrow = big.narrow(0, 50, 1)[:, :4]
    fig = show_strides(narrow)
    assert "storage_offset 5000" in " ".join(texts(fig))


def test_ax_argument_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert show_strides(torch.arange(4), ax=ax) is fig


# ------------------------------------------------------------------ show_offset
def test_show_offset_syllabus_example():
    x = torch.tensor(X222)
    assert x.stride() == (4, 2, 1)
    fig = show_offset(x, (1, 0, 1))
    words = " ".join(texts(fig))
    assert "0 + 1×4 + 0×2 + 1×1 = 5" in words
    assert "x[1, 0, 1] = 0.6" in words and "slot 5" in words
    assert link_dots(fig) == 1


def test_show_offset_on_a_view_with_offset():
    base = torch.arange(30.0).reshape(5, 6)
    view = base[1:, 2:].t()                           # storage_offset 8, stride (1, 6)
    fig = show_offset(view, (3, 2))
    target = view.storage_offset() + 3 * view.stride()[0] + 2 * view.stride()[1]
    assert storage_values(view)[target] == view[3, 2]
    assert f"= {target}" in " ".join(texts(fig))


# ------------------------------------------------------------------ show_reduction
def test_show_reduction_static_figure():
    x = torch.tensor(X33)
    fig = show_reduction(x, 0, static=True)
    assert isinstance(fig, Figure)
    words = " ".join(texts(fig))
    for slots in [(0, 3, 6), (1, 4, 7), (2, 5, 8)]:
        assert f"slots {slots}" in words
    assert "= 1.2" in words and "= 1.5" in words and "= 1.8" in words


def test_show_reduction_widget_slider_updates_label_and_image():
    import ipywidgets as widgets
    x = torch.tensor(X33)
    w = show_reduction(x, 1)
    assert isinstance(w, widgets.VBox)
    controls, label, image = w.children
    slider = controls.children[1]
    assert isinstance(slider, widgets.IntSlider) and slider.max == 2
    assert isinstance(label, widgets.HTML) and isinstance(image, widgets.Image)
    assert "slots (0, 1, 2)" in label.value and "0.6" in label.value
    first = image.value
    slider.value = 2
    assert "slots (6, 7, 8)" in label.value and "= 2.4" in label.value
    assert image.value != first and image.value[:4] == b"\x89PNG"


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad, match", [
    ([[1, 2], [3, 4]], "expects a torch.Tensor"),
    (torch.tensor(0.1), "0-dim"),
    (torch.zeros(1, 1, 1, 1, 1, 1), "1 to 4 dims"),
    (torch.zeros(2, 1, 1, 1, 1), "1 to 4 dims"),
    (torch.zeros(0, 3), "at least one element"),
    (torch.eye(3).to_sparse(), "to_dense"),
])
def test_show_strides_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        show_strides(bad)


def test_bad_dims_and_indices():
    x = torch.tensor(X33)
    with pytest.raises(ValueError, match=r"dim must be an int in \[-2, 1\]"):
        reduction_trace(x, 2)
    with pytest.raises(ValueError, match="0-dim"):
        reduction_trace(torch.tensor(1.0), 0)
    with pytest.raises(ValueError, match="torch.Tensor"):
        show_reduction([1, 2, 3], 0)
    with pytest.raises(ValueError, match="dim must be"):
        show_reduction(x, "rows")
    with pytest.raises(ValueError, match="one int per dim"):
        show_offset(x, (1,))
    with pytest.raises(ValueError, match="one int per dim"):
        show_offset(x, (3, 0))


def test_show_offset_keeps_the_target_slot_when_the_strip_is_cut():
    # 120 slots > max_slots: the strip is elided, but the formula's hops must stay drawn.
    t = torch.arange(120.0).reshape(2, 3, 4, 5)
    fig = show_offset(t, (1, 2, 3, 4))
    text = " ".join(x.get_text() for ax in fig.axes for x in ax.texts)
    assert "119" in text


# ------------------------------------------------------------------ issue 13: figures and structure
def grey_slots(fig):
    return sum(1 for p in fig.axes[0].patches if isinstance(p, Rectangle)
               and tuple(round(c, 2) for c in p.get_facecolor()[:3]) == (0.9, 0.9, 0.9))


def test_a_tensor_read_in_order_gets_no_crossing_lines():
    x = torch.tensor(X33)
    fig = show_strides(x, names=["x"])
    assert link_dots(fig) == 0                         # colours run in order: no nine crossing lines
    assert "reads the slots in order" in " ".join(texts(fig))
    assert link_dots(show_strides(x.t())) == 9        # a transpose still shows its jumps
    assert link_dots(show_strides(torch.arange(12.0)[3:7])) == 4  # an offset view too


def test_each_shared_view_has_its_own_strip_with_never_read_slots_grey():
    grid = torch.arange(20.0).reshape(4, 5)
    stepped, narrowed = grid[::2, 1::2], grid.narrow(0, 1, 2).narrow(1, 2, 3)
    fig = show_strides(grid, share_with=[stepped, narrowed], names=["grid", "stepped", "narrow"])
    # one strip per view: 3 x 20 slots; grey = slots that view never reads (0 + 16 + 14)
    assert grey_slots(fig) == (20 - stepped.numel()) + (20 - narrowed.numel())
    words = " ".join(texts(fig))
    assert "16 grey slots never read" in words and "14 grey slots never read" in words
    # one storage_offset marker per view, each on its own strip (no colliding labels)
    offsets = [s for s in texts(fig) if s.startswith("storage_offset of ")]
    assert offsets == ["storage_offset of grid = 0", "storage_offset of stepped = 1",
                       "storage_offset of narrow = 7"]
    assert len({round(t.get_position()[1], 1) for ax in fig.axes for t in ax.texts
                if t.get_text() in offsets}) == 3


def test_the_storage_drawing_module_imports_no_lesson_module():
    import subprocess
    import sys

    code = ("import sys, course_utils.viz._storage_drawing as d; "
            "print(sorted(m for m in sys.modules if m.startswith('course_utils.viz.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "strides" not in out and "reduction" not in out
    import course_utils.viz._storage_drawing as drawing
    assert drawing.storage_values is storage_values   # one function, re-exported by strides
