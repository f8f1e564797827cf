"""The autograd graph as data and as a picture (introduced in lesson 02, Autograd graphs).

When a tensor that requires grad goes through an operation, PyTorch records a
*backward function* node (``y.grad_fn``, e.g. ``SigmoidBackward0``). Each node
keeps ``next_functions`` (where the gradient goes next) and the tensors it saved
for the backward pass (attributes named ``_saved_*``). Leaves are reached
through ``AccumulateGrad`` nodes, which write ``leaf.grad``.

    graph = graph_nodes(z)            # plain data: Graph(nodes, edges)
    draw_graph(z, params={"x": x})    # graphviz.Digraph, or a matplotlib Figure

Nothing here calls ``.backward()`` or changes any tensor.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field

import torch

SMALL = 6  # tensors with at most this many elements show their values

# kind -> (fill colour, what it is). Tensors are drawn rounded, functions square.
LEGEND = {
    "output": ("#b8e186", "output tensor (the root)"),
    "grad_fn": ("#e0e0e0", "backward function (grad_fn)"),
    "accumulate": ("#cab2d6", "AccumulateGrad (writes leaf.grad)"),
    "leaf": ("#a6cee3", "leaf tensor"),
    "saved": ("#fdbf6f", "saved tensor (for backward)"),
}
_TENSOR_KINDS = {"output", "leaf", "saved"}
HIGHLIGHT = "#d7191c"


@dataclass
class Node:
    """One node of the graph. ``kind`` is a key of :data:`LEGEND`."""

    id: int
    kind: str
    label: str                                   # 'SigmoidBackward0', 'x', 'result', ...
    shape: tuple[int, ...] | None = None         # tensors only
    value: float | int | list | None = None      # tensors with <= SMALL elements
    is_leaf: bool | None = None                  # tensors only
    requires_grad: bool | None = None            # tensors only
    grad: float | list | None = None             # leaf.grad (values when small)
    grad_shape: tuple[int, ...] | None = None    # leaf.grad's shape when .grad is set
    saved: dict[str, str] = field(default_factory=dict)  # grad_fn: every _saved_* attribute, summarised


@dataclass
class Graph:
    """Nodes and directed edges ``(src, dst)`` (indices into ``nodes``).

    Edges: output -> its grad_fn; grad_fn -> each of its ``next_functions``
    (the way gradients flow, in order; a pair repeats when two inputs are the
    same tensor); AccumulateGrad -> its leaf; saved tensor -> the grad_fn that saved it.
    """

    nodes: list[Node]
    edges: list[tuple[int, int]]
    root: int = 0

    def find(self, label: str) -> Node:
        """The first node whose label is ``label`` (KeyError if none)."""
        for node in self.nodes:
            if node.label == label:
                return node
        raise KeyError(f"no node labelled {label!r}; labels: {sorted({n.label for n in self.nodes})}")

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]

    def children(self, node_id: int) -> list[int]:
        return [d for s, d in self.edges if s == node_id]


def check_root(root) -> None:
    """Raise a ValueError that says what to pass when ``root`` has no autograd graph."""
    if not isinstance(root, torch.Tensor):
        raise ValueError("expected a torch.Tensor produced by operations on tensors with "
                         f"requires_grad=True, got a {type(root).__name__}. Pass e.g. "
                         "`z` from `x = torch.tensor(1.0, requires_grad=True); z = 2 * torch.sigmoid(x)`.")
    if root.grad_fn is None:
        why = ("it is a leaf that requires grad: it starts a graph but has none behind it"
               if root.requires_grad else "it does not require grad (made without requires_grad=True, "
               "or under torch.no_grad()/inference_mode(), or detached)")
        raise ValueError(f"this tensor has no grad_fn, so there is no autograd graph; {why}. "
                         "Pass the RESULT of an operation on a tensor with requires_grad=True, "
                         "e.g. `torch.sigmoid(x)` rather than `x`.")


def _fmt(v) -> str:
    """Numbers with 4 significant digits, lists recursively: 0.7311, [1, 2.5]."""
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(u) for u in v) + "]"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _values(t: torch.Tensor):
    """Python numbers for a small tensor, None for a big one."""
    if t.numel() > SMALL or t.is_nested or t.layout != torch.strided or t.device.type == "meta":
        return None
    v = t.detach().cpu().tolist()
    if isinstance(v, float):
        return round(v, 6)
    return v


def _summary(v) -> str:
    """One short line for a saved attribute: a tensor's shape (and values when small), or the value."""
    if isinstance(v, torch.Tensor):
        vals = _values(v)
        shape = tuple(v.shape)
        return f"tensor of shape {shape}" if vals is None else f"{_fmt(vals)} (shape {shape})"
    return repr(v) if not isinstance(v, float) else _fmt(v)


