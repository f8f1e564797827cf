"""Live training curves with a progress bar (introduced in lesson 03, used by every later loop).

    monitor = TrainingMonitor(total=steps, title="sine regression")
    for step in range(steps):
        ...
        monitor.log(step, loss=loss.item())                # a training point
        if step % 50 == 0:
            monitor.log(step, split="val", loss=val_loss)   # an evaluation point
    fig = monitor.close()                                  # final Figure

In Jupyter the figure updates in place (one output, redrawn at most every
``redraw_every`` seconds so plotting never dominates training). Headless (a
script, CI) nothing is drawn until ``close()``, which returns the Figure and
saves it when ``save_to`` is given.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from course_utils.lesson import in_jupyter
from course_utils.static import static_widgets


class TrainingMonitor:
    """Record metrics per split, show a tqdm bar and (in Jupyter) live curves.

    Args:
        total: number of training steps, for the progress bar (None: unknown).
        title: shown on the bar and above the plot.
        redraw_every: seconds between live redraws in Jupyter.
        live: force live plotting on/off (default: on inside Jupyter).
    """

    def __init__(self, total: int | None = None, title: str = "training",
                 redraw_every: float = 1.0, live: bool | None = None):
        self.title = title
        self.history: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        self.redraw_every = redraw_every
        self.live = in_jupyter() if live is None else live
        # A static page (the course book) cannot show tqdm's notebook widget: no bar there.
        self._bar = tqdm(total=total, desc=title, leave=True, disable=static_widgets())
        self._last_step = -1
        self._last_draw = 0.0
        self._handle = None
        self._figure = None
        self.started = time.perf_counter()

    # -- recording ---------------------------------------------------------
    def log(self, step: int, split: str = "train", **values: float) -> None:
        """Record ``values`` (e.g. ``loss=0.3, acc=0.9``) at ``step`` for ``split``."""
        if not values:
            raise ValueError("log() needs at least one metric, e.g. monitor.log(step, loss=0.5)")
        clean = {}
        for metric, value in values.items():
            # .item() also detaches: a loss that still requires grad is fine to log.
            clean[metric] = float(value.item() if hasattr(value, "item") else value)
            self.history[split][metric].append((int(step), clean[metric]))
        if split == "train" and step > self._last_step:
            # The bar counts logged steps, so loops may start at 0 or 1.
            self._bar.update(1 if self._last_step < 0 else step - self._last_step)
            self._last_step = step
        self._bar.set_postfix({f"{split}_{k}": f"{v:.4g}" for k, v in clean.items()}, refresh=False)
        if self.live and time.perf_counter() - self._last_draw > self.redraw_every:
            self._redraw()

    def last(self, metric: str, split: str = "train") -> float:
        """The most recent value of ``metric`` for ``split``."""
        points = self.history.get(split, {}).get(metric)
        if not points:
            raise KeyError(f"no '{metric}' logged for split '{split}' yet")
        return points[-1][1]

    # -- drawing -----------------------------------------------------------
    def figure(self):
        """Draw the curves into a (re-used) Figure: one panel per metric, one line per split."""
        from matplotlib.figure import Figure

        metrics = sorted({m for split in self.history.values() for m in split},
                         key=lambda m: (m != "loss", m))
        if self._figure is None:
            self._figure = Figure(layout="constrained")
        fig = self._figure
        fig.set_size_inches(4.2 * max(1, len(metrics)), 3.2)  # metrics may appear after the first draw
        fig.clear()
        for i, metric in enumerate(metrics or ["loss"]):
            ax = fig.add_subplot(1, max(1, len(metrics)), i + 1)
            for split, series in self.history.items():
                if metric in series:
                    steps, vals = zip(*series[metric])
                    style = "-" if split == "train" else "o-"
                    ax.plot(steps, vals, style, label=split, markersize=3, linewidth=1.2)
            ax.set_title(metric)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if len(self.history) > 1:
                ax.legend()
        fig.suptitle(self.title)
        return fig

    def _redraw(self) -> None:
        from IPython.display import display

        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        self._last_draw = time.perf_counter()

    def close(self, save_to: str | Path | None = None):
        """Finish the bar, draw the final curves and return the Figure (saved if asked)."""
        self._bar.close()
        fig = self.figure()
        if self.live:
            self._redraw()
        if save_to is not None:
            fig.savefig(save_to, dpi=110)
        self.seconds = time.perf_counter() - self.started
        return fig  # assign it (fig = monitor.close()) to avoid a second copy in Jupyter

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

