"""Storage strips: reading a tensor's storage and drawing grids over it (lessons 01).

The one module that knows how a strided tensor is *drawn*: the lesson-facing
pictures are built from its parts, each in its own concept module:
``show_strides`` / ``show_offset`` (:mod:`course_utils.viz.strides`) and
``show_reduction`` (:mod:`course_utils.viz.reduction`). It imports neither
(no cycle); its names are public to those siblings, the module itself is not
part of the learner's API.

    * reading: ``storage_values`` (the whole storage as numbers), ``slot_of``;
    * layout: which cells of a 1-D..4-D grid are drawn (long dims elided with "⋯"),
      which storage slots are drawn, and one colour per slot;
    * drawing: a view's header and grid (value, ``@slot`` and a halo per cell), the
      storage strip (slots a view never reads in grey), the cell-to-slot lines, the
      wrapped legend, figure sizing.

Coordinates are in cell units (``UNIT`` inches each), y grows downwards.
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


# ----------------------------------------------------------------------------- reading
def storage_values(t: torch.Tensor) -> torch.Tensor:
    """The whole storage behind ``t`` as a 1-D CPU tensor of ``t.dtype`` (slot k = element k)."""
    st = t.untyped_storage()
    flat = torch.empty(0, dtype=t.dtype, device=t.device)
    flat.set_(st, 0, (st.nbytes() // t.element_size(),), (1,))
    return flat.detach().cpu()


def validate_dense(t, what="show_strides"):
    """A ValueError that says how to fix it, unless ``t`` is a drawable dense 1-D..4-D tensor."""
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


def reads_in_order(t) -> bool:
    """True when ``t`` reads slot 0, 1, 2, ... in its own row-major order (contiguous, offset 0):
    a picture needs no lines for it, the colours already run in order."""
    return t.is_contiguous() and t.storage_offset() == 0


def slot_of(t, index):
    return t.storage_offset() + sum(i * s for i, s in zip(index, t.stride()))


def fmt(v) -> str:
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


def font_size(text, base=8.5):
    return base if len(text) <= 5 else base - 1.5


# ----------------------------------------------------------------------------- layout
def shown_indices(size, limit):
    """Indices drawn along one dim; ``None`` marks the "⋯" gap of a long dim."""
    return list(range(size)) if size <= limit else list(range(limit - 2)) + [None, size - 1]


def grid_cells(shape):
    """Cells of a 1-D..4-D grid: (index or None, x, y) with x/y in cell units, plus labels.

    Last dim runs right, the one before down; dim 0 of a 3-D tensor picks a block
    to the right; a 4-D tensor has rows (dim 0) and columns (dim 1) of blocks.
    """
    nd = len(shape)
    rows = shown_indices(shape[-2], INNER) if nd >= 2 else [0]
    cols = shown_indices(shape[-1], INNER)
    bh = shown_indices(shape[-3], OUTER) if nd >= 3 else [0]
    bv = shown_indices(shape[0], OUTER) if nd == 4 else [0]
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


def slot_window(n, needed, max_slots, must=()):
    """Storage slots to draw (``None`` = an elided run), keeping every needed slot if possible
    and the ``must`` slots (e.g. the hops of the offset formula) always."""
    needed = sorted(set(needed) | set(must))
    if n <= max_slots:
        return list(range(n))
    lo, hi = needed[0], needed[-1]
    if hi - lo + 5 <= max_slots:
        slots = list(range(max(0, lo - 2), min(n - 1, hi + 2) + 1))
    else:
        must = set(must)
        rest = [s for s in needed if s not in must][:max(0, max_slots - len(must))]
        slots = sorted(must | set(rest))
    out = [None] if slots[0] > 0 else []
    for k, s in enumerate(slots):
        if k and s > slots[k - 1] + 1:
            out.append(None)
        out.append(s)
    return out + ([None] if slots[-1] < n - 1 else [])


def slot_colours(window):
    from matplotlib import colormaps
    real = [s for s in window if s is not None]
    cmap = colormaps["turbo"]
    out = {}
    for k, s in enumerate(real):
        rgb = to_rgb(cmap(0.08 + 0.84 * k / max(1, len(real) - 1)))
        out[s] = tuple(0.45 * ch + 0.55 for ch in rgb)   # lightened so black text reads
    return out


# ----------------------------------------------------------------------------- drawing
def view_header(name, t):
    off = t.storage_offset()
    return (f"{name}   shape {tuple(t.shape)}   stride {tuple(t.stride())}",
            f"storage_offset {off} (= {off * t.element_size()} bytes)   contiguous: {t.is_contiguous()}")


def view_width(name, t):
    """Width in cells of one view: its grid or its two header lines, whichever is wider."""
    extra = 32 * 0.16 if t.dim() >= 3 else 0     # the "dim 0 picks a block" line
    return max(grid_cells(tuple(t.shape))[5], max(len(s) for s in view_header(name, t)) * 0.16 + extra * 0)


def draw_view(ax, t, name, x0, y0, width, colours, highlight=(), link="auto"):
    """Draw one tensor (header + grid) centred in [x0, x0 + width].

    Returns ({index: (cx, cy, slot, draw_link)}, bottom y).
    """
    cells, labels, rows, cols, top, w, h = grid_cells(tuple(t.shape))
    nd = t.dim()
    h1, h2 = view_header(name, t)
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
        slot = slot_of(t, index)
        hot = index in highlight
        fill = colours.get(slot, "0.93")
        ax.add_patch(Rectangle((X, Y), 1, 1, facecolor=fill, edgecolor="crimson" if hot else "0.35",
                               lw=2.6 if hot else 0.7, zorder=4.5 if hot else 3))
        halo = [withStroke(linewidth=2.5, foreground=fill)]
        label = fmt(vals[slot].item())
        ax.text(X + 0.5, Y + 0.36, label, ha="center", va="center", fontsize=font_size(label),
                zorder=5, path_effects=halo)
        ax.text(X + 0.5, Y + 0.8, f"@{slot}", ha="center", va="center", fontsize=6.5, color="0.25",
                zorder=5, path_effects=halo)
        draw = (link is True) or (link == "auto" and not many) or (link == "highlight" and hot)
        out[index] = (X + 0.5, Y + 0.6, slot, draw)
    return out, gy + h


def draw_strip(ax, vals, window, colours, x0, y0, per_row, used):
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
        label = fmt(vals[s].item())
        ax.text(x0 + col + 0.5, y + 0.5, label, ha="center", va="center", fontsize=font_size(label),
                color="black" if s in used else "0.55", zorder=5)
        ax.text(x0 + col + 0.5, y + 1.25, str(s), ha="center", va="center", fontsize=7, color="0.4")
        pos[s] = (x0 + col + 0.5, y)
    return pos, y + 1.6


def strip_caption(t, window):
    n = t.untyped_storage().nbytes()
    return (f"Storage = t.untyped_storage(): {n // t.element_size()} slots × {t.element_size()} "
            f"bytes ({str(t.dtype).replace('torch.', '')}) = {n} bytes"
            + ("; ⋯ = slots not drawn" if None in window else "") + "; the slot index is under each slot. ")


def draw_links(ax, cells, pos, colours, style="-"):
    for cx, cy, slot, draw in cells.values():
        if draw and slot in pos:
            sx, sy = pos[slot]
            dark = tuple(max(0.0, 2.2 * ch - 1.45) for ch in colours.get(slot, (0.6, 0.6, 0.6)))
            ax.plot([cx, sx], [cy, sy], ls=style, color=dark, lw=1.0, alpha=0.7, zorder=3.5)
            ax.plot([cx], [cy], marker="o", ms=2.5, color=dark, zorder=3.6)


def draw_legend(ax, x, y, width, text):
    """Wrap ``text`` to the figure width and write it at (x, y); return the bottom y."""
    import textwrap
    lines = textwrap.wrap(text, max(40, int(width * 6.8)))
    ax.text(x, y, "\n".join(lines), fontsize=8.5, color="0.2", va="top", linespacing=1.45)
    return y + 0.45 * len(lines)


def finish(fig, ax, width, height, own):
    ax.set_xlim(-1.6, width + 0.4)
    ax.set_ylim(height + 0.3, -0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    if own:
        fig.set_size_inches(min(18, (width + 2.0) * UNIT), (height + 0.7) * UNIT)
        fig.subplots_adjust(0, 0, 1, 1)
    return fig


def new_axes(ax):
    if ax is not None:
        return ax.figure, ax, False
    fig = Figure()
    return fig, fig.add_subplot(), True


def layout(views, extra_slots=(), max_slots=64):
    """Storage values, the slot window to draw, slot colours, and the slots the views reach."""
    vals = storage_values(views[0][1])
    needed = list(extra_slots)
    for _, t in views:
        needed += [slot_of(t, c[0]) for c in grid_cells(tuple(t.shape))[0] if c[0] is not None]
    window = slot_window(len(vals), needed, max_slots, must=extra_slots)
    return vals, window, slot_colours(window), set(needed)


def strip_geometry(window, content_width):
    per_row = len(window) if len(window) <= 32 else int(min(32, max(16, content_width)))
    return per_row, min(per_row, len(window))