_FREED = object()


def _saved(fn):
    """(name, value) for what ``fn`` saved: ``_saved_result`` -> 'result'. A custom
    ``autograd.Function`` node keeps its ``ctx.save_for_backward`` tensors in ``saved_tensors``."""
    def read(attr):
        try:
            return getattr(fn, attr)
        except RuntimeError:
            return _FREED
    for attr in sorted(a for a in dir(fn) if a.startswith("_saved_")):
        yield attr[len("_saved_"):], read(attr)
    if type(fn).__name__ != "AccumulateGrad" and hasattr(type(fn), "saved_tensors"):
        tensors = read("saved_tensors")
        if tensors is _FREED:
            yield "saved_tensors", _FREED
        else:
            yield from ((f"saved_tensors[{i}]", t) for i, t in enumerate(tensors))


def _build(root, params=None):
    """Walk the graph once, breadth-first from the root (node ids grow with distance).

    Returns (Graph, {node id: grad_fn object}); the stepper uses the objects.
    """
    check_root(root)
    names = {id(t): name for name, t in (params or {}).items() if isinstance(t, torch.Tensor)}
    nodes: list[Node] = []
    links: list[tuple[int, object]] = []   # (src id, dst id or grad_fn object, resolved at the end)
    fn_of: dict[int, object] = {}

    def tensor_node(t, kind, label):
        nodes.append(Node(len(nodes), kind, label, shape=tuple(t.shape), value=_values(t),
                          is_leaf=t.is_leaf, requires_grad=t.requires_grad))
        return nodes[-1]

    out = tensor_node(root, "output", names.get(id(root), "output"))
    links.append((out.id, root.grad_fn))
    ids: dict[object, int] = {}          # grad_fn object -> node id: shared nodes appear once
    queue, seen = [root.grad_fn], {root.grad_fn}
    for fn in queue:                     # the queue grows while we walk it
        is_acc = type(fn).__name__ == "AccumulateGrad"
        node = Node(len(nodes), "accumulate" if is_acc else "grad_fn", type(fn).__name__)
        nodes.append(node)
        ids[fn], fn_of[node.id] = node.id, fn
        if is_acc:                       # AccumulateGrad.variable is the leaf it writes .grad into
            leaf = fn.variable
            ln = tensor_node(leaf, "leaf", names.get(id(leaf), "leaf"))
            if leaf.grad is not None:
                ln.grad, ln.grad_shape = _values(leaf.grad), tuple(leaf.grad.shape)
            links.append((node.id, ln.id))
        for short, val in _saved(fn):
            if val is _FREED:            # freed by a backward() without retain_graph=True
                node.saved[short] = "freed"
                continue
            if val is None:              # not needed for this backward (e.g. a constant's partner)
                continue
            node.saved[short] = _summary(val)
            if isinstance(val, torch.Tensor):
                label = short + (f" = {names[id(val)]}" if id(val) in names else "")
                links.append((tensor_node(val, "saved", label).id, node.id))
        for nxt, _ in fn.next_functions:
            if nxt is None:              # that input needs no gradient (a constant)
                continue
            links.append((node.id, nxt))
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    edges = [(s, d if isinstance(d, int) else ids[d]) for s, d in links]
    return Graph(nodes, edges, root=out.id), fn_of


def graph_nodes(root: torch.Tensor, params: dict | None = None) -> Graph:
    """The autograd graph behind ``root`` as plain data (lesson 02, A3).

    ``params``: optional ``{name: tensor}`` (e.g. ``dict(model.named_parameters())``
    or ``dict(x=x)``) to label leaves. Shared nodes appear once. Reads only; calls
    no backward. A graph freed by ``backward()`` shows its saved values as 'freed'.
    """
    return _build(root, params)[0]


