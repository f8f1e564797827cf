"""course_utils.viz.autograd and backward_stepper: PyTorch's own autograd is the oracle."""

import shutil
import time

import pytest
import torch
from torch import nn

from course_utils.viz import autograd as viz_autograd
from course_utils.viz.autograd import draw_graph, graph_nodes
from course_utils.viz.backward_stepper import backward_steps, step_backward


def a2():
    x = torch.tensor(1.0, requires_grad=True)
    y = torch.sigmoid(x)
    z = 2 * y
    return x, y, z


def a4():
    a = torch.tensor(3.0, requires_grad=True)
    w1, w2, w3, w4 = (torch.tensor(v, requires_grad=True) for v in (2.0, 3.0, 4.0, 5.0))
    b = w1 * a
    c = w2 * a
    d = w3 * b + w4 * c
    L = 10 - d
    return L, dict(a=a, w1=w1, w2=w2, w3=w3, w4=w4)


def no_dot(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))


# ------------------------------------------------------------------ graph_nodes

def test_a2_graph_as_data():
    x, y, z = a2()
    g = graph_nodes(z, dict(x=x))
    out = g.nodes[g.root]
    assert out.kind == "output" and out.is_leaf is False and out.value == pytest.approx(z.item(), abs=1e-6)
    # the chain z -> MulBackward0 -> SigmoidBackward0 -> AccumulateGrad -> x
    mul = g.find("MulBackward0")
    sig = g.find("SigmoidBackward0")
    acc = g.find("AccumulateGrad")
    leaf = g.find("x")
    assert g.children(out.id) == [mul.id]
    assert g.children(mul.id) == [sig.id]          # the constant 2 has no next function
    assert g.children(sig.id) == [acc.id]
    assert g.children(acc.id) == [leaf.id]
    assert leaf.kind == "leaf" and leaf.is_leaf is True and leaf.requires_grad is True
    assert leaf.value == 1.0 and leaf.grad is None
    # saved tensors: SigmoidBackward0 saved its result, MulBackward0 the other operand 2
    saved = {n.label: n for n in g.of_kind("saved")}
    assert (saved["result"].id, sig.id) in g.edges and (saved["other"].id, mul.id) in g.edges
    assert saved["result"].value == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), abs=1e-6)
    assert abs(saved["result"].value - 0.7311) < 1e-4
    assert saved["other"].value == 2
    assert "result" in sig.saved and "0.7311" in sig.saved["result"]
    assert "self" not in mul.saved             # _saved_self is None: 2 needs no gradient
    # reading the graph changed nothing
    assert x.grad is None and z.grad_fn is not None


def test_grad_and_freed_graph_are_reported():
    x, y, z = a2()
    z.backward(retain_graph=True)
    g = graph_nodes(z, dict(x=x))
    assert g.find("x").grad == pytest.approx(x.grad.item(), abs=1e-6)
    z.backward()                                    # frees the saved tensors
    g = graph_nodes(z, dict(x=x))
    assert g.find("SigmoidBackward0").saved["result"] == "freed"
    assert g.find("x").grad == pytest.approx(2 * x.grad.item() / 2, abs=1e-6)


def test_a4_paths_and_dedup():
    L, params = a4()
    g = graph_nodes(L, params)
    assert [n.label for n in g.nodes if n.kind != "saved"].count("MulBackward0") == 4
    a_acc = next(s for s, d in g.edges if g.nodes[d].label == "a")
    # `a` is shared: one AccumulateGrad, reached from two MulBackward0 nodes
    parents = [s for s, d in g.edges if d == a_acc]
    assert len(parents) == 2 and all(g.nodes[p].label == "MulBackward0" for p in parents)
    assert len(g.of_kind("accumulate")) == 5 and len(g.of_kind("leaf")) == 5

    def paths(n):                                   # number of root-to-n paths through functions
        if n == g.root:
            return 1
        return sum(paths(s) for s, d in g.edges if d == n and g.nodes[s].kind != "saved")
    assert paths(g.find("a").id) == 2 and paths(g.find("w1").id) == 1
    # saved leaves are named after the parameter they are
    assert {"self = w1", "other = a"} <= {n.label for n in g.of_kind("saved")}


