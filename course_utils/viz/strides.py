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
      reads, and a line joins the cell to that slot;
    * ``@k`` in a cell is its storage offset ``k``;
    * light-grey slots are in the storage but reached by no element shown;
    * the black triangle under the strip marks ``storage_offset``;
    * ``show_offset`` draws the target cell and slot with a thick red border
      and the hops of the offset formula as arcs under the strip.
"""

from __future__ import annotations

import math

import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.patheffects import withStroke

UNIT = 0.48                 # inches per cell
INNER, OUTER = 8, 4         # cells shown per grid dim / per block dim before "⋯"
_DIM_ARROWS = {"h": "→", "v": "↓"}


# ----------------------------------------------------------------------------- input
def _validate(t, what="show_strides"):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{what} expects a torch.Tensor, got {type(t).__name__}; "
                         "build one with torch.tensor([...]) or torch.arange(n).reshape(...).")
    if t.layout != torch.strided:
        raise ValueError(f"{what} draws dense (strided) tensors, got layout {t.layout}; "
                         "pass t.to_dense().")
    if not 1 <= t.dim() <= 4:
        raise ValueError(f"{what} draws tensors with 1 to 4 dims, got {t.dim()}-D shape "
                         f"{tuple(t.shape)}; pass t.reshape(...) or one slice such as t[0]"
                         + (" (for a 0-dim tensor use t.item() or t.reshape(1))" if t.dim() == 0 else "")
                         + ".")
    if t.numel() == 0:
        raise ValueError(f"{what} needs at least one element, got shape {tuple(t.shape)}.")


def storage_values(t: torch.Tensor) -> torch.Tensor:
    """The whole storage behind ``t`` as a 1-D CPU tensor of ``t.dtype`` (slot k = element k)."""
    st = t.untyped_storage()
    flat = torch.empty(0, dtype=t.dtype, device=t.device)
    flat.set_(st, 0, (st.nbytes() // t.element_size(),), (1,))
    return flat.detach().cpu()


def _slot(t, index):
    return t.storage_offset() + sum(i * s for i, s in zip(index, t.stride()))


def _fmt(v) -> str:
    """A number short enough for one cell (about 6 characters)."""
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        v = int(v)
    if isinstance(v, int):
        return str(v) if abs(v) < 1e6 else f"{v:.0e}"
    if isinstance(v, float):
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return f"{v:.1e}" if math.isfinite(v) else str(v)
    return str(v)[:6]


def _fs(text, base=8.5):
    return base if len(text) <= 5 else base - 1.5


# ----------------------------------------------------------------------------- layout
def _shown(size, limit):
    """Indices drawn along one dim; ``None`` marks the "⋯" gap of a long dim."""
    return list(range(size)) if size <= limit else list(range(limit - 2)) + [None, size - 1]


def _grid(shape):
    """Cells of a 1-D..4-D grid: (index or None, x, y) with x/y in cell units, plus labels.

    Last dim runs right, the one before down; dim 0 of a 3-D tensor picks a block
    to the right; a 4-D tensor has rows (dim 0) and columns (dim 1) of blocks.
    """
    nd = len(shape)
    rows = _shown(shape[-2], INNER) if nd >= 2 else [0]
    cols = _shown(shape[-1], INNER)
    bh = _shown(shape[-3], OUTER) if nd >= 3 else [0]
    bv = _shown(shape[0], OUTER) if nd == 4 else [0]
    top = 1.0 if nd >= 3 else 0.0            # room for block labels "[0, :, :]"
    bw, bhgt = len(cols) + 0.8, len(rows) + 0.6 + top
    cells, labels = [], []

    def xy_blocks(seq, size):
        out, pos = [], 0.0
        for b in seq:
            out.append((b, pos))
            pos += size if b is not None else 1.2
        return out, pos - (0.8 if nd >= 3 else 0)

    hblocks, width = xy_blocks(bh, bw)
    vblocks, height = xy_blocks(bv, bhgt)
    width = max(width, len(cols))
    for a, y0 in vblocks:
        for b, x0 in hblocks:
            if a is None or b is None:
                labels.append((x0 + 0.3, y0 + bhgt / 2 if a is None else y0 + top + len(rows) / 2,
                               "⋮" if a is None else "⋯", 14))
                continue
            if nd >= 3:
                prefix = ([a] if nd == 4 else []) + [b]
                name = "[" + ", ".join(map(str, prefix)) + ", :, :]"
                labels.append((x0 + len(cols) / 2, y0 + 0.3, name, 8.5))
            for r, i in enumerate(rows):
                for c, j in enumerate(cols):
                    x, y = x0 + c, y0 + top + r
                    if i is None or j is None:
                        cells.append((None, x, y))
                        continue
                    index = ([a] if nd == 4 else []) + ([b] if nd >= 3 else []) + ([i] if nd >= 2 else []) + [j]
                    cells.append((tuple(index), x, y))
    return cells, labels, rows, cols, top, width, (height if nd == 4 else top + len(rows))


def _window(n, needed, max_slots):
    """Storage slots to draw (``None`` = an elided run), keeping every needed slot if possible."""
    needed = sorted(set(needed))
    if n <= max_slots:
        return list(range(n))
    lo, hi = needed[0], needed[-1]
    if hi - lo + 5 <= max_slots:
        slots = list(range(max(0, lo - 2), min(n - 1, hi + 2) + 1))
    else:
        slots = needed[:max_slots]
    out = [None] if slots[0] > 0 else []
    for k, s in enumerate(slots):
        if k and s > slots[k - 1] + 1:
            out.append(None)
        out.append(s)
    return out + ([None] if slots[-1] < n - 1 else [])


def _colours(window):
    from matplotlib import colormaps
    real = [s for s in window if s is not None]
    cmap = colormaps["turbo"]
    out = {}
    for k, s in enumerate(real):
        rgb = to_rgb(cmap(0.08 + 0.84 * k / max(1, len(real) - 1)))
        out[s] = tuple(0.45 * ch + 0.55 for ch in rgb)   # lightened so black text reads
    return out


# ----------------------------------------------------------------------------- drawing
def _header(name, t):
    off = t.storage_offset()
    return (f"{name}   shape {tuple(t.shape)}   stride {tuple(t.stride())}",
            f"storage_offset {off} (= {off * t.element_size()} bytes)   contiguous: {t.is_contiguous()}")


def _view_width(name, t):
    """Width in cells of one view: its grid or its two header lines, whichever is wider."""
    extra = 32 * 0.16 if t.dim() >= 3 else 0     # the "dim 0 picks a block" line
    return max(_grid(tuple(t.shape))[5], max(len(s) for s in _header(name, t)) * 0.16 + extra * 0)


def _draw_view(ax, t, name, x0, y0, width, colours, highlight=(), link="auto"):
    """Draw one tensor (header + grid) centred in [x0, x0 + width].

    Returns ({index: (cx, cy, slot, draw_link)}, bottom y).
    """
    cells, labels, rows, cols, top, w, h = _grid(tuple(t.shape))
    nd = t.dim()
    h1, h2 = _header(name, t)
    mid = x0 + width / 2
    ax.text(mid, y0, h1, fontsize=10, fontweight="bold", va="top", ha="center")
    ax.text(mid, y0 + 0.6, h2, fontsize=9, va="top", ha="center", color="0.25")
    gx, gy = mid - w / 2, y0 + 2.9
    # dim labels: the last dim runs right, the one before it runs down
    if nd <= 2:
        ax.text(gx + len(cols) / 2, gy - 0.75, f"dim {nd - 1} →", ha="center", fontsize=9, color="0.3")
    for c, j in enumerate(cols):
        ax.text(gx + c + 0.5, gy + top - 0.1, "⋯" if j is None else str(j), ha="center", va="bottom",
                fontsize=7.5, color="0.45")
    if nd >= 2:
        ax.text(gx - 1.0, gy + top + len(rows) / 2, f"dim {nd - 2} →", rotation=-90,
                ha="center", va="center", fontsize=9, color="0.3")
        for r, i in enumerate(rows):
            ax.text(gx - 0.12, gy + top + r + 0.5, "⋮" if i is None else str(i), ha="right",
                    va="center", fontsize=7.5, color="0.45")
    if nd >= 3:
        ax.text(gx + w / 2, gy - 0.75, ("dim 0 → picks a block" if nd == 3 else
                "dim 0 ↓ picks a block row, dim 1 → a block column")
                + f";  in a block: dim {nd - 2} ↓, dim {nd - 1} →", ha="center", fontsize=9, color="0.3")
    for x, y, s, fs in labels:
        ax.text(gx + x, gy + y, s, ha="left" if s in "⋯⋮" else "center", va="center",
                fontsize=fs, color="0.2")
    vals, out = storage_values(t), {}
    many = sum(c[0] is not None for c in cells) > (24 if nd <= 2 else 12)
    for index, x, y in cells:
        X, Y = gx + x, gy + y
        if index is None:
            ax.text(X + 0.5, Y + 0.5, "⋯", ha="center", va="center", fontsize=10)
            continue
        slot = _slot(t, index)
        hot = index in highlight
        fill = colours.get(slot, "0.93")
        ax.add_patch(Rectangle((X, Y), 1, 1, facecolor=fill, edgecolor="crimson" if hot else "0.35",
                               lw=2.6 if hot else 0.7, zorder=4.5 if hot else 3))
        halo = [withStroke(linewidth=2.5, foreground=fill)]
        label = _fmt(vals[slot].item())
        ax.text(X + 0.5, Y + 0.36, label, ha="center", va="center", fontsize=_fs(label),
                zorder=5, path_effects=halo)
        ax.text(X + 0.5, Y + 0.8, f"@{slot}", ha="center", va="center", fontsize=6.5, color="0.25",
                zorder=5, path_effects=halo)
        draw = (link is True) or (link == "auto" and not many) or (link == "highlight" and hot)
        out[index] = (X + 0.5, Y + 0.6, slot, draw)
    return out, gy + h


def _draw_strip(ax, vals, window, colours, x0, y0, per_row, used):
    """Draw the storage slots (rows of ``per_row``) from (x0, y0); return {slot: (cx, top y)}, bottom y."""
    pos, y = {}, y0
    for k, s in enumerate(window):
        col = k % per_row
        if k and col == 0:
            y += 2.4
        if s is None:
            ax.text(x0 + col + 0.5, y + 0.5, "⋯", ha="center", va="center", fontsize=12)
            continue
        ax.add_patch(Rectangle((x0 + col, y), 1, 1, facecolor=colours[s] if s in used else "0.9",
                               edgecolor="0.3", lw=0.8, zorder=3))
        label = _fmt(vals[s].item())
        ax.text(x0 + col + 0.5, y + 0.5, label, ha="center", va="center", fontsize=_fs(label),
                color="black" if s in used else "0.55", zorder=5)
        ax.text(x0 + col + 0.5, y + 1.25, str(s), ha="center", va="center", fontsize=7, color="0.4")
        pos[s] = (x0 + col + 0.5, y)
    return pos, y + 1.6


def _strip_caption(t, window):
    n = t.untyped_storage().nbytes()
    return (f"Storage = t.untyped_storage(): {n // t.element_size()} slots × {t.element_size()} "
            f"bytes ({str(t.dtype).replace('torch.', '')}) = {n} bytes"
            + ("; ⋯ = slots not drawn" if None in window else "") + "; the slot index is under each slot. ")


def _link(ax, cells, pos, colours, style="-"):
    for cx, cy, slot, draw in cells.values():
        if draw and slot in pos:
            sx, sy = pos[slot]
            dark = tuple(max(0.0, 2.2 * ch - 1.45) for ch in colours.get(slot, (0.6, 0.6, 0.6)))
            ax.plot([cx, sx], [cy, sy], ls=style, color=dark, lw=1.0, alpha=0.7, zorder=3.5)
            ax.plot([cx], [cy], marker="o", ms=2.5, color=dark, zorder=3.6)


def _legend(ax, x, y, width, text):
    """Wrap ``text`` to the figure width and write it at (x, y); return the bottom y."""
    import textwrap
    lines = textwrap.wrap(text, max(40, int(width * 6.8)))
    ax.text(x, y, "\n".join(lines), fontsize=8.5, color="0.2", va="top", linespacing=1.45)
    return y + 0.45 * len(lines)


def _finish(fig, ax, width, height, own):
    ax.set_xlim(-1.6, width + 0.4)
    ax.set_ylim(height + 0.3, -0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    if own:
        fig.set_size_inches(min(18, (width + 2.0) * UNIT), (height + 0.7) * UNIT)
        fig.subplots_adjust(0, 0, 1, 1)
    return fig


def _new_axes(ax):
    if ax is not None:
        return ax.figure, ax, False
    fig = Figure()
    return fig, fig.add_subplot(), True


def _layout(views, extra_slots=(), max_slots=64):
    """Storage values, the slot window to draw, slot colours, and the slots the views reach."""
    vals = storage_values(views[0][1])
    needed = list(extra_slots)
    for _, t in views:
        needed += [_slot(t, c[0]) for c in _grid(tuple(t.shape))[0] if c[0] is not None]
    window = _window(len(vals), needed, max_slots)
    return vals, window, _colours(window), set(needed)


def _strip_geometry(window, content_width):
    per_row = len(window) if len(window) <= 32 else int(min(32, max(16, content_width)))
    return per_row, min(per_row, len(window))


LEGEND = ("Legend: a cell's colour is the colour of the storage slot it reads (same colour = same memory), "
          "and a line joins them (small tensors); @k = the cell's storage offset k; a grey slot is storage no drawn "
          "element reaches; ▲ marks storage_offset.")


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
        _validate(v)
    base = t.untyped_storage().data_ptr()
    for k, v in enumerate(others):
        if v.untyped_storage().data_ptr() != base or v.dtype != t.dtype:
            raise ValueError(f"share_with[{k}] does not share t's storage (or has another dtype); "
                             "pass a view of t such as t.t(), t[1:], t.narrow(...) or t.expand(...).")
    names = list(names) if names else ["t"] + [f"view {k}" for k in range(1, len(views))]
    if len(names) != len(views):
        raise ValueError(f"names needs one label per view ({len(views)}), got {len(names)}.")
    views = list(zip(names, views))
    vals, window, colours, used = _layout(views, max_slots=max_slots)
    widths = [_view_width(n, v) for n, v in views]
    views_w = sum(widths) + 2.0 * (len(views) - 1)
    per_row, strip_w = _strip_geometry(window, views_w)
    W = max(views_w, strip_w, 14)
    fig, ax, own = _new_axes(ax)
    x, bottom, cells = (W - views_w) / 2, 0.0, []
    for k, ((name, v), w) in enumerate(zip(views, widths)):
        # with several views, "auto" links only the views after the first (the base tensor)
        link = False if (links == "auto" and k == 0 and len(views) > 1) else links
        c, b = _draw_view(ax, v, name, x, 0.0, w, colours, link=link)
        cells.append(c)
        x += w + 2.0
        bottom = max(bottom, b)
    sx0 = (W - strip_w) / 2
    lines = any(d for c in cells for (_, _, _, d) in c.values())
    pos, end = _draw_strip(ax, vals, window, colours, sx0, bottom + (3.2 if lines else 1.4), per_row, used)
    for k, ((name, v), c) in enumerate(zip(views, cells)):
        _link(ax, c, pos, colours, "-" if k == 0 else "--")
        if v.storage_offset() in pos:
            px, py = pos[v.storage_offset()]
            ax.plot([px], [py + 1.9 + 0.6 * k], marker="^", color="black", ms=6)
            ax.text(px + 0.35, py + 1.9 + 0.6 * k, f"storage_offset of {name}", fontsize=7.5, va="center")
    end += 0.6 * len(views) + 0.5
    end = _legend(ax, 0, end, W, _strip_caption(t, window) + LEGEND + (" Lines of the second and later views are dashed."
                                                 if len(views) > 1 else ""))
    return _finish(fig, ax, W, end, own)


def show_offset(t: torch.Tensor, index, *, name: str = "x", ax=None, max_slots: int = 64) -> Figure:
    """Draw offset = storage_offset + Σ index_k × stride_k term by term, landing on the slot.

    index: a tuple with one int per dim of ``t`` (negative ints count from the end).
    Returns a Figure: the grid with the target cell outlined in red, the formula, and
    the storage strip with one red arc per non-zero term (legend in the module docstring).
    """
    _validate(t, "show_offset")
    index = (index,) if isinstance(index, int) else index
    if not isinstance(index, (tuple, list)) or len(index) != t.dim() or \
            not all(isinstance(i, int) and -n <= i < n for i, n in zip(index, t.shape)):
        raise ValueError(f"show_offset needs one int per dim, inside shape {tuple(t.shape)}, "
                         f"e.g. {tuple(0 for _ in t.shape)}; got {index!r}.")
    index = tuple(i % n for i, n in zip(index, t.shape))
    if index not in {c[0] for c in _grid(tuple(t.shape))[0]}:
        raise ValueError(f"index {index} is hidden in the drawing of a large tensor; pass a smaller "
                         "slice that contains it (e.g. t[:6, :6]).")
    hops, at = [t.storage_offset()], t.storage_offset()
    for i, s in zip(index, t.stride()):
        at += i * s
        hops.append(at)
    vals, window, colours, used = _layout([(name, t)], hops, max_slots)
    vw = _view_width(name, t)
    per_row, strip_w = _strip_geometry(window, vw)
    W = max(vw, strip_w, 16)
    fig, ax, own = _new_axes(ax)
    terms = " + ".join(f"{i}×{s}" for i, s in zip(index, t.stride()))
    ax.text(W / 2, 0.0, f"offset = storage_offset + Σ index_k × stride_k = {t.storage_offset()} + "
            f"{terms} = {at}", fontsize=10.5, fontweight="bold", va="top", ha="center", color="crimson")
    ax.text(W / 2, 0.8, f"{name}[{', '.join(map(str, index))}] = {_fmt(vals[at].item())} "
            f"lives in storage slot {at} (byte {at * t.element_size()} of the storage)",
            fontsize=9.5, va="top", ha="center")
    cells, bottom = _draw_view(ax, t, name, (W - vw) / 2, 2.2, vw, colours, highlight={index},
                               link="highlight")
    sx0 = (W - strip_w) / 2
    pos, end = _draw_strip(ax, vals, window, colours, sx0, bottom + 5.0, per_row, used)
    _link(ax, cells, pos, colours)
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
    end = _legend(ax, 0, depth + 0.5, W, _strip_caption(t, window) + LEGEND + " Red arcs: one hop per term of the formula.")
    return _finish(fig, ax, W, end, own)
