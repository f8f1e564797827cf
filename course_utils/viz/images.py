"""Look at a batch of images (introduced in lesson 04, used again in lesson 05).

    fig = show_batch(x, y, class_names=classes, mean=MEAN, std=STD)   # x: [N, C, H, W]

A batch straight out of a DataLoader is usually normalised (``(x - mean) / std``
per channel), so its values are not in ``[0, 1]`` and look wrong when drawn.
Pass the same ``mean``/``std`` you normalised with and the grid shows the
original pixels. Channels-first tensors are moved to channels-last for
matplotlib (``[C, H, W] -> [H, W, C]``): a classic source of "my image looks
like noise" bugs is drawing a ``[C, H, W]`` array as if it were ``[H, W, C]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["show_batch"]


def _to_tensor(images) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        return torch.from_numpy(images)
    if isinstance(images, (list, tuple)) and images and all(isinstance(i, torch.Tensor) for i in images):
        if len({tuple(i.shape) for i in images}) != 1:
            raise ValueError("show_batch: the images in the list have different shapes; resize "
                             "them to one size (e.g. torchvision.transforms.v2.Resize).")
        return torch.stack(list(images))
    if isinstance(images, torch.Tensor):
        return images
    raise ValueError(f"show_batch: got a {type(images).__name__}; pass a tensor of shape "
                     "[N, C, H, W] or [N, H, W] (or a NumPy array, or a list of [C, H, W] tensors).")


def _channel_values(name: str, values, channels: int) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels:
        raise ValueError(f"show_batch: {name} has {t.numel()} values but the images have "
                         f"{channels} channels; pass one value per channel.")
    return t.reshape(1, channels, 1, 1)                                   # [1, C, 1, 1]


def show_batch(images, labels=None, class_names=None, nrow: int = 8, mean=None, std=None,
               max_images: int = 64, title: str | None = None) -> Figure:
    """Draw a grid of images with their labels as titles.

    Args:
        images: ``[N, C, H, W]`` with ``C`` in {1, 3}, or ``[N, H, W]`` (grey);
            float (shown in ``[0, 1]``) or uint8 (``0..255``).
        labels: ``N`` ints (a tensor or a list), optional.
        class_names: names indexed by label, e.g. ``["airplane", ...]``.
        nrow: images per row of the grid.
        mean, std: the per-channel values the images were normalised with;
            the grid shows ``x * std + mean``.
        max_images: only the first ``max_images`` are drawn.
        title: a title above the grid.

    Float images that still fall outside ``[0, 1]`` are rescaled (min..max to
    0..1) and the title says so, instead of being silently clipped.
    """
    x = _to_tensor(images).detach().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)                                                # [N, H, W] -> [N, 1, H, W]
    if x.dim() != 4:
        raise ValueError(f"show_batch: got shape {tuple(x.shape)}; pass [N, C, H, W] or [N, H, W] "
                         "(for one image use x.unsqueeze(0)).")
    if x.shape[1] not in (1, 3):
        hint = " It looks channels-last: use x.permute(0, 3, 1, 2)." if x.shape[-1] in (1, 3) else ""
        raise ValueError(f"show_batch: got {x.shape[1]} channels in shape {tuple(x.shape)}; "
                         f"expected 1 or 3 in dim 1 ([N, C, H, W]).{hint}")
    if x.shape[0] == 0:
        raise ValueError("show_batch: the batch is empty.")
    if nrow < 1:
        raise ValueError(f"show_batch: nrow must be >= 1, got {nrow}.")
    n_all = x.shape[0]
    if labels is not None:
        labels = [int(v) for v in (labels.tolist() if isinstance(labels, (torch.Tensor, np.ndarray))
                                   else labels)]
        if len(labels) != n_all:
            raise ValueError(f"show_batch: {len(labels)} labels for {n_all} images; pass one per image.")
        if class_names is not None:
            bad = [v for v in labels if not 0 <= v < len(class_names)]
            if bad:
                raise ValueError(f"show_batch: label {bad[0]} has no entry in class_names "
                                 f"(length {len(class_names)}).")
    x = x[:max_images]
    n, channels = x.shape[0], x.shape[1]

    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif not x.is_floating_point():
        raise ValueError(f"show_batch: dtype {x.dtype} is not an image type; pass float or uint8.")
    x = x.float()
    if (mean is None) != (std is None):
        raise ValueError("show_batch: pass both mean and std (the values used to normalise), or neither.")
    if mean is not None:
        x = x * _channel_values("std", std, channels) + _channel_values("mean", mean, channels)
    note = ""
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        x = (x - lo) / max(hi - lo, 1e-12)
        note = f" (values {lo:.2g}..{hi:.2g} rescaled to 0..1)"
    x = x.clamp(0, 1)

    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.4 * cols, 1.55 * rows + (0.4 if title or note else 0)),
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        img = x[k].permute(1, 2, 0)                                       # [C, H, W] -> [H, W, C]
        if channels == 1:
            ax.imshow(img[..., 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img.numpy(), interpolation="nearest")
        # a thin grey frame: a tile with white pixels at its edge stays visible on the white page
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor("0.6")
            spine.set_linewidth(0.8)
        if labels is not None:
            name = class_names[labels[k]] if class_names is not None else str(labels[k])
            ax.set_title(name, fontsize=9)
    if title or note or n < n_all:
        more = f" (first {n} of {n_all})" if n < n_all else ""
        fig.suptitle(f"{title or ''}{more}{note}".strip(), fontsize=10)
    return fig