def test_shared_node_used_twice_keeps_both_edges():
    x = torch.tensor(3.0, requires_grad=True)
    y = x * x
    g = graph_nodes(y)
    mul, acc = g.find("MulBackward0"), g.find("AccumulateGrad")
    assert g.edges.count((mul.id, acc.id)) == 2 and len(g.of_kind("accumulate")) == 1


# ------------------------------------------------------------------ draw_graph

def _view_graph():
    x = torch.arange(6.0).reshape(2, 3).requires_grad_()
    v = x.t()[1:]                                   # a view of a view: TBackward0, SliceBackward0
    e = x[:, :1].expand(2, 4)                        # stride 0
    return x, v, (v * 2).sum() + e.sum()


@pytest.mark.parametrize("backend", ["graphviz", "matplotlib"])
def test_draw_graph_views(backend, monkeypatch):
    from matplotlib.figure import Figure
    import graphviz

    if backend == "matplotlib":
        no_dot(monkeypatch)
    elif shutil.which("dot") is None:
        pytest.skip("the graphviz `dot` program is not installed")
    x, v, r = _view_graph()
    labels = {n.label for n in graph_nodes(r).nodes}
    assert {"TBackward0", "SliceBackward0", "ExpandBackward0"} <= labels
    for root in (r, v):                             # a view itself can be the root
        out = draw_graph(root, dict(x=x))
        if backend == "graphviz":
            assert isinstance(out, graphviz.Digraph)
            assert "TBackward0" in out.source and "AccumulateGrad" in out.source
            assert out.pipe(format="png")[:4] == b"\x89PNG"
        else:
            assert isinstance(out, Figure)
            texts = {t.get_text() for t in out.axes[0].texts}
            assert "TBackward0" in texts and "AccumulateGrad" in texts
    assert x.grad is None


def test_legend_is_drawn_in_both_modes(monkeypatch):
    x, y, z = a2()
    wanted = [text for _, text in viz_autograd.LEGEND.values()]
    fig = draw_graph(z, backend="matplotlib")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert all(w in legend for w in wanted)
    src = draw_graph(z, backend="graphviz").source
    assert all(w in src for w in wanted)


def test_highlight_and_edge_labels():
    x, y, z = a2()
    g = graph_nodes(z)
    sig = g.find("SigmoidBackward0").id
    src = draw_graph(z, highlight=sig, edge_labels={(g.root, g.find("MulBackward0").id): "1"},
                     backend="graphviz").source
    assert viz_autograd.HIGHLIGHT in src and 'label=" 1"' in src


def test_params_label_leaves_and_small_mlp(monkeypatch):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    loss = mlp(torch.randn(5, 4)).pow(2).mean()
    g = graph_nodes(loss, dict(mlp.named_parameters()))
    assert {n.label for n in g.of_kind("leaf")} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert g.find("0.weight").shape == (8, 4) and g.find("0.weight").value is None  # too big to list
    no_dot(monkeypatch)
    fig = draw_graph(loss, dict(mlp.named_parameters()))
    assert any("0.weight" in t.get_text() for t in fig.axes[0].texts)


