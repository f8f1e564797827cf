"""The local progress record: a PASS with an exercise id is remembered, nowhere else."""

import json

import nbformat
import pytest

from course_utils import progress
from course_utils.checks import set_grading_mode
from course_utils.cli import main


@pytest.fixture
def learner(data_home, monkeypatch):
    """A learner's machine: an empty data cache, progress recording on, lesson mode."""
    monkeypatch.delenv("COURSE_NO_PROGRESS", raising=False)
    set_grading_mode(False)
    yield data_home
    set_grading_mode(None)


def test_the_test_suite_records_nothing(data_home):
    assert not progress.enabled()
    assert progress.record_pass("01.3", "x") is False
    assert not (data_home / progress.FILENAME).exists()


def test_a_pass_is_recorded_once_with_its_name(learner):
    assert progress.record_pass("01.3", "storage slot")
    assert progress.record_pass("01.3", "storage slot")
    assert progress.record_pass("02.1", "sigmoid grad")
    done = progress.load()
    assert sorted(done) == ["01.3", "02.1"] and done["01.3"]["name"] == "storage slot"
    data = json.loads((learner / progress.FILENAME).read_text())
    assert data["version"] == 1


@pytest.mark.parametrize("bad", [None, "", "1.3", "01-3", "01.", "../01.3"])
def test_malformed_ids_are_not_recorded(learner, bad):
    assert progress.record_pass(bad, "x") is False
    assert progress.load() == {}


def test_grading_mode_records_nothing(learner):
    set_grading_mode(True)
    assert progress.record_pass("01.3", "x") is False
    assert progress.load() == {}


def test_a_broken_record_reads_as_empty_and_is_rewritten(learner):
    progress.progress_file().write_text("{not json")
    assert progress.load() == {}
    assert progress.record_pass("00.1", "row means")
    assert list(progress.load()) == ["00.1"]


def _lesson(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_report_lists_each_lessons_exercises_in_order(learner, tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _lesson(notebooks / "01_tensors.ipynb", 'check_equal("a", a, 1, exercise="01.10")',
            'check_close("b", b, c, exercise="01.2")\ncheck_true("c", ok, exercise="01.2")')
    _lesson(notebooks / "02_autograd.ipynb", "check_grad(f, x, exercise='02.1')")
    _lesson(notebooks / "03_none.ipynb", "print('no exercises')")
    progress.record_pass("01.10", "a")
    progress.record_pass("09.1", "from elsewhere")
    text = progress.report(notebooks)
    lines = text.splitlines()
    assert lines[0].startswith("01_tensors") and "1/2" in lines[0]
    assert lines[0].index("[ ] 01.2") < lines[0].index("[x] 01.10")  # numeric order, not text order
    assert lines[1].startswith("02_autograd") and "0/1" in lines[1] and "[ ] 02.1" in lines[1]
    assert "03_none" not in text
    assert "09.1" in lines[2]
    assert lines[-1].startswith("1 of 3 exercises done")


def test_course_progress_command(learner, tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "course_utils").mkdir()
    _lesson(tmp_path / "notebooks" / "00_setup.ipynb", 'check_close("m", m, e, exercise="00.1")')
    monkeypatch.chdir(tmp_path)
    progress.record_pass("00.1", "m")
    assert main(["progress"]) == 0
    assert "1/1" in capsys.readouterr().out
    assert main(["progress", "--reset"]) == 0
    assert progress.load() == {}
    assert main(["progress"]) == 0
    assert "0 of 1 exercises done" in capsys.readouterr().out
