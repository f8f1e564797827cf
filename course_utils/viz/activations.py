"""Forward hooks that watch every layer's activations (lesson 03, M6 and M9).

    with watch_activations(model) as watch:    # hooks on every leaf module
        model(x)                                # one (or several) forward passes
    watch.report()                              # [Flag(layer, kind, reason), ...]
    watch.figure()                              # one histogram per layer, problems in red

Each hook receives ``(module, inputs, output)`` after the module ran; it keeps
running statistics of the output (mean, std, fraction of exact zeros, max
|value|), which units ever fired, the gain std(out)/std(in) and a random
sample of values for the histogram. Nothing is kept on the autograd graph.
Hooks are removed when the ``with`` block ends, also when it ends by an
exception (or call ``watch.remove()`` when you did not use ``with``).

Flags (thresholds are arguments):
  * ``dead``: more than ``dead_fraction`` of the outputs are exactly 0, or more
    than half of the units never fired (never non-zero) across everything seen.
  * ``exploding``: the layer multiplies the std by more than ``gain_limit``
    and its output std is above 1 (a norm layer lifting a tiny std to 1 is
    fine), or some |output| exceeds ``max_abs``, or an output is inf/NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

FLAG_COLOR = "#c62828"
OK_COLOR = "#1f77b4"


@dataclass
class Flag:
    layer: str
    kind: str      # "dead" or "exploding"
    reason: str


@dataclass
class LayerStats:
    """Running statistics of one layer's outputs over every call seen."""
    name: str
    type_name: str
    calls: int = 0
    count: int = 0           # output elements seen
    total: float = 0.0
    total_sq: float = 0.0
    zeros: int = 0
    max_abs: float = 0.0
    nonfinite: int = 0
    gain: float | None = None            # largest std(out)/std(in) seen
    in_std: float | None = None
    ever_active: torch.Tensor | None = None   # (units,) bool: unit was non-zero at least once
    samples: list = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)

    @property
    def std(self) -> float:
        var = self.total_sq / max(self.count, 1) - self.mean ** 2
        return max(var, 0.0) ** 0.5

    @property
    def frac_zero(self) -> float:
        return self.zeros / max(self.count, 1)

    @property
    def units(self) -> int:
        return 0 if self.ever_active is None else self.ever_active.numel()

    @property
    def dead_units(self) -> int:
        return 0 if self.ever_active is None else int((~self.ever_active).sum())

    def values(self) -> torch.Tensor:
        """The sampled output values (1-D, float32, on the CPU)."""
        return torch.cat(self.samples) if self.samples else torch.empty(0)


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            if isinstance(item, torch.Tensor):
                return item
    return None


def _unit_dim(t: torch.Tensor) -> int:
    # Units are features: (B, F) -> dim 1, (N, C, H, W) -> channels C, (B, T, C) -> C.
    return t.ndim - 1 if t.ndim == 3 else 1


