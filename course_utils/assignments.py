"""Generate student releases and solution notebooks from the assignment sources (issue 8).

One source of truth per assignment: ``assignments/source/<a>/<a>.ipynb`` holds
the solutions between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers and
hidden tests between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.
From it, ``course assignments generate`` writes (both committed):

* ``assignments/release/<a>/`` -- the student version, made by nbgrader's own
  ``generate_assignment`` (solutions replaced by stubs, hidden tests removed);
* ``solutions/<a>.ipynb`` -- the reference notebook for self-study: the
  source with the marker lines removed (solutions and hidden tests kept) and
  no nbgrader metadata, committed WITHOUT outputs (CI executes it).

``course assignments generate --check`` regenerates into a temporary folder
and fails when a committed file differs (cell types, sources, metadata;
outputs and volatile fields ignored).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

import nbformat

from course_utils.grading.sample import strip_markers

REPO_ROOT = Path(__file__).resolve().parents[1]
_VOLATILE = {"execution", "collapsed", "scrolled", "jupyter", "ExecuteTime", "trusted"}


def sources(assignments_dir: Path) -> dict[str, Path]:
    """{assignment: source notebook} for every ``source/<a>/<a>.ipynb``."""
    out = {}
    for folder in sorted((Path(assignments_dir) / "source").glob("*/")):
        nb = folder / f"{folder.name}.ipynb"
        if nb.exists():
            out[folder.name] = nb
    return out


def solution_notebook(source_nb, assignment: str):
    """The self-study notebook: markers stripped, nbgrader metadata dropped, no outputs."""
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        for key in ("deletable", "editable"):
            cell.metadata.pop(key, None)
        cell.source = strip_markers(cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    banner = nbformat.v4.new_markdown_cell(
        f"*Reference solutions for `{assignment}`, generated from "
        f"`assignments/source/{assignment}/{assignment}.ipynb` by "
        "`course assignments generate`. Do not edit: edit the source and regenerate. "
        "Try the exercise in the student version first.*")
    banner.id = f"{assignment[:20]}-solutions"
    nb.cells.insert(0, banner)
    return nb


def _release(assignments_dir: Path, names: list[str], out: Path) -> None:
    """Run nbgrader generate_assignment for ``names`` into ``out/<a>/``."""
    from course_utils.grading.course import check_result, load_config, nbgrader_api

    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        course = Path(tmp)
        for name in names:
            shutil.copytree(Path(assignments_dir) / "source" / name, course / "source" / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        cfg = load_config(course)
        cfg.GenerateAssignment.no_database = True  # as `nbgrader generate_assignment --no-db`
        cfg.SaveCells.enabled = False
        api = nbgrader_api(cfg)
        for name in names:
            check_result(api.generate_assignment(name, force=True, create=False),
                         f"generate_assignment {name}")
            dest = out / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(course / "release" / name, dest)
            for path in dest.rglob("*"):
                if path.is_file():
                    path.chmod(0o644)


def generate(assignments_dir: Path | None = None, solutions_dir: Path | None = None,
             only: list[str] | None = None) -> list[Path]:
    """Write releases and solution notebooks; return the notebooks written."""
    assignments_dir = Path(assignments_dir or REPO_ROOT / "assignments")
    solutions_dir = Path(solutions_dir or REPO_ROOT / "solutions")
    found = sources(assignments_dir)
    names = [n for n in found if not only or n in only]
    if not names:
        return []
    _release(assignments_dir, names, assignments_dir / "release")
    solutions_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        nb = nbformat.read(found[name], as_version=4)
        path = solutions_dir / f"{name}.ipynb"
        nbformat.write(solution_notebook(nb, name), path)
        written += [assignments_dir / "release" / name / f"{name}.ipynb", path]
    return written


def _normal(nb) -> list:
    def meta(m):
        return {k: v for k, v in sorted(m.items()) if k not in _VOLATILE}
    return [nb.metadata.get("kernelspec", {}).get("name")] + [
        (c.cell_type, c.source, meta(c.metadata)) for c in nb.cells]


def check(assignments_dir: Path | None = None, solutions_dir: Path | None = None) -> list[str]:
    """Problems with committed generated files ([] when everything is fresh)."""
    assignments_dir = Path(assignments_dir or REPO_ROOT / "assignments")
    solutions_dir = Path(solutions_dir or REPO_ROOT / "solutions")
    names = list(sources(assignments_dir))
    problems = []
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(assignments_dir / "source", tmp / "a" / "source")
        generate(tmp / "a", tmp / "s", names)
        pairs = []
        for name in names:
            pairs += [(tmp / "a" / "release" / name / f"{name}.ipynb",
                       assignments_dir / "release" / name / f"{name}.ipynb",
                       f"assignments/release/{name}/{name}.ipynb"),
                      (tmp / "s" / f"{name}.ipynb", solutions_dir / f"{name}.ipynb",
                       f"solutions/{name}.ipynb")]
        for fresh, committed, rel in pairs:
            if not committed.exists():
                problems.append(f"missing: {rel}")
            elif _normal(nbformat.read(fresh, 4)) != _normal(nbformat.read(committed, 4)):
                problems.append(f"stale: {rel}")
        release_root = assignments_dir / "release"
        for extra in sorted(release_root.glob("*/")) if release_root.exists() else []:
            if extra.name not in names:
                problems.append(f"orphan: release/{extra.name} has no source")
    return problems
