"""Generated submissions for demos, tests and the benchmark (issue 8).

A submission is the student release with its solution cells filled in. The
correct answer of each solution cell comes from the source notebook (the code
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers, which are
removed).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)[ \t]*\n?", re.M)


def strip_markers(source: str) -> str:
    """Remove nbgrader's ``### BEGIN/END SOLUTION|HIDDEN TESTS`` lines, keep the code."""
    return _MARKERS.sub("", source).rstrip("\n")


def solutions(source_nb) -> dict[str, str]:
    """{solution grade_id: the reference answer (markers stripped)}."""
    out = {}
    for cell in source_nb.cells:
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        if nbg.get("solution") and cell.cell_type == "code":
            out[nbg["grade_id"]] = strip_markers(cell.source)
    return out


def fill(release_nb, answers: dict[str, str]):
    """A copy of the release with the given solution cells replaced."""
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def sample_class(source_nb, release_nb, n: int = 40) -> dict[str, object]:
    """``n`` students: even ones answer everything, odd ones leave one exercise undone."""
    answers = solutions(source_nb)
    ids = list(answers)
    out = {}
    for k in range(n):
        chosen = dict(answers)
        if k % 2 and ids:
            chosen.pop(ids[(k // 2) % len(ids)])  # left as the release stub
        out[f"student{k:03d}"] = fill(release_nb, chosen)
    return out


def write_class(course_dir: Path, assignment: str, inbox: Path, n: int = 40) -> list[Path]:
    """Write ``<inbox>/studentNNN_<assignment>.ipynb`` for a generated class."""
    course_dir, inbox = Path(course_dir), Path(inbox)
    source = nbformat.read(course_dir / "source" / assignment / f"{assignment}.ipynb", 4)
    release = nbformat.read(course_dir / "release" / assignment / f"{assignment}.ipynb", 4)
    inbox.mkdir(parents=True, exist_ok=True)
    paths = []
    for student, nb in sample_class(source, release, n).items():
        path = inbox / f"{student}_{assignment}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths
