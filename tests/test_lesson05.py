"""Lesson 05's debugging exercise (Exercise 05.5, "stuck at 10 %"): its check on typical fixes.

The exercise's code cell (``def batches`` / ``def loss_fn``, in the learner's stub version from
``lessons/05_cnn_cifar10.ipynb``) and its check cell run here on a small synthetic data set with
the stub's two bugs fixed in every combination: the untouched stub prints at most two FAIL lines
(no wall of FAILs), fixing one bug still FAILs the other with its hint, an unshuffled "fix" FAILs,
and only the right fix (or an equivalent loss) prints PASS lines, training included.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks
from course_utils.lesson_sources import split_notebook

SOURCE = Path(__file__).resolve().parents[1] / "lessons" / "05_cnn_cifar10.ipynb"
BUG_BATCHES = "yield x[idx], y[start:start + batch_size]"
BUG_LOSS = "return F.cross_entropy(logits.softmax(dim=1), y)"
FIX_BATCHES = "yield x[idx], y[idx]"
FIX_LOSS = "return F.cross_entropy(logits, y)"


@pytest.fixture(scope="module")
def cells():
    """(the learner's exercise cell, the check cell) of the debugging exercise."""
    learner, _ = split_notebook(nbformat.read(SOURCE, as_version=4), SOURCE.name)
    code = [c.source for c in learner.cells if c.cell_type == "code"]
    exercise = next(s for s in code if "def batches(" in s and "def loss_fn(" in s)
    check = next(s for s in code if "batches(coded" in s)
    assert BUG_BATCHES in exercise and BUG_LOSS in exercise   # the stub carries both bugs
    return exercise, check


@pytest.fixture(scope="module")
def data():
    """Ten noisy class prototypes: a linear model learns them in a few dozen steps (if the code is right)."""
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(10, 3, 32, 32, generator=g)

    def make(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return protos[y] + 2.0 * torch.randn(n, 3, 32, 32, generator=g), y
    return make(1280) + make(500)


def _run(cells, data, edits):
    exercise, check = cells
    for old, new in edits:
        exercise = exercise.replace(old, new)
    x_train, y_train, x_val, y_val = data

    def accuracy(model, x, y):
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()

    ns = dict(torch=torch, F=F, nn=nn, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
              accuracy=accuracy, majority=lambda y: torch.bincount(y, minlength=10).max().item() / len(y),
              CONFIG=dict(debug_steps=40), check_close=checks.check_close, check_equal=checks.check_equal,
              check_true=checks.check_true, NOT_DONE=checks.NOT_DONE)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(exercise, "exercise-cell", "exec"), ns)
        exec(compile(check, "check-cell", "exec"), ns)
    return out.getvalue().splitlines()


def _marked(lines):
    return [line for line in lines if line[:4] in {"PASS", "FAIL", "TODO"}]


def test_untouched_stub_prints_at_most_two_fails_and_says_how_many_remain(cells, data):
    lines = _run(cells, data, [])
    marked = _marked(lines)
    assert len(marked) == 2 and all(line.startswith("FAIL") for line in marked), marked
    assert "batches" in marked[0] and "loss_fn" in marked[1]
    assert any(line.startswith("2 of the 2 bugs") for line in lines), lines
    assert not any("trains above chance" in line for line in lines)      # no training run yet


@pytest.mark.parametrize("fixed, still_broken, hint", [
    ([(BUG_BATCHES, FIX_BATCHES)], "loss_fn", "raw logits"),
    ([(BUG_LOSS, FIX_LOSS)], "batches", "same shuffled idx"),
    # "fixed" by dropping the shuffle: pairs stay together but come unshuffled
    ([(BUG_LOSS, FIX_LOSS), (BUG_BATCHES, "yield x[start:start + batch_size], y[start:start + batch_size]")],
     "batches", "shuffled order"),
], ids=["batches only", "loss only", "unshuffled"])
def test_one_bug_left_fails_that_function_with_its_hint(cells, data, fixed, still_broken, hint):
    lines = _run(cells, data, fixed)
    marked = _marked(lines)
    fails = [line for line in marked if line.startswith("FAIL")]
    assert len(fails) == 1 and still_broken in fails[0] and hint in fails[0], marked
    assert len(marked) == 2 and any(line.startswith("1 of the 2 bugs") for line in lines), lines


@pytest.mark.parametrize("loss", [FIX_LOSS, "return F.nll_loss(logits.log_softmax(dim=1), y)"],
                         ids=["cross_entropy", "log_softmax + nll"])
def test_right_fix_passes_every_line_and_trains(cells, data, loss):
    marked = _marked(_run(cells, data, [(BUG_BATCHES, FIX_BATCHES), (BUG_LOSS, loss)]))
    assert len(marked) == 3 and all(line.startswith("PASS") for line in marked), marked
    assert "trains above chance" in marked[2]
