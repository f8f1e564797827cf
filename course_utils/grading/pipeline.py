"""``course grade``: the instructor's loop on top of nbgrader (issue 8).

    inbox/alice_ch01_tensors.ipynb ...            (downloaded from Colab / an LMS)
      -> collect   submitted/<student>/<a>/<a>.ipynb  (file name -> student id by regex;
                   lost metadata and deleted cells repaired, static tamper scan)
      -> autograde nbgrader's Autograde in parallel workers, one kernel each
                   (per-cell timeout, memory/CPU limits, runtime tamper guard)
      -> merge     each result into the course gradebook, one commit per student
      -> feedback  nbgrader's generate_feedback -> feedback/<student>/<a>/<a>.html
      -> report    table on stdout + grades/<a>.csv

Re-running resumes: a student whose file is unchanged and whose grades are in
the gradebook is not graded again (``force=True`` regrades everyone).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from course_utils.grading import answer_key, gradebook, sandbox
from course_utils.grading.course import (ASSIGNMENTS_DIR, DEFAULT_PATTERN, check_result,
                                         load_config, nbgrader_api)
from course_utils.grading.pool import WorkerPool
from course_utils.grading.repair import repair
from course_utils.grading.report import Row, print_table, write_csv
from course_utils.grading.tamper import scan_notebook

@dataclass
class Options:
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    cell_timeout: int = 60
    memory_mb: int = 2048
    pattern: str = DEFAULT_PATTERN
    feedback: bool = True
    force: bool = False
    csv: Path | None = None
    quiet: bool = False
    sandbox: bool = True  # False: `--no-sandbox`, every row flagged `unsandboxed`


class SandboxUnavailable(RuntimeError):
    """No sandbox can start here, and grading without one was not asked for."""


@dataclass
class Summary:
    rows: list[Row]
    unmatched: list[str]
    graded: int
    resumed: int
    csv: Path
    seconds: float


def _sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def collect_inbox(inbox: Path, pattern: str) -> tuple[dict[str, Path], list[str], dict[str, list[Path]]]:
    """{student: newest file}, unmatched file names, and {student: all their files, oldest
    first} where a student has several (the newest is graded; the row is flagged)."""
    rule = re.compile(pattern)
    found: dict[str, list[Path]] = {}
    unmatched = []
    for path in sorted(Path(inbox).glob("*.ipynb")):
        m = rule.fullmatch(path.name) or rule.match(path.name)
        student = m.groupdict().get("student") if m else None
        if not student:
            unmatched.append(path.name)
            continue
        student = re.sub(r"[^A-Za-z0-9_.-]", "_", student)
        if student.startswith("."):       # ".", ".." or a hidden name: it becomes a folder path
            unmatched.append(path.name)
            continue
        found.setdefault(student, []).append(path)
    chosen, several = {}, {}
    for student, paths in found.items():
        paths.sort(key=lambda p: (p.stat().st_mtime, p.name))
        chosen[student] = paths[-1]
        if len(paths) > 1:
            several[student] = paths
    return chosen, unmatched, several


def _run_source(nb, opts: Options, cell_timeout: int):
    """Execute the instructor's source notebook in a grading kernel (for the answer key)."""
    import tempfile

    from nbclient import NotebookClient

    from course_utils.grading.kernel import GradingKernelManager

    from traitlets.config import Config

    uid, lock = sandbox.claim_uid() if opts.sandbox and os.geteuid() == 0 else (None, None)
    run_dir = sandbox.make_run_dir(uid)
    try:
        cfg = Config()
        cfg.GradingKernelManager.run_dir = str(run_dir)
        cfg.GradingKernelManager.use_sandbox = opts.sandbox
        cfg.GradingKernelManager.sandbox_uid = -1 if uid is None else uid
        cfg.GradingKernelManager.memory_mb = opts.memory_mb
        cfg.GradingKernelManager.cpu_seconds = cell_timeout * 50 + 60
        with tempfile.TemporaryDirectory(prefix="course-key-") as cwd:
            # nbclient makes (and so shuts down) the kernel manager itself
            client = NotebookClient(nb, kernel_manager_class=GradingKernelManager, config=cfg,
                                    timeout=cell_timeout, allow_errors=True,
                                    resources={"metadata": {"path": cwd}})
            client.execute()
        return nb
    finally:
        sandbox.remove_run_dir(run_dir)
        if lock is not None:
            os.close(lock)


def ensure_key(course_dir: Path, assignment: str, opts: Options, cell_timeout: int) -> Path:
    """The answer key for the current source, built (one run of the source) when stale."""
    source = course_dir / "source" / assignment / f"{assignment}.ipynb"
    if answer_key.load_fresh(course_dir, assignment, source) is None:
        key = answer_key.build(source, run_kernel=lambda nb: _run_source(nb, opts, cell_timeout))
        answer_key.save(course_dir, assignment, key)
    return answer_key.key_path(course_dir, assignment)


