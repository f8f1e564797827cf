"""Looking at convolutions and CNNs (lesson 05, C2 and C5-C6).

    conv_arithmetic_widget()                       # sliders -> output size, parameters vs dense
    show_conv_arithmetic(size=32, kernel=5)        # the same as a still Figure (static pages)
    show_filters(model.conv1.weight)               # [C_out, C_in, kH, kW] -> grid of filters
    show_feature_maps(acts[0], image=x[0])         # [C, H, W] activation maps of one image
    show_saliency(x[0], sal)                       # image [3, H, W] + |d score / d pixel| [H, W]
    show_confusion(cm, class_names)                # cm[true, pred] counts [K, K]
    show_most_confused(x, y, pred, class_names)    # the most frequent mistakes, as pictures

Colours: filters are shown each scaled to its own min..max (grey = 0 only if the
filter is symmetric around 0); feature maps use ``viridis`` with their scale shown, one
colour bar for all maps (``scale="shared"``) or one per map (``scale="own"``); saliency
uses ``inferno`` (bright = the pixel changes the class score most); the
confusion matrix is row-normalised (each true class sums to 1), blue = many.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from course_utils.viz import figure_png


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one spatial dim of ``nn.Conv2d`` / ``nn.MaxPool2d``.

    ``floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1``: the
    dilated kernel spans ``dilation*(kernel-1) + 1`` inputs; it fits
    ``size + 2*padding - span`` steps of ``stride`` after its first position.
    """
    for name, value, low in (("size", size, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"conv_output_size: {name} must be an int >= {low}, got {value!r}")
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(f"conv_output_size: the kernel spans {span} inputs but the padded input has "
                         f"only {size + 2 * padding}; use a smaller kernel/dilation or more padding.")
    return (size + 2 * padding - span) // stride + 1


def conv_arithmetic(size=32, in_channels=3, out_channels=16, kernel=5, stride=1, padding=0,
                    dilation=1) -> dict:
    """Numbers behind the widget: output size and parameters of a conv vs a dense layer."""
    out = conv_output_size(size, kernel, stride, padding, dilation)
    conv = out_channels * in_channels * kernel * kernel + out_channels
    n_in, n_out = in_channels * size * size, out_channels * out * out
    return dict(out=out, conv_params=conv, dense_params=n_in * n_out + n_out, n_in=n_in, n_out=n_out,
                macs=out * out * out_channels * in_channels * kernel * kernel)


def conv_arithmetic_text(size=32, in_channels=3, out_channels=16, kernel=5, stride=1, padding=0,
                         dilation=1) -> str:
    """The widget's text (HTML) for one setting of the sliders."""
    a = conv_arithmetic(size, in_channels, out_channels, kernel, stride, padding, dilation)
    return (f"<code>H_out = floor(({size} + 2*{padding} - {dilation}*({kernel}-1) - 1) / {stride}) + 1 = "
            f"<b>{a['out']}</b></code><br>"
            f"shape: [N, {in_channels}, {size}, {size}] -> [N, {out_channels}, {a['out']}, {a['out']}]<br>"
            f"conv parameters: {out_channels}*{in_channels}*{kernel}*{kernel} + {out_channels} = "
            f"<b>{a['conv_params']:,}</b> (shared across all {a['out'] * a['out']} positions)<br>"
            f"dense layer {a['n_in']:,} -> {a['n_out']:,}: <b>{a['dense_params']:,}</b> parameters "
            f"({a['dense_params'] / a['conv_params']:,.0f}x more)<br>"
            f"multiply-adds per image: {a['macs']:,}")


def show_conv_grid(size=7, kernel=3, stride=1, padding=0, dilation=1, ax=None) -> Figure:
    """One row of the input (padding in grey) and where the kernel's taps land, step by step."""
    out = conv_output_size(size, kernel, stride, padding, dilation)
    total = size + 2 * padding
    steps = min(out, 4)
    fig = ax.figure if ax is not None else Figure(figsize=(max(4, 0.38 * total + 1.5), 0.45 * steps + 1.0),
                                                  layout="constrained")
    ax = ax or fig.add_subplot()
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for row in range(steps):
        y = steps - 1 - row
        for i in range(total):
            pad = i < padding or i >= padding + size
            ax.add_patch(_rect(i, y, "#dddddd" if pad else "white"))
        for tap in range(kernel):
            ax.add_patch(_rect(row * stride + tap * dilation, y, colours[row], alpha=0.65))
        ax.text(-0.6, y + 0.5, f"out[{row}]", ha="right", va="center", fontsize=8)
    ax.set_xlim(-3.2, total + 0.2)
    ax.set_ylim(-0.2, steps + 0.2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"input {size} + padding {padding} (grey), kernel {kernel}, stride {stride}, dilation "
                 f"{dilation}: {out} outputs" + (f" (first {steps})" if out > steps else ""), fontsize=8)
    return fig


def _rect(x, y, colour, alpha=1.0):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), 0.92, 0.92, facecolor=colour, edgecolor="#555555", linewidth=0.6, alpha=alpha)


