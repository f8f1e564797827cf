"""Command line for grading: ``course grade`` and ``course assignments`` (issue 8).

The course CLI calls :func:`register` with its argparse subparsers; each
subcommand sets ``func`` (called with the parsed args, returns an exit code).
Without the course CLI: ``python -m course_utils.grading.cli grade ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from course_utils.grading.course import ASSIGNMENTS_DIR, DEFAULT_PATTERN

_MISSING = ("nbgrader is not installed: pip install -e '.[grading]' "
            "(or: pip install 'nbgrader>=0.9.6,<0.10')")


def _needs_nbgrader(handler):
    def run(args) -> int:
        try:
            import nbgrader  # noqa: F401
        except ImportError:
            print(_MISSING, file=sys.stderr)
            return 2
        return handler(args)
    run.__name__ = handler.__name__
    return run


def _grade(args) -> int:
    from course_utils.grading.answer_key import AnswerKeyError
    from course_utils.grading.pipeline import Options, SandboxUnavailable, grade

    opts = Options(jobs=args.jobs, cell_timeout=args.timeout, memory_mb=args.memory_mb,
                   pattern=args.pattern, feedback=not args.no_feedback, force=args.force,
                   csv=args.csv, sandbox=not args.no_sandbox)
    try:
        summary = grade(args.assignment, args.inbox, args.course_dir, opts)
    except (SandboxUnavailable, AnswerKeyError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"graded {summary.graded}, resumed {summary.resumed}, "
          f"skipped {len(summary.unmatched)} file(s) in {summary.seconds:.0f} s")
    return 0


def _generate(args) -> int:
    from course_utils import assignments

    if args.check:
        problems = assignments.check(args.course_dir, args.solutions_dir)
        for p in problems:
            print(p)
        if problems:
            print("generated files are stale: run `course assignments generate`")
            return 1
        print("release and solution notebooks are up to date")
        return 0
    for path in assignments.generate(args.course_dir, args.solutions_dir, args.only or None):
        print("wrote", path)
    return 0


def _private(args) -> int:
    """Make an instructor-private course directory outside the repository."""
    import shutil

    from course_utils.assignments import sources

    dest = Path(args.dir).resolve()
    if dest.is_relative_to(ASSIGNMENTS_DIR.parent.resolve()):
        print(f"error: {dest} is inside this repository; a private course directory lives "
              "outside it (its hidden tests must not be published)", file=sys.stderr)
        return 2
    (dest / "source").mkdir(parents=True, exist_ok=True)
    config = dest / "nbgrader_config.py"
    if not config.exists():
        shutil.copy(ASSIGNMENTS_DIR / "nbgrader_config.py", config)
    public = sources(ASSIGNMENTS_DIR)
    for name in args.copy or []:
        if name not in public:
            print(f"error: no public assignment {name!r} (have: {', '.join(public)})",
                  file=sys.stderr)
            return 2
        target = dest / "source" / name
        if target.exists():
            print(f"kept {target} (already there)")
            continue
        shutil.copytree(public[name].parent, target)
        print(f"copied {name} -> {target}: edit its hidden tests there")
    os.chmod(dest, 0o700)
    print(f"private course directory: {dest}\n  grade with: course grade <assignment> INBOX "
          f"--course-dir {dest}\n  its source/<a> overrides the public one; assignments it "
          "lacks come from the public sources; answer keys are built into its keys/")
    return 0


def _keys(args) -> int:
    from course_utils.grading.answer_key import AnswerKeyError
    from course_utils.grading.pipeline import Options, SandboxUnavailable, ensure_key
    from course_utils.assignments import sources

    course_dir = Path(args.course_dir).resolve()
    names = args.only or list(sources(course_dir))
    opts = Options(sandbox=not args.no_sandbox)
    for name in names:
        try:
            print("wrote", ensure_key(course_dir, name, opts, args.timeout))
        except (AnswerKeyError, SandboxUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def _sample(args) -> int:
    from course_utils.grading.sample import write_class

    paths = write_class(args.course_dir, args.assignment, args.out, args.n)
    print(f"wrote {len(paths)} submissions to {args.out}")
    return 0


def register(subparsers) -> None:
    """Add ``grade`` and ``assignments`` to the course CLI (imports no nbgrader)."""
    g = subparsers.add_parser(
        "grade", help="autograde a folder of submitted notebooks (nbgrader, in parallel)",
        description="Collect INBOX/*.ipynb into nbgrader's submitted/ layout, autograde "
        "each in its own process and kernel, merge into the gradebook, generate feedback "
        "and write a CSV. Re-running resumes. See assignments/README.md.")
    g.add_argument("assignment", help="assignment id, e.g. ch01_tensors")
    g.add_argument("inbox", type=Path, help="folder of downloaded .ipynb files")
    g.add_argument("--course-dir", type=Path, default=ASSIGNMENTS_DIR,
                   help="nbgrader course directory (default: %(default)s)")
    g.add_argument("--pattern", default=DEFAULT_PATTERN,
                   help="regex on the file name with a (?P<student>...) group "
                   "(default: %(default)s)")
    g.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                   help="parallel workers (default: CPU cores, %(default)s)")
    g.add_argument("--timeout", type=int, default=60, help="seconds per cell (default: 60)")
    g.add_argument("--memory-mb", type=int, default=2048,
                   help="memory limit per submission kernel, MiB (default: 2048)")
    g.add_argument("--csv", type=Path, default=None,
                   help="CSV path (default: <course-dir>/grades/<assignment>.csv)")
    g.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    g.add_argument("--force", action="store_true", help="regrade students already graded")
    g.add_argument("--no-sandbox", action="store_true",
                   help="grade even where the bubblewrap sandbox cannot start (trusts the "
                   "students' code; every row is flagged `unsandboxed`)")
    g.set_defaults(func=_needs_nbgrader(_grade))

    a = subparsers.add_parser("assignments", help="generate student releases and solutions")
    sub = a.add_subparsers(dest="assignments_command", required=True)
    gen = sub.add_parser("generate", help="write assignments/release/ and solutions/ "
                         "from assignments/source/")
    gen.add_argument("--check", action="store_true",
                     help="only check that the committed files are up to date")
    gen.add_argument("--only", nargs="*", help="assignment ids (default: all)")
    gen.add_argument("--course-dir", type=Path, default=ASSIGNMENTS_DIR)
    gen.add_argument("--solutions-dir", type=Path, default=ASSIGNMENTS_DIR.parent / "solutions")
    gen.set_defaults(func=_needs_nbgrader(_generate))
    prv = sub.add_parser("private", help="make an instructor-private course directory outside "
                         "this repository (its own sources, hidden tests and answer keys)")
    prv.add_argument("dir", type=Path)
    prv.add_argument("--copy", nargs="*", help="public assignments to copy in for editing")
    prv.set_defaults(func=_private)
    keys = sub.add_parser("keys", help="build the answer keys (keys/<a>.json) from the sources; "
                          "plain `nbgrader autograde` needs them, `course grade` builds its own")
    keys.add_argument("--only", nargs="*", help="assignment ids (default: all)")
    keys.add_argument("--course-dir", type=Path, default=ASSIGNMENTS_DIR)
    keys.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    keys.add_argument("--no-sandbox", action="store_true",
                      help="run the (trusted) sources without the sandbox")
    keys.set_defaults(func=_needs_nbgrader(_keys))
    smp = sub.add_parser("sample-class", help="write generated submissions to try "
                         "`course grade` (even students correct, odd ones miss an exercise)")
    smp.add_argument("assignment")
    smp.add_argument("--out", type=Path, required=True)
    smp.add_argument("-n", type=int, default=40)
    smp.add_argument("--course-dir", type=Path, default=ASSIGNMENTS_DIR)
    smp.set_defaults(func=_sample)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
