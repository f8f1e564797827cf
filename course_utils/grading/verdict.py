"""Read an autograded notebook: per-test status, flags, and the tamper verdict (issue 8).

nbgrader scores a test cell by whether its output holds an error. This module
only adds errors and lets nbgrader's own ``SaveAutoGrades`` score again:

* every test cell that ran after a tampering cell (found by the static scan,
  :mod:`.tamper`, or by the runtime guard, :mod:`.guard`) gets a
  ``TamperVoid`` error: no credit for tests a tampered kernel judged;
* if the guard's log stops early while the kernel lived, the guard was
  disabled: the cells after its last line are treated the same way.

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
        if ename in ("KernelDied", "NotRun", "TamperVoid"):
            return {"KernelDied": "kernel_died", "NotRun": "not_run",
                    "TamperVoid": "voided"}[ename]
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
    if guard_log.exists():
        for line in guard_log.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
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


def _is_test(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def _void(cell, reason: str) -> None:
    cell.outputs.append(NotebookNode(output_type="error", ename="TamperVoid", evalue=reason,
                                     traceback=[f"TamperVoid: no credit: {reason}"]))


def apply_verdict(api, assignment: str, student: str, static: list[dict],
                  guard_log: Path) -> dict:
    """Void tampered tests in the autograded notebook and gradebook; summarise."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    coursedir = api.coursedir
    folder = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
    grades, flags, tamper = {}, [], []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        gid = {i: c.metadata.get("nbgrader", {}).get("grade_id", f"cell{i}")
               for i, c in enumerate(nb.cells)}
        causes = [(f["cell"], f"{gid.get(f['cell'], f['cell'])}: {f['message']}")
                  for f in static if f.get("severity") == "tamper"]
        events, silent_after, loaded = _runtime_events(nb, guard_log)
        if not loaded:
            flags.append("guard_not_loaded")
        causes += [(i, f"{gid[i]}: {problem} (at run time)") for i, problem in events]
        if silent_after is not None:
            causes.append((silent_after, "the tamper guard was switched off"))
        tamper += [c for _, c in causes]
        first = min((i for i, _ in causes), default=None)
        changed = False
        for i, cell in enumerate(nb.cells):
            if first is not None and i > first and _is_test(cell):
                _void(cell, f"tests after tampering in {gid.get(first, first)} earn no credit")
                changed = True
            problem = cell_problem(cell) if cell.cell_type == "code" else None
            if problem and problem not in ("fail", "not_run", "voided") and not _is_test(cell):
                flags.append(f"{problem.split(' ')[0]}:{gid[i]}")
            elif problem in ("timeout", "memory", "kernel_died", "exit") and _is_test(cell):
                flags.append(f"{problem}:{gid[i]}")
        if changed:
            os.chmod(path, 0o644)
            resources = {"nbgrader": {"notebook": path.stem, "assignment": assignment,
                                      "student": student, "db_url": coursedir.db_url}}
            SaveAutoGrades().preprocess(nb, resources)  # nbgrader scores the voided cells
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
    return {"grades": grades, "flags": flags, "tamper": tamper}
