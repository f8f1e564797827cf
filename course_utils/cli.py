"""The ``course`` command: doctor, lab, data, run (and grading commands when installed).

    course doctor                      # environment table, exit 1 on any FAIL
    course lab [-- jupyter args]       # JupyterLab on the notebooks folder
    course data status | prepare | add FILE
    course run [NOTEBOOK ...] [--fast] [--out DIR] [--timeout S]
    course progress [--reset]          # which lesson exercises you have passed
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

# Modules that add their own sub-commands through ``register(subparsers)``.
PLUGINS = ["course_utils.grading.cli"]


def project_root() -> Path:
    """The checkout holding notebooks/: the current folder or the package's parent."""
    for candidate in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[1]):
        if (candidate / "notebooks").is_dir() and (candidate / "course_utils").is_dir():
            return candidate
    return Path.cwd()


def _cmd_doctor(args) -> int:
    from course_utils.doctor import FAIL, doctor, format_table

    results = doctor()
    print(format_table(results))
    return 1 if any(r.status == FAIL for r in results) else 0


def _missing_extra(command: str, extra: str, modules: tuple[str, ...]) -> bool:
    """Print one line naming the extra to install when ``modules`` are missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return False
    print(f"error: `course {command}` needs the '{extra}' extra ({', '.join(missing)} not installed): "
          f"pip install -e \".[{extra}]\" in the course checkout, or "
          f"pip install \"pytorch-under-the-hood[{extra}]\"", file=sys.stderr)
    return True


LAB_MODULES = ("jupyterlab",)
RUN_MODULES = ("nbformat", "nbclient", "ipykernel")


def _run_forwarding_signals(command: list[str]) -> int:
    """Run ``command``, pass SIGTERM/SIGINT on to it, and wait until it has exited.

    Without this a SIGTERM ends only this process and the child (the JupyterLab
    server) lives on, reparented to init. Ctrl+C in a terminal already reaches
    the child (same foreground process group), so a SIGINT is forwarded only
    when it did not come from the terminal: JupyterLab keeps its own
    "Shut down this Jupyter server (y/[n])?" answer to Ctrl+C.
    """
    import signal
    import threading

    child: subprocess.Popen | None = None
    early: list[int] = []  # signals that came before the child existed

    def terminal_sent_it() -> bool:
        try:
            fd = sys.stdin.fileno()
            return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
        except (OSError, ValueError, AttributeError):
            return False

    def forward(signum, frame):
        if signum == signal.SIGINT and terminal_sent_it():
            return
        if child is None:
            early.append(signum)
        elif child.poll() is None:
            child.send_signal(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal.signal works only there
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. SIGINT in a background job
                previous[sig] = signal.signal(sig, forward)
    try:
        child = subprocess.Popen(command)
        for signum in early:
            child.send_signal(signum)
        code = child.wait()  # handlers run while waiting; the wait resumes after each (PEP 475)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code  # ended by signal N: the shell's 128+N


def _cmd_lab(args) -> int:
    if _missing_extra("lab", "lab", LAB_MODULES):
        return 2
    folder = project_root() / "notebooks"
    # No news feed or update check: the course runs offline by default.
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               *args.jupyter_args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in command:
        command.append("--allow-root")  # containers and Colab-like VMs run as root
    print("starting:", " ".join(command), flush=True)
    return _run_forwarding_signals(command)


def _cmd_data(args) -> int:
    from course_utils.data.cache import data_dir, downloads_dir
    from course_utils.data.fetch import FetchError, add_to_cache, hash_matches, manifest
    from course_utils.data.prepare import offline_status, prepare_all

    if args.action == "add":
        try:
            target = add_to_cache(args.file, name=args.name)
        except FetchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"verified and filed: {target}")
        return 0
    if args.action == "prepare":
        results = prepare_all()
        for name, outcome in results.items():
            print(f"{name:<18} {outcome}")
        return 0 if all(v == "ready" for v in results.values()) else 1
    print(f"data cache: {data_dir()}")
    for name, entry in manifest().items():
        path = downloads_dir() / name
        if not path.exists():
            state = "missing (downloads only with COURSE_ALLOW_DOWNLOAD=1, or `course data add FILE`)"
        elif args.verify:
            state = "present, checksum OK" if hash_matches(path, entry["hash"]) else "present, CHECKSUM BAD"
        else:
            state = f"present ({path.stat().st_size / 2**20:.0f} MiB; --verify to check the hash)"
        print(f"  {name:<26} {state}")
    for name, ready in offline_status().items():
        print(f"  {name:<26} {'prepared' if ready else 'not prepared (course data prepare)'}")
    return 0


def _cmd_run(args) -> int:
    if _missing_extra("run", "lab", RUN_MODULES):
        return 2
    from course_utils.runner import NotebookPathError, format_results, read_notebook, run_notebook

    paths = [Path(p) for p in args.notebooks] or sorted((project_root() / "notebooks").glob("*.ipynb"))
    if not paths:
        print("error: no notebooks given and none found in ./notebooks", file=sys.stderr)
        return 2
    for path in paths:  # check every path before spending minutes on the first one
        try:
            read_notebook(path)
        except NotebookPathError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    results = []
    for path in paths:
        print(f"running {path} ({'fast' if args.fast else 'full'} mode) ...", flush=True)
        results.append(run_notebook(path, fast=args.fast, timeout=args.timeout, out_dir=args.out))
    print(format_results(results))
    return 0 if all(r.ok and not r.false_verdicts for r in results) else 1


def _cmd_lessons(args) -> int:
    if _missing_extra("lessons", "lab", ("nbformat",)):
        return 2
    from course_utils import lesson_sources

    root = project_root()
    if args.check:
        problems = lesson_sources.check(root)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    try:
        written = lesson_sources.generate(root, only=args.lessons or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    return 0


def _cmd_progress(args) -> int:
    from course_utils import progress

    if args.reset:
        progress.reset()
        print(f"progress record cleared: {progress.progress_file()}")
        return 0
    print(progress.report(project_root() / "notebooks"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="PyTorch Under the Hood course tools")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("doctor", help="check the environment").set_defaults(func=_cmd_doctor)

    lab = sub.add_parser("lab", help="open the course in JupyterLab")
    lab.add_argument("jupyter_args", nargs="*", help="passed to jupyter lab as given "
                     "(e.g. course lab --no-browser --port 8890)")
    lab.set_defaults(func=_cmd_lab)

    data = sub.add_parser("data", help="the data cache: status, prepare, add")
    data_sub = data.add_subparsers(dest="action", required=True)
    status = data_sub.add_parser("status", help="what is cached and prepared")
    status.add_argument("--verify", action="store_true", help="also check every file's hash")
    data_sub.add_parser("prepare", help="build the offline defaults")
    add = data_sub.add_parser("add", help="verify a downloaded file and put it in the cache")
    add.add_argument("file")
    add.add_argument("--name", help="manifest name, when the file was renamed")
    data.set_defaults(func=_cmd_data)

    run = sub.add_parser("run", help="execute notebooks in fresh kernels")
    run.add_argument("notebooks", nargs="*", help="default: every notebook in notebooks/")
    run.add_argument("--fast", action="store_true", help="COURSE_FAST=1: small data, few steps")
    run.add_argument("--out", help="write executed copies here")
    run.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    run.set_defaults(func=_cmd_run)

    lessons = sub.add_parser("lessons", help="generate lesson notebooks and worked solutions "
                             "from lessons/ (see course_utils/lesson_sources.py)")
    lessons_sub = lessons.add_subparsers(dest="lessons_command", required=True)
    gen = lessons_sub.add_parser("generate", help="write notebooks/ and solutions/ from lessons/")
    gen.add_argument("lessons", nargs="*", metavar="NN",
                     help="only these lessons, by number (e.g. 03 07); default: every source")
    gen.add_argument("--check", action="store_true", help="only report stale generated files")
    lessons.set_defaults(func=_cmd_lessons)

    prog = sub.add_parser("progress", help="per lesson, the exercises whose checks have passed")
    prog.add_argument("--reset", action="store_true", help="forget the recorded exercises")
    prog.set_defaults(func=_cmd_progress)

    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue  # the grading extra is not installed
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lab"] and not {"-h", "--help"} & set(argv[1:2]):
        # Everything after `lab` belongs to JupyterLab, in order (--port 8890 ...).
        return _cmd_lab(argparse.Namespace(jupyter_args=argv[1:]))
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
