"""Assignment sources follow the course's nbgrader conventions; generated files are fresh (issue 8).

Conventions (assignments/README.md):
* ``assignments/source/<a>/<a>.ipynb`` for the seven chapters;
* >= 3 graded test cells with points, at least one with hidden tests;
* solution cells ``<name>`` with ``### BEGIN/END SOLUTION``; tests ``test_<name>...``;
* a debugging task: solution ``debug_<name>`` tested by ``test_debug_<name>...``;
* the first code cell is read-only and turns grading mode on;
* no outputs; release and solutions regenerated (``course assignments generate``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils import assignments

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ROOT / "assignments"
CHAPTERS = ["ch01_tensors", "ch02_autograd", "ch03_modules", "ch04_data", "ch05_cnn",
            "ch06_text", "ch07_transformer", "ch08_compile", "ch09_distributed", "ch10_debugging"]
SOURCES = assignments.sources(ASSIGNMENTS)


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def test_every_chapter_has_an_assignment():
    missing = [a for a in CHAPTERS if a not in SOURCES]
    assert not missing, f"no source notebook for {missing} (assignments/source/<a>/<a>.ipynb)"


@pytest.fixture(params=sorted(SOURCES), scope="module")
def source(request):
    return request.param, nbformat.read(SOURCES[request.param], as_version=4)


def test_graded_tests_points_and_hidden_tests(source):
    name, nb = source
    tests = [c for c in nb.cells if _nbg(c).get("grade") and not _nbg(c).get("solution")]
    assert len(tests) >= 3, f"{name}: {len(tests)} graded test cells, need >= 3"
    for cell in tests:
        assert cell.cell_type == "code" and _nbg(cell).get("locked") is True, _nbg(cell)
        assert float(_nbg(cell).get("points", 0)) > 0, f"{name}: {_nbg(cell)['grade_id']} has no points"
        assert "check_" in cell.source, f"{name}: {_nbg(cell)['grade_id']} should use course_utils.checks"
    hidden = [c for c in tests if "### BEGIN HIDDEN TESTS" in c.source]
    assert hidden, f"{name}: no test cell with ### BEGIN HIDDEN TESTS"
    for cell in hidden:
        assert cell.source.count("### BEGIN HIDDEN TESTS") == cell.source.count("### END HIDDEN TESTS")


def test_grade_ids_and_debugging_task(source):
    name, nb = source
    ids = [_nbg(c)["grade_id"] for c in nb.cells if _nbg(c).get("grade_id")]
    assert len(ids) == len(set(ids)), f"{name}: duplicate grade ids"
    assert all(_nbg(c).get("schema_version") == 3 for c in nb.cells if _nbg(c))
    solutions = [c for c in nb.cells if _nbg(c).get("solution")]
    tests = [_nbg(c)["grade_id"] for c in nb.cells if _nbg(c).get("grade") and not _nbg(c).get("solution")]
    assert all(t.startswith("test_") for t in tests), f"{name}: test ids must start with test_: {tests}"
    for cell in solutions:
        gid = _nbg(cell)["grade_id"]
        if cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, gid
        assert any(t.startswith(f"test_{gid}") for t in tests), f"{name}: no test_{gid}* cell"
    debug = [_nbg(c)["grade_id"] for c in solutions if _nbg(c)["grade_id"].startswith("debug_")]
    assert debug, f"{name}: no debugging task (a solution cell with grade_id debug_<name>)"
    assert any(t.startswith("test_debug_") for t in tests)


def test_setup_cell_turns_grading_mode_on_and_no_outputs(source):
    name, nb = source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert _nbg(code[0]).get("locked") and not _nbg(code[0]).get("solution"), \
        f"{name}: the first code cell must be read-only"
    assert "set_grading_mode(True)" in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: outputs"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_release_hides_solutions_and_hidden_tests(source):
    name, nb = source
    path = ASSIGNMENTS / "release" / name / f"{name}.ipynb"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} missing: run `course assignments generate`")
    text = path.read_text()
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    released = nbformat.read(path, as_version=4)
    for cell in released.cells:
        if _nbg(cell).get("solution") and cell.cell_type == "code":
            assert "raise NotImplementedError()" in cell.source


def test_generated_files_are_not_stale():
    if not SOURCES:
        pytest.skip("no assignment sources yet")
    problems = assignments.check(ASSIGNMENTS, ROOT / "solutions")
    assert problems == [], "run `course assignments generate`:\n" + "\n".join(problems)


def test_stale_check_detects_an_edit(tmp_path):
    fixture = ROOT / "tests" / "fixtures" / "grading" / "source"
    course, sols = tmp_path / "a", tmp_path / "s"
    (course / "source").mkdir(parents=True)
    import shutil
    shutil.copytree(fixture / "tiny", course / "source" / "tiny")
    assignments.generate(course, sols)
    assert assignments.check(course, sols) == []
    nb = nbformat.read(course / "source" / "tiny" / "tiny.ipynb", 4)
    nb.cells[3].source = nb.cells[3].source.replace("x + 1", "1 + x")
    nbformat.write(nb, course / "source" / "tiny" / "tiny.ipynb")
    assert assignments.check(course, sols) == ["stale: solutions/tiny.ipynb"]
    solution = nbformat.read(sols / "tiny.ipynb", 4)
    assert "### BEGIN SOLUTION" not in solution.cells[4].source
    assert "return x + 1" in solution.cells[4].source


def test_tamper_scan_never_flags_the_reference_solutions(source):
    # `course grade` voids tests after code its static scan flags: the course's own
    # answers (filled into the student release) must never be flagged.
    from course_utils.grading.sample import fill, solutions
    from course_utils.grading.tamper import scan_notebook

    name, nb = source
    path = ASSIGNMENTS / "release" / name / f"{name}.ipynb"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} missing: run `course assignments generate`")
    answered = fill(nbformat.read(path, as_version=4), solutions(nb))
    assert [str(f) for f in scan_notebook(answered)] == []
