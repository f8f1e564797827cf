"""Walk the backward pass node by node (introduced in lesson 02, Autograd graphs, A2-A3).

``backward_steps(z)`` really evaluates the backward pass the way the engine
does, without ``.backward()``: seed ``dL/dz = 1`` at the root, then, in
topological order, call each backward function on the gradient that reached
it (``grad_fn(grad)`` returns one gradient per entry of ``next_functions``) and
add what it returns into the buffers of the functions below. At an
``AccumulateGrad`` the total is what ``leaf.grad`` would receive. No tensor's
``.grad`` is touched.

``step_backward(z)`` shows those steps in an ipywidgets widget with Next / Back /
Reset buttons and the graph, the current node outlined in red.
"""

from __future__ import annotations

import heapq
import html
from dataclasses import dataclass

import torch

from course_utils.viz import figure_png
from course_utils.viz.autograd import _build, _fmt, _values, draw_graph


@dataclass
class Step:
    """One backward function running. Node ids refer to ``graph_nodes(root).nodes``."""

    node: int                            # the function running now
    name: str                            # its class name, e.g. 'SigmoidBackward0'
    grad_in: list                        # incoming dL/d(output), one per forward output (None: no gradient)
    local: list                          # per next_function: d(out)/d(input) (the VJP with ones), or None
    flows: list                          # per next_function: (target node id, gradient sent), or None
    leaf: int | None = None              # AccumulateGrad only: the leaf tensor's node id
    leaf_grad: torch.Tensor | None = None  # AccumulateGrad only: what leaf.grad would hold afterwards


def _bad_grad_fn_call(exc):
    return ValueError(f"could not evaluate the backward pass ({exc}). If the graph was freed by an "
                      "earlier .backward(), run the forward pass again (or call backward with "
                      "retain_graph=True) and pass the new result.")


def backward_steps(root: torch.Tensor, grad: torch.Tensor | None = None,
                   params: dict | None = None) -> list[Step]:
    """The backward pass of ``root`` as a list of :class:`Step` (lesson 02).

    ``grad``: dL/droot, needed when ``root`` has more than one element (as for
    ``root.backward(grad)``); default ``1`` for a scalar. ``params`` labels leaves.
    """
    graph, fn_of = _build(root, params)
    if grad is None:
        if root.numel() != 1:
            raise ValueError(f"the root has shape {tuple(root.shape)}, not a single number, so the "
                             "gradient to start from is ambiguous. Pass grad= (a tensor of that shape, "
                             "e.g. torch.ones_like(root)), or reduce first, e.g. root.sum().")
        grad = torch.ones_like(root)
    if not isinstance(grad, torch.Tensor) or grad.shape != root.shape:
        raise ValueError(f"grad must be a tensor of the root's shape {tuple(root.shape)}, "
                         f"got {grad!r:.80}.")
    ids = {fn: nid for nid, fn in fn_of.items()}
    n_in = {fn: len(fn._input_metadata) for fn in ids}        # one slot per forward output
    waiting = {fn: 0 for fn in ids}                            # how many edges still have to deliver
    for fn in ids:
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                waiting[nxt] += 1
    buffers = {root.grad_fn: [None] * n_in[root.grad_fn]}
    buffers[root.grad_fn][root.output_nr] = grad.detach().clone()
    # the engine runs ready nodes newest first (highest sequence number): same here
    ready = [(-root.grad_fn._sequence_nr(), ids[root.grad_fn], root.grad_fn)]
    leaf_of = {s: d for s, d in graph.edges if graph.nodes[s].kind == "accumulate"}
    steps = []
    while ready:
        _, nid, fn = heapq.heappop(ready)
        grads = buffers.pop(fn)
        if all(g is None for g in grads):                      # no gradient reached it: nothing to run,
            _release(fn, waiting, buffers, n_in, ready, ids)    # but the nodes below stop waiting for it
            continue
        if graph.nodes[nid].kind == "accumulate":              # do NOT call it: it would write .grad
            leaf = fn.variable
            total = grads[0] if leaf.grad is None else leaf.grad.detach() + grads[0]
            steps.append(Step(nid, "AccumulateGrad", grads, [], [], leaf_of[nid], total))
            continue
        with torch.no_grad():                                  # no graph of the backward itself
            call = fn if callable(fn) else fn.apply             # custom Functions: ctx.apply -> backward
            try:
                outs = call(*grads)
                single = n_in[fn] == 1
                local = call(*[torch.ones(m.shape, dtype=m.dtype, device=m.device)
                               for m in fn._input_metadata]) if single else None
            except RuntimeError as exc:
                raise _bad_grad_fn_call(exc) from None
        outs = outs if isinstance(outs, tuple) else (outs,)
        local = local if isinstance(local, tuple) or local is None else (local,)
        flows = []
        for k, (nxt, nr) in enumerate(fn.next_functions):
            if nxt is None or outs[k] is None:                 # this input needs no gradient
                flows.append(None)
            else:
                g = outs[k]
                shape = nxt._input_metadata[nr].shape
                if tuple(g.shape) != tuple(shape):             # broadcast inputs: sum back, like the engine
                    g = g.sum_to_size(shape)
                flows.append((ids[nxt], g.clone()))
                slots = buffers.setdefault(nxt, [None] * n_in[nxt])
                slots[nr] = g if slots[nr] is None else slots[nr] + g  # several paths: gradients add
            if nxt is not None:
                _arrived(nxt, waiting, buffers, n_in, ready, ids)
        local = [None if local is None or f is None else local[k] for k, f in enumerate(flows)]
        steps.append(Step(nid, graph.nodes[nid].label, grads, local, flows))
    return steps


