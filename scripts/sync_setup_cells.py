"""Tidy the lesson notebooks: the generated setup cell first, no outputs, plain metadata.

Usage: python scripts/sync_setup_cells.py [--check]

- The first code cell of every lesson is rewritten from course_utils.colab
  (one place decides what Colab installs, per lesson) and tagged `setup`; a
  lesson written in lessons/ gets the same cell in its source.
- Outputs and execution counts are stripped (notebooks are committed clean).
- Notebook metadata is reduced to the python3 kernelspec (authoring tools such
  as jupytext leave their own keys behind).
With --check nothing is written; exit 1 lists the notebooks that would change.
"""

import sys
from pathlib import Path

import nbformat

from course_utils.colab import setup_cell_source
from course_utils.syllabus import NOTEBOOKS, PLANNED_NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def tidy(nb, title: str) -> None:
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None:
        first = nbformat.v4.new_code_cell("")
        nb.cells.insert(1 if nb.cells else 0, first)
    first.source = setup_cell_source(title)
    tags = first.metadata.setdefault("tags", [])
    if "setup" not in tags:
        tags.append("setup")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in [k for k in cell.metadata if k not in {"tags", "nbgrader", "editable", "deletable"}]:
            del cell.metadata[key]
    nb.metadata = nbformat.NotebookNode(
        kernelspec=KERNELSPEC, language_info={"name": "python", "pygments_lexer": "ipython3"})


def main(check: bool) -> int:
    changed = []
    for name, title in {**NOTEBOOKS, **PLANNED_NOTEBOOKS}.items():
        for path in (ROOT / "lessons" / name, ROOT / "notebooks" / name):
            if not path.exists():
                continue
            before = path.read_text()
            nb = nbformat.read(path, as_version=4)
            tidy(nb, f"{name[:2]} {title}")
            after = nbformat.writes(nb) + "\n"
            if after != before:
                changed.append(str(path.relative_to(ROOT)))
                if not check:
                    path.write_text(after)
    if changed:
        print(("would change: " if check else "tidied: ") + ", ".join(changed))
    return 1 if (check and changed) else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