@pytest.mark.parametrize("backend", ["graphviz", "matplotlib"])
def test_resnet18_draws(backend, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    from matplotlib.figure import Figure

    if backend == "matplotlib":
        no_dot(monkeypatch)
    elif shutil.which("dot") is None:
        pytest.skip("the graphviz `dot` program is not installed")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    out = model(torch.randn(1, 3, 64, 64)).sum()
    params = dict(model.named_parameters())
    g = graph_nodes(out, params)
    assert len(g.of_kind("leaf")) == len(params) == 62        # every parameter, once
    assert sum(n.label == "ConvolutionBackward0" for n in g.nodes) == 20
    t0 = time.perf_counter()
    drawing = draw_graph(out, params)
    if backend == "graphviz":
        assert drawing.pipe(format="png")[:4] == b"\x89PNG"
        assert "layer4.1.conv2.weight" in drawing.source
    else:
        assert isinstance(drawing, Figure)
        drawing.canvas.draw()
    assert time.perf_counter() - t0 < 30                       # ~2-7 s here; generous for CI


# ------------------------------------------------------------------ backward_steps

def test_a2_steps_match_torch():
    x, y, z = a2()
    steps = backward_steps(z, params=dict(x=x))
    assert [s.name for s in steps] == ["MulBackward0", "SigmoidBackward0", "AccumulateGrad"]
    dz_dy, = torch.autograd.grad(z, y, retain_graph=True)      # torch: 2
    dy_dx, = torch.autograd.grad(y, x, retain_graph=True)      # torch: sigmoid'(1) = 0.1966
    dz_dx, = torch.autograd.grad(z, x, retain_graph=True)      # torch: 0.3932
    mul, sig, acc = steps
    assert mul.grad_in[0].item() == 1.0
    assert mul.flows[1] is None                                # the constant 2
    assert mul.flows[0][1].item() == pytest.approx(dz_dy.item()) == 2.0
    assert sig.grad_in[0].item() == pytest.approx(dz_dy.item())
    assert sig.local[0].item() == pytest.approx(dy_dx.item(), abs=1e-6)
    assert round(sig.local[0].item(), 4) == 0.1966
    assert sig.flows[0][1].item() == pytest.approx(dz_dx.item(), abs=1e-6)
    assert acc.leaf_grad.item() == pytest.approx(dz_dx.item(), abs=1e-6)
    assert round(acc.leaf_grad.item(), 4) == 0.3932
    # and against a real .backward() on a fresh copy
    x2 = torch.tensor(1.0, requires_grad=True)
    (2 * torch.sigmoid(x2)).backward()
    assert acc.leaf_grad.item() == pytest.approx(x2.grad.item(), abs=1e-7)
    assert x.grad is None                                      # the stepper never writes .grad


def test_a4_gradients_add_up_once_per_leaf():
    L, params = a4()
    steps = backward_steps(L, params=params)
    g = graph_nodes(L, params)
    got = {g.nodes[s.leaf].label: s.leaf_grad for s in steps if s.leaf is not None}
    expected = torch.autograd.grad(L, list(params.values()))
    for (name, _), e in zip(params.items(), expected):
        assert got[name].item() == pytest.approx(e.item()), name
    assert got["w1"].item() == -params["w3"].item() * params["a"].item()   # dL/dw1 = -w3*a
    assert sum(s.name == "AccumulateGrad" for s in steps) == 5             # a's runs once, after both paths
    assert all(p.grad is None for p in params.values())


def test_steps_match_torch_on_mlp_with_split_and_broadcast():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    bias = torch.randn(1, 2, requires_grad=True)
    h = mlp(torch.randn(5, 4)) + bias                              # broadcast over the batch
    p, q = h.split(1, dim=1)                                       # a node with two outputs
    loss = (p.sigmoid() * 3 + q.exp()).mean()
    params = dict(mlp.named_parameters(), bias=bias)
    steps = backward_steps(loss, params=params)
    g = graph_nodes(loss, params)
    got = {g.nodes[s.leaf].label: s.leaf_grad for s in steps if s.leaf is not None}
    expected = torch.autograd.grad(loss, list(params.values()))
    for (name, _), e in zip(params.items(), expected):
        torch.testing.assert_close(got[name], e, msg=name)


def test_existing_grad_is_added_not_changed():
    x, y, z = a2()
    x.grad = torch.tensor(10.0)
    steps = backward_steps(z)
    assert steps[-1].leaf_grad.item() == pytest.approx(10.3932, abs=1e-4)
    assert x.grad.item() == 10.0


def test_non_scalar_root_needs_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(ValueError, match="grad="):
        backward_steps(y)
    with pytest.raises(ValueError, match="grad="):
        step_backward(y)
    with pytest.raises(ValueError, match="shape"):
        backward_steps(y, grad=torch.ones(3))
    steps = backward_steps(y, grad=torch.tensor([1.0, 10.0]))
    torch.testing.assert_close(steps[-1].leaf_grad, torch.tensor([3.0, 30.0]))


@pytest.mark.parametrize("bad, match", [
    (3.0, "torch.Tensor"),
    ([1.0, 2.0], "torch.Tensor"),
    (torch.tensor(1.0, requires_grad=True), "leaf"),
    (torch.tensor(1.0), "does not require grad"),
])
def test_bad_input_says_what_to_pass(bad, match):
    for fn in (graph_nodes, draw_graph, backward_steps, step_backward):
        with pytest.raises(ValueError, match=match) as info:
            fn(bad)
        assert "Pass" in str(info.value) or "pass" in str(info.value)
    with torch.no_grad():
        made = torch.tensor(1.0, requires_grad=True) * 2
    with pytest.raises(ValueError, match="no_grad"):
        graph_nodes(made)


def test_freed_graph_cannot_be_stepped():
    x, y, z = a2()
    z.backward()
    with pytest.raises(ValueError, match="retain_graph"):
        backward_steps(z)


# ------------------------------------------------------------------ the widget

def test_widget_next_back_reset(monkeypatch):
    import ipywidgets as widgets

    x, y, z = a2()
    for patched in (False, True):
        if patched:
            no_dot(monkeypatch)                    # picture from the matplotlib fallback
        w = step_backward(z, params=dict(x=x))
        assert isinstance(w, widgets.VBox) and "course-step-backward" in w._dom_classes

        def find(cls):
            stack = [w]
            while stack:
                c = stack.pop()
                if cls in getattr(c, "_dom_classes", ()):
                    return c
                stack.extend(getattr(c, "children", ()))
            raise AssertionError(cls)

        nxt, back, reset, text = (find(c) for c in ("course-step-next", "course-step-back",
                                                   "course-step-reset", "course-step-text"))
        assert nxt.description == "Next" and back.disabled
        image = next(c for c in w.children if isinstance(c, widgets.Image))
        first_text, first_image = text.value, image.value
        assert "MulBackward0" in first_text and "Step 1 of 3" in first_text
        assert first_image[:4] == b"\x89PNG"
        nxt.click()
        assert "Step 2 of 3" in text.value and "SigmoidBackward0" in text.value
        assert "0.1966" in text.value and "0.3932" in text.value and image.value != first_image
        nxt.click()
        assert "x.grad" in text.value and "0.3932" in text.value and nxt.disabled
        back.click()
        assert "Step 2 of 3" in text.value
        reset.click()
        assert text.value == first_text
    assert x.grad is None


def test_custom_function_node_is_read_and_stepped():
    class MySigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = 1 / (1 + torch.exp(-x))
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad_out):
            y, = ctx.saved_tensors
            return grad_out * y * (1 - y)

    x = torch.tensor(1.0, requires_grad=True)
    z = 2 * MySigmoid.apply(x)
    node = graph_nodes(z).find("MySigmoidBackward")
    assert "saved_tensors[0]" in node.saved and "0.7311" in node.saved["saved_tensors[0]"]
    steps = backward_steps(z)
    assert steps[1].name == "MySigmoidBackward"
    expected, = torch.autograd.grad(z, x, retain_graph=True)
    assert steps[-1].leaf_grad.item() == pytest.approx(expected.item())
    assert x.grad is None