def _arrived(nxt, waiting, buffers, n_in, ready, ids):
    """One edge into ``nxt`` has delivered (maybe nothing); run it once all have."""
    waiting[nxt] -= 1
    if waiting[nxt] == 0:
        buffers.setdefault(nxt, [None] * n_in[nxt])
        heapq.heappush(ready, (-nxt._sequence_nr(), ids[nxt], nxt))


def _release(fn, waiting, buffers, n_in, ready, ids):
    for nxt, _ in fn.next_functions:
        if nxt is not None:
            _arrived(nxt, waiting, buffers, n_in, ready, ids)


# ----------------------------------------------------------------------------- the widget

def _t(x) -> str:
    """A tensor in a few characters: its value when small, else its shape and norm."""
    if x is None:
        return "none"
    v = _values(x)
    if v is not None:
        return _fmt(v)
    return f"tensor of shape {tuple(x.shape)} (norm {x.float().norm():.4g})"


def _describe(step: Step, graph, i: int, n: int) -> str:
    def name(nid):
        return html.escape(graph.nodes[nid].label)

    rows = [f"<b>Step {i + 1} of {n}: {name(step.node)}</b>"]
    incoming = ", ".join(_t(g) for g in step.grad_in)
    rows.append(f"incoming gradient dL/d(output): <b>{incoming}</b>")
    if step.leaf is not None:
        rows.append(f"AccumulateGrad adds it into <b>{name(step.leaf)}.grad</b>: after backward, "
                    f"{name(step.leaf)}.grad = <b>{_t(step.leaf_grad)}</b>")
        return "<br>".join(rows)
    saved = graph.nodes[step.node].saved
    if saved:
        rows.append("saved for backward: " + html.escape(", ".join(f"{k} = {v}" for k, v in saved.items())))
    for k, (loc, flow) in enumerate(zip(step.local, step.flows)):
        if flow is None:
            rows.append(f"input {k}: needs no gradient (a constant, or requires_grad=False)")
            continue
        local = ""
        if loc is not None:
            local = f"local derivative d(output)/d(input) = <b>{_t(loc)}</b>, so "
            if len(step.grad_in) == 1 and step.grad_in[0].numel() == 1 and loc.numel() == 1:
                local += f"{_t(step.grad_in[0])} &times; {_t(loc)} = "
        rows.append(f"input {k}: {local}<b>{_t(flow[1])}</b> flows on to {name(flow[0])}")
    if not step.flows:
        rows.append("no inputs: the pass stops here")
    return "<br>".join(rows)


def step_backward(root: torch.Tensor, grad: torch.Tensor | None = None, params: dict | None = None,
                  show_graph: bool | None = None):
    """An ipywidgets widget stepping through the backward pass of ``root`` (lesson 02, A2).

    Each step shows the backward function running, the incoming gradient, the
    local derivative and what flows on to each input; the picture marks the
    current node in red and writes on each arrow the gradient sent so far.
    ``show_graph``: draw the picture (default: graphs of at most 60 nodes).
    The container carries the CSS class ``course-step-backward`` and the Next
    button ``course-step-next``.
    """

    import ipywidgets as widgets

    steps = backward_steps(root, grad, params)
    graph, _ = _build(root, params)
    if show_graph is None:
        show_graph = len(graph.nodes) <= 60
    n = len(steps)
    state = {"i": 0}
    pictures = {}

    def picture(i):
        if i not in pictures:
            labels = {(graph.root, steps[0].node): _t(steps[0].grad_in[root.output_nr])}
            for s in steps[:i + 1]:
                for tid, g in filter(None, s.flows):
                    labels[(s.node, tid)] = _t(g)
                if s.leaf is not None:
                    labels[(s.node, s.leaf)] = "grad " + _t(s.leaf_grad)
            fig = draw_graph(root, params, highlight=steps[i].node, edge_labels=labels)
            if hasattr(fig, "pipe"):
                pictures[i] = fig.pipe(format="png")
            else:
                pictures[i] = figure_png(fig, dpi=90)
        return pictures[i]

    text = widgets.HTML(description="", layout=widgets.Layout(min_height="8em"))
    text.add_class("course-step-text")
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
    back = widgets.Button(description="Back", tooltip="go one backward function back", icon="arrow-left")
    nxt = widgets.Button(description="Next", tooltip="run the next backward function",
                         icon="arrow-right", button_style="primary")
    reset = widgets.Button(description="Reset", tooltip="back to the first step", icon="undo")
    nxt.add_class("course-step-next")
    back.add_class("course-step-back")
    reset.add_class("course-step-reset")

    def show(i):
        state["i"] = i
        text.value = _describe(steps[i], graph, i, n)
        back.disabled, nxt.disabled = i == 0, i == n - 1
        if show_graph:
            image.value = picture(i)

    if show_graph:          # draw every step now: a later backward() would free the saved tensors
        for i in range(n):
            picture(i)
    back.on_click(lambda _: show(max(0, state["i"] - 1)))
    nxt.on_click(lambda _: show(min(n - 1, state["i"] + 1)))
    reset.on_click(lambda _: show(0))
    title = widgets.HTML(f"<b>Backward pass: {n} backward functions; the root receives "
                         f"dL/droot = {html.escape(_t(steps[0].grad_in[root.output_nr]))}</b>")
    box = widgets.VBox([title, widgets.HBox([back, nxt, reset]), text] + ([image] if show_graph else []))
    box.add_class("course-step-backward")
    box.steps = steps          # the data behind the widget, for tests and the curious
    box.go_to = show
    show(0)
    return box