def sync_assignment(api, course_dir: Path, assignment: str, state_dir: Path) -> Path:
    """Run nbgrader generate_assignment when the source changed; return the template db."""
    source = course_dir / "source" / assignment / f"{assignment}.ipynb"
    public = ASSIGNMENTS_DIR / "source" / assignment
    if not source.exists() and public.exists() and course_dir.resolve() != ASSIGNMENTS_DIR.resolve():
        # a private course directory adds to the public assignments: fill the gap from them
        shutil.copytree(public, source.parent)
    if not source.exists():
        raise FileNotFoundError(f"no source notebook {source}; assignments live in "
                                "<course_dir>/source/<assignment>/<assignment>.ipynb")
    stamp = state_dir / "source.sha256"
    template = state_dir / "template.db"
    release = course_dir / "release" / assignment / f"{assignment}.ipynb"
    sha = _sha_file(source)
    db_file = gradebook.sqlite_path(api.coursedir.db_url)
    if not (stamp.exists() and stamp.read_text() == sha and template.exists()
            and release.exists() and db_file.exists()):
        check_result(api.generate_assignment(assignment, force=True, create=True),
                     f"generate_assignment {assignment}")
        gradebook.make_template(api.coursedir.db_url, template)  # workers add one student
        stamp.write_text(sha)
    return template


