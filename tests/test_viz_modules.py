"""show_module (the module tree) and watch_activations (forward hooks), lesson 03."""

import re
import warnings
from html.parser import HTMLParser

import pytest
import torch
from torch import nn

from course_utils.viz.activations import watch_activations
from course_utils.viz.modules import ModuleSummary, show_module


def _unique_numel(model, trainable=None):
    return sum(p.numel() for p in model.parameters()
               if trainable is None or p.requires_grad == trainable)


# -- show_module ---------------------------------------------------------------

def test_resnet18_counts_match_pytorch():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18()  # random weights: no download
    s = show_module(model)
    assert isinstance(s, ModuleSummary)
    assert s.total == _unique_numel(model) == 11_689_512
    assert s.trainable == s.total and s.frozen == 0
    assert s.buffers == sum(b.numel() for b in model.buffers())
    # every module of named_modules has a row, and each row's subtotal is its own subtree
    assert [r.path for r in s.rows] == [n for n, _ in model.named_modules()]
    for name, module in model.named_modules():
        assert s[name].total == _unique_numel(module), name
    assert s["fc"].params[0].shape == (1000, 512) and s["fc"].params[0].numel == 512_000
    assert {b.name for b in s["bn1"].buffers} == {"running_mean", "running_var", "num_batches_tracked"}


def test_transformer_counts_match_pytorch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested-tensor notice from nn.Transformer
        model = nn.Transformer(d_model=64, nhead=4, num_encoder_layers=2,
                               num_decoder_layers=2, dim_feedforward=128)
    s = show_module(model)
    assert s.total == _unique_numel(model)
    assert s["encoder.layers.0.self_attn"].total == _unique_numel(model.encoder.layers[0].self_attn)
    # MultiheadAttention keeps in_proj_weight directly (a Parameter, not a Linear)
    names = [t.name for t in s["encoder.layers.0.self_attn"].params]
    assert "in_proj_weight" in names


def test_default_transformer_total():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nn.Transformer()
    assert show_module(model).total == _unique_numel(model)


def test_frozen_split_after_freezing():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    for p in model[0].parameters():
        p.requires_grad_(False)
    s = show_module(model)
    assert s.frozen == _unique_numel(model, trainable=False) == 4 * 8 + 8
    assert s.trainable == _unique_numel(model, trainable=True) == 8 * 2 + 2
    assert s.total == s.frozen + s.trainable
    assert s["0"].frozen == 40 and s["0"].trainable == 0
    assert "FROZEN" in str(s)


def test_shared_parameters_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 6)
            self.out = nn.Linear(6, 10, bias=False)
            self.out.weight = self.emb.weight     # weight tying
            self.again = self.emb                 # the same module at two paths

    model = Tied()
    s = show_module(model)
    assert s.total == _unique_numel(model) == 60
    shared = s["out"].params[0]
    assert shared.shared_with == "emb.weight" and shared.numel == 0
    assert s["again"].shared_module == "emb"
    assert "shared with emb.weight" in str(s)


def test_text_rendering_is_a_tree():
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    text = str(show_module(model))
    first = text.splitlines()[0]
    assert re.search(r"44 parameters", first)  # 16 + 20 + 8
    assert "├─ 0: Linear" in text and "└─ 1: Sequential" in text
    assert "running_mean" in text and "buffer" in text
    assert "(4, 3)" in text
    # nested child is indented deeper than its parent
    parent = next(l for l in text.splitlines() if "1: Sequential" in l)
    child = next(l for l in text.splitlines() if "1: BatchNorm1d" in l)
    assert child.index("1: BatchNorm1d") > parent.index("1: Sequential")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.count = [], [], {}

    def handle_starttag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag not in {"br", "img", "hr"}:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_rendering_is_well_formed_and_offline():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    html = show_module(model)._repr_html_()
    parser = _Tags()
    parser.feed(html)
    assert parser.errors == [] and parser.stack == []
    assert parser.count.get("details", 0) >= 3  # root + the two Linear layers
    assert "<script" not in html and "http" not in html
    assert "frozen" in html and "(4, 3)" in html and "26 parameters" in html


