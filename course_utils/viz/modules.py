"""The module tree with every parameter and buffer (lesson 03, M4 and M11).

    summary = show_module(model)   # renders as a collapsible tree in Jupyter
    print(summary)                 # the same tree as indented text
    summary.total, summary.trainable, summary.frozen, summary.buffers
    summary.rows                   # one ModuleRow per submodule, in registration order
    summary.to_figure(depth=1)     # bar chart: where the parameters live

What it reads is exactly what ``nn.Module.__setattr__`` filled in: each
module's own ``_parameters``, ``_buffers`` and ``_modules`` dicts, walked in
registration order. A subtree's subtotal counts the parameters first met in
that subtree, so a parameter shared between two places (tied weights) is
counted once, where it appears first; the other place says ``shared with``.
Counts are numbers of elements (``numel``), buffers are counted separately
and never as parameters.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import torch
from torch import nn

# Colour legend (text badges and the figure): trainable green, frozen blue, buffer grey.
TRAINABLE_COLOR = "#2e7d32"
FROZEN_COLOR = "#1565c0"
BUFFER_COLOR = "#757575"


@dataclass
class TensorRow:
    """One parameter or buffer owned directly by a module."""
    name: str                 # attribute name inside its module, e.g. "weight"
    shape: tuple | None       # None for a lazy (uninitialized) parameter
    numel: int                # elements counted here (0 when shared or uninitialized)
    kind: str                 # "param" or "buffer"
    trainable: bool           # requires_grad (always False for buffers)
    shared_with: str | None = None   # full name where it was counted first


@dataclass
class ModuleRow:
    """One submodule: its own tensors plus subtotals over its whole subtree."""
    path: str                 # dotted name from the root ("" for the root itself)
    depth: int
    type_name: str
    params: list[TensorRow] = field(default_factory=list)
    buffers: list[TensorRow] = field(default_factory=list)
    children: list[str] = field(default_factory=list)   # paths of direct children
    total: int = 0            # parameters in the subtree (each counted once)
    trainable: int = 0
    frozen: int = 0
    buffer_total: int = 0     # buffer elements in the subtree
    shared_module: str | None = None  # this module object already appears at that path

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1] if self.path else "(root)"


def _fmt(n: int) -> str:
    return f"{n:,}"


def _shape(t) -> tuple | None:
    if isinstance(t, nn.parameter.UninitializedTensorMixin):
        return None
    return tuple(t.shape)


class ModuleSummary:
    """What :func:`show_module` returns: the rows plus text, HTML and figure views."""

    def __init__(self, rows: list[ModuleRow], title: str):
        self.rows = rows
        self.title = title
        self._by_path = {r.path: r for r in rows}
        root = rows[0]
        self.total, self.trainable, self.frozen = root.total, root.trainable, root.frozen
        self.buffers = root.buffer_total

    def __getitem__(self, path: str) -> ModuleRow:
        """The row of a submodule by its dotted name, e.g. ``summary["layer1.0.conv1"]``."""
        return self._by_path[path]

    # -- text ----------------------------------------------------------------
    def _header(self) -> str:
        return (f"{self.title}: {_fmt(self.total)} parameters "
                f"(trainable {_fmt(self.trainable)}, frozen {_fmt(self.frozen)}), "
                f"buffers {_fmt(self.buffers)} elements")

    def _subtotal(self, row: ModuleRow) -> str:
        if row.shared_module is not None:
            return f"same module as '{row.shared_module}' (counted there)"
        text = f"{_fmt(row.total)} params" if row.total else "no params"
        if row.frozen and row.trainable:
            text += f" ({_fmt(row.frozen)} frozen)"
        elif row.frozen:
            text += " (all frozen)"
        if row.buffer_total:
            text += f", {_fmt(row.buffer_total)} buffer elems"
        return text

    @staticmethod
    def _tensor_text(t: TensorRow) -> str:
        shape = "uninitialized (lazy)" if t.shape is None else str(t.shape)
        if t.kind == "buffer":
            status = "buffer"
        else:
            status = "trainable" if t.trainable else "FROZEN"
        count = f"shared with {t.shared_with}" if t.shared_with else _fmt(t.numel)
        return f"{t.name:<20} {shape:<18} {count:>12}  {status}"

    def to_text(self, max_depth: int | None = None, tensors: bool = True) -> str:
        """The tree as indented text; deeper modules fold into their ancestor's subtotal."""
        lines = [self._header()]

        def walk(row: ModuleRow, prefix: str, last: bool) -> None:
            if row.depth == 0:
                child_prefix = ""
            else:
                lines.append(f"{prefix}{'└─ ' if last else '├─ '}{row.name}: {row.type_name}"
                             f"  [{self._subtotal(row)}]")
                child_prefix = prefix + ("   " if last else "│  ")
            if max_depth is not None and row.depth >= max_depth:
                return
            kids = [self._by_path[c] for c in row.children]
            if tensors:
                for t in row.params + row.buffers:
                    lines.append(f"{child_prefix}{'│' if kids else ' '}    · {self._tensor_text(t)}")
            for i, kid in enumerate(kids):
                walk(kid, child_prefix, i == len(kids) - 1)

        walk(self.rows[0], "", True)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<ModuleSummary {self._header()}>"

    # -- HTML (nested <details>: collapsible without any JavaScript) -----------
    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, open_depth: int = 1) -> str:
        def badge(text: str, color: str) -> str:
            return (f'<span style="color:{color};border:1px solid {color};border-radius:3px;'
                    f'padding:0 3px;font-size:85%">{html.escape(text)}</span>')

        def tensor_rows(row: ModuleRow) -> str:
            items = row.params + row.buffers
            if not items:
                return ""
            cells = []
            for t in items:
                if t.kind == "buffer":
                    status = badge("buffer", BUFFER_COLOR)
                elif t.trainable:
                    status = badge("trainable", TRAINABLE_COLOR)
                else:
                    status = badge("frozen", FROZEN_COLOR)
                shape = "lazy" if t.shape is None else str(t.shape)
                count = f"shared with <code>{html.escape(t.shared_with)}</code>" if t.shared_with \
                    else _fmt(t.numel)
                td = '<td style="padding:0 8px 0 0">'
                cells.append(f"<tr>{td}<code>{html.escape(t.name)}</code></td>"
                             f"{td}<code>{html.escape(shape)}</code></td>"
                             f'<td style="padding:0 8px 0 0;text-align:right">{count}</td>{td}{status}</td></tr>')
            return ('<table style="margin:2px 0 4px 18px;font-size:90%;border-collapse:collapse">'
                    + "".join(cells) + "</table>")

        def node(row: ModuleRow) -> str:
            name = html.escape(row.name)
            label = (f"<b>{name}</b>: <code>{html.escape(row.type_name)}</code> "
                     f'<span style="color:#555">{html.escape(self._subtotal(row))}</span>')
            if row.frozen and not row.trainable and row.total:
                label += " " + badge("frozen", FROZEN_COLOR)
            body = tensor_rows(row) + "".join(node(self._by_path[c]) for c in row.children)
            if not body:
                # no triangle to click: indent by its width so names line up
                return f'<div style="margin-left:18px;padding:1px 0 1px 14px">{label}</div>'
            is_open = " open" if row.depth < open_depth else ""
            return (f'<details{is_open} style="margin-left:{0 if row.depth == 0 else 18}px">'
                    f"<summary>{label}</summary>{body}</details>")

        legend = (f'{badge("trainable", TRAINABLE_COLOR)} {badge("frozen", FROZEN_COLOR)} '
                  f'{badge("buffer", BUFFER_COLOR)} &nbsp;click a row to open or fold it')
        return (f'<div style="font-family:sans-serif;font-size:13px">'
                f"<div><b>{html.escape(self._header())}</b></div><div>{legend}</div>"
                f"{node(self.rows[0])}</div>")

    # -- figure -----------------------------------------------------------------
    def to_figure(self, depth: int = 1, ax=None):
        """Horizontal bars: parameters per submodule at ``depth`` (trainable vs frozen)."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter

        rows = [r for r in self.rows if r.depth == depth and r.shared_module is None]
        if not rows:
            raise ValueError(f"no submodules at depth {depth}; try depth=1 (the model's children)")
        if ax is None:
            fig = Figure(figsize=(7.5, 0.9 + 0.32 * len(rows)), layout="constrained")
            ax = fig.add_subplot(1, 1, 1)
        else:
            fig = ax.figure
        labels = [f"{r.path} ({r.type_name})" for r in rows]
        y = list(range(len(rows)))[::-1]
        ax.barh(y, [r.trainable for r in rows], color=TRAINABLE_COLOR, label="trainable")
        if any(r.frozen for r in rows):   # no empty "frozen" entry in the legend when nothing is frozen
            ax.barh(y, [r.frozen for r in rows], left=[r.trainable for r in rows],
                    color=FROZEN_COLOR, label="frozen")
        top = max([r.total for r in rows] + [1])
        for yi, r in zip(y, rows):
            ax.text(r.total + top * 0.01, yi, f"{_fmt(r.total)} ({r.total / max(self.total, 1):.1%})",
                    va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlim(0, top * 1.3)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel("parameters (elements)")
        ax.set_title(f"{self.title}: {_fmt(self.total)} parameters by submodule (depth {depth})",
                     fontsize=10)
        ax.legend(loc="lower right", fontsize=8,
                  title=None if any(r.frozen for r in rows) else "nothing frozen", title_fontsize=8)
        return fig


def show_module(model: nn.Module) -> ModuleSummary:
    """Summarise ``model``'s module tree: own parameters/buffers per module, subtotals, totals.

    Works on any ``nn.Module`` (Sequential, torchvision models, ``nn.Transformer``,
    tied weights, frozen parts, lazy modules). Returns a :class:`ModuleSummary`.
    """
    if not isinstance(model, nn.Module):
        what = f"a tensor of shape {tuple(model.shape)}" if isinstance(model, torch.Tensor) \
            else f"a {type(model).__name__}"
        raise ValueError(f"show_module expects an nn.Module (the model object), got {what}. "
                         "Pass the model itself, e.g. show_module(model), not its output or "
                         "its state_dict.")
    rows: list[ModuleRow] = []
    seen_params: dict[int, str] = {}    # id(param) -> full name where it was counted
    seen_modules: dict[int, str] = {}   # id(module) -> path where it was first shown

    def visit(module: nn.Module, path: str, depth: int) -> ModuleRow:
        row = ModuleRow(path=path, depth=depth, type_name=type(module).__name__)
        rows.append(row)
        if id(module) in seen_modules:
            row.shared_module = seen_modules[id(module)]
            return row
        seen_modules[id(module)] = path
        prefix = f"{path}." if path else ""
        for pname, p in module._parameters.items():
            if p is None:  # e.g. Linear(bias=False) registers bias as None
                continue
            full = prefix + pname
            shape = _shape(p)
            if id(p) in seen_params:
                row.params.append(TensorRow(pname, shape, 0, "param", p.requires_grad,
                                            shared_with=seen_params[id(p)]))
                continue
            seen_params[id(p)] = full
            n = 0 if shape is None else p.numel()
            row.params.append(TensorRow(pname, shape, n, "param", p.requires_grad))
            row.total += n
            if p.requires_grad:
                row.trainable += n
            else:
                row.frozen += n
        for bname, b in module._buffers.items():
            if b is None:  # e.g. BatchNorm(track_running_stats=False)
                continue
            shape = _shape(b)
            n = 0 if shape is None else b.numel()
            row.buffers.append(TensorRow(bname, shape, n, "buffer", False))
            row.buffer_total += n
        for cname, child in module._modules.items():
            if child is None:
                continue
            kid = visit(child, prefix + cname, depth + 1)
            row.children.append(kid.path)
            row.total += kid.total
            row.trainable += kid.trainable
            row.frozen += kid.frozen
            row.buffer_total += kid.buffer_total
        return row

    visit(model, "", 0)
    return ModuleSummary(rows, title=type(model).__name__)
