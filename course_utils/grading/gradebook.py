"""Keep the course gradebook consistent while workers grade in parallel (issue 8).

Workers never touch the course gradebook: each grades into a private copy of
a *template* (the gradebook after ``generate_assignment``, before any
student). The parent then merges one submission at a time with
:func:`merge_submission`, through nbgrader's ``Gradebook`` API, in a single
commit: an interrupted run leaves each submission either merged or not, and
merging twice updates the same rows (nbgrader keys grades by cell, notebook,
assignment and student), so nothing is lost or duplicated.
"""

from __future__ import annotations

import sqlite3
import warnings
from contextlib import contextmanager
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry


@contextmanager
def _quiet():
    # nbgrader's own queries trigger SQLAlchemy "not in session" warnings: noise here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*")
        yield


def sqlite_path(db_url: str) -> Path:
    if not db_url.startswith("sqlite:///"):
        raise ValueError(f"parallel grading needs a SQLite gradebook, got {db_url!r}; "
                         "set COURSE_GRADEBOOK_URL to a sqlite:/// URL (or unset it).")
    return Path(db_url[len("sqlite:///"):])


def snapshot(db_url: str, dest: Path) -> None:
    """Copy the gradebook with SQLite's backup API (consistent even mid-write)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    src = sqlite3.connect(str(sqlite_path(db_url)))
    dst = sqlite3.connect(str(dest))
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def make_template(db_url: str, dest: Path) -> None:
    """A copy of the gradebook with the assignments and source cells but no students."""
    snapshot(db_url, dest)
    with sqlite3.connect(str(dest)) as con:
        for table in ("grade", "comment", "submitted_notebook", "submitted_assignment",
                      "student"):
            con.execute(f"DELETE FROM {table}")


def _set_auto(grade, score) -> None:
    grade.auto_score = score
    # as nbgrader's SaveAutoGrades: a manual grade or no auto grade needs review
    grade.needs_manual_grade = grade.manual_score is not None or score is None


def merge_submission(main_url: str, course_id: str, assignment: str, student: str,
                     worker_url: str | None, timestamp=None) -> None:
    """Copy one student's autograded scores into the course gradebook (one commit).

    ``worker_url=None`` records a submission that could not be graded: every
    test scores 0 and is marked for manual review.
    """
    with _quiet(), Gradebook(main_url, course_id) as gb:
        gb.update_or_create_student(student)
        scores, comments = {}, {}
        if worker_url is not None:
            with Gradebook(worker_url) as wgb:
                wsub = wgb.find_submission(assignment, student)
                timestamp = timestamp or wsub.timestamp
                for nb in wsub.notebooks:
                    for g in nb.grades:
                        scores[(nb.name, g.name)] = g.auto_score
                    for c in nb.comments:
                        comments[(nb.name, c.name)] = c.auto_comment
        sub = gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        for nb in sub.notebooks:
            for g in nb.grades:
                if worker_url is None:
                    _set_auto(g, 0.0)
                    g.needs_manual_grade = True
                elif (nb.name, g.name) in scores:
                    _set_auto(g, scores[(nb.name, g.name)])
            for c in nb.comments:
                if (nb.name, c.name) in comments:
                    c.auto_comment = comments[(nb.name, c.name)]
        gb.db.commit()


def merged_score(main_url: str, course_id: str, assignment: str,
                 student: str) -> tuple[dict, float] | None:
    """({grade_id: score}, max score) of a merged submission; None if absent/incomplete."""
    with _quiet(), Gradebook(main_url, course_id) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        out = {}
        for nb in sub.notebooks:
            for g in nb.grades:
                if g.auto_score is None and g.manual_score is None:
                    return None
                out[g.name] = float(g.score)
        return out, float(sub.max_score)