def conv_arithmetic_widget():
    """Sliders for input size, channels, kernel, stride, padding, dilation -> sizes and parameter counts.

    On a static page (``COURSE_STATIC_WIDGETS=1``, see :mod:`course_utils.static`) it returns
    :func:`show_conv_arithmetic`'s Figure for the sliders' starting values instead.
    """
    from course_utils.static import interactive_note, static_widgets

    if static_widgets():
        interactive_note("the conv-arithmetic explorer")
        return show_conv_arithmetic()
    import ipywidgets as widgets

    def slider(name, value, lo, hi):
        return widgets.IntSlider(value=value, min=lo, max=hi, description=name, continuous_update=False,
                                 style={"description_width": "90px"})

    s = dict(size=slider("input size", 32, 4, 64), in_channels=slider("in channels", 3, 1, 64),
             out_channels=slider("out channels", 16, 1, 128), kernel=slider("kernel", 5, 1, 11),
             stride=slider("stride", 1, 1, 4), padding=slider("padding", 0, 0, 5),
             dilation=slider("dilation", 1, 1, 4))
    text, image = widgets.HTML(), widgets.Image(format="png")
    text.add_class("course-conv-text")

    def update(_=None):
        v = {k: w.value for k, w in s.items()}
        try:
            text.value = conv_arithmetic_text(**v)
            span = v["dilation"] * (v["kernel"] - 1) + 1
            shown = min(v["size"], max(12, span))               # one row, at most ~12 cells wide
            fig = show_conv_grid(shown, v["kernel"], v["stride"], v["padding"], v["dilation"])
            if shown < v["size"]:
                text.value += f"<br><i>picture: a {shown}-wide input, to keep it readable</i>"
            image.value = figure_png(fig, dpi=90)
        except ValueError as exc:
            text.value = f"<span style='color:#c62828'>{exc}</span>"

    for w in s.values():
        w.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([widgets.VBox(list(s.values())[:4]), widgets.VBox(list(s.values())[4:])]),
                         text, image])


def show_conv_arithmetic(size=32, in_channels=3, out_channels=16, kernel=5, stride=1, padding=0,
                         dilation=1) -> Figure:
    """The explorer's picture for one setting, as a still Figure: the arithmetic, then the kernel's taps."""
    a = conv_arithmetic(size, in_channels, out_channels, kernel, stride, padding, dilation)
    span = dilation * (kernel - 1) + 1
    shown = min(size, max(12, span))                    # the same readable row the widget draws
    lines = [f"H_out = floor(({size} + 2*{padding} - {dilation}*({kernel}-1) - 1) / {stride}) + 1 = {a['out']}",
             f"shape: [N, {in_channels}, {size}, {size}] -> [N, {out_channels}, {a['out']}, {a['out']}]",
             f"conv parameters: {out_channels}*{in_channels}*{kernel}*{kernel} + {out_channels} = "
             f"{a['conv_params']:,} (shared across all {a['out'] * a['out']} positions)",
             f"dense layer {a['n_in']:,} -> {a['n_out']:,}: {a['dense_params']:,} parameters "
             f"({a['dense_params'] / a['conv_params']:,.0f}x more)",
             f"multiply-adds per image: {a['macs']:,}"]
    if shown < size:
        lines.append(f"picture below: a {shown}-wide input, to keep it readable")
    total = shown + 2 * padding
    width = max(6.5, 0.38 * total + 1.5)
    fig = Figure(figsize=(width, 1.15 + 0.45 * min(a["out"], 4) + 1.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 0.45 * min(a["out"], 4) + 1.0])
    ax = top.add_subplot()
    ax.set_axis_off()
    ax.text(0.0, 1.0, "\n".join(lines), ha="left", va="top", family="monospace", fontsize=8,
            transform=ax.transAxes)
    show_conv_grid(shown, kernel, stride, padding, dilation, ax=bottom.add_subplot())
    fig.suptitle("conv arithmetic (the explorer's starting setting)", fontsize=10)
    return fig


def _as_weight(weight) -> torch.Tensor:
    w = getattr(weight, "weight", weight)
    if not isinstance(w, torch.Tensor) or w.dim() != 4:
        raise ValueError("show_filters: pass a Conv2d or its weight [C_out, C_in, kH, kW] "
                         f"(got {type(w).__name__} {tuple(getattr(w, 'shape', ()))}).")
    return w.detach().float().cpu()


