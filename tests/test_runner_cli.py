"""`course run` and the runner: a passing notebook, a failing cell named, bad paths explained."""

import nbformat
import pytest

from course_utils.cli import main
from course_utils.runner import NotebookPathError, read_notebook, run_notebook


def _write(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_passing_notebook_sees_fast_mode(tmp_path):
    path = _write(tmp_path / "ok.ipynb", "import os\nassert os.environ['COURSE_FAST'] == '1'", "x = 1")
    result = run_notebook(path, fast=True, out_dir=tmp_path / "out")
    assert result.ok and result.seconds > 0
    executed = nbformat.read(tmp_path / "out" / "ok.ipynb", as_version=4)
    assert executed.cells[2].execution_count == 2
    assert nbformat.read(path, as_version=4).cells[1].get("execution_count") is None  # source untouched


def test_failing_cell_is_named(tmp_path):
    path = _write(tmp_path / "bad.ipynb", "x = 1", "# compute\ny = x / 0", "z = 3")
    result = run_notebook(path, fast=True)
    assert not result.ok
    assert result.failed_cell == 2 and "y = x / 0" in result.cell_excerpt
    assert result.error.startswith("ZeroDivisionError")


def test_cell_timeout_is_reported(tmp_path):
    path = _write(tmp_path / "slow.ipynb", "x = 1", "import time\ntime.sleep(30)")
    result = run_notebook(path, fast=True, timeout=2)
    assert not result.ok and result.failed_cell == 2 and result.cell_excerpt == "import time"
    assert "timed out after 2 s" in result.error


@pytest.mark.parametrize("content, words", [
    (None, "no such file"), ("{not json", "not a valid notebook"), ('{"cells": 3}', "not a valid notebook")])
def test_bad_paths_get_one_line_errors(tmp_path, content, words, capsys):
    path = tmp_path / "x.ipynb"
    if content is not None:
        path.write_text(content)
    with pytest.raises(NotebookPathError, match=words):
        read_notebook(path)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_directory_and_wrong_suffix(tmp_path):
    with pytest.raises(NotebookPathError, match="is a folder"):
        read_notebook(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(NotebookPathError, match="not a notebook"):
        read_notebook(other)


def test_course_run_prints_a_table_and_fails_on_failure(tmp_path, capsys):
    good = _write(tmp_path / "good.ipynb", "1 + 1")
    bad = _write(tmp_path / "bad.ipynb", "raise ValueError('nope')")
    assert main(["run", str(good), str(bad), "--fast"]) == 1
    out = capsys.readouterr().out
    assert "good.ipynb" in out and "PASS" in out and "FAIL" in out and "ValueError: nope" in out
    assert main(["run", str(good), "--fast"]) == 0


def test_course_lab_passes_jupyterlab_flags_on(monkeypatch):
    import subprocess

    from course_utils import cli

    seen = []
    monkeypatch.setattr(cli, "_run_forwarding_signals", lambda command: seen.append(command) or 0)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("must not start JupyterLab"))
    assert cli.main(["lab", "--no-browser", "--port", "8890"]) == 0
    command = seen[0]
    assert command[1:3] == ["-m", "jupyterlab"]
    at = command.index("--no-browser")
    assert command[at:at + 3] == ["--no-browser", "--port", "8890"]
    assert any(a.startswith("--ServerApp.root_dir=") and a.endswith("notebooks")
                                     for a in command)
    assert "--LabApp.news_url=None" in command  # offline by default


def test_unknown_flags_are_still_errors_elsewhere(capsys):
    with pytest.raises(SystemExit):
        main(["doctor", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_lessons_run_in_lesson_mode_even_if_grading_leaked(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GRADING", "1")
    path = _write(tmp_path / "mode.ipynb",
                  "from course_utils.checks import grading_mode\nassert not grading_mode()")
    assert run_notebook(path, fast=True).ok
