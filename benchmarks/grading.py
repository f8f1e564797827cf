"""Benchmark: plain `nbgrader autograde` (serial) vs `course grade` (parallel) (issue 8).

    .venv/bin/python benchmarks/grading.py                      # tiny test assignment
    .venv/bin/python benchmarks/grading.py --assignment ch01_tensors -n 40 --jobs 2

Builds a throw-away course directory in a temp folder, writes ``n`` generated
submissions (``course assignments sample-class``: even students correct, odd
ones leave one exercise undone), then times, on the same submissions:

1. ``nbgrader autograde <a> --force`` (nbgrader's own CLI, one kernel after another);
2. ``course grade <a> INBOX --no-feedback`` (collect + repair + scan + answer key
   + autograde in ``--jobs`` workers, each kernel in its own sandbox, + merge), in a
   fresh copy of the course directory.

Plain nbgrader gets its answer key built beforehand (untimed); ``course grade``
builds its own inside the timed run. CPU time counts every waited-for
descendant: workers, zygotes, sandboxes and kernels.

Both run without feedback generation (``--feedback`` adds it to both). It
prints both wall times, the ratio, the CPU time each used (the machine's other
load does not inflate it) and checks that both gave the same totals.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "grading" / "source"
BIN = Path(sys.executable).parent


def _course(base: Path, assignment: str) -> Path:
    src = ROOT / "assignments" / "source" / assignment
    if not src.exists():
        src = FIXTURE / assignment
    course = base / "course"
    shutil.copytree(src, course / "source" / assignment)
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", course / "nbgrader_config.py")
    return course


def _cpu() -> float:
    # user + system time of every finished descendant (workers, kernels included)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and all its descendants)."""
    start, cpu = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return took, _cpu() - cpu


def _totals(db: Path) -> dict[str, float]:
    query = """SELECT student.id, SUM(COALESCE(grade.manual_score, grade.auto_score, 0))
               FROM grade JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id
               JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id
               JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"""
    with sqlite3.connect(db) as con:
        return {s: round(t, 3) for s, t in con.execute(query)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", default="tiny")
    p.add_argument("-n", type=int, default=40, help="submissions (default 40)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--feedback", action="store_true", help="also generate feedback in both")
    args = p.parse_args(argv)

    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONWARNINGS="ignore", COURSE_GRADING="1")
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        tmp = Path(tmp)
        course = _course(tmp, args.assignment)
        a = args.assignment
        nbgrader = [str(BIN / "nbgrader")]
        _run(nbgrader + ["generate_assignment", a, "--force"], course, env)
        ours_dir = tmp / "course_ours"
        shutil.copytree(course, ours_dir)
        # plain nbgrader's kernels read the answer key from <course>/keys/ (built here, untimed);
        # course grade builds its own, inside its timed run (one run of the source)
        _run([sys.executable, "-m", "course_utils.grading.cli", "assignments", "keys",
              "--course-dir", str(course), "--only", a], ROOT, env)
        inbox = tmp / "inbox"
        from course_utils.grading.sample import write_class
        paths = write_class(course, a, inbox, args.n)
        for path in paths:  # nbgrader's submitted/<student>/<assignment>/ layout
            student = path.name.split("_")[0]
            dest = course / "submitted" / student / a
            dest.mkdir(parents=True)
            shutil.copy(path, dest / f"{a}.ipynb")

        print(f"{args.n} submissions of {a}; {os.cpu_count()} CPU cores; "
              f"course grade uses {args.jobs} worker(s)")
        t_plain, c_plain = _run(nbgrader + ["autograde", a, "--force"], course, env)
        if args.feedback:
            t, c = _run(nbgrader + ["generate_feedback", a, "--force"], course, env)
            t_plain, c_plain = t_plain + t, c_plain + c
        cmd = [sys.executable, "-m", "course_utils.grading.cli", "grade", a, str(inbox),
               "--course-dir", str(ours_dir), "--jobs", str(args.jobs)]
        t_ours, c_ours = _run(cmd + ([] if args.feedback else ["--no-feedback"]), ROOT, env)

        plain, ours = _totals(course / "gradebook.db"), _totals(ours_dir / "gradebook.db")
        same = plain == ours
        for label, t, c in (("nbgrader autograde (serial)", t_plain, c_plain),
                            (f"course grade (-j {args.jobs})", t_ours, c_ours)):
            print(f"{label:28s} wall {t:7.1f} s ({t / args.n:.2f} s/submission)   "
                  f"CPU {c:7.1f} s ({c / args.n:.2f} s/submission)")
        print(f"wall-time ratio nbgrader / course grade: {t_plain / t_ours:.2f}x "
              f"(CPU-time ratio {c_plain / c_ours:.2f}x; on a busy machine wall time "
              "cannot show parallel speed-up, CPU time shows the overhead)")
        print(f"same totals for all {len(plain)} students: {same}")
        if not same:
            diff = {s: (plain.get(s), ours.get(s)) for s in set(plain) | set(ours)
                    if plain.get(s) != ours.get(s)}
            print("differences:", diff)
            raise SystemExit(1)


if __name__ == "__main__":
    main()
