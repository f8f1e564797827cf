"""Grade submissions one at a time in a long-lived worker process (``course grade``, issue 8).

``course grade`` starts one worker per CPU core. A worker imports nbgrader
once, then for each submission it is given:

1. copies the template gradebook (assignment and source cells, no students) to
   a private gradebook, so workers never write the same database (none of it
   is visible to the student's kernel, which runs in a jail);
2. runs nbgrader's own ``autograde`` through ``NbGraderAPI`` with the hardened
   executor (:class:`.kernel.GradingExecute`: a jailed, limited kernel with
   the tamper guard, whose hidden checks record values instead of judging);
3. applies the verdict (:mod:`.verdict`), in this process: every test cell is
   judged against the answer key, tests that ran after a tampering cell are
   voided, and nbgrader's ``SaveAutoGrades`` scores the notebook again;
4. runs nbgrader's ``generate_feedback`` and writes a JSON result.

The parent merges the private gradebook into the course gradebook.
Protocol: one JSON spec per stdin line; ``DONE <result path>`` on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path


def grade_one(spec: dict) -> dict:
    """Autograde one student's submission; never raises."""
    from course_utils.grading import sandbox
    from course_utils.grading.course import load_config, nbgrader_api, sqlite_url
    from course_utils.grading.verdict import apply_verdict

    start = time.monotonic()
    work = Path(spec["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    student, assignment = spec["student"], spec["assignment"]
    db = work / f"{student}.db"
    use_sandbox = spec.get("sandbox", True)
    uid = _UID if use_sandbox and os.geteuid() == 0 else None
    run_dir = sandbox.make_run_dir(uid)
    guard_log = run_dir / "guard.jsonl"
    guard_log.write_text("")
    if uid is not None and os.geteuid() == 0:
        os.chown(guard_log, uid, uid)  # the guard in the kernel appends to it
    shutil.copyfile(spec["template_db"], db)
    result = {"student": student, "assignment": assignment, "ok": False, "error": "",
              "db": str(db), "sandbox": use_sandbox}
    try:
        cfg = load_config(spec["course_dir"], db_url=sqlite_url(db), hardened=True,
                          cell_timeout=spec["cell_timeout"], memory_mb=spec["memory_mb"],
                          cpu_seconds=spec["cpu_seconds"], guard_log=str(guard_log),
                          use_sandbox=use_sandbox, sandbox_uid=uid, run_dir=str(run_dir),
                          pid_file=str(work / f"{student}.kernel.pid"))
        api = nbgrader_api(cfg)
        t0 = time.monotonic()
        out = api.autograde(assignment, student, force=True, create=True)
        result["autograde_seconds"] = round(time.monotonic() - t0, 2)
        if not out.get("success"):
            result["error"] = _tail(out.get("error", "") + out.get("log", ""))
            return result
        result.update(apply_verdict(api, assignment, student, spec.get("static", []),
                                    guard_log, Path(spec["key"])))
        if spec.get("feedback", True):
            t0 = time.monotonic()
            fb = api.generate_feedback(assignment, student, force=True)
            coursedir = api.coursedir
            lock_down_feedback(Path(coursedir.format_path(coursedir.feedback_directory, student,
                                                          assignment)))
            result["feedback_seconds"] = round(time.monotonic() - t0, 2)
            if not fb.get("success"):
                result["feedback_error"] = _tail(fb.get("error", ""))
        result["ok"] = True
    except Exception:  # reported to the parent, which scores the submission 0
        result["error"] = _tail(traceback.format_exc())
    finally:
        sandbox.remove_run_dir(run_dir)
        result["seconds"] = round(time.monotonic() - start, 2)
    return result


# Feedback pages show the student's own markdown and outputs as HTML; an instructor opens
# them in a browser. No script, frame, plugin, form or remote load may run there.
FEEDBACK_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


def lock_down_feedback(folder: Path) -> None:
    """Put a Content-Security-Policy first in the <head> of every feedback page in ``folder``."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{FEEDBACK_CSP}">'
    for page in Path(folder).glob("*.html"):
        text = page.read_text(encoding="utf-8")
        head = re.search(r"<head[^>]*>", text, re.I)
        text = (text[:head.end()] + meta + text[head.end():]) if head else meta + text
        page.write_text(text, encoding="utf-8")


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:]


_UID: int | None = None  # this worker's own sandbox uid (claimed in serve)


def _die_with_parent() -> None:
    # A grader killed with SIGKILL must not leave workers (and their kernels) grading on.
    import ctypes
    import signal

    parent = os.getppid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def serve() -> None:
    """Read specs from stdin until EOF; answer each with ``DONE <path>``."""
    _die_with_parent()
    warnings.filterwarnings("ignore")
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the protocol
    global _UID
    if os.geteuid() == 0:
        from course_utils.grading.sandbox import claim_uid

        _UID, _lock = claim_uid()  # held (the fd stays open) until this worker exits
    zygote = _start_zygote()
    for line in sys.stdin:
        if not line.strip():
            continue
        spec = json.loads(line)
        result = grade_one(spec)
        path = Path(spec["result_path"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)
        out.write(f"DONE {path}\n")
        out.flush()
    if zygote is not None:
        zygote.close()


def _start_zygote():
    """A pre-imported interpreter for this worker's kernels, where one can be used."""
    from course_utils.grading import sandbox, zygote

    if not (zygote.usable() and sandbox.availability()[0]):
        return None
    from course_utils.grading.kernel import GradingKernelManager

    try:
        GradingKernelManager.zygote = zygote.Zygote(env=sandbox.kernel_env())
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"no zygote, kernels are exec'd: {exc}", file=sys.stderr)
        return None
    return GradingKernelManager.zygote


if __name__ == "__main__":
    serve()
