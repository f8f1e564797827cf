"""Regenerate the README's notebook table (with Open-in-Colab links) from one list.

Usage: python scripts/sync_readme.py [--check]
The list is course_utils.syllabus.NOTEBOOKS; links point at the ref pinned in
course_utils.colab. The table sits between the two marker comments.
"""

import sys
from pathlib import Path

from course_utils.colab import colab_url
from course_utils.syllabus import NOTEBOOKS, concepts_for

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- notebooks:begin -->", "<!-- notebooks:end -->"


def table() -> str:
    rows = ["| # | notebook | what you learn | |", "|---|---|---|---|"]
    for name, title in NOTEBOOKS.items():
        ids = ", ".join(concepts_for(name, planned=False))
        badge = f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)})"
        rows.append(f"| {name[:2]} | [{title}](notebooks/{name}) | {ids} | {badge} |")
    return "\n".join(rows)


def main(check: bool) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + table() + "\n" + text[stop:]
    if new == text:
        return 0
    if check:
        print("README notebook table is stale: run python scripts/sync_readme.py")
        return 1
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
