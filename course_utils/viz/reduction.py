"""A reduction traced through storage: which slots ``t.sum(dim)`` reads (lesson 01).

``t.sum(dim=d)`` produces one output element per combination of the *other*
indices; for each one it walks index ``d`` from 0 to ``size[d] - 1`` (the inner
loop) and adds the elements it meets. Each element lives at storage slot
``storage_offset + Σ index_k × stride_k``, so a reduction is a walk through
storage with step ``stride[d]``.

    reduction_trace(x, 0)           # pure: the slots visited per output element
    show_reduction(x, 0)            # widget: slider over output elements
    show_reduction(x, 0, static=True)   # Figure: every step (CI, no widgets)

Colour legend as in :mod:`course_utils.viz.strides`; the cells and slots of the
current output element have a thick red border and red visit numbers 1, 2, 3...
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_utils.viz import figure_png
from course_utils.viz import _storage_drawing as D   # storage, grid, strip, links, legend, sizing
from course_utils.viz.strides import LEGEND


def _check(t, dim, what):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{what} expects a torch.Tensor, got {type(t).__name__}; "
                         "build one with torch.tensor([...]).")
    if t.layout != torch.strided:
        raise ValueError(f"{what} needs a dense tensor, got layout {t.layout}; pass t.to_dense().")
    if t.dim() == 0:
        raise ValueError(f"{what}: a 0-dim tensor has no dim to reduce; pass a tensor with at "
                         "least one dim (e.g. t.reshape(1)) or use t.item().")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -t.dim() <= dim < t.dim():
        raise ValueError(f"{what}: dim must be an int in [{-t.dim()}, {t.dim() - 1}] for a "
                         f"{t.dim()}-D tensor of shape {tuple(t.shape)}, got {dim!r}.")
    return dim % t.dim()


def _out_indices(shape, dim):
    """Output multi-indices in row-major order (the reduced dim removed)."""
    out_shape = shape[:dim] + shape[dim + 1:]
    n = math.prod(out_shape)
    for flat in range(n):
        idx = []
        for size in reversed(out_shape):
            idx.append(flat % size)
            flat //= size
        yield tuple(reversed(idx))


def _inputs(o, dim, size):
    """The input indices that output index ``o`` adds up (index ``dim`` walks 0..size-1)."""
    return [o[:dim] + (k,) + o[dim:] for k in range(size)]


def reduction_trace(t: torch.Tensor, dim: int) -> list[tuple[int, ...]]:
    """Storage offsets ``t.sum(dim)`` visits, one tuple per output element (row-major order).

    Uses the tensor's real strides and storage_offset, so views work. For the 3×3
    contiguous ``x``: dim 0 -> ``[(0, 3, 6), (1, 4, 7), (2, 5, 8)]``.
    """
    dim = _check(t, dim, "reduction_trace")
    shape, stride, base = tuple(t.shape), t.stride(), t.storage_offset()
    return [tuple(base + sum(i * s for i, s in zip(idx, stride)) for idx in _inputs(o, dim, shape[dim]))
            for o in _out_indices(shape, dim)]


def _terms(items, limit=6):
    items = list(items)
    return items if len(items) <= limit else items[:limit - 2] + ["…", items[-1]]


def describe_step(t: torch.Tensor, dim: int, step: int, name: str = "x") -> str:
    """One line for output element ``step``: the terms, the running sum and the slots read."""
    dim = _check(t, dim, "describe_step")
    outs = list(_out_indices(tuple(t.shape), dim))
    if not isinstance(step, int) or not 0 <= step < len(outs):
        raise ValueError(f"step must be an int in [0, {len(outs) - 1}], got {step!r}.")
    o = outs[step]
    slots = reduction_trace(t, dim)[step]
    vals = D.storage_values(t)
    values = [vals[s].item() for s in slots]
    running, acc = [], 0
    for v in values:
        acc = acc + v
        running.append(D.fmt(acc))
    ix = [f"{name}[{','.join(map(str, i))}]" for i in _inputs(o, dim, t.shape[dim])]
    total = D.fmt(t.sum(dim)[o].item())
    return (f"output[{','.join(map(str, o))}] = {' + '.join(_terms(ix))} = "
            f"{' + '.join(_terms(D.fmt(v) for v in values))} = {total}   "
            f"running sum {' → '.join(_terms(running))}   slots {slots}")


def _frame(t, dim, step, name, ax=None):
    """Grid + storage strip with output element ``step``'s cells and slots outlined."""
    outs = list(_out_indices(tuple(t.shape), dim))
    trace = reduction_trace(t, dim)
    hot = set(_inputs(outs[step], dim, t.shape[dim]))
    views = [(name, t)]
    vals, window, colours, used = D.layout(views)
    vw = D.view_width(name, t)
    per_row, strip_w = D.strip_geometry(window, vw)
    W = max(vw, strip_w, 16)
    fig, ax, own = D.new_axes(ax)
    ax.text(W / 2, 0, f"{name}.sum(dim={dim}): output {step + 1} of {len(trace)}", ha="center",
            va="top", fontsize=11, fontweight="bold")
    ax.text(W / 2, 0.8, describe_step(t, dim, step, name).split("   slots")[0], ha="center", va="top",
            fontsize=9, color="crimson")
    cells, bottom = D.draw_view(ax, t, name, (W - vw) / 2, 2.2, vw, colours, highlight=hot,
                                 link="highlight")
    pos, end = D.draw_strip(ax, vals, window, colours, (W - strip_w) / 2, bottom + 3.2, per_row, used)
    D.draw_links(ax, cells, pos, colours)
    _mark_visits(ax, pos, trace[step])
    end = D.draw_legend(ax, 0, end + 0.5, W, f"Slots visited, in order: {trace[step]} (red numbers). The "
                    f"walk steps through storage by stride[{dim}] = {t.stride()[dim]}. " + LEGEND)
    return D.finish(fig, ax, W, end, own)


