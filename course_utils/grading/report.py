"""The grading summary: one row per student, printed as a table and saved as CSV (issue 8)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Row:
    student: str
    total: float
    max_score: float
    scores: dict = field(default_factory=dict)    # test grade_id -> points earned
    flags: list = field(default_factory=list)     # e.g. timeout:add_one, tamper, restored:test_x
    seconds: float = 0.0                          # wall time of this student's autograde
    file: str = ""                                # the inbox file that was graded
    details: list = field(default_factory=list)   # human-readable reasons behind the flags


def _tests(rows: list[Row]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for name in row.scores:
            if name not in names:
                names.append(name)
    return names


def write_csv(rows: list[Row], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tests = _tests(rows)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "total", "max_score", *tests, "flags", "seconds", "file",
                    "details"])
        for r in rows:
            w.writerow([r.student, f"{r.total:g}", f"{r.max_score:g}",
                        *[f"{r.scores[t]:g}" if t in r.scores else "" for t in tests],
                        " ".join(r.flags), f"{r.seconds:.1f}", r.file, " | ".join(r.details)])
    return path


def format_table(rows: list[Row], title: str = "") -> str:
    tests = _tests(rows)
    head = ["student", "total", *tests, "time s", "flags"]
    body = [[r.student, f"{r.total:g}/{r.max_score:g}",
             *[f"{r.scores[t]:g}" if t in r.scores else "-" for t in tests],
             f"{r.seconds:.1f}", " ".join(r.flags) or "-"] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    widths[-1] = min(widths[-1], 70)
    lines = [title] if title else []
    for cells in [head, ["-" * w for w in widths], *body]:
        lines.append("  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def print_table(rows: list[Row], title: str = "") -> None:
    print(format_table(rows, title))
