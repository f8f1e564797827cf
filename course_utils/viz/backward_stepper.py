"""Walk the backward pass node by node (introduced in lesson 02, Autograd graphs, A2-A3, A13).

``backward_steps(z)`` watches PyTorch's own engine run the backward pass: a hook
on every backward function records the gradient it received and the gradients
it returned, in the order the engine runs them, while ``torch.autograd.grad``
does the work (so no tensor's ``.grad`` is touched). At an ``AccumulateGrad`` the
total is what ``leaf.grad`` would receive.

``step_backward(z)`` shows those steps in an ipywidgets widget with Next / Back /
Reset buttons and the graph, the current node outlined in red;
``step_backward(z, engine=my_engine)`` shows the steps of an engine the learner
wrote (lesson 02, A13) instead. The package holds the observing and the drawing,
not an engine.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import torch

from course_utils.static import interactive_note, static_widgets
from course_utils.viz import figure_png
from course_utils.viz.autograd import build_graph, draw_graph, fmt_value, small_values


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


def _seed(root, grad):
    if grad is None:
        if root.numel() != 1:
            raise ValueError(f"the root has shape {tuple(root.shape)}, not a single number, so the "
                             "gradient to start from is ambiguous. Pass grad= (a tensor of that shape, "
                             "e.g. torch.ones_like(root)), or reduce first, e.g. root.sum().")
        return torch.ones_like(root)
    if not isinstance(grad, torch.Tensor) or grad.shape != root.shape:
        raise ValueError(f"grad must be a tensor of the root's shape {tuple(root.shape)}, "
                         f"got {grad!r:.80}.")
    return grad


def _is_acc(fn) -> bool:
    return type(fn).__name__ == "AccumulateGrad"


def backward_steps(root: torch.Tensor, grad: torch.Tensor | None = None,
                   params: dict | None = None) -> list[Step]:
    """PyTorch's own backward pass of ``root``, observed node by node, as :class:`Step` s (lesson 02).

    Nothing here re-implements the engine: a hook on every backward function records
    what it received and what it returned while ``torch.autograd.grad`` runs the real
    engine, in the engine's own order (``.grad`` is not touched). Each leaf's
    ``AccumulateGrad`` step comes after the last gradient delivered to it.
    ``grad``: dL/droot, needed when ``root`` has more than one element (as for
    ``root.backward(grad)``); default ``1`` for a scalar. ``params`` labels leaves.
    """
    graph, fn_of = build_graph(root, params)
    grad = _seed(root, grad)
    events = []
    handles = [fn.register_hook(lambda g_in, g_out, fn=fn: events.append((fn, tuple(g_out), tuple(g_in))))
               for fn in fn_of.values() if not _is_acc(fn)]
    leaves = [fn.variable for fn in fn_of.values() if _is_acc(fn)]
    try:
        if leaves:
            torch.autograd.grad(root, leaves, grad_outputs=grad, retain_graph=True, allow_unused=True)
    except RuntimeError as exc:
        raise _bad_grad_fn_call(exc) from None
    finally:
        for h in handles:
            h.remove()
    return _to_steps(graph, fn_of, events, synthesize_leaves=True)


def steps_from_engine(root: torch.Tensor, engine, grad: torch.Tensor | None = None,
                      params: dict | None = None):
    """The steps an engine *you* wrote yields (lesson 02, A13), ready to draw.

    ``engine(root, grad)`` runs the backward pass over ``root``'s graph and yields, for
    every node it runs, ``(node, grad_in, grad_out)``: the ``grad_fn`` object, the
    gradients it received (one per output of the node) and what it returned (one per
    entry of ``node.next_functions``; ``()`` for an ``AccumulateGrad``, whose
    ``grad_in[0]`` is what goes into the leaf's ``.grad``). Returns a list of
    :class:`Step`, or ``NOT_DONE`` when the engine is still the exercise's stub.
    """
    from course_utils.checks import is_not_done

    graph, fn_of = build_graph(root, params)
    run = engine(root, _seed(root, grad))
    if is_not_done(run):
        return run
    events = []
    for item in run:
        if not (isinstance(item, tuple) and len(item) == 3):
            raise ValueError(f"the engine must yield (node, grad_in, grad_out) triples, got {item!r:.80}")
        fn, g_in, g_out = item
        if fn not in {f: 0 for f in fn_of.values()}:
            raise ValueError(f"the engine yielded {type(fn).__name__}, which is not a node of this graph")
        events.append((fn, tuple(g_in) if isinstance(g_in, (tuple, list)) else (g_in,),
                       tuple(g_out) if isinstance(g_out, (tuple, list)) else (g_out,)))
    return _to_steps(graph, fn_of, events, synthesize_leaves=False)


def _local(fn):
    """d(output)/d(input) for a one-output node: the node called on ones (no .grad touched)."""
    meta = getattr(fn, "_input_metadata", None)
    if not meta or len(meta) != 1:
        return None
    call = fn if callable(fn) else fn.apply              # custom Functions: ctx.apply -> backward
    with torch.no_grad():
        try:
            out = call(torch.ones(meta[0].shape, dtype=meta[0].dtype, device=meta[0].device))
        except RuntimeError:
            return None
    return out if isinstance(out, tuple) else (out,)


def _to_steps(graph, fn_of, events, synthesize_leaves):
    """Steps from (node, grad_in, grad_out) events; leaf totals include an existing .grad."""
    ids = {fn: nid for nid, fn in fn_of.items()}
    leaf_of = {s: d for s, d in graph.edges if graph.nodes[s].kind == "accumulate"}
    expected = {}                                        # AccumulateGrad -> edges that can deliver
    for fn in ids:
        for nxt, _ in fn.next_functions:
            if nxt is not None and _is_acc(nxt):
                expected[nxt] = expected.get(nxt, 0) + 1
    pending, totals, steps = {}, {}, []

    def accumulate(acc, g):
        leaf = acc.variable
        g = g.sum_to_size(leaf.shape) if tuple(g.shape) != tuple(leaf.shape) else g
        base = totals.get(acc, leaf.grad.detach() if leaf.grad is not None else None)
        totals[acc] = g.detach().clone() if base is None else base + g.detach()
        return g

    def leaf_step(acc, g_in):
        nid = ids[acc]
        steps.append(Step(nid, "AccumulateGrad", list(g_in), [], [], leaf_of[nid], totals[acc]))

    for fn, g_in, g_out in events:
        if _is_acc(fn):                                  # an engine's own AccumulateGrad step
            accumulate(fn, g_in[0])
            leaf_step(fn, g_in)
            continue
        local = _local(fn)
        flows, locals_ = [], []
        for k, (nxt, nr) in enumerate(fn.next_functions):
            g = g_out[k] if k < len(g_out) else None
            if nxt is None or g is None:
                flows.append(None)
                locals_.append(None)
                continue
            meta = getattr(nxt, "_input_metadata", None)
            if meta and tuple(g.shape) != tuple(meta[nr].shape):
                g = g.sum_to_size(meta[nr].shape)        # a broadcast input: summed back, like the engine
            flows.append((ids[nxt], g.detach().clone()))
            locals_.append(None if local is None or k >= len(local) else local[k])
        steps.append(Step(ids[fn], graph.nodes[ids[fn]].label, list(g_in), locals_, flows))
        if synthesize_leaves:
            for k, (nxt, _) in enumerate(fn.next_functions):
                if nxt is not None and _is_acc(nxt):
                    pending.setdefault(nxt, [])
                    if flows[k] is not None:
                        pending[nxt].append(accumulate(nxt, flows[k][1]))
                    expected[nxt] -= 1
                    if expected[nxt] == 0 and pending[nxt]:
                        leaf_step(nxt, [sum(pending[nxt][1:], pending[nxt][0])])
    return steps


# ----------------------------------------------------------------------------- the widget

def _t(x) -> str:
    """A tensor in a few characters: its value when small, else its shape and norm."""
    if x is None:
        return "none"
    v = small_values(x)
    if v is not None:
        return fmt_value(v)
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


def _edge_labels(steps, graph, root, upto):
    labels = {(graph.root, steps[0].node): _t(steps[0].grad_in[root.output_nr])}
    for s in steps[:upto + 1]:
        for tid, g in filter(None, s.flows):
            labels[(s.node, tid)] = _t(g)
        if s.leaf is not None:
            labels[(s.node, s.leaf)] = "grad " + _t(s.leaf_grad)
    return labels


def _static(root, steps, graph, params):
    """The still version: every step as a text line, and the fully labelled graph as a Figure."""
    interactive_note("the backward stepper")
    for i, step in enumerate(steps):
        line = re.sub(r"<[^>]+>", "", _describe(step, graph, i, len(steps)).replace("<br>", " | "))
        print(html.unescape(line).replace("&times;", "x"))
    return draw_graph(root, params, edge_labels=_edge_labels(steps, graph, root, len(steps) - 1),
                      backend="matplotlib")


def step_backward(root: torch.Tensor, grad: torch.Tensor | None = None, params: dict | None = None,
                  show_graph: bool | None = None, engine=None):
    """An ipywidgets widget stepping through the backward pass of ``root`` (lesson 02, A2).

    Each step shows the backward function running, the incoming gradient, the
    local derivative and what flows on to each input; the picture marks the
    current node in red and writes on each arrow the gradient sent so far.
    ``show_graph``: draw the picture (default: graphs of at most 60 nodes).
    The container carries the CSS class ``course-step-backward`` and the Next
    button ``course-step-next``.
    ``engine``: draw the steps of an engine you wrote instead of PyTorch's own (lesson 02,
    A13; see :func:`steps_from_engine` for what it yields). While the engine is still the
    exercise's stub, a line says so and nothing is drawn.

    On a static page (``COURSE_STATIC_WIDGETS=1``, the course book) it prints every
    step as text and returns a matplotlib Figure of the graph after the last step,
    every arrow labelled with the gradient it carried.
    """
    if engine is None:
        steps = backward_steps(root, grad, params)
    else:
        steps = steps_from_engine(root, engine, grad, params)
        if not isinstance(steps, list):
            print("TODO  the engine is not written yet: it still returns NOT_DONE, so there is nothing to draw")
            return None
        if not steps:
            raise ValueError("the engine yielded no steps: it must yield (node, grad_in, grad_out) "
                             "for every node it runs, starting at root.grad_fn")
    graph, _ = build_graph(root, params)
    if static_widgets():
        return _static(root, steps, graph, params)

    import ipywidgets as widgets

    if show_graph is None:
        show_graph = len(graph.nodes) <= 60
    n = len(steps)
    state = {"i": 0}
    pictures = {}

    def picture(i):
        if i not in pictures:
            fig = draw_graph(root, params, highlight=steps[i].node,
                             edge_labels=_edge_labels(steps, graph, root, i))
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
