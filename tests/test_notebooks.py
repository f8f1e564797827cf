"""Every notebook: clean when committed, tagged with its concepts, set up the same way,
and executing top to bottom in a fresh kernel in fast mode."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.colab import setup_cell_source
from course_utils.runner import run_notebook
from course_utils.syllabus import CONCEPTS, NOTEBOOKS, PLANNED, PLANNED_NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _tracked_notebooks():
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True)
    tracked = [ROOT / p for p in out.stdout.split()] if out.returncode == 0 else []
    return sorted(set(tracked) | set(LESSONS) | set(SOLUTIONS))


@pytest.mark.parametrize("path", _tracked_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them"


def test_every_lesson_notebook_exists():
    missing = [name for name in NOTEBOOKS if not (ROOT / "notebooks" / name).exists()]
    assert not missing, f"missing lesson notebooks: {missing}"


def _tags(path):
    nb = nbformat.read(path, as_version=4)
    return {t for c in nb.cells for t in c.get("metadata", {}).get("tags", [])}


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if (ROOT / "notebooks" / n).exists()])
def test_every_concept_is_tagged_in_its_notebook(name):
    tags = _tags(ROOT / "notebooks" / name)
    wanted = {f"concept:{cid}" for cid, (nb, _) in CONCEPTS.items()
              if nb == name and cid not in PLANNED}
    assert wanted <= tags, f"{name} lacks tags {sorted(wanted - tags)}"
    planned = {f"concept:{cid}" for cid in PLANNED}
    early = sorted(tags & planned)
    assert not early, (f"{name} tags {early}, still listed as planned in course_utils/syllabus.py: "
                       "remove them from PLANNED in the commit that teaches them")
    stray = {t for t in tags if t.startswith("concept:") and t not in wanted and t not in planned}
    assert not stray, f"{name} has concept tags that belong elsewhere or do not exist: {sorted(stray)}"


def test_concept_tags_sit_on_cells_with_content():
    empty = []
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        empty += [f"{name} cell {i}" for i, c in enumerate(nb.cells) if not c.source.strip()
                  and any(t.startswith("concept:") for t in c.get("metadata", {}).get("tags", []))]
    assert not empty, f"concept tags on empty cells: {empty}"


def test_lessons_are_either_landed_or_planned():
    on_disk = {p.name for p in LESSONS}
    assert not set(NOTEBOOKS) & set(PLANNED_NOTEBOOKS), "a lesson is both landed and planned"
    landed_but_planned = sorted(on_disk & set(PLANNED_NOTEBOOKS))
    assert not landed_but_planned, (f"{landed_but_planned} exist: move them from PLANNED_NOTEBOOKS "
                                    "to NOTEBOOKS in course_utils/syllabus.py")
    unknown = sorted(on_disk - set(NOTEBOOKS))
    assert not unknown, f"notebooks/ holds lessons the course metadata does not know: {unknown}"
    lessons_of_ids = {nb for nb, _ in CONCEPTS.values()}
    assert lessons_of_ids == set(NOTEBOOKS) | set(PLANNED_NOTEBOOKS)


def test_course_metadata_matches_the_syllabus():
    syllabus = ROOT.parent / "shared" / "SYLLABUS.md"
    if not syllabus.exists():
        pytest.skip("shared/SYLLABUS.md is not beside this checkout")
    ids = set(re.findall(r"^- ([A-Z]\d+) ", syllabus.read_text(), flags=re.M))
    assert ids == set(CONCEPTS), f"syllabus ids differ: {sorted(ids ^ set(CONCEPTS))}"


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if (ROOT / "notebooks" / n).exists()])
def test_setup_cell_is_the_generated_one(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == setup_cell_source(f"{name[:2]} {NOTEBOOKS[name]}"), (
        f"{name}: first code cell drifted; run `python scripts/sync_setup_cells.py`")


def test_no_file_imports_torchtext():
    pattern = re.compile(r"^\s*(import torchtext|from torchtext)", re.M)
    offenders = []
    for path in ROOT.rglob("*"):
        if any(part in {".venv", ".git", "node_modules"} for part in path.parts):
            continue
        if path.suffix == ".py" and pattern.search(path.read_text(errors="ignore")):
            offenders.append(path)
        elif path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            if any(pattern.search(c.source) for c in nb.cells if c.cell_type == "code"):
                offenders.append(path)
    assert not offenders, f"torchtext imported in {offenders}"


@pytest.mark.notebook
@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_executes_in_fast_mode(path):
    # Executed copies are kept (gitignored) so a person can open what CI saw.
    out_dir = ROOT / "artifacts" / "executed" / path.parent.name
    # Lessons run with static widget pictures, so the book test can publish these very runs;
    # the solutions run the interactive widgets.
    static = {"COURSE_STATIC_WIDGETS": "1"} if path.parent.name == "notebooks" else {}
    result = run_notebook(path, fast=True, timeout=600, out_dir=out_dir, extra_env=static)
    assert result.ok, f"{path.parent.name}/{path.name} failed at {result.summary()}"
    assert not result.false_verdicts, (f"{path.parent.name}/{path.name} printed a false verdict "
                                       f"(the run contradicts the lesson's text): {result.false_verdicts}")
    if path.parent.name == "solutions" and path.name in NOTEBOOKS:
        # A lesson's worked solutions: every exercise check must pass.
        nb = nbformat.read(out_dir / path.name, as_version=4)
        bad = [f"cell {i}: {line}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.get("outputs", []) if o.get("output_type") == "stream"
               for line in o.get("text", "").splitlines() if line.startswith(("FAIL", "TODO"))]
        assert not bad, f"solutions/{path.name}: checks that do not pass: {bad[:5]}"
    print(f"{path.name}: {result.seconds:.1f} s, {result.verdicts} verdict(s)")
