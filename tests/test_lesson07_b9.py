"""Lesson 07, B9: the check of Exercise 07.8 (nucleus / top-p filtering) on right and wrong answers.

Read from the lesson source, lessons/07_transformer_bert.ipynb. The exercise
cell ``b9-ex`` and its check cell ``b9-ex-check`` run here with a stand-in ``generate``: the
worked answer prints three PASS lines and then the top-p sample; each typical mistake exactly
one FAIL and no sample; the untouched stub one TODO and no sample.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils.lesson_sources import split_notebook

SOURCE = Path(__file__).resolve().parents[1] / "lessons" / "07_transformer_bert.ipynb"
NEG = float("-inf")


def _imports_only(source: str) -> str:
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return ast.unparse(tree)


def _run(ns: dict, source: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "lesson07-b9", "exec"), ns)
    return out.getvalue().splitlines()


@pytest.fixture(scope="module")
def cells():
    stub, solution = split_notebook(nbformat.read(SOURCE, as_version=4), SOURCE.name)
    by_id = lambda nb: {c.id: c.source for c in nb.cells if c.cell_type == "code"}
    return by_id(stub), by_id(solution)


def _namespace(cells) -> dict:
    _, solution = cells
    imports = next(src for cid, src in solution.items() if "CONFIG = dict(" in src and "import torch" in src)
    ns = {"__name__": "lesson07_b9", "GPT_CONFIG": {"sample_chars": 5}, "gpt": None,
          "generate": lambda *args, **kwargs: "SAMPLE"}
    _run(ns, _imports_only(imports))
    os.environ["COURSE_NO_PROGRESS"] = "1"
    return ns


def _check_with(cells, fn) -> list[str]:
    ns = _namespace(cells)
    ns["top_p_filter"] = fn
    return _run(ns, cells[1]["b9-ex-check"])


def _worked(cells):
    ns = _namespace(cells)
    _run(ns, cells[1]["b9-ex"])
    return ns["top_p_filter"]


def test_the_worked_answer_passes_and_samples(cells):
    lines = _check_with(cells, _worked(cells))
    assert [line.split(":")[0] for line in lines[:3]] == [
        f"PASS  [07.8] softmax(top_p_filter(logits, p={p})) vs the loop" for p in (0.01, 0.5, 0.9)], lines
    assert lines[-1] == "SAMPLE", lines


def test_the_worked_answer_matches_a_plain_pytorch_nucleus(cells):
    top_p = _worked(cells)
    logits = torch.randn(64, 50, generator=torch.Generator().manual_seed(3)) * 3
    for p in (0.2, 0.7, 0.95):
        probs = logits.softmax(-1)
        sorted_probs, order = probs.sort(-1, descending=True)
        keep_sorted = (sorted_probs.cumsum(-1) - sorted_probs) < p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        got = top_p(logits, p)
        assert torch.equal(torch.isfinite(got), keep)
        assert torch.equal(got[keep], logits[keep])


def test_an_untouched_stub_says_todo_once_and_skips_the_sample(cells):
    ns = _namespace(cells)
    _run(ns, cells[0]["b9-ex"])
    lines = _run(ns, cells[0]["b9-ex-check"])
    assert len(lines) == 1 and lines[0].startswith("TODO  [07.8]"), lines


def _cumsum_over_p(logits, p):       # drops the token that crosses p (a row can lose every token)
    s, o = logits.sort(-1, descending=True)
    return torch.full_like(logits, NEG).scatter(-1, o, s.masked_fill(s.softmax(-1).cumsum(-1) > p, NEG))


def _left_sorted(logits, p):         # forgets to put the logits back in vocabulary order
    s, _ = logits.sort(-1, descending=True)
    pr = s.softmax(-1)
    return s.masked_fill(pr.cumsum(-1) - pr >= p, NEG)


def _unsorted_cumsum(logits, p):     # accumulates in vocabulary order, without sorting
    pr = logits.softmax(-1)
    return logits.masked_fill(pr.cumsum(-1) - pr >= p, NEG)


@pytest.mark.parametrize("mistake", ["cumsum_over_p", "left_sorted", "unsorted_cumsum",
                                     "zeros_not_inf", "returns_probs"])
def test_a_typical_mistake_fails_once_and_skips_the_sample(cells, mistake):
    worked = _worked(cells)
    fn = {"cumsum_over_p": _cumsum_over_p, "left_sorted": _left_sorted, "unsorted_cumsum": _unsorted_cumsum,
          # 0 instead of -inf: softmax still gives the dropped tokens mass
          "zeros_not_inf": lambda l, p: torch.where(torch.isinf(worked(l, p)), torch.zeros_like(l), l),
          "returns_probs": lambda l, p: worked(l, p).softmax(-1)}[mistake]
    lines = _check_with(cells, fn)
    assert len(lines) == 1 and lines[0].startswith("FAIL  [07.8]"), lines
