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
from dataclasses import dataclass, field

import torch

from course_utils.viz._layered import Style, draw_layered

SMALL = 6  # tensors with at most this many elements show their values

# kind -> (fill colour, what it is). Tensors are drawn rounded, functions square.
LEGEND = {
    "output": ("#b8e186", "output tensor (the root)"),
    "grad_fn": ("#e0e0e0", "backward function (grad_fn)"),
    "accumulate": ("#cab2d6", "AccumulateGrad (writes leaf.grad)"),
    "leaf": ("#a6cee3", "leaf tensor"),
    "saved": ("#fdbf6f", "saved tensor (for backward)"),
}
TENSOR_KINDS = frozenset({"output", "leaf", "saved"})   # drawn rounded; functions square
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


def fmt_value(v) -> str:
    """Numbers with 4 significant digits, lists recursively: 0.7311, [1, 2.5]."""
    if isinstance(v, list):
        return "[" + ", ".join(fmt_value(u) for u in v) + "]"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def small_values(t: torch.Tensor):
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
        vals = small_values(v)
        shape = tuple(v.shape)
        return f"tensor of shape {shape}" if vals is None else f"{fmt_value(vals)} (shape {shape})"
    return repr(v) if not isinstance(v, float) else fmt_value(v)


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


def build_graph(root, params=None):
    """Walk the graph once, breadth-first from the root (node ids grow with distance).

    Returns (Graph, {node id: grad_fn object}): the data, and the live backward
    functions behind each function node (what an engine calls; see backward_stepper).
    """
    check_root(root)
    names = {id(t): name for name, t in (params or {}).items() if isinstance(t, torch.Tensor)}
    nodes: list[Node] = []
    links: list[tuple[int, object]] = []   # (src id, dst id or grad_fn object, resolved at the end)
    fn_of: dict[int, object] = {}

    def tensor_node(t, kind, label):
        nodes.append(Node(len(nodes), kind, label, shape=tuple(t.shape), value=small_values(t),
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
                ln.grad, ln.grad_shape = small_values(leaf.grad), tuple(leaf.grad.shape)
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
    return build_graph(root, params)[0]


# ----------------------------------------------------------------------------- drawing

def node_label(node: Node, detail: bool) -> str:
    if node.kind in ("grad_fn", "accumulate"):
        return node.label
    lines = [node.label, f"shape {node.shape}"]
    if detail and node.value is not None and len(fmt_value(node.value)) <= 40:
        lines.append(f"value {fmt_value(node.value)}")
    if node.grad_shape is not None:
        g = fmt_value(node.grad) if detail and node.grad is not None else "set"
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
    text = {n.id: node_label(n, detail) for n in keep}
    return draw_layered(keep, edges, text, Style(LEGEND, TENSOR_KINDS, HIGHLIGHT), hl,
                        edge_labels or {}, note, ax=ax)


def _draw_graphviz(nodes, edges, hl, edge_labels, detail, note=""):
    import graphviz

    g = graphviz.Digraph("autograd", graph_attr=dict(rankdir="TB", ranksep="0.35", nodesep="0.25"),
                         node_attr=dict(fontname="Helvetica", fontsize="10", style="filled",
                                        shape="box", height="0.3"),
                         edge_attr=dict(arrowsize="0.7", fontname="Helvetica"))
    cells = "".join(
        f'<TD BGCOLOR="{c}" STYLE="{"rounded" if k in TENSOR_KINDS else ""}">{t}</TD>'
        for k, (c, t) in LEGEND.items())
    g.node("legend", f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="5" CELLPADDING="4"><TR>'
           f'<TD BORDER="0">legend:</TD>{cells}</TR><TR><TD BORDER="0" COLSPAN="6">solid arrow: '
           f'gradient flows (next_functions); dashed: saved for backward{note}</TD></TR></TABLE>>',
           shape="plaintext", style="", fontsize="9")
    for n in nodes:
        style = "filled,rounded" if n.kind in TENSOR_KINDS else "filled"
        extra = dict(color=HIGHLIGHT, penwidth="3") if n.id in hl else {}
        g.node(str(n.id), node_label(n, detail), fillcolor=LEGEND[n.kind][0], style=style, **extra)
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
