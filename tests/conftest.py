"""Shared test fixtures. Nothing here touches the network: servers bind 127.0.0.1."""

from __future__ import annotations

import os
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
