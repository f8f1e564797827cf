"""Colab readiness: each notebook's setup cell, run in a real IPython shell with a
stubbed `google.colab` and a recording `%pip`, installs exactly the pinned package
once, visibly; outside Colab it installs nothing. The README links come from one list."""

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from course_utils.colab import COURSE_REF, LESSON_EXTRAS, colab_url, lesson_extras, pip_requirement
from course_utils.syllabus import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
PRESENT = [n for n in NOTEBOOKS if (ROOT / "notebooks" / n).exists()]


def _setup_cell(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


@pytest.fixture
def shell(monkeypatch):
    ip = InteractiveShell.instance()
    recorded = []
    ip.register_magic_function(lambda line: recorded.append(line), magic_kind="line", magic_name="pip")
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    yield ip, recorded
    InteractiveShell.clear_instance()


def _run(ip, source):
    result = ip.run_cell(source)
    assert result.error_before_exec is None and result.error_in_exec is None, result


@pytest.mark.parametrize("name", PRESENT)
def test_setup_cell_in_colab_runs_one_visible_pinned_pip_install(name, shell, monkeypatch, capsys):
    ip, recorded = shell
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    source = _setup_cell(name)
    assert source.count("%pip install") == 1 and "except ImportError" not in source
    _run(ip, source)
    assert recorded == [f'install -q "{pip_requirement(name)}"']
    assert f"@{COURSE_REF}" in recorded[0] and recorded[0].count("git+https://") == 1
    out = capsys.readouterr().out
    assert "torch" in out and "device:" in out
    import os
    assert os.environ.get("COURSE_ALLOW_DOWNLOAD") == "1"  # Colab has a network: real data on


def test_each_lesson_installs_only_the_extras_it_needs():
    base = pip_requirement("00_setup.ipynb")
    assert base.startswith("pytorch-under-the-hood @ git+https://") and base.endswith(f"@{COURSE_REF}")
    for lesson in ["00", "01", "02", "03", "04", "05"]:
        assert lesson_extras(lesson) == () and "[" not in pip_requirement(lesson)
    assert pip_requirement("06 The text pipeline").startswith("pytorch-under-the-hood[text,bert] @ ")
    assert lesson_extras("07_transformer_bert.ipynb") == ("text", "bert")
    assert lesson_extras("08") == ("export",)
    # Local-only extras bring a Jupyter server, a kernel or the grader: never in Colab.
    assert not {e for extras in LESSON_EXTRAS.values() for e in extras} & {"lab", "grading", "test", "all"}


@pytest.mark.parametrize("name", PRESENT)
def test_setup_cell_outside_colab_installs_nothing(name, shell, capsys):
    ip, recorded = shell
    assert "google.colab" not in sys.modules
    _run(ip, _setup_cell(name))
    assert recorded == []
    out = capsys.readouterr().out
    assert out.startswith(f"== {name[:2]} ") and "device:" in out


def test_readme_links_every_notebook_from_one_list():
    readme = (ROOT / "README.md").read_text()
    for name in NOTEBOOKS:
        assert colab_url(name) in readme, name
    check = subprocess.run([sys.executable, "scripts/sync_readme.py", "--check"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_notebooks_load_nothing_from_a_cdn_and_use_no_absolute_paths():
    cdn = re.compile(r"https?://[^\s\"']*(cdn|unpkg|jsdelivr|cdnjs)", re.I)
    absolute = re.compile(r"[\"'](/home/|/root/|/Users/|/work/|C:\\\\)")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            assert not cdn.search(cell.source), f"{path.name}: CDN reference"
            if cell.cell_type == "code":
                assert not absolute.search(cell.source), f"{path.name}: absolute path in {cell.source[:80]}"