def test_a_path_that_delivers_no_gradient_does_not_stall_the_walk():
    class FirstOnly(torch.autograd.Function):   # returns no gradient for its second input
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out, None

    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    z = FirstOnly.apply(a, b * 4) + b
    g = graph_nodes(z, dict(a=a, b=b))
    got = {g.nodes[s.leaf].label: s.leaf_grad.item() for s in backward_steps(z, params=dict(a=a, b=b))
           if s.leaf is not None}
    expected = torch.autograd.grad(z, [a, b])
    assert got == {"a": expected[0].item(), "b": expected[1].item()}


# ------------------------------------------------------------------ issue 13: structure and static pages

def test_layered_layout_imports_nothing_from_autograd():
    import subprocess
    import sys

    code = ("import sys, course_utils.viz._layered; "
            "print(sorted(m for m in sys.modules if m.startswith('course_utils.viz.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "autograd" not in out and "backward_stepper" not in out
    from course_utils.viz import _layered
    assert viz_autograd.draw_layered is _layered.draw_layered   # autograd uses the layout module, one way


def test_stepper_on_a_static_page_returns_a_figure_and_prints_the_steps(monkeypatch, capsys):
    from matplotlib.figure import Figure

    monkeypatch.setenv("COURSE_STATIC_WIDGETS", "1")
    x, y, z = a2()
    fig = step_backward(z, params=dict(x=x))
    assert isinstance(fig, Figure)
    out = capsys.readouterr().out
    assert out.startswith("(static picture of the backward stepper")
    assert "Step 3 of 3: AccumulateGrad" in out and "0.3932" in out and "<b>" not in out
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "grad 0.3932" in labels and "0.3932" in labels
    assert x.grad is None


# ------------------------------------------------------------------ issue 13: a learner's engine

def reference_engine(root, grad):
    """A13's engine, kept here (not in the package): dependency counts, a ready list,
    one input buffer per node, grad_fn called, AccumulateGrad left to the stepper."""
    deps, stack, seen = {}, [root.grad_fn], {root.grad_fn}
    while stack:
        fn = stack.pop()
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                deps[nxt] = deps.get(nxt, 0) + 1
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    buffers, ready = {root.grad_fn: grad}, [root.grad_fn]
    while ready:
        fn = ready.pop()
        g = buffers.pop(fn, None)
        if type(fn).__name__ == "AccumulateGrad":
            if g is not None:
                yield fn, (g,), ()
            continue
        with torch.no_grad():
            out = fn(g) if g is not None else None
        out = out if isinstance(out, tuple) else (out,)
        if g is not None:
            yield fn, (g,), out
        for (nxt, _), gk in zip(fn.next_functions, out if g is not None else [None] * len(fn.next_functions)):
            if nxt is None:
                continue
            if gk is not None:
                buffers[nxt] = gk if buffers.get(nxt) is None else buffers[nxt] + gk
            deps[nxt] -= 1
            if deps[nxt] == 0:
                ready.append(nxt)


def test_steps_from_an_engine_match_torch_and_the_observed_steps():
    from course_utils.viz.backward_stepper import steps_from_engine

    L, params = a4()
    g = graph_nodes(L, params)
    mine = steps_from_engine(L, reference_engine, params=params)
    observed = backward_steps(L, params=params)
    leaf_grads = {g.nodes[s.leaf].label: s.leaf_grad for s in mine if s.leaf is not None}
    expected = dict(zip(params, torch.autograd.grad(L, list(params.values()), retain_graph=True)))
    assert set(leaf_grads) == set(expected)
    for name in expected:
        torch.testing.assert_close(leaf_grads[name], expected[name])
    assert sorted(s.name for s in mine) == sorted(s.name for s in observed)
    assert all(p.grad is None for p in params.values())


def test_stepper_draws_a_learners_engine_and_says_when_it_is_a_stub(capsys):
    from course_utils.checks import NOT_DONE

    x, y, z = a2()
    w = step_backward(z, params=dict(x=x), engine=reference_engine, show_graph=False)
    assert [s.name for s in w.steps] == ["MulBackward0", "SigmoidBackward0", "AccumulateGrad"]
    assert round(w.steps[-1].leaf_grad.item(), 4) == 0.3932
    assert step_backward(z, engine=lambda root, grad: NOT_DONE) is None
    assert capsys.readouterr().out.startswith("TODO")
    with pytest.raises(ValueError, match="triples"):
        step_backward(z, engine=lambda root, grad: iter([1, 2]))
