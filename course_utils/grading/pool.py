"""A pool of grading workers, one process (and one kernel) per submission at a time (issue 8).

Each worker (:mod:`.worker`) is a separate long-lived process that imports
nbgrader once. A submission that runs past its wall-clock limit gets its
worker and its kernel killed (by process id) and a fresh worker takes the
next submission: a runaway never stops the batch.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def _kill(pid: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Worker:
    def __init__(self, log_path: Path, env: dict):
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_utils.grading.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, env=env, start_new_session=True,
            text=True, bufsize=1)

    def ask(self, spec: dict, timeout: float) -> dict | None:
        """Send one spec; the result dict, or None on timeout/crash."""
        try:
            self.proc.stdin.write(json.dumps(spec) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    return None
                continue
            line = self.proc.stdout.readline()
            if not line:
                return None
            if line.startswith("DONE "):
                return json.loads(Path(line[5:].strip()).read_text())

    def kill(self, kernel_pidfile: Path | None = None) -> None:
        """Kill the worker and its kernel (jail included) with their process groups.

        The kernel's pid was written by the worker's kernel manager into a file
        outside the jail; the kernel itself cannot write there. A jailed kernel
        dies with bwrap anyway (``--die-with-parent``, its own PID namespace).
        """
        _kill(self.proc.pid, group=True)
        if kernel_pidfile is not None and kernel_pidfile.exists():
            try:
                pid = int(kernel_pidfile.read_text().strip())
            except ValueError:
                pid = 0
            if pid > 1:
                _kill(pid, group=True)
                _kill(pid)
        self.proc.wait()
        self.log.close()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            _kill(self.proc.pid, group=True)
            self.proc.wait()
        self.log.close()


class WorkerPool:
    """Run specs on ``jobs`` workers; yield ``(spec, result)`` as they finish."""

    def __init__(self, jobs: int, log_dir: Path, env: dict | None = None):
        self.jobs, self.log_dir = max(1, int(jobs)), Path(log_dir)
        self.env = dict(env or os.environ)
        self._workers: dict[int, tuple[_Worker, dict | None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _run(self, slot: int, todo: queue.Queue, done: queue.Queue) -> None:
        worker = None
        while not self._stop.is_set():
            try:
                spec = todo.get_nowait()
            except queue.Empty:
                break
            if worker is None:
                worker = _Worker(self.log_dir / f"worker{slot}.log", self.env)
            with self._lock:
                self._workers[slot] = (worker, spec)
            result = worker.ask(spec, spec["wall_timeout"])
            if result is None:
                pidfile = Path(spec["work_dir"]) / f"{spec['student']}.kernel.pid"
                worker.kill(pidfile)
                worker = None
                if self._stop.is_set():
                    break
                result = {"student": spec["student"], "ok": False, "error":
                          f"no result within {spec['wall_timeout']:.0f} s (or the worker "
                          "crashed); worker and kernel killed", "seconds": spec["wall_timeout"],
                          "flags": ["worker_killed"], "sandbox": spec.get("sandbox", True)}
            with self._lock:
                self._workers[slot] = (worker, None)
            done.put((spec, result))
        if worker is not None:
            worker.close()
        done.put(None)

    def map(self, specs: list[dict]):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        todo, done = queue.Queue(), queue.Queue()
        for spec in specs:
            todo.put(spec)
        n = min(self.jobs, len(specs))
        threads = [threading.Thread(target=self._run, args=(k, todo, done), daemon=True)
                   for k in range(n)]
        for t in threads:
            t.start()
        finished = 0
        try:
            while finished < n:
                item = done.get()
                if item is None:
                    finished += 1
                else:
                    yield item
        finally:
            self.shutdown()
            for t in threads:
                t.join(timeout=60)

    def shutdown(self) -> None:
        """Stop handing out work; kill workers still busy (interrupt or early exit)."""
        self._stop.set()
        with self._lock:
            busy = [(w, s) for w, s in self._workers.values() if w is not None and s]
        for worker, spec in busy:
            worker.kill(Path(spec["work_dir"]) / f"{spec['student']}.kernel.pid")
