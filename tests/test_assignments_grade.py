"""Every real assignment grades through the sandbox and its answer key (issue 12).

For each source: the answer key builds from the source solution, an honest
submission earns every point, and one that leaves its first exercise as the
release stub loses exactly the points of that exercise's tests. This is what
keeps each hidden test and its key consistent. Where ``WRONG_ANSWERS`` lists typical
wrong answers (a debugging task's own buggy code among them), each loses exactly its
exercise's points.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils.assignments import sources
from course_utils.grading import pipeline, sample, sandbox
from course_utils.grading.course import check_result, load_config, nbgrader_api

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(sources(ROOT / "assignments"))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sandbox.availability()[0],
                                 reason=f"no grading sandbox here: {sandbox.availability()[1]}")]


def _points_of(source_nb, solution_id: str) -> float:
    """Points of the test cells of one exercise (test_<id>, test_<id>_2, ...)."""
    total = 0.0
    for cell in source_nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id", "")
        if meta.get("grade") and (gid == f"test_{solution_id}" or gid.startswith(f"test_{solution_id}_")):
            total += float(meta.get("points", 0))
    return total


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_grades_exactly_through_the_answer_key(assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX_UID_BASE", "64000")
    monkeypatch.setenv("COURSE_FAST", "1")
    course = tmp_path / "course"
    shutil.copytree(ROOT / "assignments" / "source" / assignment,
                    course / "source" / assignment)
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course / "nbgrader_config.py")
    api = nbgrader_api(load_config(course))
    check_result(api.generate_assignment(assignment, force=True, create=True), "generate")
    source = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", 4)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
    good = sample.solutions(source)
    first = next(iter(good))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(sample.fill(release, good), inbox / f"honest_{assignment}.ipynb")
    stub = {k: v for k, v in good.items() if k != first}
    nbformat.write(sample.fill(release, stub), inbox / f"stub_{assignment}.ipynb")
    _write_wrong_answers(assignment, release, good, inbox)
    opts = pipeline.Options(jobs=2, cell_timeout=120, memory_mb=3072, quiet=True, feedback=False)
    rows = {r.student: r for r in pipeline.grade(assignment, inbox, course, opts).rows}
    honest, missing = rows["honest"], rows["stub"]
    assert honest.total == honest.max_score, (honest.scores, honest.flags, honest.details[-3:])
    assert not honest.flags, honest.flags
    lost = _points_of(source, first) or None
    if lost:
        assert missing.total == honest.max_score - lost, (missing.scores, missing.details[-3:])
    else:
        assert missing.total < honest.max_score
    assert (course / "keys" / f"{assignment}.json").exists()
    assert os.stat(course / "keys" / f"{assignment}.json").st_mode & 0o077 == 0
    for student, solution_id, _ in WRONG_ANSWERS.get(assignment, []):
        row, lost = rows[student], _points_of(source, solution_id)
        assert lost > 0
        assert row.total == row.max_score - lost, (student, row.scores, row.details[-3:])
        assert row.scores[f"test_{solution_id}"] == 0, (student, row.scores)


def _buggy_as_fixed(release, suffix="_buggy"):
    """The debugging task's buggy code (the release's ex5_buggy_code cell), renamed to the fixed name."""
    cell = next(c for c in release.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                == "ex5_buggy_code")
    code = cell.source.split("\n\n\n")[0]          # the function itself, not the demo below it
    assert suffix in code
    return code.replace(suffix, "")


# Typical wrong answers (issue 14): (student, solution id, edit of the honest answer) where an
# edit is (old, new) replaced once in the honest answer, or "buggy" for the debugging task's
# own buggy code. Each must lose exactly its exercise's points and nothing else.
WRONG_ANSWERS = {
    "ch06_text": [
        ("debugbuggy", "debug_encode_splits", "buggy"),
        ("debughalf", "debug_encode_splits",            # the leak fixed, the padding side not
         ("padded[b, :len(s)] = s", "padded[b, T - len(s):] = s")),
        ("nosmoothv", "bigram_lm", ("smoothed.sum(dim=1, keepdim=True)",
                                    "(smoothed.sum(dim=1, keepdim=True) - alpha * (len(alphabet) - 1))")),
        ("bwdorder", "birnn_forward", ("states[t] = h", "states[T - 1 - t] = h")),
    ],
    "ch07_transformer": [
        ("debugbuggy", "debug_padded_attention", "buggy"),
        ("debughalf", "debug_padded_attention",          # -inf and the key axis fixed, softmax not
         ("weights = scores.softmax(dim=-1)", "weights = scores.softmax(dim=-2)")),
        ("signedalibi", "alibi", ("(pos[:, None] - pos[None, :]).abs()", "(pos[:, None] - pos[None, :])")),
        ("tokenchoice", "whole_word_mask",   # chosen per token, not per word
         ("word_chosen.gather(1, word_ids.clamp(min=0))", "word_chosen")),
    ],
}


def _write_wrong_answers(assignment, release, good, inbox):
    """One submission per typical wrong answer: the honest answers with one solution cell wrong."""
    for student, solution_id, edit in WRONG_ANSWERS.get(assignment, []):
        if edit == "buggy":
            wrong = _buggy_as_fixed(release)
        else:
            old, new = edit
            assert good[solution_id].count(old) == 1, (solution_id, old)
            wrong = good[solution_id].replace(old, new)
        nbformat.write(sample.fill(release, {**good, solution_id: wrong}), inbox / f"{student}_{assignment}.ipynb")