# ----------------------------------------------------------------------------- drawing

def _label(node: Node, detail: bool) -> str:
    if node.kind in ("grad_fn", "accumulate"):
        return node.label
    lines = [node.label, f"shape {node.shape}"]
    if detail and node.value is not None and len(_fmt(node.value)) <= 40:
        lines.append(f"value {_fmt(node.value)}")
    if node.grad_shape is not None:
        g = _fmt(node.grad) if detail and node.grad is not None else "set"
        lines.append(f"grad {g}" if len(g) <= 40 else "grad set")
    return "\n".join(lines)


def draw_graph(root: torch.Tensor, params: dict | None = None, *, show_saved: bool | None = None,
               highlight=None, edge_labels: dict | None = None, backend: str | None = None, ax=None):
    """Draw the autograd graph of ``root`` (lesson 02): a ``graphviz.Digraph`` when the
    ``dot`` program is installed, else a matplotlib ``Figure`` with a layered layout.

    Legend (also drawn in the picture):
      * green rounded   - the output tensor (root): name, shape, value when small;
      * grey box        - a backward function (``grad_fn``), e.g. ``SigmoidBackward0``;
      * purple box      - ``AccumulateGrad``: adds the incoming gradient into a leaf's ``.grad``;
      * blue rounded    - a leaf tensor: name, shape, value and ``.grad`` when small;
      * orange rounded  - a tensor a grad_fn saved for backward (``_saved_result`` -> 'result'),
        joined to it by a dashed line.
    Solid arrows follow ``next_functions``: the direction gradients flow, from the root down.
    A red outline marks ``highlight`` (a node id or ids from :func:`graph_nodes`).

    ``params``: ``{name: tensor}`` to label leaves (e.g. ``dict(model.named_parameters())``).
    ``show_saved``: draw saved tensors; default: only for graphs with at most 60 functions.
    ``edge_labels``: ``{(src_id, dst_id): text}`` written on edges. ``backend``: force
    'graphviz' or 'matplotlib'. ``ax``: draw into this matplotlib Axes (forces matplotlib).
    Big graphs (more than 60 functions) hide saved tensors and values; a torchvision
    ResNet-18 draws in a few seconds either way.
    """
    graph = graph_nodes(root, params)
    if backend not in (None, "graphviz", "matplotlib"):
        raise ValueError(f"backend must be None, 'graphviz' or 'matplotlib', got {backend!r}.")
    n_fns = sum(n.kind in ("grad_fn", "accumulate") for n in graph.nodes)
    if show_saved is None:
        show_saved = n_fns <= 60
    keep = [n for n in graph.nodes if show_saved or n.kind != "saved"]
    kept = {n.id for n in keep}
    edges = [(s, d) for s, d in graph.edges if s in kept and d in kept]
    hl = {highlight} if isinstance(highlight, int) else set(highlight or ())
    detail = n_fns <= 60
    note = "" if show_saved or not graph.of_kind("saved") else \
        f"; {len(graph.of_kind('saved'))} saved tensors hidden (show_saved=True draws them)"
    if backend is None:
        backend = "graphviz" if ax is None and shutil.which("dot") else "matplotlib"
    if backend == "graphviz":
        return _draw_graphviz(keep, edges, hl, edge_labels or {}, detail, note)
    return _draw_layered(keep, edges, hl, edge_labels or {}, detail, note, ax=ax)