def _prepare(student: str, path: Path, release, course_dir: Path, assignment: str) -> dict:
    """Repair + scan + write into submitted/; returns the collect report."""
    report = {"file": path.name, "events": [], "static": [], "error": ""}
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook: scored 0, reported
        report["error"] = f"unreadable notebook: {type(exc).__name__}: {exc}"
        return report
    nb, events = repair(nb, release)
    report["events"] = [str(e) for e in events]
    report["static"] = [vars(f) for f in scan_notebook(nb)]
    dest = course_dir / "submitted" / student / assignment
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest / f"{assignment}.ipynb")
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    (dest / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    return report


def _flags(report: dict, result: dict | None) -> list[str]:
    events = [e.split(" ")[0] for e in report.get("events", [])]
    restored_meta = [e for e in events if e.startswith("metadata_restored:")]
    flags = [e for e in events if not e.startswith("metadata_restored:")]
    if restored_meta:
        flags.insert(0, f"metadata_restored({len(restored_meta)})")
    flags += [f"warning:{f['message']}" for f in report.get("static", [])
              if f.get("severity") == "warning"]
    if any(f.get("severity") == "tamper" for f in report.get("static", [])):
        flags.append("tamper")
    if report.get("error"):
        flags.append("unreadable")
    if result is not None:
        flags += result.get("flags", [])
        if not result.get("ok") and "worker_killed" not in flags:
            flags.append("autograde_failed")
        if result.get("sandbox") is False:
            flags.append("unsandboxed")
    return list(dict.fromkeys(flags))  # unique, in order


def grade(assignment: str, inbox, course_dir=ASSIGNMENTS_DIR, options: Options | None = None,
          _stop_after: int | None = None) -> Summary:
    """Collect, autograde, merge, give feedback and report one assignment."""
    opts = options or Options()
    start = time.monotonic()
    if opts.sandbox:
        ok, why = sandbox.availability()
        if not ok:
            raise SandboxUnavailable(
                f"cannot grade safely here: {why}. Student code is hostile code; without the "
                "sandbox a submission can read the hidden tests, rewrite the gradebook and leave "
                "processes behind. Install bubblewrap, or pass --no-sandbox to grade anyway "
                "(every row is then flagged `unsandboxed`).")
    course_dir = Path(course_dir).resolve()
    cfg = load_config(course_dir, cell_timeout=opts.cell_timeout)
    api = nbgrader_api(cfg)
    main_url, course_id = api.coursedir.db_url, api.coursedir.course_id
    state_dir = course_dir / ".grading" / assignment
    state_dir.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, file=sys.stderr))

    template = sync_assignment(api, course_dir, assignment, state_dir)
    key_file = ensure_key(course_dir, assignment, opts, opts.cell_timeout)
    release = nbformat.read(course_dir / "release" / assignment / f"{assignment}.ipynb", 4)
    n_code = sum(c.cell_type == "code" for c in release.cells)

    chosen, unmatched, several = collect_inbox(Path(inbox), opts.pattern)
    notes = {student: f"{len(paths)} files ({', '.join(p.name for p in paths)}); graded the newest, "
                      f"{paths[-1].name}" for student, paths in several.items()}
    for student, note in notes.items():
        say(f"note: {student}: {note}")
    for name in unmatched:
        say(f"skipped {name}: file name does not match {opts.pattern!r}")

    rows: dict[str, Row] = {}
    specs, reports, resumed = [], {}, 0
    for student, path in sorted(chosen.items()):
        sha = _sha_file(path)
        state_file = state_dir / "state" / f"{student}.json"
        if not opts.force and state_file.exists():
            state = json.loads(state_file.read_text())
            if state.get("sha") == sha and gradebook.merged_score(
                    main_url, course_id, assignment, student) is not None:
                rows[student] = Row(**state["row"])
                resumed += 1
                continue
        report = _prepare(student, path, release, course_dir, assignment)
        report["sha"] = sha
        reports[student] = report
        if report["error"]:
            gradebook.merge_submission(main_url, course_id, assignment, student, None)
            rows[student] = _finish(state_file, report, None, main_url, course_id, assignment,
                                    student)
            continue
        specs.append({
            "course_dir": str(course_dir), "assignment": assignment, "student": student,
            "template_db": str(template), "work_dir": str(state_dir / "work"),
            "result_path": str(state_dir / "work" / f"{student}.result.json"),
            "cell_timeout": opts.cell_timeout, "memory_mb": opts.memory_mb,
            "cpu_seconds": opts.cell_timeout * (n_code + 2) + 60,
            "wall_timeout": opts.cell_timeout * (n_code + 2) + 240,
            "static": report["static"], "feedback": opts.feedback,
            "sandbox": opts.sandbox, "key": str(key_file)})

    say(f"grading {len(specs)} submission(s) of {assignment} on {opts.jobs} worker(s)"
        + (f"; {resumed} already graded (resumed)" if resumed else ""))
    env = dict(os.environ, COURSE_GRADING="1", OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    pool = WorkerPool(opts.jobs, state_dir / "logs", env=env)
    merged = 0
    results = pool.map(specs)
    try:
        for spec, result in results:
            merged += 1
            _merge_one(spec, result, reports, rows, state_dir, main_url, course_id, assignment,
                       say)
            if _stop_after is not None and merged >= _stop_after:
                raise KeyboardInterrupt(f"stopped after {merged} merges (test hook)")
    finally:
        results.close()

    for student, note in notes.items():      # one of them may be another student's file, renamed
        if student in rows:
            rows[student].flags.append(f"several_files:{len(several[student])}")
            rows[student].details.append(note)
    ordered = [rows[s] for s in sorted(rows)]
    csv_path = Path(opts.csv) if opts.csv else course_dir / "grades" / f"{assignment}.csv"
    write_csv(ordered, csv_path)
    if not opts.quiet:
        print_table(ordered, assignment)
        if not opts.sandbox:
            print("WARNING: graded WITHOUT the sandbox (--no-sandbox): these scores trust the "
                  "students' code; every row is flagged `unsandboxed`.")
        print(f"CSV: {csv_path}")
    return Summary(ordered, unmatched, len(specs), resumed, csv_path,
                   round(time.monotonic() - start, 2))


def _merge_one(spec, result, reports, rows, state_dir, main_url, course_id, assignment, say):
    student = spec["student"]
    worker_url = f"sqlite:///{result['db']}" if result.get("ok") else None
    try:
        gradebook.merge_submission(main_url, course_id, assignment, student, worker_url)
    except Exception as exc:  # a broken or empty worker database: this student only
        result = dict(result, ok=False, error=f"gradebook merge failed: {type(exc).__name__}: "
                      f"{exc}"[:500], flags=list(result.get("flags", [])) + ["gradebook_error"])
        gradebook.merge_submission(main_url, course_id, assignment, student, None)
    rows[student] = _finish(state_dir / "state" / f"{student}.json", reports[student], result,
                            main_url, course_id, assignment, student)
    row = rows[student]
    say(f"  {student}: {row.total:g}/{row.max_score:g} in {row.seconds:.1f} s "
        f"{' '.join(row.flags)}")


def _details(report: dict, result: dict | None) -> list[str]:
    out = list(report.get("events", []))
    if result and result.get("ok"):
        out += result.get("tamper", [])  # static and runtime findings, with cell names
    else:
        out += [f["message"] for f in report.get("static", [])]
        if result:
            out.append(result.get("error", "")[-300:])
    if report.get("error"):
        out.append(report["error"])
    return out


def _finish(state_file: Path, report: dict, result: dict | None, main_url: str, course_id: str,
            assignment: str, student: str) -> Row:
    """Build the report row from the gradebook (the source of truth) and save the state."""
    scores, max_score = gradebook.merged_score(main_url, course_id, assignment, student)
    row = Row(student=student, total=float(sum(scores.values())), max_score=max_score,
              scores=dict(sorted(scores.items())),
              flags=_flags(report, result),
              seconds=float((result or {}).get("seconds", 0.0)), file=report.get("file", ""),
              details=_details(report, result))
    _write_json(state_file, {"sha": report.get("sha"), "row": vars(row)})
    return row