def test_figure_and_lazy_and_bad_input():
    from matplotlib.figure import Figure

    model = nn.Sequential(nn.Linear(3, 4), nn.LazyLinear(2))
    s = show_module(model)  # uninitialized lazy parameters count 0, no crash
    assert s.total == 16 and "lazy" in str(s)
    fig = show_module(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))).to_figure()
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="nn.Module"):
        show_module(torch.zeros(3))
    with pytest.raises(ValueError, match="nn.Module"):
        show_module(nn.Linear(2, 2).state_dict())


# -- watch_activations -----------------------------------------------------------

def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))


def _no_hooks(model):
    return all(len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0
               for m in model.modules())


def test_healthy_net_is_not_flagged():
    model = _net()
    with watch_activations(model) as watch:
        model(torch.randn(256, 10))
    assert watch.report() == []
    assert list(watch.stats) == [str(i) for i in range(7)]  # every leaf, in call order
    relu = watch.stats["1"]
    out = torch.relu(model[0](torch.randn(256, 10)))
    assert abs(relu.frac_zero - float((out == 0).float().mean())) < 0.1
    assert relu.max_abs > 0 and relu.std > 0


def test_stats_match_the_real_output():
    model = nn.Sequential(nn.Linear(5, 7))
    x = torch.randn(64, 5)
    with watch_activations(model) as watch:
        y = model(x).detach()
    st = watch.stats["0"]
    assert st.mean == pytest.approx(float(y.mean()), abs=1e-5)
    assert st.std == pytest.approx(float(y.std(unbiased=False)), rel=1e-4)
    assert st.max_abs == pytest.approx(float(y.abs().max()), rel=1e-6)
    assert st.values().numel() == y.numel()


def test_flags_dead_relu_and_exploding_layer():
    model = _net()
    with torch.no_grad():
        model[2].weight.mul_(100)     # exploding: std grows ~50x in this Linear
        model[4].bias.fill_(-100.0)   # dead: every input to ReLU 5 is negative
    with watch_activations(model) as watch:
        model(torch.randn(256, 10))
    flags = {(f.layer, f.kind) for f in watch.report()}
    assert ("2", "exploding") in flags
    assert ("5", "dead") in flags
    assert all(layer in {"2", "3", "4", "5", "6"} for layer, _ in flags)  # nothing upstream
    assert watch.stats["5"].dead_units == 32
    fig = watch.figure()
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert any(t.startswith("DEAD") for t in titles) and any(t.startswith("EXPLODING") for t in titles)
    assert _no_hooks(model)


def test_types_filter_and_dead_units():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    with torch.no_grad():
        model[0].bias[:4] = -50.0   # four of six units can never fire
    with watch_activations(model, types=(nn.ReLU,)) as watch:
        model(torch.randn(32, 4))
    assert list(watch.stats) == ["1"]
    assert watch.stats["1"].dead_units == 4
    assert [f.kind for f in watch.report()] == ["dead"]


def test_hooks_removed_after_block_and_on_exception():
    model = _net()
    with watch_activations(model):
        assert sum(len(m._forward_hooks) for m in model.modules()) == 7
        model(torch.randn(4, 10))
    assert _no_hooks(model)

    with pytest.raises(RuntimeError):
        with watch_activations(model):
            model(torch.randn(4, 3))  # wrong input width raises inside the block
    assert _no_hooks(model)

    watch = watch_activations(model)  # without `with`: remove() by hand, twice is fine
    watch.remove()
    watch.remove()
    assert _no_hooks(model)


def test_watch_bad_input():
    with pytest.raises(ValueError, match="nn.Module"):
        watch_activations(torch.zeros(2))
    with pytest.raises(ValueError, match="no submodule"):
        watch_activations(nn.Sequential(nn.Linear(2, 2)), names=["fc9"])
    with pytest.raises(ValueError, match="forward pass"):
        watch_activations(nn.Linear(2, 2)).figure()
