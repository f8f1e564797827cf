"""Judge an autograded notebook in the grader's process: answer key, tamper flags, scores.

nbgrader scores a test cell by whether its output holds an error (or by the
first number it finds as a cell value). This module turns every test cell's
values into plain displays, adds errors, and lets nbgrader's own
``SaveAutoGrades`` score again:

* every test cell is judged against the answer key (:mod:`.answer_key`): a
  cell whose records do not all match gets a ``KeyMismatch`` error. This is
  the verdict that counts: nothing the student's kernel did to the checks,
  torch, ``Tensor`` methods or IPython can change the key or the comparison;
* every test cell that ran after a tampering cell (found by the static scan,
  :mod:`.tamper`, or by the runtime guard, :mod:`.guard`) gets a
  ``TamperVoid`` error: no credit for tests a tampered kernel ran;
* fail closed: a guard log that is missing, unreadable, or stops early while
  the kernel lived, or test cells that ran cleanly but recorded nothing, void
  the whole submission for manual review (flag ``manual_review:...``); a
  kernel that died explains a short log (flag ``kernel_died``, not void).

It also names what happened in each cell (timeout, memory, exit, crash,
syntax error, exception) for the report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from course_utils.grading.guard import cell_sha as _sha

_MEMORY_HINTS = ("can't allocate memory", "DefaultCPUAllocator", "out of memory")


def cell_problem(cell) -> str | None:
    """A short name for what went wrong in a code cell, or None."""
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
        if ename == "CellTimeoutError":
            return "timeout"
        if ename == "MemoryError" or any(h in evalue for h in _MEMORY_HINTS):
            return "memory"
        if ename == "SystemExit":
            return "exit"
        if ename in ("KernelDied", "NotRun", "TamperVoid", "KeyMismatch"):
            return {"KernelDied": "kernel_died", "NotRun": "not_run",
                    "TamperVoid": "voided", "KeyMismatch": "fail"}[ename]
        if ename in ("SyntaxError", "IndentationError", "TabError"):
            return "syntax_error"
        if ename == "AssertionError":
            return "fail"
        if ename == "KeyboardInterrupt":
            return "timeout"
        return f"exception ({ename})"
    return None


def _runtime_events(nb, guard_log: Path) -> tuple[list[tuple[int, str]], int | None, bool]:
    """(cell index, problem) per tampering cell; where the guard went silent; was it loaded."""
    executed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    lines = []
    text = _read_guard_log(guard_log)
    if text is not None:
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not isinstance(rec, dict):  # not written by the guard
                raise _Unreadable(f"guard log line {line[:60]!r}")
            lines.append(rec)
    by_sha = {}
    for i in executed:
        by_sha.setdefault(_sha(nb.cells[i].source), i)
    if not any(rec.get("ready") for rec in lines):
        return [], None, False  # the guard never loaded (reported, nothing voided)
    lines = [rec for rec in lines if not rec.get("ready")]
    events, last = [], None
    for k, rec in enumerate(lines):
        i = executed[k] if k < len(executed) and _sha(nb.cells[executed[k]].source) == rec["sha"] \
            else by_sha.get(rec["sha"])
        if i is None:
            continue
        last = i if last is None else max(last, i)
        for problem in rec.get("tampered", []):
            events.append((i, problem))
    ran = [i for i in executed if cell_problem(nb.cells[i]) not in ("not_run",)]
    died = any(cell_problem(nb.cells[i]) in ("kernel_died", "timeout") for i in executed)
    silent_after = None
    if ran and not died and (last is None or last < ran[-1]):
        silent_after = -1 if last is None else last
    return events, silent_after, True


class _Unreadable(ValueError):
    pass


_GUARD_LOG_MAX = 8 * 2**20  # the guard writes ~100 bytes a cell


def _read_guard_log(path: Path) -> str | None:
    """The guard log's text, read as hostile input: the kernel could have replaced it
    with a symlink (to /dev/zero, to the gradebook), a FIFO or a huge file."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink (ELOOP) or worse
        raise _Unreadable(f"guard log cannot be opened safely: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("guard log is not a regular file")
        if info.st_size > _GUARD_LOG_MAX:
            raise _Unreadable(f"guard log is {info.st_size} bytes")
        return os.read(fd, _GUARD_LOG_MAX + 1).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _is_test(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def _void(cell, reason: str) -> None:
    _add_error(cell, "TamperVoid", reason)


def _no_partial_credit(cell) -> None:
    """Turn a test cell's ``execute_result`` outputs into plain displays.

    nbgrader gives a cell the points of the first number it finds as an
    ``execute_result`` (partial credit) before it looks for an error. Our tests
    never end in a number, so any such output is the student's code speaking
    (``sys.displayhook(2)`` inside a graded function, or a message sent by hand):
    it stays visible in the feedback, but it no longer scores.
    """
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            out["output_type"] = "display_data"
            out.pop("execution_count", None)


def _add_error(cell, ename: str, reason: str) -> None:
    # First, not last: nbgrader scores a cell by its first error or execute_result,
    # so a number the student's code leaves as the cell's value must not come before it.
    cell.outputs.insert(0, NotebookNode(output_type="error", ename=ename, evalue=reason,
                                        traceback=[f"{ename}: no credit: {reason}"]))


def apply_verdict(api, assignment: str, student: str, static: list[dict],
                  guard_log: Path, key_file: Path) -> dict:
    """Judge every test against the key, void tampered tests, rescore; summarise."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    from course_utils.grading.answer_key import judge, records_of, strip_records

    key = json.loads(Path(key_file).read_text())
    coursedir = api.coursedir
    folder = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    grades, flags, tamper = {}, [], []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        gid = {i: c.metadata.get("nbgrader", {}).get("grade_id", f"cell{i}")
               for i, c in enumerate(nb.cells)}
        causes = [(f["cell"], f"{gid.get(f['cell'], f['cell'])}: {f['message']}")
                  for f in static if f.get("severity") == "tamper"]
        executed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        died = any(cell_problem(nb.cells[i]) in ("kernel_died", "timeout") for i in executed)
        review = None  # fail closed: a reason to void everything for manual review
        try:
            events, silent_after, loaded = _runtime_events(nb, guard_log)
        except _Unreadable as exc:
            events, silent_after, loaded, review = [], None, True, f"guard_log_unreadable ({exc})"
        if not loaded and not died:
            review = "guard_log_missing"
        elif not loaded:
            flags.append("kernel_died")
        causes += [(i, f"{gid[i]}: {problem} (at run time)") for i, problem in events]
        if silent_after is not None:
            review = "guard_log_short"
        verdicts = judge(nb, key)
        ran_clean = [i for i in executed if _is_test(nb.cells[i]) and cell_problem(nb.cells[i]) is None]
        if ran_clean and not any(records_of(nb.cells[i]) for i in ran_clean):
            review = review or "records_missing"  # tests ran, yet nothing was recorded
        tamper += [c for _, c in causes]
        first = min((i for i, _ in causes), default=None)
        for i, cell in enumerate(nb.cells):
            if not _is_test(cell):
                continue
            _no_partial_credit(cell)
            if review is not None:
                _void(cell, f"voided for manual review: {review}")
            elif first is not None and i > first:
                _void(cell, f"tests after tampering in {gid.get(first, first)} earn no credit")
            elif cell_problem(cell) is None:
                ok, why = verdicts.get(gid[i], (False, "not judged"))
                if not ok:
                    _add_error(cell, "KeyMismatch", f"the answer key says no: {why}")
        if review is not None:
            flags.append(f"manual_review:{review.split(' ')[0]}")
        for i, cell in enumerate(nb.cells):
            problem = cell_problem(cell) if cell.cell_type == "code" else None
            if problem and problem not in ("fail", "not_run", "voided") and not _is_test(cell):
                flags.append(f"{problem.split(' ')[0]}:{gid[i]}")
            elif problem in ("timeout", "memory", "kernel_died", "exit") and _is_test(cell):
                flags.append(f"{problem}:{gid[i]}")
        strip_records(nb)
        os.chmod(path, 0o644)
        resources = {"nbgrader": {"notebook": path.stem, "assignment": assignment,
                                  "student": student, "db_url": coursedir.db_url}}
        SaveAutoGrades().preprocess(nb, resources)  # nbgrader scores the judged cells
        nbformat.write(nb, path)
        os.chmod(path, 0o444)
        with Gradebook(coursedir.db_url) as gb:
            for i, cell in enumerate(nb.cells):
                if not _is_test(cell):
                    continue
                g = gb.find_grade(gid[i], path.stem, assignment, student)
                grades[gid[i]] = {"score": g.score, "max_score": g.max_score,
                                  "status": cell_problem(cell) or "pass"}
    if tamper:
        flags.append("tamper")
    return {"grades": grades, "flags": list(dict.fromkeys(flags)), "tamper": tamper}
