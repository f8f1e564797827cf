"""Verdict lines (course_utils.claims) and how the runner counts them."""

import nbformat
import numpy as np
import pytest
import torch

from course_utils.claims import verdict, verdict_either, verdict_lines
from course_utils.runner import count_verdicts


def test_true_and_false_verdicts_are_marked(capsys):
    assert verdict("Adam ends lower", 1e-6 < 7e-2, "Adam 1e-06, SGD 7e-02")
    assert not verdict("Adam ends lower", 0.5 < 0.1, "Adam 0.5, SGD 0.1")
    out = capsys.readouterr().out
    every, false = verdict_lines(out)
    assert len(every) == 2 and len(false) == 1
    assert "NOT as the text says: Adam ends lower" in false[0] and "Adam 0.5" in false[0]


def test_conditional_verdict_names_the_reading_and_is_never_false(capsys):
    v = verdict_either(False, "gap 0.3%", "augmentation narrows the gap", "too few steps to tell")
    assert v
    every, false = verdict_lines(capsys.readouterr().out)
    assert every and not false and every[0].endswith("too few steps to tell")


def test_numpy_and_tensor_bools_are_accepted_and_other_types_refused(capsys):
    assert verdict("x", np.bool_(True), "n")
    assert not verdict("x", torch.tensor(False), "n")
    with pytest.raises(TypeError):
        verdict("x", 0.3, "a float is not a verdict")
    with pytest.raises(TypeError):
        verdict("x", [1], "nor is a list")


def test_runner_counts_verdicts_in_executed_outputs():
    nb = nbformat.v4.new_notebook()
    ok = nbformat.v4.new_code_cell("")
    ok.outputs = [nbformat.v4.new_output("stream", name="stdout", text="VERDICT \u2713 a -> b\n")]
    bad = nbformat.v4.new_code_cell("")
    bad.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                          text="x\nVERDICT \u2717 c -> NOT as the text says: d\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("VERDICT \u2717 prose is not output"), ok, bad]
    total, false = count_verdicts(nb)
    assert total == 2 and len(false) == 1 and false[0].startswith("cell 2:")
