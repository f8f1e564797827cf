"""Plumbing for lesson 10, the debugging clinic: small synthetic data sets and the triage chart.

Nothing here is real data and nothing pretends to be: every set is generated
from a seed, small enough that a whole training run takes well under a second.
The buggy runs and their fixes live in the lesson, where the learner reads them;
this module only makes the data and draws the chart of symptoms and tools.

    x, y = blobs(512, classes=4, dim=8, seed=0)         # (N, 8) float, (N,) long
    img, y = tinted_images(256, size=12, seed=0)        # (N, H, W, 3) channel-last, (N,) long
    fig = curves({"loss": losses}, lines={"ln C": 1.39})  # training curves with reference lines
    fig = symptom_chart(cases)                          # symptom -> first tool to reach for
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure
from torch.utils.data import Dataset

COLOUR_NAMES = ("red", "green", "blue")


def blobs(n: int, classes: int = 4, dim: int = 8, spread: float = 1.0, seed: int = 0):
    """``n`` points around ``classes`` random centres in ``dim`` dimensions, balanced.

    Returns ``x`` (N, dim) float32 and ``y`` (N,) int64, shuffled. Centres sit at
    distance ~3 from each other, so a small MLP separates them almost perfectly.
    """
    if n < classes or classes < 2 or dim < 1:
        raise ValueError(f"blobs: need n >= classes >= 2 and dim >= 1, got n={n}, "
                         f"classes={classes}, dim={dim}")
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 2.2                  # (classes, dim)
    y = torch.arange(n) % classes                                          # balanced labels
    y = y[torch.randperm(n, generator=g)]
    x = centres[y] + spread * torch.randn(n, dim, generator=g)             # (N, dim)
    return x, y


def rings(n: int, seed: int = 0):
    """Two classes on concentric rings in 2-D (not linearly separable): ``x`` (N, 2), ``y`` (N,)."""
    if n < 2:
        raise ValueError(f"rings: need n >= 2, got {n}")
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    y = y[torch.randperm(n, generator=g)]
    angle = torch.rand(n, generator=g) * 2 * math.pi
    radius = 1.0 + 1.2 * y.float() + 0.15 * torch.randn(n, generator=g)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)   # (N, 2)
    return x, y


def tinted_images(n: int, size: int = 12, tint: float = 0.3, seed: int = 0):
    """Noisy images tinted red, green or blue, stored channel-last like PIL/NumPy images.

    Returns ``images`` (N, H, W, 3) float32 in [0, 1] (channel-last, as a decoder
    hands them over) and ``labels`` (N,) int64: 0 red, 1 green, 2 blue
    (:data:`COLOUR_NAMES`). Each image is a smooth grey texture plus ``tint`` on
    its class's channel, so the class is visible by eye.
    """
    if n < 1 or size < 2:
        raise ValueError(f"tinted_images: need n >= 1 and size >= 2, got n={n}, size={size}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    labels = labels[torch.randperm(n, generator=g)]
    coarse = torch.rand(n, 1, 4, 4, generator=g)                           # (N, 1, 4, 4)
    texture = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                              align_corners=False)         # (N, 1, H, W)
    base = 0.25 + 0.4 * texture.expand(n, 3, size, size)                   # (N, 3, H, W) grey
    noise = 0.08 * torch.randn(n, 3, size, size, generator=g)
    tints = torch.nn.functional.one_hot(labels, 3).float() * tint         # (N, 3)
    images = (base + noise + tints[:, :, None, None]).clamp(0, 1)          # (N, C, H, W)
    return images.permute(0, 2, 3, 1).contiguous(), labels                 # (N, H, W, C)


class AugmentedImages(Dataset):
    """Images with a random flip and vertical shift per read, drawn from a generator it holds.

    ``images`` (N, C, H, W), ``labels`` (N,). Item ``i`` is ``(image, label, params)``
    with ``params`` = tensor([flipped, shift]) so a lesson can see which augmentation
    each sample got. The generator is seeded once, in ``__init__``: that makes a
    single-process run reproducible, and it is the bug of lesson 10's case 12 when
    DataLoader workers each receive a copy of the same generator state.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, seed: int = 0, max_shift: int = 2):
        if images.dim() != 4 or len(images) != len(labels):
            raise ValueError(f"AugmentedImages: need images (N, C, H, W) and labels (N,), got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        self.images, self.labels, self.max_shift = images, labels, max_shift
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        flip = bool(torch.rand((), generator=self.generator) < 0.5)
        shift = int(torch.randint(-self.max_shift, self.max_shift + 1, (), generator=self.generator))
        x = self.images[i]                                                 # (C, H, W)
        if flip:
            x = x.flip(-1)                                                 # mirror left-right
        x = x.roll(shift, dims=-2)                                         # shift up/down
        return x, self.labels[i], torch.tensor([float(flip), float(shift)])


def curves(series: dict, title: str = "", lines: dict | None = None, logy: bool = False,
           separate: bool = False, xlabel: str = "step") -> Figure:
    """Plot each named sequence of numbers against its index; return the Figure.

    ``lines``: ``{label: y}`` horizontal reference lines (e.g. ``{"ln 4": 1.386}``).
    ``separate``: one panel per series (for quantities on different scales).
    Non-finite values (inf, NaN) are left out of the line and marked with a red x
    at the top of the panel, so an exploding run stays readable.
    """
    if not series:
        raise ValueError("curves: give at least one series, e.g. curves({'loss': losses})")
    names = list(series)
    panels = len(names) if separate else 1
    fig = Figure(figsize=(4.6 * panels, 3.1), layout="constrained")
    axes = [fig.add_subplot(1, panels, k + 1) for k in range(panels)]
    for k, name in enumerate(names):
        ax = axes[k if separate else 0]
        values = [float(v) for v in series[name]]
        finite = [v if math.isfinite(v) else float("nan") for v in values]
        ax.plot(range(len(values)), finite, lw=1.3, label=name)
        bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            top = max((v for v in values if math.isfinite(v)), default=1.0)
            ax.plot(bad, [top] * len(bad), "x", color="#c62828", ms=4, label=f"{name}: non-finite")
        if separate:
            ax.set_title(name, fontsize=10)
    for ax in axes:
        for label, y in (lines or {}).items():
            ax.axhline(y, color="black", ls="--", lw=1, label=label)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if len(names) > 1 and not separate or lines:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def symptom_chart(cases, title: str = "symptom -> first tool to reach for") -> Figure:
    """Draw each case as a row: the symptom seen (left) -> the first tool used (right).

    ``cases``: a sequence of dicts with keys ``id`` (e.g. ``"G2"``), ``name``,
    ``symptom`` and ``tool`` (short strings). Rows with the same tool share a
    colour, so the chart reads as "which tool answers which kind of symptom".
    Returns a matplotlib Figure.
    """
    cases = list(cases)
    if not cases:
        raise ValueError("symptom_chart: no cases given")
    for k, case in enumerate(cases):
        missing = {"id", "name", "symptom", "tool"} - set(case)
        if missing:
            raise ValueError(f"symptom_chart: case {k} lacks {sorted(missing)}")
    tools = list(dict.fromkeys(c["tool"] for c in cases))
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colour = {t: cmap((2 * i) % 20 + (i // 10) % 2) for i, t in enumerate(tools)}
    n = len(cases)
    fig = Figure(figsize=(10, 0.42 * n + 1.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(n - 0.4, -1.0)                                 # first case on top
    ax.axis("off")
    for x, text in ((0.0, "case"), (2.6, "symptom you see"), (6.3, "first tool to reach for")):
        ax.text(x, -0.75, text, fontsize=9, weight="bold", va="center")
    for row, case in enumerate(cases):
        c = colour[case["tool"]]
        ax.text(0.0, row, f"{case['id']} {case['name']}", fontsize=8.5, va="center")
        ax.text(2.6, row, case["symptom"], fontsize=8.5, va="center",
                bbox=dict(boxstyle="round,pad=0.25", fc="#f4f4f4", ec="#999999"))
        ax.annotate("", xy=(6.25, row), xytext=(5.65, row),
                    arrowprops=dict(arrowstyle="->", color=c, lw=1.6))
        ax.text(6.3, row, case["tool"], fontsize=8.5, va="center", color="black",
                bbox=dict(boxstyle="round,pad=0.25", fc=c, ec=c))
    fig.suptitle(title, fontsize=11)
    return fig