class ActivationWatch:
    """Forward hooks collecting :class:`LayerStats`; see :func:`watch_activations`."""

    def __init__(self, model: nn.Module, types=None, names=None, sample_size: int = 4000,
                 dead_fraction: float = 0.9, gain_limit: float = 10.0, max_abs: float = 1e3):
        if not isinstance(model, nn.Module):
            raise ValueError(f"watch_activations expects an nn.Module, got a {type(model).__name__}; "
                             "pass the model, e.g. watch_activations(model).")
        self.model = model
        self.sample_size = sample_size
        self.dead_fraction, self.gain_limit, self.max_abs = dead_fraction, gain_limit, max_abs
        self.stats: dict[str, LayerStats] = {}   # filled in call order
        self._handles = []
        chosen = []
        for name, module in model.named_modules():
            if names is not None:
                keep = name in names
            elif types is not None:
                keep = isinstance(module, types)
            else:
                keep = len(module._modules) == 0  # a leaf: does the work itself
            if keep:
                chosen.append((name or type(module).__name__, module))
        if names is not None:
            missing = set(names) - {n for n, _ in chosen}
            if missing:
                raise ValueError(f"no submodule named {sorted(missing)}; valid names are "
                                 f"{[n for n, _ in model.named_modules() if n][:20]}")
        if not chosen:
            raise ValueError("no module matched; pass types=(nn.ReLU, nn.Linear) or names=[...] "
                             "that exist in the model")
        for name, module in chosen:
            self._handles.append(module.register_forward_hook(self._make_hook(name)))

    def _make_hook(self, name: str):
        def hook(module, inputs, output):
            out = _first_tensor(output)
            if out is None or not out.is_floating_point() or out.numel() == 0:
                return
            with torch.no_grad():
                st = self.stats.get(name)
                if st is None:
                    st = self.stats[name] = LayerStats(name, type(module).__name__)
                o = out.detach()
                finite = torch.isfinite(o)
                st.nonfinite += int((~finite).sum())
                of = torch.where(finite, o, torch.zeros_like(o)).double()
                st.calls += 1
                st.count += o.numel()
                st.total += float(of.sum())
                st.total_sq += float((of * of).sum())
                st.zeros += int((o == 0).sum())
                st.max_abs = max(st.max_abs, float(of.abs().max()))
                if o.ndim >= 2:
                    d = _unit_dim(o)
                    fired = (o != 0).transpose(0, d).reshape(o.shape[d], -1).any(dim=1).cpu()
                    if st.ever_active is None or st.ever_active.numel() != fired.numel():
                        st.ever_active = fired
                    else:
                        st.ever_active |= fired
                x = _first_tensor(inputs)
                if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 1:
                    in_std = float(x.detach().double().std())
                    out_std = float(of.std()) if of.numel() > 1 else 0.0
                    if in_std > 0 and torch.isfinite(torch.tensor(in_std)):
                        g = out_std / in_std
                        if st.gain is None or g > st.gain:
                            st.gain, st.in_std = g, in_std
                room = self.sample_size - sum(s.numel() for s in st.samples)
                if room > 0:
                    flat = of.reshape(-1)
                    if flat.numel() > room:
                        flat = flat[torch.randperm(flat.numel(), device=flat.device)[:room]]
                    st.samples.append(flat.float().cpu())
        return hook

    # -- cleanup ----------------------------------------------------------------
    def remove(self) -> None:
        """Remove every hook this watch registered (safe to call twice)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False  # never swallow the exception

    # -- diagnosis --------------------------------------------------------------
    def _flags_for(self, st: LayerStats) -> list[Flag]:
        flags = []
        if st.frac_zero > self.dead_fraction:
            flags.append(Flag(st.name, "dead", f"{st.frac_zero:.0%} of outputs are exactly 0"))
        elif st.units and st.dead_units > st.units / 2:
            flags.append(Flag(st.name, "dead", f"{st.dead_units} of {st.units} units never fired"))
        if st.nonfinite:
            flags.append(Flag(st.name, "exploding", f"{st.nonfinite} outputs are inf/NaN"))
        elif st.gain is not None and st.gain > self.gain_limit and st.gain * st.in_std > 1:
            flags.append(Flag(st.name, "exploding",
                              f"std grows {st.gain:.0f}x ({st.in_std:.2g} -> {st.gain * st.in_std:.2g})"))
        elif st.max_abs > self.max_abs:
            flags.append(Flag(st.name, "exploding", f"max |value| {st.max_abs:.3g} > {self.max_abs:g}"))
        return flags

    def report(self) -> list[Flag]:
        """Every flag raised, in the order the layers ran (empty list: all looks healthy)."""
        return [f for st in self.stats.values() for f in self._flags_for(st)]

    def table(self) -> str:
        """One line of statistics per layer, as text."""
        lines = [f"{'layer':<22}{'type':<12}{'mean':>9}{'std':>9}{'zeros':>7}{'max|x|':>9}"
                 f"{'dead units':>12}{'gain':>7}"]
        for st in self.stats.values():
            dead = f"{st.dead_units}/{st.units}" if st.units else "-"
            gain = f"{st.gain:.2f}" if st.gain is not None else "-"
            lines.append(f"{st.name[:21]:<22}{st.type_name[:11]:<12}{st.mean:>9.3g}{st.std:>9.3g}"
                         f"{st.frac_zero:>7.0%}{st.max_abs:>9.3g}{dead:>12}{gain:>7}")
        return "\n".join(lines)

    def figure(self, max_panels: int = 24, cols: int = 4, bins: int = 40):
        """One histogram per watched layer (call order); flagged layers in red with the reason."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogLocator, NullLocator

        if not self.stats:
            raise ValueError("no activations recorded yet: run a forward pass inside the "
                             "`with watch_activations(model) as watch:` block first")
        layers = list(self.stats.values())[:max_panels]
        cols = min(cols, len(layers))
        rows = -(-len(layers) // cols)
        # a fixed layout and few ticks: constrained layout over many log axes is slow to draw
        fig = Figure(figsize=(3.3 * cols, 2.5 * rows + 0.4))
        axes = fig.subplots(rows, cols, squeeze=False)
        fig.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=1 - 0.75 / (2.5 * rows + 0.4),
                            hspace=0.45, wspace=0.25)
        for ax in axes.flat[len(layers):]:
            ax.set_visible(False)
        # One x-axis for every panel, so a layer whose values jump by 1000x looks it. The axis
        # is sign(x)·log10(1 + |x|), labelled in x itself: 0, ±1, ±10, ±100 ... all fit.
        import numpy as np

        def squash(v):
            return np.sign(v) * np.log10(1 + np.abs(v))

        every = [squash(st.values().numpy()) for st in layers]
        lo = min([float(v.min()) for v in every if v.size] + [-0.1])
        hi = max([float(v.max()) for v in every if v.size] + [0.1])
        edges = np.linspace(lo, hi, bins + 1)
        span = max(abs(lo), abs(hi))
        tick_values = [0] + [s * 10.0 ** k for k in range(0, int(span) + 1) for s in (-1, 1)]
        ticks = sorted((squash(v), v) for v in tick_values if lo <= squash(v) <= hi)
        for ax, st, values in zip(axes.flat, layers, every):
            flags = self._flags_for(st)
            color = FLAG_COLOR if flags else OK_COLOR
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            if values.size:
                counts, _, _ = ax.hist(values, bins=edges, color=color, alpha=0.8)
                # headroom on the log axis so the text box does not hide the bars
                ax.set_ylim(0.5, max(counts.max(), 1) * (300 if flags else 40))
            verdict = "".join(f"{f.kind.upper()} " for f in flags)
            ax.set_title(f"{verdict}{st.name} ({st.type_name})", fontsize=9,
                         color=FLAG_COLOR if flags else "black")
            text = f"mean {st.mean:.2g}  std {st.std:.2g}\nzeros {st.frac_zero:.0%}  max|x| {st.max_abs:.3g}"
            if flags:
                text += "\n" + "\n".join(f"{f.kind.upper()}: {f.reason}" for f in flags)
                for spine in ax.spines.values():
                    spine.set_color(FLAG_COLOR)
                    spine.set_linewidth(2)
            ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=7,
                    color=FLAG_COLOR if flags else "black",
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
            ax.yaxis.set_major_locator(LogLocator(numticks=4))
            ax.yaxis.set_minor_locator(NullLocator())
            if len(ticks) > 7:                      # keep every other decade when they crowd
                ticks = [tk for k, tk in enumerate(ticks) if k % 2 == 0 or tk[1] == 0]
            ax.set_xticks([tk[0] for tk in ticks], [f"{tk[1]:g}" for tk in ticks])
            ax.tick_params(labelsize=7)
        shown = "" if len(self.stats) <= max_panels else f" (first {max_panels} of {len(self.stats)})"
        n_flags = len(self.report())
        fig.suptitle(f"activations per layer{shown}: {n_flags} problem(s) flagged in red "
                     "(y: count, log scale; x: the value, one shared log-like axis for all panels)",
                     fontsize=10)
        return fig


def watch_activations(model: nn.Module, types=None, names=None, sample_size: int = 4000,
                      dead_fraction: float = 0.9, gain_limit: float = 10.0,
                      max_abs: float = 1e3) -> ActivationWatch:
    """Register forward hooks that record activation statistics; use it in a ``with`` block.

    Args:
        model: any ``nn.Module``.
        types: watch only modules of these classes, e.g. ``(nn.ReLU, nn.Linear)``.
            Default: every leaf module (one without children).
        names: or watch exactly these submodules, by dotted name (``"layers.3"``).
        sample_size: values kept per layer for the histogram.
        dead_fraction, gain_limit, max_abs: flag thresholds (see the module docstring).
    """
    return ActivationWatch(model, types=types, names=names, sample_size=sample_size,
                           dead_fraction=dead_fraction, gain_limit=gain_limit, max_abs=max_abs)
