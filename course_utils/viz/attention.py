"""Attention weights as heat maps (lesson 07, B1 and B5).

    fig = show_attention(weights, tokens)                  # every layer x head
    fig = show_attention(weights, tokens, layer=1, head=3)  # one head, large
    attention_explorer(weights, tokens)                     # widget: pick layer and head
                                                            # (a Figure when COURSE_STATIC_WIDGETS=1)

``weights`` (a tensor or array, one sequence, no batch dim) may be
  - [L, nh, T, T]  layers x heads (e.g. ``w[0]`` of our encoder's ``[B, L, nh, T, T]``),
  - [nh, T, T]     the heads of one layer,
  - [T, T]         one head.
Row i = query token i (the token that is looking); column j = key token j (the
token looked at). Each row sums to 1 (a softmax over keys). Colour: white = 0,
dark blue = the largest weight shown; all panels share that scale, and the
colour bar gives the numbers. Drawn with matplotlib only: no JavaScript.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

_CMAP = "Blues"
_MAX_LABELS = 40  # above this many tokens, axis labels would overlap: leave them out


def _as_4d(weights) -> np.ndarray:
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    w = np.asarray(weights, dtype=float)
    if w.ndim == 5:
        raise ValueError(f"got a batch of attention weights {w.shape} ([B, L, nh, T, T]); "
                         "pass one sequence, e.g. weights[0]")
    if w.ndim not in (2, 3, 4):
        raise ValueError(f"weights must be [L, nh, T, T], [nh, T, T] or [T, T]; got shape {w.shape}")
    if w.shape[-1] != w.shape[-2]:
        raise ValueError(f"self-attention weights are square in the last two dims (queries x keys); "
                         f"got shape {w.shape}")
    return w.reshape((1,) * (4 - w.ndim) + w.shape)  # -> [L, nh, T, T]


def _check_tokens(tokens, T: int) -> list[str]:
    tokens = [str(t) for t in tokens]
    if len(tokens) != T:
        raise ValueError(f"got {len(tokens)} token labels for weights over T={T} positions; pass one "
                         "label per position (including [CLS]/[SEP]/[PAD] if they are in the weights)")
    return tokens


def _label(ax, tokens, left: bool, bottom: bool) -> None:
    T = len(tokens)
    if T > _MAX_LABELS:
        return
    small = 8 if T <= 16 else 6
    ax.set_xticks(range(T))
    ax.set_yticks(range(T))
    ax.set_xticklabels(tokens if bottom else [], rotation=90, fontsize=small)
    ax.set_yticklabels(tokens if left else [], fontsize=small)
    if not bottom:
        ax.tick_params(axis="x", length=0)
    if not left:
        ax.tick_params(axis="y", length=0)


def show_attention(weights, tokens, layer: int | None = None, head: int | None = None,
                   ax=None, title: str | None = None) -> Figure:
    """Draw attention weights as heat maps with token labels; returns the Figure.

    ``layer``/``head`` pick a panel: both given (or 2-D input) -> one large map;
    ``layer`` only -> that layer's heads in a row; neither -> a layers x heads
    grid. ``ax`` (only for a single map) draws into an existing Axes.
    """
    w = _as_4d(weights)
    L, nh, T, _ = w.shape
    tokens = _check_tokens(tokens, T)
    if layer is not None and not -L <= layer < L:
        raise ValueError(f"layer={layer} but the weights have {L} layer(s): use 0..{L - 1}")
    if head is not None and not -nh <= head < nh:
        raise ValueError(f"head={head} but the weights have {nh} head(s): use 0..{nh - 1}")
    if L == 1 and layer is None:
        layer = 0
    if nh == 1 and head is None:
        head = 0
    if head is not None and layer is None:
        raise ValueError("head= given without layer=: say which layer, e.g. layer=0, head=2")
    rows = range(L) if layer is None else [layer]
    cols = range(nh) if head is None else [head]
    single = len(rows) == 1 and len(cols) == 1
    if ax is not None and not single:
        raise ValueError("ax= only works for one heat map: also pass layer= and head=")
    shown = w[np.ix_(list(rows), list(cols))]  # [rows, cols, T, T]
    vmax = float(shown.max()) or 1.0

    if single:
        fig = ax.figure if ax is not None else Figure(figsize=(1.6 + 0.32 * T, 1.2 + 0.3 * T),
                                                      layout="constrained")
        ax = ax if ax is not None else fig.add_subplot()
        im = ax.imshow(shown[0, 0], cmap=_CMAP, vmin=0.0, vmax=vmax)
        _label(ax, tokens, True, True)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query (attending)")
        name = f"layer {rows[0] % L}, head {cols[0] % nh}" if (L > 1 or nh > 1) else "attention"
        ax.set_title(title or name, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8, label="weight")
        return fig

    # Panels to draw, as (layer, head) on a grid: layers x heads, or one layer's
    # heads wrapped into rows of at most 6.
    if layer is None:
        grid = [[(l, h) for h in cols] for l in rows]
    else:
        hs_ = list(cols)
        grid = [[(layer, h) for h in hs_[i:i + 6]] for i in range(0, len(hs_), 6)]
    n_rows, n_cols = len(grid), max(len(r) for r in grid)
    panel = min(2.6, max(1.3, 0.12 * T + 0.6), 16.0 / n_cols)  # keep the figure <= ~17 in wide
    fig = Figure(figsize=(panel * n_cols + 1.2, panel * n_rows + 0.8), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(grid):
        for j in range(n_cols):
            a = axes[i][j]
            if j >= len(row):
                a.set_axis_off()
                continue
            l, h = row[j]
            im = a.imshow(w[l, h], cmap=_CMAP, vmin=0.0, vmax=vmax)
            last_row = i == n_rows - 1 or (i == n_rows - 2 and j >= len(grid[-1]))
            _label(a, tokens, left=(j == 0), bottom=last_row)
            if layer is None:
                if i == 0:
                    a.set_title(f"head {h}", fontsize=9)
                if j == 0:
                    a.set_ylabel(f"layer {l}", fontsize=9)
            else:
                a.set_title(f"layer {l}, head {h}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
    fig.suptitle(title or "attention weights (rows: queries, columns: keys)", fontsize=10)
    return fig


def attention_explorer(weights, tokens):
    """An ipywidgets panel: pick a layer and a head (or 'all heads') and see the heat map.

    Same ``weights``/``tokens`` as :func:`show_attention`. Returns a ``VBox``;
    display it (it is the last expression of a cell). On a static page
    (``COURSE_STATIC_WIDGETS=1``, see :mod:`course_utils.static`) it returns a
    Figure instead: every head of the first layer (the dropdown's "all heads").
    """
    from course_utils.static import interactive_note, static_widgets

    w = _as_4d(weights)
    L, nh, T, _ = w.shape
    tokens = _check_tokens(tokens, T)
    if static_widgets():
        interactive_note("the attention explorer")
        return show_attention(w, tokens, layer=0, title=f"layer 0 of {L}, all {nh} heads "
                              "(the explorer picks any layer and head)")
    import ipywidgets as widgets
    from IPython.display import display
    layer = widgets.IntSlider(value=0, min=0, max=L - 1, description="layer",
                              disabled=L == 1, continuous_update=False)
    head = widgets.Dropdown(options=[("all heads", -1)] + [(f"head {h}", h) for h in range(nh)],
                            value=0, description="head")
    out = widgets.Output()

    def redraw(*_):
        h = None if head.value == -1 else head.value
        fig = show_attention(w, tokens, layer=layer.value, head=h)
        out.clear_output(wait=True)
        with out:
            display(fig)

    layer.observe(redraw, names="value")
    head.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([layer, head]), out])
    return box