def _draw_graphviz(nodes, edges, hl, edge_labels, detail, note=""):
    import graphviz

    g = graphviz.Digraph("autograd", graph_attr=dict(rankdir="TB", ranksep="0.35", nodesep="0.25"),
                         node_attr=dict(fontname="Helvetica", fontsize="10", style="filled",
                                        shape="box", height="0.3"),
                         edge_attr=dict(arrowsize="0.7", fontname="Helvetica"))
    cells = "".join(
        f'<TD BGCOLOR="{c}" STYLE="{"rounded" if k in _TENSOR_KINDS else ""}">{t}</TD>'
        for k, (c, t) in LEGEND.items())
    g.node("legend", f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="5" CELLPADDING="4"><TR>'
           f'<TD BORDER="0">legend:</TD>{cells}</TR><TR><TD BORDER="0" COLSPAN="6">solid arrow: '
           f'gradient flows (next_functions); dashed: saved for backward{note}</TD></TR></TABLE>>',
           shape="plaintext", style="", fontsize="9")
    for n in nodes:
        style = "filled,rounded" if n.kind in _TENSOR_KINDS else "filled"
        extra = dict(color=HIGHLIGHT, penwidth="3") if n.id in hl else {}
        g.node(str(n.id), _label(n, detail), fillcolor=LEGEND[n.kind][0], style=style, **extra)
    if nodes:
        g.edge("legend", str(nodes[0].id), style="invis")  # legend above the graph
    kinds = {n.id: n.kind for n in nodes}
    for s, d in edges:
        attrs = dict(style="dashed", color="#b35806", arrowhead="none") if kinds[s] == "saved" else {}
        if (s, d) in edge_labels:
            attrs.update(label=f" {edge_labels[(s, d)]}", fontcolor=HIGHLIGHT, fontsize="10",
                         color=HIGHLIGHT, penwidth="2")
        g.edge(str(s), str(d), **attrs)
    return g


# ------------------------------------------------------- fallback: layered layout in matplotlib

_CHAR_W, _LINE_H, _GAP = 0.068, 0.16, 0.25     # inches, at 8 pt


def _layout(nodes, edges, text):
    """A small Sugiyama layout: layers by longest distance from the root, virtual
    points on arrows that skip layers, order by neighbours' mean position.

    Returns ({id: (x, y, w, h)} in inches, {edge index: [(x, y) bends]}). Saved
    tensors stack in a column just right of their function.
    """
    kind = {n.id: n.kind for n in nodes}
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


def _draw_layered(nodes, edges, hl, edge_labels, detail, note="", ax=None):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path

    text = {n.id: _label(n, detail) for n in nodes}
    pos, bends = _layout(nodes, edges, text)
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
        box = "round,pad=0,rounding_size=0.08" if n.kind in _TENSOR_KINDS else "square,pad=0"
        ax.add_artist(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle=box,
                                    facecolor=LEGEND[n.kind][0],
                                    edgecolor=HIGHLIGHT if n.id in hl else "#444444",
                                    linewidth=(3 if n.id in hl else 0.8) * scale, zorder=2))
        ax.text(cx, cy, text[n.id], ha="center", va="center", fontsize=fs, zorder=3)
    for k, (s, d) in enumerate(edges):
        (sx, sy, sw, sh), (dx, dy, dw, dh) = pos[s], pos[d]
        lab = edge_labels.get((s, d))
        colour = HIGHLIGHT if lab is not None else "#444444"
        if kind[s] == "saved":                    # beside its function, dashed, no arrow head
            pts, style, ls, colour = [(sx - sw / 2, sy), (dx + dw / 2, dy)], "-", "--", "#b35806"
        else:                                     # down through the virtual points
            pts, style, ls = [(sx, sy - sh / 2)] + bends.get(k, []) + [(dx, dy + dh / 2)], "-|>", "-"
        ax.add_artist(FancyArrowPatch(path=Path(pts), arrowstyle=style, mutation_scale=9 * scale,
                                     color=colour, linestyle=ls, shrinkA=0, shrinkB=0,
                                     linewidth=(2 if lab is not None else 0.8) * scale, zorder=1))
        if lab is not None:
            (ax_, ay), (bx, by) = pts[0], pts[1]
            ax.text((ax_ + bx) / 2, (ay + by) / 2, lab, color=HIGHLIGHT, fontsize=fs * 1.1,
                    ha="center", va="center", zorder=4,
                    bbox=dict(facecolor="white", edgecolor="none", pad=1))
    handles = [Patch(facecolor=c, edgecolor="#444444", label=t) for c, t in LEGEND.values()]
    handles += [Line2D([], [], color="#444444", marker=">", label="gradient flows (next_functions)"),
                Line2D([], [], color="#b35806", linestyle="--", label="saved for backward")]
    ax.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=fs, frameon=True,
              borderaxespad=0.3, title=note[2:] or None, title_fontsize=fs)
    return fig
