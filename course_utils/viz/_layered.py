"""Laying out a directed graph in layers, drawn with matplotlib (lesson 02's fallback picture).

``course_utils.viz.autograd.draw_graph`` draws with this module when it cannot
use graphviz (``backend="matplotlib"``, ``ax=...``, or no ``dot`` program). It
knows nothing about autograd: it takes nodes (``.id``, ``.kind``), edges, the
text of each box and a :class:`Style` (fill per kind, which kinds are rounded,
the legend, the highlight colour), lays the graph out in layers (a small
Sugiyama layout, see :func:`layout`) and draws boxes, arrows and legend. It
imports nothing from the other viz modules, so there is no import cycle.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

_CHAR_W, _LINE_H, _GAP = 0.068, 0.16, 0.25     # inches, at 8 pt


@dataclass(frozen=True)
class Style:
    """How boxes look: ``legend`` maps kind -> (fill colour, text); ``rounded`` kinds get
    rounded boxes; nodes of kind ``dashed`` sit beside their neighbour, joined by a dashed line."""

    legend: dict
    rounded: frozenset
    highlight: str
    dashed: str = "saved"
    arrow_label: str = "gradient flows (next_functions)"
    dashed_label: str = "saved for backward"


def layout(nodes, edges, text, dashed="saved"):
    """A small Sugiyama layout: layers by longest distance from the root, virtual
    points on arrows that skip layers, order by neighbours' mean position.

    Returns ({id: (x, y, w, h)} in inches, {edge index: [(x, y) bends]}). Saved
    tensors stack in a column just right of their function.
    """
    kind = {n.id: ("saved" if n.kind == dashed else n.kind) for n in nodes}
    size = {}
    for n in nodes:
        lines = text[n.id].split("\n")
        size[n.id] = (max(map(len, lines)) * _CHAR_W + 0.2, len(lines) * _LINE_H + 0.12)
    parents, children, saved_of = defaultdict(list), defaultdict(list), defaultdict(list)
    for s, d in edges:
        if kind[s] == "saved":
            saved_of[d].append(s)
        else:
            children[s].append(d)
    indeg = defaultdict(int)
    for s, d in edges:
        if kind[s] != "saved":
            indeg[d] += 1
    layer = {}
    ready = [n.id for n in nodes if kind[n.id] != "saved" and indeg[n.id] == 0]
    while ready:                                   # longest path: every arrow points down
        s = ready.pop()
        layer.setdefault(s, 0)
        for d in children[s]:
            layer[d] = max(layer.get(d, 0), layer[s] + 1)
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    children = defaultdict(list)
    chains = {}                                    # edge index -> virtual points on the way down
    for k, (s, d) in enumerate(edges):
        if kind[s] == "saved":
            continue
        chain = [("via", k, j) for j in range(1, layer[d] - layer[s])]
        for j, v in enumerate(chain):
            layer[v], size[v] = layer[s] + 1 + j, (0.05, 0.05)
        path = [s] + chain + [d]
        for a, b in zip(path, path[1:]):
            parents[b].append(a)
            children[a].append(b)
        chains[k] = chain
    rows = defaultdict(list)
    for v in layer:
        rows[layer[v]].append(v)
    right_ext = {v: size[v][0] / 2 + (0.3 + max(size[t][0] for t in saved_of[v]) if saved_of[v] else 0)
                 for v in layer}
    x = {}

    def place(row, wanted):
        """Left to right, at the wanted x where possible, never overlapping."""
        pos, right = [], None
        for v in row:
            p = wanted.get(v, 0.0)
            if right is not None:
                p = max(p, right + size[v][0] / 2 + _GAP) if v in wanted else right + size[v][0] / 2 + _GAP
            pos.append(p)
            right = p + right_ext[v]
        moved = [wanted[v] - p for v, p in zip(row, pos) if v in wanted]
        shift = sum(moved) / len(moved) if moved else -(pos[0] + pos[-1]) / 2
        for v, p in zip(row, pos):
            x[v] = p + shift

    order = sorted(rows)
    for L in order:                                # first pass: top-down, in discovery order
        place(rows[L], {})
    for nbrs, sweep in ((parents, order), (children, order[::-1]), (parents, order)) * 2:
        for L in sweep:
            want = {v: sum(x[u] for u in nbrs[v]) / len(nbrs[v]) for v in rows[L] if nbrs[v]}
            rows[L].sort(key=lambda v: want.get(v, x[v]))
            place(rows[L], want)
    y, out = 0.0, {}
    for L in order:
        h = max(max(size[v][1], sum(size[t][1] + 0.08 for t in saved_of[v])) for v in rows[L])
        for v in rows[L]:
            out[v] = (x[v], y - h / 2) + size[v]
            ws = max((size[t][0] for t in saved_of[v]), default=0)
            ty = y - h / 2 + sum(size[t][1] + 0.08 for t in saved_of[v]) / 2
            for t in saved_of[v]:                  # a column of saved tensors, top to bottom
                out[t] = (x[v] + size[v][0] / 2 + 0.3 + ws / 2, ty - size[t][1] / 2 - 0.04) + size[t]
                ty -= size[t][1] + 0.08
        y -= h + 0.45
    bends = {k: [out[v][:2] for v in chain] for k, chain in chains.items()}
    return {v: p for v, p in out.items() if not isinstance(v, tuple)}, bends


def draw_layered(nodes, edges, text, style: Style, hl=(), edge_labels=None, note="", ax=None):
    """Draw the graph; ``text`` maps node id -> box text. Returns the Figure."""
    edge_labels = edge_labels or {}
    pos, bends = layout(nodes, edges, text, style.dashed)
    xs = [p[0] - p[2] / 2 for p in pos.values()] + [p[0] + p[2] / 2 for p in pos.values()]
    ys = [p[1] - p[3] / 2 for p in pos.values()] + [p[1] + p[3] / 2 for p in pos.values()]
    W = max(max(xs) - min(xs) + 0.4, 5.0)
    ncol = 1 if W < 5.5 else 2 if W < 9 else 4
    legend_h = 0.35 + 0.19 * -(-7 // ncol)
    x0, y0, H = (min(xs) + max(xs)) / 2 - W / 2, min(ys) - 0.2, max(ys) - min(ys) + 0.4 + legend_h
    scale = min(1.0, 150 / H, 150 / W)            # keep giant graphs under ~15000 px
    fig = ax.figure if ax is not None else Figure(figsize=(W * scale, H * scale))
    if ax is None:
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x0 + W)
    ax.set_ylim(y0, y0 + H)
    ax.axis("off")
    fs = 8 * scale
    kind = {n.id: n.kind for n in nodes}
    for n in nodes:
        cx, cy, w, h = pos[n.id]
        box = "round,pad=0,rounding_size=0.08" if n.kind in style.rounded else "square,pad=0"
        ax.add_artist(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle=box,
                                    facecolor=style.legend[n.kind][0],
                                    edgecolor=style.highlight if n.id in hl else "#444444",
                                    linewidth=(3 if n.id in hl else 0.8) * scale, zorder=2))
        ax.text(cx, cy, text[n.id], ha="center", va="center", fontsize=fs, zorder=3)
    for k, (s, d) in enumerate(edges):
        (sx, sy, sw, sh), (dx, dy, dw, dh) = pos[s], pos[d]
        lab = edge_labels.get((s, d))
        colour = style.highlight if lab is not None else "#444444"
        if kind[s] == style.dashed:               # beside its function, dashed, no arrow head
            pts, head, ls, colour = [(sx - sw / 2, sy), (dx + dw / 2, dy)], "-", "--", "#b35806"
        else:                                     # down through the virtual points
            pts, head, ls = [(sx, sy - sh / 2)] + bends.get(k, []) + [(dx, dy + dh / 2)], "-|>", "-"
        ax.add_artist(FancyArrowPatch(path=Path(pts), arrowstyle=head, mutation_scale=9 * scale,
                                     color=colour, linestyle=ls, shrinkA=0, shrinkB=0,
                                     linewidth=(2 if lab is not None else 0.8) * scale, zorder=1))
        if lab is not None:
            (ax_, ay), (bx, by) = pts[0], pts[1]
            ax.text((ax_ + bx) / 2, (ay + by) / 2, lab, color=style.highlight, fontsize=fs * 1.1,
                    ha="center", va="center", zorder=4,
                    bbox=dict(facecolor="white", edgecolor="none", pad=1))
    handles = [Patch(facecolor=c, edgecolor="#444444", label=t) for c, t in style.legend.values()]
    handles += [Line2D([], [], color="#444444", marker=">", label=style.arrow_label),
                Line2D([], [], color="#b35806", linestyle="--", label=style.dashed_label)]
    ax.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=fs, frameon=True,
              borderaxespad=0.3, title=note[2:] or None, title_fontsize=fs)
    return fig
