"""Where a tensor's numbers live: the logical grid above the flat storage (lesson 01).

A strided tensor is a *view*: ``(sizes, strides, storage_offset)`` over a flat
1-D storage. Element ``x[i0, i1, ...]`` lives in storage slot

    storage_offset + i0 * stride[0] + i1 * stride[1] + ...

``show_strides(t)`` draws that mapping from the tensor's **real** storage
(``t.untyped_storage()``), so views (transpose, permute, stepped slices,
``narrow``, ``expand``) show exactly which memory they read.

Colour legend (both figures):
    * each storage slot has its own colour, running through the rainbow in
      storage order; a logical cell is filled with the colour of the slot it
      reads, and a line joins the cell to that slot (not drawn for a tensor
      that reads its slots in order, contiguous from offset 0: the colours say it);
    * ``@k`` in a cell is its storage offset ``k``;
    * light-grey slots are in the storage but never read by the view drawn
      above them (with ``share_with=``, each view gets its own copy of the
      strip, so each shows what *it* skips);
    * the black triangle on the strip marks ``storage_offset``;
    * ``show_offset`` draws the target cell and slot with a thick red border
      and the hops of the offset formula as arcs under the strip.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

# The drawing parts (grid, strip, links, legend) and storage reading live in
# _storage_drawing.py, which imports nothing from here.
from course_utils.viz import _storage_drawing as D
from course_utils.viz._storage_drawing import storage_values  # noqa: F401 - public here since lesson 01


LEGEND = ("Legend: a cell's colour is the colour of the storage slot it reads (same colour = same memory), "
          "and a line joins them (small tensors that do not read their slots in order); @k = the cell's "
          "storage offset k; a grey slot is storage the view above it never reads; ▲ marks storage_offset.")


def show_strides(t: torch.Tensor, share_with=None, *, names=None, ax=None, max_slots: int = 64,
                 links="auto") -> Figure:
    """Draw ``t``'s logical grid (1-D to 4-D) above its real storage strip; return the Figure.

    share_with: another view (or a list of views) of the *same* storage, drawn next
        to ``t`` and linked to the same strip, e.g. ``show_strides(x, share_with=x.t())``.
    names: labels for the views (default ``"t"``, ``"view 1"``, ...).
    max_slots: storages longer than this show only the slots near the view, with "⋯".
    links: draw a line from each cell to its slot: True, False or "auto" (small tensors
        only, <= 24 cells in 1-D/2-D, <= 12 in 3-D/4-D; with ``share_with``, only the
        views after the first get lines, since the colours already link the first).
    Long dims are drawn as the first cells, "⋯", and the last cell.
    See the module docstring for the colour legend.
    """
    others = [] if share_with is None else (list(share_with) if isinstance(share_with, (list, tuple))
                                            else [share_with])
    views = [t] + others
    for v in views:
        D.validate_dense(v)
    base = t.untyped_storage().data_ptr()
    for k, v in enumerate(others):
        if v.untyped_storage().data_ptr() != base or v.dtype != t.dtype:
            raise ValueError(f"share_with[{k}] does not share t's storage (or has another dtype); "
                             "pass a view of t such as t.t(), t[1:], t.narrow(...) or t.expand(...).")
    names = list(names) if names else ["t"] + [f"view {k}" for k in range(1, len(views))]
    if len(names) != len(views):
        raise ValueError(f"names needs one label per view ({len(views)}), got {len(names)}.")
    views = list(zip(names, views))
    # One colour per slot for all views (same colour = same memory), drawn from one window.
    vals, window, colours, _ = D.layout(views, max_slots=max_slots)
    per_row, strip_w = D.strip_geometry(window, max(D.view_width(n, v) for n, v in views))
    W = max(max(D.view_width(n, v) for n, v in views), strip_w, 14)
    fig, ax, own = D.new_axes(ax)
    y, sx0 = 0.0, (W - strip_w) / 2
    in_order = []
    for k, (name, v) in enumerate(views):
        # Each view sits over its own copy of the strip: its lines do not cross another
        # view's, and the grey slots are the ones *this* view never reads.
        link = links
        if links == "auto" and D.reads_in_order(v):
            link = False
            in_order.append(name)
        vw = D.view_width(name, v)
        cells, bottom = D.draw_view(ax, v, name, (W - vw) / 2, y, vw, colours, link=link)
        lines = any(d for (_, _, _, d) in cells.values())
        reads = {D.slot_of(v, c[0]) for c in D.grid_cells(tuple(v.shape))[0] if c[0] is not None}
        pos, end = D.draw_strip(ax, vals, window, colours, sx0, bottom + (3.2 if lines else 1.4), per_row, reads)
        D.draw_links(ax, cells, pos, colours)
        if v.storage_offset() in pos:
            px, py = pos[v.storage_offset()]
            ax.plot([px], [py + 1.9], marker="^", color="black", ms=6)
            ax.text(px + 0.35, py + 1.9, f"storage_offset of {name} = {v.storage_offset()}", fontsize=7.5,
                    va="center")
        skipped = sum(1 for slot in window if slot is not None and slot not in reads)
        ax.text(sx0, end + 0.65, f"the storage as {name} reads it: {len(reads)} slots read"
                + (f", {skipped} grey slots never read" if skipped else ", every drawn slot read"),
                fontsize=8, color="0.3", va="top")
        y = end + 1.9
    note = (f" {', '.join(in_order)} read{'s' if len(in_order) == 1 else ''} the slots in order "
            "(contiguous from offset 0), so no lines are drawn: the colours already run in order."
            if in_order else "")
    end = D.draw_legend(ax, 0, y, W, D.strip_caption(t, window) + LEGEND + note
                        + (" Every view reads the same storage; each has its own copy of the strip."
                           if len(views) > 1 else ""))
    return D.finish(fig, ax, W, end, own)


def show_offset(t: torch.Tensor, index, *, name: str = "x", ax=None, max_slots: int = 64) -> Figure:
    """Draw offset = storage_offset + Σ index_k × stride_k term by term, landing on the slot.

    index: a tuple with one int per dim of ``t`` (negative ints count from the end).
    Returns a Figure: the grid with the target cell outlined in red, the formula, and
    the storage strip with one red arc per non-zero term (legend in the module docstring).
    """
    D.validate_dense(t, "show_offset")
    index = (index,) if isinstance(index, int) else index
    if not isinstance(index, (tuple, list)) or len(index) != t.dim() or \
            not all(isinstance(i, int) and -n <= i < n for i, n in zip(index, t.shape)):
        raise ValueError(f"show_offset needs one int per dim, inside shape {tuple(t.shape)}, "
                         f"e.g. {tuple(0 for _ in t.shape)}; got {index!r}.")
    index = tuple(i % n for i, n in zip(index, t.shape))
    if index not in {c[0] for c in D.grid_cells(tuple(t.shape))[0]}:
        raise ValueError(f"index {index} is hidden in the drawing of a large tensor; pass a smaller "
                         "slice that contains it (e.g. t[:6, :6]).")
    hops, at = [t.storage_offset()], t.storage_offset()
    for i, s in zip(index, t.stride()):
        at += i * s
        hops.append(at)
    vals, window, colours, used = D.layout([(name, t)], hops, max_slots)
    vw = D.view_width(name, t)
    per_row, strip_w = D.strip_geometry(window, vw)
    W = max(vw, strip_w, 16)
    fig, ax, own = D.new_axes(ax)
    terms = " + ".join(f"{i}×{s}" for i, s in zip(index, t.stride()))
    ax.text(W / 2, 0.0, f"offset = storage_offset + Σ index_k × stride_k = {t.storage_offset()} + "
            f"{terms} = {at}", fontsize=10.5, fontweight="bold", va="top", ha="center", color="crimson")
    ax.text(W / 2, 0.8, f"{name}[{', '.join(map(str, index))}] = {D.fmt(vals[at].item())} "
            f"lives in storage slot {at} (byte {at * t.element_size()} of the storage)",
            fontsize=9.5, va="top", ha="center")
    cells, bottom = D.draw_view(ax, t, name, (W - vw) / 2, 2.2, vw, colours, highlight={index},
                               link="highlight")
    sx0 = (W - strip_w) / 2
    pos, end = D.draw_strip(ax, vals, window, colours, sx0, bottom + 5.0, per_row, used)
    D.draw_links(ax, cells, pos, colours)
    px, py = pos[at]
    ax.add_patch(Rectangle((px - 0.5, py), 1, 1, fill=False, edgecolor="crimson", lw=2.6, zorder=5))
    p0x, p0y = pos[hops[0]]
    ax.plot([p0x], [p0y + 1.9], marker="^", color="black", ms=6)
    ax.text(p0x + 0.35, p0y + 1.9, f"start: storage_offset = {hops[0]}", fontsize=7.5, va="center")
    shown = 0
    for k, (a, b) in enumerate(zip(hops, hops[1:])):
        if a == b or a not in pos or b not in pos:
            continue
        (ax_, ay), (bx, by) = pos[a], pos[b]
        ax.annotate("", xy=(bx, by - 0.05), xytext=(ax_, ay - 0.05),
                    arrowprops=dict(arrowstyle="-|>", color="crimson", lw=1.5, shrinkA=1, shrinkB=1,
                                    connectionstyle="arc3,rad=-0.35"))
        top = min(ay, by) - 0.2 - 0.18 * abs(bx - ax_) - 0.7 * (shown % 2)
        ax.text((ax_ + bx) / 2, top, f"+{index[k]}×{t.stride()[k]} (dim {k})", ha="center", va="bottom",
                fontsize=8.5, color="crimson", zorder=6,
                bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))
        shown += 1
    depth = end + 0.8
    end = D.draw_legend(ax, 0, depth + 0.5, W, D.strip_caption(t, window) + LEGEND + " Red arcs: one hop per term of the formula.")
    return D.finish(fig, ax, W, end, own)
