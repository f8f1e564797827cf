"""Shared test fixtures. Nothing here touches the network: servers bind 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Checks that pass under the tests (and in the notebooks they execute, which inherit
# this environment) are not a learner's progress: keep the record untouched.
os.environ["COURSE_NO_PROGRESS"] = "1"


class _Routes:
    """path -> (status, body, mode). mode 'truncate' announces more bytes than it sends."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, str]] = {}
        self.hits: list[str] = []

    def add(self, path: str, body: bytes = b"", status: int = 200, mode: str = "normal") -> None:
        self.routes[path] = (status, body, mode)


def _handler(routes: _Routes):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            routes.hits.append(self.path)
            status, body, mode = routes.routes.get(self.path, (404, b"not found", "normal"))
            self.send_response(status)
            length = len(body) * 2 if mode == "truncate" else len(body)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body if mode != "truncate" else body[: len(body) // 2])
            if mode == "truncate":
                self.close_connection = True

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


@pytest.fixture(autouse=True)
def _restore_environment():
    """Undo environment changes a test makes outside monkeypatch (nbgrader's config,
    for one, sets COURSE_GRADING=1 when loaded in-process)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Nothing leaves 127.0.0.1 (the tests also fail on any request elsewhere).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, one per test module."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it: scripts/install_system_deps.sh chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def local_server():
    """A throwaway HTTP server on 127.0.0.1. Use ``server.add(path, body, status, mode)``
    and ``server.url(path)``; ``server.hits`` lists requested paths."""
    routes = _Routes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(routes))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    routes.url = lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
    try:
        yield routes
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def refused_url():
    """A 127.0.0.1 URL on a port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """An empty data cache for the test (COURSE_DATA), downloads allowed only to 127.0.0.1."""
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_MIRRORS", raising=False)
    return tmp_path / "cache"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (rep_setup, rep_call), so fixtures
    can act on a failure, e.g. the browser test saving a screenshot."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``book`` run last: the book build reuses the notebook tests' executed copies."""
    items.sort(key=lambda item: item.get_closest_marker("book") is not None)  # stable: order kept


@pytest.fixture(scope="module")
def own_sandbox_uids(request):
    """Jailed kernels of this test module run as uids of its own (``UID_BASE`` in the module),
    so a grader running beside it is never mistaken for a process it left behind."""
    saved = os.environ.get("COURSE_SANDBOX_UID_BASE")
    os.environ["COURSE_SANDBOX_UID_BASE"] = str(request.module.UID_BASE)
    yield request.module.UID_BASE
    if saved is None:
        os.environ.pop("COURSE_SANDBOX_UID_BASE", None)
    else:
        os.environ["COURSE_SANDBOX_UID_BASE"] = saved


# ---- time budgets: printed at the end of every run ------------------------------------------
# Seconds per test area on 2 cores (the developers' guide keeps `make test` under 30 minutes).
# Notebooks have their own budgets: a lesson <= 90 s in fast mode (lesson 08: 120 s), a
# generated solution <= 60 s. Printed, not enforced: a shared machine's times are noisy.
# grading: ten assignments graded end to end, typical wrong answers included, and the hostile
# batch; other: the lesson tests that run lesson cells (05, 07, 08, 09, 10).
AREA_BUDGETS_S = {"lessons": 8 * 60, "solutions": 11 * 60, "grading": 10 * 60, "browser": 3 * 60,
                  "book": 4 * 60, "install": 90, "other": 5 * 60}
NOTEBOOK_BUDGET_S = {"lesson": 90, "08_compile_export.ipynb": 120, "solution": 60}


def _area(nodeid: str) -> str:
    if "test_notebook_executes_in_fast_mode" in nodeid:
        return "solutions" if "[solutions/" in nodeid else "lessons"
    for area, files in (("grading", ("test_grading", "test_sandbox", "test_assignments_grade",
                                     "test_records")),
                        ("browser", ("test_browser",)), ("book", ("test_book",)),
                        ("install", ("test_install",))):
        if any(f in nodeid for f in files):
            return area
    return "other"


def pytest_terminal_summary(terminalreporter):
    reports = [r for key in ("passed", "failed", "error") for r in terminalreporter.stats.get(key, [])
               if getattr(r, "when", "") in ("setup", "call", "teardown")]
    if not reports:
        return
    per_area: dict[str, float] = {}
    notebooks: dict[str, float] = {}
    for r in reports:
        per_area[_area(r.nodeid)] = per_area.get(_area(r.nodeid), 0.0) + r.duration
        if "test_notebook_executes_in_fast_mode" in r.nodeid and r.when == "call":
            notebooks[r.nodeid.split("[", 1)[1].rstrip("]")] = r.duration
    write = terminalreporter.write_line
    write("")
    write("time per test area (seconds, summed over workers; budget on 2 cores):")
    for area in sorted(per_area, key=lambda a: -per_area[a]):
        budget = AREA_BUDGETS_S.get(area)
        flag = "  OVER BUDGET" if budget and per_area[area] > budget else ""
        write(f"  {area:<10} {per_area[area]:7.1f} s   budget {budget} s{flag}")
    for name, seconds in sorted(notebooks.items()):
        kind = "solution" if name.startswith("solutions/") else "lesson"
        budget = NOTEBOOK_BUDGET_S.get(name.split("/")[-1], NOTEBOOK_BUDGET_S[kind])
        flag = "  OVER BUDGET" if seconds > budget else ""
        write(f"  {name:<45} {seconds:6.1f} s   budget {budget} s{flag}")


_MODE_KEYS = ("COURSE_GRADING", "COURSE_RECORD", "COURSE_ANSWER_KEY")
_MODE_AT_START = {k: os.environ.get(k) for k in _MODE_KEYS}


@pytest.fixture(autouse=True)
def _lesson_mode_after_each_test():
    """A test that graded (or a module fixture that did) must not leave the next test in
    grading mode: after each test the checks' mode is what it was when the run started."""
    saved = _MODE_AT_START
    yield
    from course_utils.checks import set_grading_mode

    set_grading_mode(None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