def _mark_visits(ax, pos, slots):
    for k, s in enumerate(slots):
        if s in pos:
            x, y = pos[s]
            ax.add_patch(Rectangle((x - 0.5, y), 1, 1, fill=False, edgecolor="crimson", lw=2.4, zorder=5))
            ax.text(x + 0.38, y + 0.05, str(k + 1), ha="right", va="top", fontsize=7, color="crimson",
                    fontweight="bold", zorder=6)


def _static(t, dim, name, max_steps):
    """Small multiples: one storage strip per output element, visited slots outlined."""
    trace = reduction_trace(t, dim)
    outs = list(_out_indices(tuple(t.shape), dim))
    vals, window, colours, used = D.layout([(name, t)])
    vw = D.view_width(name, t)
    per_row, strip_w = D.strip_geometry(window, vw)
    W = max(vw, strip_w, 18)
    fig = Figure()
    ax = fig.add_subplot()
    ax.text(W / 2, 0, f"{name}.sum(dim={dim}) → shape {tuple(t.sum(dim).shape)}: each output adds the "
            f"slots below (stride[{dim}] = {t.stride()[dim]} apart)", ha="center", va="top",
            fontsize=11, fontweight="bold")
    _, y = D.draw_view(ax, t, name, (W - vw) / 2, 1.2, vw, colours, link=False)
    y += 1.0
    rows = len(window) // per_row + (len(window) % per_row > 0)
    for step, (o, slots) in enumerate(zip(outs, trace)):
        if step == max_steps:
            ax.text(0, y, f"… {len(trace) - max_steps} more output elements not drawn", fontsize=9, va="top")
            y += 0.8
            break
        text = describe_step(t, dim, step, name)
        ax.text(0, y, text, fontsize=8.5, va="top", color="0.1")
        pos, _ = D.draw_strip(ax, vals, window, colours, (W - strip_w) / 2, y + 0.7, per_row, set(slots))
        _mark_visits(ax, pos, slots)
        y += 0.7 + 2.4 * rows
    end = D.draw_legend(ax, 0, y, W, "In each row the coloured, red-outlined slots are the ones added for "
                    "that output element (red numbers = visiting order); grey slots are skipped. "
                    "Outputs run in row-major order of the result.")
    return D.finish(fig, ax, W, end, True)


def show_reduction(t: torch.Tensor, dim: int, static: bool = False, *, name: str = "x",
                   max_steps: int = 12):
    """Step through ``t.sum(dim)`` one output element at a time.

    Returns an ipywidgets ``VBox([HBox([Play, IntSlider]), HTML, Image])``: move the
    slider (or press play) to pick an output element; the HTML line (CSS class
    ``course-reduction-label``) reads e.g.
    ``output[1] = x[0,1] + x[1,1] + x[2,1] = ... slots (1, 4, 7)`` and the image
    outlines the cells and storage slots that element adds. With ``static=True``
    (or when ipywidgets is missing, or ``COURSE_STATIC_WIDGETS=1``) returns a
    matplotlib Figure with every step.
    """
    dim = _check(t, dim, "show_reduction")
    D.validate_dense(t, "show_reduction")
    if static:
        return _static(t, dim, name, max_steps)
    from course_utils.static import interactive_note, static_widgets

    if static_widgets():                     # a static page (the course book): the still Figure
        interactive_note("the reduction stepper")
        return _static(t, dim, name, max_steps)
    try:
        import ipywidgets as widgets
    except ImportError:
        return _static(t, dim, name, max_steps)
    n = len(reduction_trace(t, dim))
    cache = {}

    def png(step):
        if step not in cache:
            cache[step] = figure_png(_frame(t, dim, step, name), dpi=80)
        return cache[step]

    def html(step):
        text = describe_step(t, dim, step, name)
        head, slots = text.split("   slots ")
        return (f"<code>{head}</code> &nbsp; <b class='course-reduction-slots'>slots {slots}</b>")

    slider = widgets.IntSlider(value=0, min=0, max=n - 1, description="output", continuous_update=True)
    play = widgets.Play(value=0, min=0, max=n - 1, interval=900, description="play")
    widgets.jslink((play, "value"), (slider, "value"))
    label = widgets.HTML(value=html(0))
    image = widgets.Image(value=png(0), format="png")
    slider.add_class("course-reduction-slider")
    label.add_class("course-reduction-label")

    def on_change(change):
        step = change["new"]
        label.value = html(step)
        image.value = png(step)

    slider.observe(on_change, names="value")
    return widgets.VBox([widgets.HBox([play, slider]), label, image])
