"""Static modes of the widget explorers (the course book, issue 18).

With ``COURSE_STATIC_WIDGETS=1`` the conv-arithmetic explorer, the attention
explorer and the reduction stepper return a matplotlib Figure (no ipywidgets
object, so no empty widget box on a static page) and print one line pointing at
the interactive version; without it they still return the widget. The training
monitor shows no tqdm bar there (tqdm's notebook bar is a widget too).
"""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_utils.viz import figure_png
from course_utils.viz.attention import attention_explorer
from course_utils.viz.conv import conv_arithmetic, conv_arithmetic_widget, show_conv_arithmetic


def _texts(fig: Figure) -> str:
    parts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return "\n".join(p for p in parts if isinstance(p, str))


def _weights(L=2, nh=3, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(L, nh, T, T, generator=g), dim=-1)   # [L, nh, T, T], rows sum to 1


@pytest.fixture
def static(monkeypatch):
    monkeypatch.setenv("COURSE_STATIC_WIDGETS", "1")


def test_conv_explorer_static_returns_a_figure_with_the_arithmetic(static, capsys):
    fig = conv_arithmetic_widget()
    assert isinstance(fig, Figure)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "interactive version" in out and "conv-arithmetic" in out
    text = _texts(fig)
    a = conv_arithmetic()                        # the widget's starting values: 32, 3 -> 16, k5
    assert a["out"] == torch.nn.Conv2d(3, 16, 5)(torch.zeros(1, 3, 32, 32)).shape[-1] == 28
    assert f"= {a['out']}" in text
    conv = torch.nn.Conv2d(3, 16, 5)
    assert f"{sum(p.numel() for p in conv.parameters()):,}" in text   # PyTorch counts the parameters
    assert "[N, 16, 28, 28]" in text
    png = figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000   # it draws something


@pytest.mark.parametrize("kw", [dict(size=7, kernel=3, stride=2, padding=1),
                                dict(size=20, kernel=3, dilation=3)])
def test_show_conv_arithmetic_matches_pytorch_for_other_settings(kw):
    conv = torch.nn.Conv2d(2, 4, kw["kernel"], stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                           dilation=kw.get("dilation", 1))
    out = conv(torch.zeros(1, 2, kw["size"], kw["size"])).shape[-1]
    fig = show_conv_arithmetic(in_channels=2, out_channels=4, **kw)
    assert f"-> [N, 4, {out}, {out}]" in _texts(fig)
    assert len(fig.axes) == 2                         # the text panel and the kernel-taps row


def test_conv_explorer_without_the_switch_is_still_a_widget(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.delenv("COURSE_STATIC_WIDGETS", raising=False)
    assert isinstance(conv_arithmetic_widget(), widgets.VBox)


def test_attention_explorer_static_draws_every_head_of_layer_0(static, capsys):
    w = _weights()
    tokens = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    fig = attention_explorer(w, tokens)
    assert isinstance(fig, Figure)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "attention explorer" in out and "interactive version" in out
    images = [im.get_array() for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 3                           # one heat map per head of layer 0
    for h, im in enumerate(images):                   # each panel is exactly that head's weights
        np.testing.assert_allclose(np.asarray(im), w[0, h].numpy(), rtol=1e-6)
    assert "layer 0" in _texts(fig)


def test_attention_explorer_static_one_head_one_layer(static):
    w = _weights(L=1, nh=1, T=4)[0, 0]                # [T, T]
    fig = attention_explorer(w, list("abcd"))
    images = [im.get_array() for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 1
    np.testing.assert_allclose(np.asarray(images[0]), w.numpy(), rtol=1e-6)


def test_attention_explorer_static_still_checks_its_inputs(static):
    with pytest.raises(ValueError, match="token labels"):
        attention_explorer(_weights(T=5), ["a", "b"])


def test_attention_explorer_without_the_switch_is_still_a_widget(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.delenv("COURSE_STATIC_WIDGETS", raising=False)
    assert isinstance(attention_explorer(_weights(), list("abcde")), widgets.VBox)


def test_reduction_stepper_follows_the_switch(static, capsys):
    from course_utils.viz.reduction import show_reduction

    x = torch.arange(6.0).reshape(2, 3)
    fig = show_reduction(x, 0)
    assert isinstance(fig, Figure)
    assert "reduction stepper" in capsys.readouterr().out
    explicit = show_reduction(x, 0, static=True)          # the same picture as static=True
    assert len(fig.axes) == len(explicit.axes) and _texts(fig) == _texts(explicit)


def test_training_monitor_draws_no_bar_widget_on_a_static_page(static):
    from course_utils.monitor import TrainingMonitor

    monitor = TrainingMonitor(total=3, title="t", live=False)
    assert monitor._bar.disable                        # tqdm's notebook bar is a widget
    for step in range(3):
        monitor.log(step, loss=1.0 / (step + 1))
    monitor.close()
    assert monitor.last("loss") == pytest.approx(1 / 3)
