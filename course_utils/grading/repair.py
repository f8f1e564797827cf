"""Match a submitted notebook back to its release before nbgrader sees it (issue 8).

nbgrader finds test and read-only cells by their ``metadata.nbgrader.grade_id``.
A round trip through another front end can drop that metadata, and a student
can delete or edit a test cell. :func:`repair` aligns the submitted cells with
the release notebook (the version the student got) and:

* restores lost nbgrader metadata, matching cells by grade id, then by the
  nbformat cell ``id``, then by identical source, then by position between
  already-matched cells (most similar source wins);
* inserts deleted test and read-only cells from the release;
* reports edited test/read-only cells (nbgrader's ``OverwriteCells`` then puts
  the source back, hidden tests included, by checksum).

Every change is returned as an event, never silent.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass

from nbformat.notebooknode import NotebookNode


@dataclass
class Event:
    kind: str       # metadata_restored | restored | edited | missing_solution
    grade_id: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.grade_id}" + (f" ({self.detail})" if self.detail else "")


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _locked(cell) -> bool:
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbg.get("locked") or nbg.get("grade") and not nbg.get("solution"))


def _norm(source) -> str:
    if isinstance(source, list):
        source = "".join(source)
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _similar(a, b) -> float:
    return difflib.SequenceMatcher(None, _norm(a), _norm(b), autojunk=False).ratio()


def _match(template: list, cells: list) -> dict[str, tuple[int, str]]:
    """grade_id -> (index into ``cells``, how it was matched)."""
    wanted = {grade_id(t): t for t in template}
    match: dict[str, tuple[int, str]] = {}
    for i, cell in enumerate(cells):  # the last duplicate wins, as in nbgrader
        if grade_id(cell) in wanted:
            match[grade_id(cell)] = (i, "grade id")
    used = {i for i, _ in match.values()}

    def free(i, t):
        return i not in used and cells[i].cell_type == t.cell_type and grade_id(cells[i]) is None

    by_cell_id = {c.get("id"): i for i, c in enumerate(cells) if c.get("id")}
    for t in template:
        i = by_cell_id.get(t.get("id"))
        if grade_id(t) not in match and i is not None and free(i, t):
            match[grade_id(t)] = (i, "cell id")
            used.add(i)
    for t in template:
        if grade_id(t) in match or not _locked(t):
            continue
        for i in range(len(cells)):
            if free(i, t) and _norm(cells[i].source) == _norm(t.source):
                match[grade_id(t)] = (i, "content")
                used.add(i)
                break
    for k, t in enumerate(template):
        if grade_id(t) in match:
            continue
        before = [match[grade_id(p)][0] for p in template[:k] if grade_id(p) in match]
        after = [match[grade_id(p)][0] for p in template[k + 1:] if grade_id(p) in match]
        lo, hi = max(before, default=-1), min(after, default=len(cells))
        scored = [(_similar(cells[i].source, t.source), -i, i) for i in range(lo + 1, hi)
                  if free(i, t)]
        if not scored:
            continue
        score, _, i = max(scored)
        if _locked(t) and score < 0.5:
            continue  # not the same cell: treat it as deleted (it gets re-inserted)
        match[grade_id(t)] = (i, f"position, {score:.0%} similar")
        used.add(i)
    return match


def repair(submitted: NotebookNode, release: NotebookNode) -> tuple[NotebookNode, list[Event]]:
    """Return a repaired copy of ``submitted`` and what was changed."""
    nb = copy.deepcopy(submitted)
    template = [c for c in release.cells if grade_id(c)]
    match = _match(template, nb.cells)
    events: list[Event] = []
    for t in template:
        gid = grade_id(t)
        if gid not in match:
            continue
        i, how = match[gid]
        cell = nb.cells[i]
        if grade_id(cell) != gid:
            cell.setdefault("metadata", NotebookNode())
            cell.metadata["nbgrader"] = copy.deepcopy(t.metadata["nbgrader"])
            for key in ("deletable", "editable"):
                if key in t.metadata:
                    cell.metadata[key] = t.metadata[key]
            events.append(Event("metadata_restored", gid, f"matched by {how}"))
        if _locked(t) and _norm(cell.source) != _norm(t.source):
            events.append(Event("edited", gid, "source restored by nbgrader"))
    # Re-insert deleted locked cells after the cell that precedes them in the release.
    inserts = []
    for k, t in enumerate(template):
        gid = grade_id(t)
        if gid in match:
            continue
        if not _locked(t):
            events.append(Event("missing_solution", gid, "no cell to grade as this solution"))
            continue
        before = [match[grade_id(p)][0] for p in template[:k] if grade_id(p) in match]
        inserts.append((max(before, default=-1) + 1, k, t))
        events.append(Event("restored", gid, "deleted cell put back from the source"))
    for pos, _, t in sorted(inserts, key=lambda x: (x[0], x[1]), reverse=True):
        cell = copy.deepcopy(t)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.insert(pos, cell)
    return nb, events
