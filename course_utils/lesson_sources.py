"""Lesson notebooks and their worked solutions, generated from one source (``course lessons``).

A lesson with exercises is written once, in ``lessons/NN_name.ipynb``, with each
answer between marker lines, the same markers the assignments use::

    def storage_slot(t, index):
        ### BEGIN SOLUTION
        return t.storage_offset() + sum(i * s for i, s in zip(index, t.stride()))
        ### END SOLUTION

``course lessons generate`` writes two notebooks from it (both committed,
without outputs):

* ``notebooks/NN_name.ipynb``, what the learner opens: each marked region is
  replaced by a stub, ``return NOT_DONE  # YOUR CODE HERE`` at the region's
  indentation. A region that is not the body of a function names its own stub
  on the opening line: ``### BEGIN SOLUTION stub: answer = NOT_DONE``;
* ``solutions/NN_name.ipynb``, the worked answers: the marker lines removed.

``course lessons generate --check`` fails when a committed file differs from
what the source generates. A lesson without a source in ``lessons/`` is edited
in ``notebooks/`` directly.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
_BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION(?:\s+stub:\s*(?P<stub>.*\S))?\s*$")
_END = re.compile(r"^\s*### END SOLUTION\s*$")
_VOLATILE = {"execution", "collapsed", "scrolled", "jupyter", "ExecuteTime", "trusted"}


class MarkerError(ValueError):
    """A source cell whose solution markers do not pair up."""


def _split(source: str, where: str) -> tuple[str, str]:
    """(stub version, solution version) of one cell's source."""
    stub, solution, region = [], [], None
    for number, line in enumerate(source.split("\n"), start=1):
        begin = _BEGIN.match(line)
        if begin:
            if region is not None:
                raise MarkerError(f"{where}, line {number}: BEGIN SOLUTION inside another region")
            indent, own = begin.group("indent"), begin.group("stub")
            if own is None and not indent:
                raise MarkerError(f"{where}, line {number}: a region outside a function needs "
                                  "its stub, e.g. '### BEGIN SOLUTION stub: answer = NOT_DONE'")
            region = f"{indent}{own}" if own else f"{indent}return NOT_DONE  # YOUR CODE HERE"
            continue
        if _END.match(line):
            if region is None:
                raise MarkerError(f"{where}, line {number}: END SOLUTION without BEGIN")
            stub.append(region)
            region = None
            continue
        solution.append(line)
        if region is None:
            stub.append(line)
    if region is not None:
        raise MarkerError(f"{where}: BEGIN SOLUTION is never closed")
    return "\n".join(stub), "\n".join(solution)


def _clean(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in ("deletable", "editable"):
            cell.metadata.pop(key, None)


def split_notebook(source_nb, name: str):
    """(learner notebook, solution notebook) from a lesson source."""
    lesson, solution = copy.deepcopy(source_nb), copy.deepcopy(source_nb)
    for i, (a, b) in enumerate(zip(lesson.cells, solution.cells)):
        if a.cell_type != "code":
            continue
        a.source, b.source = _split(a.source, f"{name} cell {i}")
    _clean(lesson)
    _clean(solution)
    banner = nbformat.v4.new_markdown_cell(
        f"*Worked solutions for lesson `{name}`, generated from `lessons/{name}` by "
        "`course lessons generate`. Do not edit: edit the source and regenerate. "
        "Try each exercise in the lesson first.*")
    banner.id = f"{Path(name).stem[:24]}-solutions"
    solution.cells.insert(0, banner)
    return lesson, solution


def sources(root: Path | None = None) -> list[Path]:
    return sorted((Path(root or REPO_ROOT) / "lessons").glob("*.ipynb"))


def generate(root: Path | None = None, out_root: Path | None = None,
             only: list[str] | None = None) -> list[Path]:
    """Write ``notebooks/`` and ``solutions/`` copies of every lesson source (or of those whose
    number is in ``only``, e.g. ``["03"]``); return them."""
    root = Path(root or REPO_ROOT)
    out_root = Path(out_root or root)
    chosen = [src for src in sources(root) if not only or src.name[:2] in only]
    if only and len(chosen) < len(set(only)):
        known = ", ".join(src.name[:2] for src in sources(root))
        raise ValueError(f"no lesson source for {sorted(set(only) - {s.name[:2] for s in chosen})}; "
                         f"lessons/ has {known}")
    written = []
    for src in chosen:
        lesson, solution = split_notebook(nbformat.read(src, as_version=4), src.name)
        for folder, nb in (("notebooks", lesson), ("solutions", solution)):
            path = out_root / folder / src.name
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            written.append(path)
    return written


def _normal(nb) -> list:
    def meta(m):
        return {k: v for k, v in sorted(m.items()) if k not in _VOLATILE}
    return [(c.cell_type, c.source, meta(c.metadata)) for c in nb.cells]


def check(root: Path | None = None) -> list[str]:
    """Committed lesson/solution notebooks that differ from their source ([] when fresh)."""
    import tempfile

    root = Path(root or REPO_ROOT)
    problems = []
    with tempfile.TemporaryDirectory(prefix="course-lessons-") as tmp:
        for fresh in generate(root, Path(tmp)):
            rel = fresh.relative_to(tmp)
            committed = root / rel
            if not committed.exists():
                problems.append(f"missing: {rel}")
            elif _normal(nbformat.read(fresh, 4)) != _normal(nbformat.read(committed, 4)):
                problems.append(f"stale: {rel} (run `course lessons generate`)")
    return problems
