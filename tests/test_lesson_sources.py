"""Lesson sources in lessons/: markers split into the learner's stub and the worked solution."""

import nbformat
import pytest

from course_utils import lesson_sources
from course_utils.lesson_sources import MarkerError, split_notebook


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_function_region_becomes_a_not_done_stub():
    src = "def f(x):\n    y = x\n    ### BEGIN SOLUTION\n    return y * 2\n    ### END SOLUTION\n"
    lesson, solution = split_notebook(_nb(src), "99_demo.ipynb")
    assert lesson.cells[0].source == "def f(x):\n    y = x\n    return NOT_DONE  # YOUR CODE HERE\n"
    assert solution.cells[1].source == "def f(x):\n    y = x\n    return y * 2\n"
    ns = {"NOT_DONE": object()}
    exec(lesson.cells[0].source, ns)
    assert ns["f"](3) is ns["NOT_DONE"]
    exec(solution.cells[1].source, ns)
    assert ns["f"](3) == 6


def test_top_level_region_names_its_stub():
    src = "### BEGIN SOLUTION stub: answer = NOT_DONE\nanswer = 42\n### END SOLUTION\nprint(answer)"
    lesson, solution = split_notebook(_nb(src), "99_demo.ipynb")
    assert lesson.cells[0].source == "answer = NOT_DONE\nprint(answer)"
    assert solution.cells[1].source == "answer = 42\nprint(answer)"


@pytest.mark.parametrize("src", [
    "### BEGIN SOLUTION\nx = 1\n### END SOLUTION",          # top level without a stub
    "def f():\n    ### BEGIN SOLUTION\n    return 1\n",       # never closed
    "def f():\n    return 1\n    ### END SOLUTION",           # END without BEGIN
    "def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n"])
def test_broken_markers_are_reported(src):
    with pytest.raises(MarkerError):
        split_notebook(_nb(src), "99_demo.ipynb")


def test_committed_lessons_and_solutions_match_their_sources():
    problems = lesson_sources.check()
    assert not problems, f"{problems}: run `course lessons generate`"


def test_check_detects_an_edit(tmp_path):
    (tmp_path / "lessons").mkdir()
    nb = _nb("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    nbformat.write(nb, tmp_path / "lessons" / "99_demo.ipynb")
    lesson_sources.generate(tmp_path)
    assert lesson_sources.check(tmp_path) == []
    edited = nbformat.read(tmp_path / "notebooks" / "99_demo.ipynb", 4)
    edited.cells[0].source += "\n# hand edit"
    nbformat.write(edited, tmp_path / "notebooks" / "99_demo.ipynb")
    assert lesson_sources.check(tmp_path) == ["stale: notebooks/99_demo.ipynb (run `course lessons generate`)"]


def test_generate_only_some_lessons_leaves_the_others(tmp_path):
    (tmp_path / "lessons").mkdir()
    for name in ("98_one.ipynb", "99_two.ipynb"):
        nbformat.write(_nb("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
                       tmp_path / "lessons" / name)
    written = lesson_sources.generate(tmp_path, only=["99"])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "notebooks/99_two.ipynb", "solutions/99_two.ipynb"]
    assert not (tmp_path / "notebooks" / "98_one.ipynb").exists()
    with pytest.raises(ValueError, match="no lesson source for \\['42'\\]"):
        lesson_sources.generate(tmp_path, only=["42"])
