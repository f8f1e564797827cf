"""Every real assignment grades through the sandbox and its answer key (issue 12).

For each source: the answer key builds from the source solution, an honest
submission earns every point, and one that leaves its first exercise as the
release stub loses exactly the points of that exercise's tests. This is what
keeps each hidden test and its key consistent.
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