def show_filters(weight, ncols: int = 8, title: str | None = None) -> Figure:
    """First-layer filters: RGB when C_in == 3 (each scaled to its own range), else channel 0 in grey."""
    w = _as_weight(weight)                                                    # [C_out, C_in, kH, kW]
    n = w.shape[0]
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.0 * cols, 1.05 * rows + 0.4), layout="constrained")
    for k, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
        ax.set_axis_off()
        if k >= n:
            continue
        f = w[k]
        f = (f - f.min()) / (f.max() - f.min() + 1e-12)
        if f.shape[0] == 3:
            ax.imshow(f.permute(1, 2, 0).numpy(), interpolation="nearest")    # [C, kH, kW] -> [kH, kW, C]
        else:
            ax.imshow(f[0].numpy(), cmap="gray", interpolation="nearest")
        ax.set_title(str(k), fontsize=7)
    fig.suptitle(title or f"{n} filters of shape {tuple(w.shape[1:])} (each scaled to its own range)",
                 fontsize=9)
    return fig


_OWN_BAR = dict(location="bottom", fraction=0.08, pad=0.03, aspect=12)   # a map's own colour bar


def show_feature_maps(maps, image=None, max_maps: int = 16, ncols: int = 8, title=None,
                      mean=None, std=None, scale: str = "shared", names=None) -> Figure:
    """Activation maps [C, H, W] (or [1, C, H, W]) of one image, each with its colour scale shown.

    ``image`` [3, H, W] (or [1, H, W]) is drawn first, titled "input", so the maps sit next to
    what they were computed from (``mean``/``std`` undo a normalisation). ``scale``:

    * ``"shared"``: one colour scale for every map shown, from their joint min to max, and one
      colour bar for the figure: maps can be compared (a dark map responds little);
    * ``"own"``: each map stretched to its own min..max, with its own small colour bar whose two
      ticks are that min and max: the structure of every map shows, the bar says its size.

    ``names`` titles the maps shown (one name per map, e.g. ``["vertical edges", "horizontal
    edges"]``); without it they are titled "map 0", "map 1", ...
    """
    if scale not in ("shared", "own"):
        raise ValueError(f"show_feature_maps: scale must be 'shared' or 'own', got {scale!r}")
    m = maps.detach().float().cpu()
    if m.dim() == 4 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 3:
        raise ValueError(f"show_feature_maps: got shape {tuple(m.shape)}; pass the maps of ONE image, "
                         "[C, H, W] (e.g. acts[0]).")
    m = m[:max_maps]
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != m.shape[0]:
            raise ValueError(f"show_feature_maps: {len(names)} names for {m.shape[0]} maps shown; "
                             "pass one name per map (after max_maps)")
    panels = m.shape[0] + (image is not None)
    cols = min(ncols, panels)
    rows = math.ceil(panels / cols)
    own = scale == "own"
    fig = Figure(figsize=(1.25 * cols + (0.0 if own else 0.6), (1.6 if own else 1.3) * rows + 0.4),
                 layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes:
        ax.set_axis_off()
    if image is not None:
        ax = axes.pop(0)
        shown = ax.imshow(_rgb(image, mean, std), interpolation="nearest")
        ax.set_title("input", fontsize=7, fontweight="bold")
        if own:                                               # an empty bar's room: the input lines up
            spacer = fig.colorbar(shown, ax=ax, **_OWN_BAR)
            spacer.ax.set_axis_off()
            spacer.solids.set_visible(False)
    shared = Normalize(m.min().item(), m.max().item())       # one scale (one object) for all maps shown
    map_axes = axes[:m.shape[0]]
    for k, ax in enumerate(map_axes):
        norm = Normalize(m[k].min().item(), m[k].max().item()) if own else shared
        vmin, vmax = norm.vmin, norm.vmax
        im = ax.imshow(m[k].numpy(), cmap="viridis", interpolation="nearest", norm=norm)
        ax.set_title(names[k] if names is not None else f"map {k}", fontsize=7)
        if own:
            bar = fig.colorbar(im, ax=ax, ticks=[vmin, vmax], **_OWN_BAR)
            bar.ax.set_xticklabels([f"{vmin:.2g}", f"{vmax:.2g}"])
            bar.ax.tick_params(labelsize=6, length=2, pad=1)
    if map_axes and not own:
        bar = fig.colorbar(im, ax=map_axes if len(map_axes) > 1 else map_axes[0], location="right",
                           shrink=min(1.0, 0.55 + 0.2 * rows), aspect=12 * rows, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("shared scale", fontsize=7)
    fig.suptitle(title or f"{m.shape[0]} feature maps of {tuple(m.shape[1:])} (one per filter)", fontsize=9)
    return fig


def _rgb(image, mean=None, std=None) -> np.ndarray:
    x = image.detach().float().cpu()
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected one image [C, H, W] with C in (1, 3), got {tuple(x.shape)}")
    if mean is not None:
        x = x * torch.as_tensor(std).view(-1, 1, 1) + torch.as_tensor(mean).view(-1, 1, 1)
    x = x.clamp(0, 1) if mean is not None else (x - x.min()) / (x.max() - x.min() + 1e-12)
    return x.permute(1, 2, 0).squeeze(-1).numpy()                             # [C, H, W] -> [H, W, C]


def show_saliency(image, saliency, title: str | None = None, mean=None, std=None) -> Figure:
    """The image, its saliency |d score / d pixel| [H, W] and both overlaid."""
    s = saliency.detach().float().cpu()
    if s.dim() != 2:
        raise ValueError(f"show_saliency: saliency must be [H, W] (e.g. grad.abs().amax(0)), got {tuple(s.shape)}")
    rgb = _rgb(image, mean, std)
    fig = Figure(figsize=(6.6, 2.5), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    a.imshow(rgb, interpolation="nearest")
    a.set_title("image", fontsize=9)
    im = b.imshow(s.numpy(), cmap="inferno", interpolation="nearest")
    b.set_title("saliency", fontsize=9)
    fig.colorbar(im, ax=b, shrink=0.8)
    c.imshow(rgb, interpolation="nearest")
    c.imshow(s.numpy(), cmap="inferno", alpha=0.55, interpolation="bilinear")
    c.set_title("overlay", fontsize=9)
    for ax in (a, b, c):
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def show_confusion(cm, class_names, normalize: bool = True, ax=None, title=None) -> Figure:
    """Confusion matrix ``cm[true, pred]`` (counts [K, K]) with the row share written in each cell."""
    cm = torch.as_tensor(cm).detach().cpu().double()
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"show_confusion: cm has shape {tuple(cm.shape)} but there are {k} class names; "
                         "pass cm[true, pred] counts of shape [K, K].")
    show = cm / cm.sum(1, keepdim=True).clamp(min=1) if normalize else cm
    fig = ax.figure if ax is not None else Figure(figsize=(6.2, 5.4), layout="constrained")
    ax = ax or fig.add_subplot()
    im = ax.imshow(show.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(k):
        for j in range(k):
            v = show[i, j].item()
            if v >= 0.005 or not normalize:
                ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center",
                        fontsize=7, color="white" if v > (0.5 if normalize else show.max() / 2) else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = cm.diagonal().sum() / cm.sum().clamp(min=1)
    ax.set_title(title or f"confusion matrix ({'row share' if normalize else 'counts'}), "
                 f"accuracy {acc:.1%}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def most_confused_pairs(cm, top: int = 4) -> list[tuple[int, int, int]]:
    """The ``top`` off-diagonal cells of ``cm[true, pred]`` as (true, pred, count), most first."""
    cm = torch.as_tensor(cm).clone()
    cm.fill_diagonal_(0)
    counts, flat = cm.flatten().sort(descending=True)
    k = cm.shape[0]
    return [(int(i) // k, int(i) % k, int(c)) for c, i in zip(counts[:top], flat[:top]) if c > 0]


def show_most_confused(images, targets, preds, class_names, top_pairs: int = 4, per_pair: int = 6,
                       mean=None, std=None) -> Figure:
    """One row per frequent mistake 'true -> predicted' with examples of it. images: [N, C, H, W]."""
    targets, preds = torch.as_tensor(targets).cpu(), torch.as_tensor(preds).cpu()
    if len(images) != len(targets) or len(targets) != len(preds):
        raise ValueError("show_most_confused: images, targets and preds must have the same length N.")
    k = len(class_names)
    cm = torch.zeros(k, k, dtype=torch.long).index_put_((targets, preds), torch.ones_like(targets),
                                                        accumulate=True)
    pairs = most_confused_pairs(cm, top_pairs)
    if not pairs:
        raise ValueError("show_most_confused: there are no mistakes to show.")
    fig = Figure(figsize=(1.15 * per_pair + 1.6, 1.25 * len(pairs) + 0.4), layout="constrained")
    axes = fig.subplots(len(pairs), per_pair + 1, squeeze=False)
    for row, (t, p, count) in enumerate(pairs):
        idx = ((targets == t) & (preds == p)).nonzero().flatten()[:per_pair]
        for ax in axes[row]:
            ax.set_axis_off()
        axes[row, 0].text(0.95, 0.5, f"true {class_names[t]}\n-> {class_names[p]}\n({count}x)",
                          ha="right", va="center", fontsize=8, transform=axes[row, 0].transAxes)
        for ax, i in zip(axes[row, 1:], idx.tolist()):
            ax.imshow(_rgb(images[i], mean, std), interpolation="nearest")
    fig.suptitle("most frequent mistakes (rows: true -> predicted, count)", fontsize=10)
    return fig
