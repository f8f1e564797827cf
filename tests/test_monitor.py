"""TrainingMonitor: history, progress bar, figure panels, saving (lesson 03, used everywhere)."""

import pytest
import torch
from matplotlib.figure import Figure

from course_utils.monitor import TrainingMonitor


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_history_records_every_point_per_split_and_metric():
    mon = TrainingMonitor(total=5, title="t", live=False)
    for step in range(5):
        mon.log(step, loss=1.0 / (step + 1))
    mon.log(4, split="val", loss=0.7, acc=torch.tensor(0.5))   # tensors become floats
    assert mon.history["train"]["loss"] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert mon.history["val"]["loss"] == [(4, 0.7)]
    assert mon.history["val"]["acc"] == [(4, 0.5)]
    assert type(mon.history["val"]["acc"][0][1]) is float
    assert mon.last("loss") == pytest.approx(0.2)
    assert mon.last("acc", split="val") == 0.5
    with pytest.raises(KeyError):
        mon.last("acc")              # never logged for train
    mon.close()


def test_log_accepts_a_loss_tensor():
    mon = TrainingMonitor(total=1, live=False)
    loss = (torch.ones(3, requires_grad=True) * 2).sum()
    mon.log(0, loss=loss.detach())
    assert mon.last("loss") == 6.0
    mon.close()


def test_log_without_metrics_raises():
    mon = TrainingMonitor(total=3, live=False)
    with pytest.raises(ValueError, match="at least one metric"):
        mon.log(0)
    with pytest.raises(ValueError):
        mon.log(1, split="val")
    mon.close()


def test_progress_bar_total_and_position():
    steps = 20
    mon = TrainingMonitor(total=steps, live=False)
    assert mon._bar.total == steps
    for step in range(steps):
        mon.log(step, loss=1.0)
        if step % 5 == 0:
            mon.log(step, split="val", loss=2.0)   # eval points do not advance the bar
    assert mon._bar.n == steps
    mon.close()


def test_progress_bar_with_sparse_logging():
    mon = TrainingMonitor(total=100, live=False)
    for step in range(0, 100, 10):     # log every 10th step only
        mon.log(step, loss=1.0)
    assert mon._bar.n == 91            # 0-based: step 90 is the 91st step
    mon.close()


def test_figure_one_panel_per_metric_one_line_per_split():
    mon = TrainingMonitor(total=10, title="demo", live=False)
    for step in range(10):
        mon.log(step, loss=10 - step, acc=step / 10)
        if step % 3 == 0:
            mon.log(step, split="val", loss=11 - step)
    fig = mon.close()
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["loss", "acc"]   # loss first
    loss_lines = _lines_by_label(axes[0])
    assert set(loss_lines) == {"train", "val"}
    assert list(loss_lines["train"].get_xdata()) == list(range(10))
    assert list(loss_lines["val"].get_ydata()) == [11, 8, 5, 2]
    assert set(_lines_by_label(axes[1])) == {"train"}
    assert fig._suptitle.get_text() == "demo"


def test_close_saves_a_png(tmp_path):
    mon = TrainingMonitor(total=3, live=False)
    for step in range(3):
        mon.log(step, loss=1.0 / (step + 1))
    target = tmp_path / "curves.png"
    fig = mon.close(save_to=target)
    assert isinstance(fig, Figure)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert mon.seconds >= 0
    assert mon._bar.disable or mon._bar.n == 3


def test_context_manager_closes_the_bar():
    with TrainingMonitor(total=2, live=False) as mon:
        mon.log(0, loss=1.0)
        mon.log(1, loss=0.5)
    assert hasattr(mon, "seconds")  # close() ran


def test_live_mode_displays_once_then_updates_in_place(monkeypatch):
    import IPython.display

    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def fake_display(obj, display_id=None):
        shown.append((obj, display_id))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    mon = TrainingMonitor(total=3, live=True, redraw_every=0.0)
    for step in range(3):
        mon.log(step, loss=1.0)
    mon.close()
    assert len(shown) == 1 and shown[0][1] is True    # one output area...
    assert len(updates) >= 3                           # ...redrawn in place


def test_figure_grows_when_a_metric_appears_later():
    mon = TrainingMonitor(total=10, live=False)
    mon.log(0, loss=1.0)
    first = mon.figure()                       # live mode draws this early, with one panel
    width_one = first.get_size_inches()[0]
    mon.log(5, split="val", loss=0.9, acc=0.5)  # validation accuracy arrives later
    fig = mon.figure()
    assert len(fig.axes) == 2
    assert fig.get_size_inches()[0] >= 1.9 * width_one
    mon.close()


def test_logging_a_loss_that_requires_grad_does_not_warn():
    import warnings

    mon = TrainingMonitor(total=1, live=False)
    loss = (torch.ones(3, requires_grad=True) * 2).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mon.log(0, loss=loss)
    mon.close()


def test_progress_bar_counts_loops_that_start_at_one():
    mon = TrainingMonitor(total=5, live=False)
    for step in range(1, 6):
        mon.log(step, loss=1.0 / step)
    assert mon._bar.n == 5
    mon.close()
