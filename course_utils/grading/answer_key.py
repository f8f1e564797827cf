"""The answer key: what each hidden check must record, computed from the source solution.

In grading, hidden tests never hold their expected values in the student's
kernel: each check there *records* the student's value (``expected=KEY``, and
every ``check_below``/``check_above``), as a display output of MIME type
:data:`course_utils.records.MIME` in that test cell. The key is the same
notebook's records when the instructor's **source** notebook (solutions in
place, hidden tests in their cells) runs in the same kind of kernel, under the
same seeds. It lives in the course directory (``keys/<assignment>.json``,
never in a release) and is rebuilt when the source changes.

:func:`judge` then decides, in the grader's process, per test cell: it scores
only when the cell ran without error, it recorded exactly as many values as
the key (a duplicate or a missing record voids the cell), every record has
the key's name at its place, and every value passes the key's comparison
with the key's parameters (:func:`course_utils.records.compare`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import nbformat

from course_utils.records import MIME, compare

KEY_VERSION = 1


class AnswerKeyError(RuntimeError):
    """The source solution did not run cleanly, so no key can be trusted."""


def key_path(course_dir: Path, assignment: str) -> Path:
    return Path(course_dir) / "keys" / f"{assignment}.json"


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def records_of(cell) -> list[dict]:
    """The check records a code cell's outputs hold, in order."""
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "display_data" and MIME in o.get("data", {}):
            rec = o["data"][MIME]
            out.append(rec if isinstance(rec, dict) else {"unreadable": True})
    return out


def strip_records(nb) -> None:
    """Drop record outputs (data for the grader, noise for the student's feedback)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "display_data"
                                    and MIME in o.get("data", {}))]


def grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") else None


def build(source: Path, *, run_kernel) -> dict:
    """Execute the source notebook with ``run_kernel(nb) -> executed nb``; return the key."""
    nb = nbformat.read(source, as_version=4)
    start = time.monotonic()
    executed = run_kernel(nb)
    cells: dict[str, list[dict]] = {}
    problems = []
    for i, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        gid = grade_id(cell)
        if errors:
            problems.append(f"cell {i} ({gid or 'not graded'}): {errors[0].get('ename')}: "
                            f"{str(errors[0].get('evalue'))[:200]}")
        if gid is None:
            continue
        recs = records_of(cell)
        if not recs:
            problems.append(f"test cell {gid} records nothing: give its hidden tests at least one "
                            "check with expected=KEY (or check_below/check_above)")
        cells[gid] = [{k: r.get(k) for k in ("name", "kind", "value", "params")} for r in recs]
    if problems:
        raise AnswerKeyError(f"the source solution {source} does not pass its own tests, so no "
                             "answer key was written:\n  " + "\n  ".join(problems))
    return {"version": KEY_VERSION, "assignment": Path(source).stem, "source_sha": _sha(source),
            "built_seconds": round(time.monotonic() - start, 2), "cells": cells}


def load_fresh(course_dir: Path, assignment: str, source: Path) -> dict | None:
    """The stored key when it matches ``source`` (by hash), else None."""
    path = key_path(course_dir, assignment)
    if not path.exists():
        return None
    try:
        key = json.loads(path.read_text())
    except ValueError:
        return None
    if key.get("version") != KEY_VERSION or key.get("source_sha") != _sha(source):
        return None
    return key


def save(course_dir: Path, assignment: str, key: dict) -> Path:
    path = key_path(course_dir, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(key))
    os.chmod(tmp, 0o600)  # instructor-only: it holds the hidden tests' answers
    tmp.replace(path)
    return path


def judge(nb, key: dict) -> dict[str, tuple[bool, str]]:
    """Per test cell of an executed submission: (scores?, why not)."""
    verdicts = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if cell.cell_type != "code" or gid is None:
            continue
        expected = key.get("cells", {}).get(gid)
        if expected is None:
            verdicts[gid] = (False, "this test is not in the answer key")
            continue
        got = records_of(cell)
        if not expected:
            verdicts[gid] = (False, "the answer key records nothing for this test")
        elif len(got) != len(expected):
            what = "duplicate or extra" if len(got) > len(expected) else "missing"
            verdicts[gid] = (False, f"{what} check records: {len(got)} recorded, "
                             f"{len(expected)} expected")
        else:
            verdicts[gid] = (True, "")
            for k, (g, e) in enumerate(zip(got, expected)):
                if not isinstance(g, dict) or g.get("name") != e["name"]:
                    verdicts[gid] = (False, f"record {k} is not {e['name']!r}")
                    break
                ok, why = compare(g, e)
                if not ok:
                    verdicts[gid] = (False, f"{e['name']}: {why}")
                    break
    return verdicts
