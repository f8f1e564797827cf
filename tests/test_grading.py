"""End-to-end tests of `course grade` on a tiny nbgrader assignment (issue 8).

The fixture assignment (tests/fixtures/grading/source/tiny) has three tests:
test_add_one (2 points), test_double (3) and test_debug_mean_rows (5). Sixteen
generated submissions cover the hostile cases; each has an exact expected score
and flags. The class is graded in parallel (interrupted after 5 merges, then
resumed); a subset covering every mechanism is graded serially too, and the
grades must agree.
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import pipeline, sample
from course_utils.grading.course import check_result, load_config, nbgrader_api
from course_utils.grading.repair import repair
from course_utils.grading.tamper import scan_notebook, scan_source

# one worker runs this whole file: its tests share a costly module fixture
pytestmark = pytest.mark.xdist_group("grading-tiny")
FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "source" / "tiny"
A = "tiny"
UID_BASE = 62000  # this file's kernels run as uids of their own (see the last test)
CELL_TIMEOUT = 10

# name -> (answers replacing solution cells, expected total, expected flags)
CASES = {
    "correct": ({}, 10, []),
    "partial": ({"double": "def double(x):\n    return x * 3"}, 7, []),
    # correct, written the long way: torch.optim's first import makes torch patch
    # torch.manual_seed itself; magics, helpers, prints: never flagged
    "genuine": ({"add_one": "import torch.optim\n%time _ = torch.optim.SGD([torch.zeros(1, "
                            "requires_grad=True)], lr=0.1)\nclass Shift:\n    def __init__(self, k):"
                            "\n        self.k = k\n    def __call__(self, x):\n        return x + "
                            "self.k\ndef add_one(x):\n    print('adding one')\n    return Shift(1)(x)"},
                10, []),
    "syntax": ({"double": "def double(x):\n    return x * * 2"}, 7, ["syntax_error:double"]),
    "exception": ({"add_one": "def add_one(x):\n    return x + 1\nraise RuntimeError('oops')",
                   "double": "def double(x):\n    raise ValueError('not today')"}, 7,
                  ["exception:add_one"]),
    "loop": ({"add_one": "while True:\n    pass"}, 8, ["timeout:add_one"]),
    "membomb": ({"double": "def double(x):\n    hog = bytearray(64 * 2**30)\n    return x * 2"},
                7, ["memory:test_double"]),
    "sysexit": ({"add_one": "import sys\nsys.exit(3)\ndef add_one(x):\n    return x + 1"}, 8,
                ["exit:add_one"]),
    "osexit": ({"double": "import os\nos._exit(1)"}, 2, ["kernel_died:double"]),
    "alwayseq": ({"add_one": "class Yes:\n    def __eq__(self, other):\n        return True\n"
                             "def add_one(x):\n    return Yes()"}, 0, ["tamper"]),
    "allclose": ({"double": "import torch\ntorch.allclose = lambda *a, **k: True\n"
                            "def double(x):\n    return x * 2"}, 2, ["tamper"]),
    "checkfn": ({"debug_mean_rows": "def check_close(*args, **kwargs):\n    return True\n"
                                    "def mean_rows(x):\n    return x.sum(dim=0)"}, 5, ["tamper"]),
    "sneaky": ({"double": "exec('import torch; torch.all' + 'close = lambda *a, **k: True')\n"
                          "def double(x):\n    return x * 2"}, 2,
               ["warning:uses exec()", "tamper"]),
    "dtypedevice": ({"double": "def double(x):\n    return (x * 2).double()",
                      "debug_mean_rows": "def mean_rows(x):\n    return x.mean(dim=1).to('meta')"},
                     2, []),
    "deleted": ({}, 10, ["restored:test_double"]),
    "edited": ({"add_one": "def add_one(x):\n    return x"}, 8, ["edited:test_add_one"]),
    "nometa": ({}, 10, ["metadata_restored(8)"]),
}


def _make_course(root: Path) -> Path:
    (root / "source").mkdir(parents=True)
    shutil.copytree(FIXTURE, root / "source" / A)
    api = nbgrader_api(load_config(root))
    check_result(api.generate_assignment(A, force=True, create=True), "generate_assignment")
    return root


def _submissions(course: Path) -> dict[str, nbformat.NotebookNode]:
    source = nbformat.read(course / "source" / A / f"{A}.ipynb", 4)
    release = nbformat.read(course / "release" / A / f"{A}.ipynb", 4)
    good = sample.solutions(source)
    out = {}
    for name, (answers, _, _) in CASES.items():
        nb = sample.fill(release, {**good, **answers})
        if name == "deleted":
            nb.cells = [c for c in nb.cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_double"]
        if name == "edited":
            for c in nb.cells:
                if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add_one":
                    c.source = "pass  # trust me"
        if name == "nometa":  # as if saved by a front end that drops metadata and ids
            nb.nbformat_minor = 4
            for c in nb.cells:
                c.metadata = {}
                c.pop("id", None)
        out[name] = nb
    return out


# The serial run (for the serial == parallel comparison) grades a subset that
# covers every mechanism, to keep the file fast.
SERIAL = ["correct", "partial", "loop", "membomb", "osexit", "sneaky", "deleted", "nometa"]


@pytest.fixture(scope="module")
def courses(tmp_path_factory, own_sandbox_uids):
    base = tmp_path_factory.mktemp("grading")
    parallel = _make_course(base / "parallel")
    serial = base / "serial"
    shutil.copytree(parallel, serial)
    inbox, serial_inbox = base / "inbox", base / "serial_inbox"
    inbox.mkdir()
    serial_inbox.mkdir()
    for name, nb in _submissions(parallel).items():
        nbformat.write(nb, inbox / f"{name}_{A}.ipynb")
        if name in SERIAL:
            nbformat.write(nb, serial_inbox / f"{name}_{A}.ipynb")
    (inbox / "README.txt").write_text("not a notebook")
    (inbox / "nounderscore.ipynb").write_text("{}")
    return base, parallel, serial, inbox


@pytest.fixture(scope="module")
def parallel_run(courses):
    base, course, _, inbox = courses
    opts = pipeline.Options(jobs=2, cell_timeout=CELL_TIMEOUT, memory_mb=1024, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        pipeline.grade(A, inbox, course, opts, _stop_after=5)
    interrupted = _db_rows(course)
    resumed = pipeline.grade(A, inbox, course, opts)
    return interrupted, resumed


@pytest.fixture(scope="module")
def serial_run(courses):
    # The serial run execs its kernels (no zygote), so serial == parallel also checks that
    # both ways of starting a jailed kernel grade alike.
    base, _, course, _ = courses
    inbox = base / "serial_inbox"
    opts = pipeline.Options(jobs=1, cell_timeout=CELL_TIMEOUT, memory_mb=1024, feedback=False,
                            quiet=True)
    os.environ["COURSE_GRADE_ZYGOTE"] = "0"
    try:
        return pipeline.grade(A, inbox, course, opts)
    finally:
        del os.environ["COURSE_GRADE_ZYGOTE"]


def _db_rows(course: Path) -> dict[str, int]:
    with sqlite3.connect(course / "gradebook.db") as con:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("student", "submitted_assignment", "grade")}


def _by_student(summary):
    return {r.student: r for r in summary.rows}


@pytest.mark.parametrize("name", list(CASES))
def test_each_submission_scores_exactly(parallel_run, name):
    _, summary = parallel_run
    row = _by_student(summary)[name]
    _, total, flags = CASES[name]
    assert row.total == total, (name, row.scores, row.flags, row.details)
    assert row.max_score == 10
    assert row.flags == flags, (name, row.flags, row.details)


def test_batch_completes_and_skips_unmatched_files(parallel_run):
    _, summary = parallel_run
    assert sorted(r.student for r in summary.rows) == sorted(CASES)
    assert summary.unmatched == ["nounderscore.ipynb"]


def test_interrupted_run_resumes_without_loss_or_duplicates(courses, parallel_run):
    _, course, _, _ = courses
    interrupted, summary = parallel_run
    assert interrupted["submitted_assignment"] >= 5  # 5 merged, in-flight ones maybe not
    assert summary.resumed == 5
    assert summary.graded == len(CASES) - 5
    rows = _db_rows(course)
    assert rows == {"student": len(CASES), "submitted_assignment": len(CASES),
                    "grade": 3 * len(CASES)}
    # the gradebook agrees with the summary, student by student
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for row in summary.rows:
            assert gb.find_submission(A, row.student).score == row.total


def test_serial_and_parallel_grades_are_identical(parallel_run, serial_run):
    _, par = parallel_run
    assert sorted(r.student for r in serial_run.rows) == sorted(SERIAL)
    assert {r.student: (r.scores, r.flags) for r in par.rows if r.student in SERIAL} == \
           {r.student: (r.scores, r.flags) for r in serial_run.rows}


def test_feedback_and_csv(courses, parallel_run):
    _, course, _, _ = courses
    _, summary = parallel_run
    html = (course / "feedback" / "partial" / A / f"{A}.html").read_text()
    assert "7.0" in html and "10.0" in html
    # the student's HTML is shown to the instructor: no script may run in the page
    head = html[html.lower().index("<head"):]
    assert head.split(">", 1)[1].lstrip().startswith('<meta http-equiv="Content-Security-Policy"')
    assert "script-src" not in head.split(">", 2)[1] and "default-src 'none'" in head[:400]
    with open(summary.csv) as fh:
        table = list(csv.DictReader(fh))
    assert {r["student"]: float(r["total"]) for r in table} == \
           {n: float(c[1]) for n, c in CASES.items()}
    assert table[0].keys() >= {"test_add_one", "test_double", "test_debug_mean_rows", "flags",
                               "seconds"}


def test_no_grading_process_left_behind(courses, parallel_run, serial_run):
    # workers carry the course path in their environment; jailed kernels run as sandbox uids
    base = str(courses[0])
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uid = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
        if base.encode() in env or UID_BASE <= uid < UID_BASE + 100:
            left.append(pid)
    assert left == []


# ---- fast unit tests: no kernel -------------------------------------------------

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    course = _make_course(tmp_path_factory.mktemp("release") / "c")
    return nbformat.read(course / "release" / A / f"{A}.ipynb", 4)


@pytest.mark.parametrize("keep_ids", [True, False])
def test_repair_restores_metadata(release, keep_ids):
    nb = copy.deepcopy(release)
    for c in nb.cells:
        c.metadata = {}
        if not keep_ids:
            c.pop("id", None)
    nb.cells[3].source = "def add_one(x):\n    return x + 1  # my answer"
    nb.cells.insert(4, nbformat.v4.new_code_cell("print(add_one(torch.ones(2)))  # scratch"))
    fixed, events = repair(nb, release)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in fixed.cells]
    expected = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
    assert ids == expected[:4] + [None] + expected[4:]
    assert fixed.cells[3].source.endswith("# my answer")
    assert {e.kind for e in events} == {"metadata_restored"}
    hows = {e.detail.split(",")[0] for e in events}
    assert hows == ({"matched by cell id"} if keep_ids else
                    {"matched by content", "matched by position"})


def test_repair_reinserts_deleted_and_reports_edited(release):
    nb = copy.deepcopy(release)
    gids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    nb.cells.pop(gids.index("test_double"))
    nb.cells.pop(gids.index("test_add_one"))
    edited = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
              == "test_debug_mean_rows"][0]
    edited.source = "print('all good')"
    fixed, events = repair(nb, release)
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in fixed.cells] == \
           [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
    assert sorted(map(str, events)) == [
        "edited:test_debug_mean_rows (source restored by nbgrader)",
        "restored:test_add_one (deleted cell put back from the source)",
        "restored:test_double (deleted cell put back from the source)"]


GENUINE = [
    "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(3, 2)\n    def forward(self, x):\n        return F.relu(self.fc(x))",
    "def add_one(x):\n    total = sum([1, 2])\n    return x + 1\n%time y = add_one(torch.ones(2))",
    "torch.backends.cudnn.deterministic = True\ntorch.manual_seed(0)\nsetattr(obj, 'w', 1)",
    "from course_utils.checks import check_close\ncheck_close('mine', torch.ones(2), torch.ones(2))",
    "def f():\n    isinstance = 3\n    return isinstance",
]
HOSTILE = [
    "torch.allclose = lambda *a, **k: True",
    "import torch as T\nsetattr(T, 'equal', lambda *a: True)",
    "torch.Tensor.__eq__ = lambda self, other: True",
    "import builtins\nbuiltins.isinstance = lambda *a: True",
    "def check_close(*a, **k):\n    return True",
    "def f():\n    global check_equal\n    check_equal = print",
    "from course_utils.checks import set_grading_mode\nset_grading_mode(False)",
    "class Yes:\n    __eq__ = lambda self, other: True",
    "Yes = type('Yes', (), {'__eq__': lambda s, o: True})",
    "import sys\nsys.modules['torch'] = None",
    "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)",
    "import os\nos.environ['COURSE_GRADING'] = '0'",
]


@pytest.mark.parametrize("src", GENUINE)
def test_static_scan_never_flags_genuine_code(src):
    assert scan_source(src) == []


@pytest.mark.parametrize("src", HOSTILE)
def test_static_scan_flags_tampering(src):
    found = scan_source(src)
    assert found and all(f.severity == "tamper" for f in found), found


def test_static_scan_ignores_locked_cells(release):
    # the release's own cells (imports of checks, torch) are never student code
    assert scan_notebook(release) == []


def test_collect_inbox_pattern(tmp_path):
    for name in ("ann_ch01.ipynb", "bob_ch01.ipynb", "bob_ch01_v2.ipynb", "x.ipynb",
                 "._ch01.ipynb", ".._ch01.ipynb", ".hidden_ch01.ipynb"):
        (tmp_path / name).write_text("{}")
    os.utime(tmp_path / "bob_ch01.ipynb", (1, 1))
    chosen, unmatched, several = pipeline.collect_inbox(tmp_path, pipeline.DEFAULT_PATTERN)
    assert {k: v.name for k, v in chosen.items()} == {"ann": "ann_ch01.ipynb",
                                                      "bob": "bob_ch01_v2.ipynb"}
    # a student id that would be a path (".", "..") or hidden is not a student
    assert set(unmatched) == {"._ch01.ipynb", ".._ch01.ipynb", ".hidden_ch01.ipynb", "x.ipynb"}
    assert {k: [p.name for p in v] for k, v in several.items()} == {
        "bob": ["bob_ch01.ipynb", "bob_ch01_v2.ipynb"]}
    chosen, _, _ = pipeline.collect_inbox(tmp_path, r"(?P<student>\w+?)_ch01(_v2)?\.ipynb")
    assert set(chosen) == {"ann", "bob"}


def test_cli_registers_grade_and_assignments():
    import argparse

    from course_utils.grading.cli import register
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grade", "ch01_tensors", "inbox", "-j", "3", "--timeout", "5"])
    assert (args.jobs, args.timeout, args.func.__name__) == (3, 5, "_grade")
    args = parser.parse_args(["assignments", "generate", "--check"])
    assert args.check and args.func.__name__ == "_generate"


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\0 but not really a database"],
                         ids=["empty", "corrupt"])
def test_a_broken_worker_gradebook_flags_that_student_and_loses_nobody(tmp_path, content):
    course = _make_course(tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    from course_utils.grading import gradebook
    gradebook.merge_submission(url, "pytorch-under-the-hood", A, "alice", None)
    bad = tmp_path / "worker.db"
    bad.write_bytes(content)
    spec = {"student": "brokendb"}
    result = {"student": "brokendb", "ok": True, "db": str(bad), "seconds": 1.0}
    rows, reports = {}, {"brokendb": {"file": "brokendb_tiny.ipynb", "events": [], "static": []}}
    pipeline._merge_one(spec, result, reports, rows, course / ".grading" / A, url,
                        "pytorch-under-the-hood", A, lambda *a: None)
    assert rows["brokendb"].total == 0 and "gradebook_error" in rows["brokendb"].flags
    with sqlite3.connect(course / "gradebook.db") as con:
        students = {s for (s,) in con.execute("SELECT id FROM student")}
    assert students == {"alice", "brokendb"}
