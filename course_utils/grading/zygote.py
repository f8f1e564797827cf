"""Kernels forked from a pre-imported interpreter into a fresh sandbox (``course grade``).

Starting a kernel costs about 2.5 s of CPU, nearly all of it ``import torch``
and ipykernel: most of what grading a short submission costs. A zygote
imports them once per grading worker. For each submission the kernel manager
still starts a **fresh** bubblewrap sandbox (:mod:`.sandbox`: new mount, PID,
network, IPC and UTS namespaces, fresh tmpfs scratch, ``/tmp`` and
``/dev/shm``), whose own command is only a placeholder (``sleep``). The zygote
then forks a child that joins that sandbox's namespaces (``setns``) and forks
the kernel inside it; the kernel drops every capability, takes its rlimits,
switches to the slot's unprivileged uid and sets ``no_new_privs`` — the state
an exec'd kernel reaches through :mod:`.launch` — and runs ipykernel without
importing anything again. No state of one submission reaches the next: each
kernel is a new process in new namespaces, forked from a zygote that never
ran student code.

When the kernel exits, its parent kills the sandbox's init, so bwrap ends and
the kernel manager sees the kernel gone; when the kernel manager kills bwrap,
the PID namespace dies and takes the kernel with it.

Protocol (stdin/stdout, one JSON object per line)::

    -> {"bwrap_pid": P, "argv": [...], "env": {...}, "uid": U, "limits": {...}}
    <- {"ok": true, "pid": <pid of the joining child>}  or  {"ok": false, "error": "..."}

Only root can join namespaces this way; elsewhere kernels are exec'd as before.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_NAMESPACES = ("ipc", "uts", "net", "cgroup", "pid", "mnt")  # mnt last: /proc paths change
_SANDBOX_READY_S = 20.0


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def sandbox_init(bwrap_pid: int, placeholder: str) -> int:
    """The pid of the sandbox's init, once its mounts are complete (its command exec'd)."""
    deadline = time.monotonic() + _SANDBOX_READY_S
    real = os.path.realpath(placeholder)
    while time.monotonic() < deadline:
        for init in _children(bwrap_pid):
            for command in _children(init):
                try:
                    if os.readlink(f"/proc/{command}/exe") == real:
                        return init
                except OSError:
                    pass
        if not Path(f"/proc/{bwrap_pid}").exists():
            break
        time.sleep(0.005)
    raise RuntimeError(f"the sandbox of bwrap pid {bwrap_pid} did not come up")


def _become_kernel(argv: list[str], env: dict, uid: int, limits: dict) -> None:
    """In the sandbox: limits, no privileges, a clean process; then run ipykernel. Never returns."""
    from course_utils.grading import launch

    try:
        os.setsid()
        os.chdir("/scratch")
        launch.apply_limits(limits)
        launch.drop_bounding_set()
        launch.drop_privileges(uid)
        launch.no_new_privs()
        os.environ.clear()
        os.environ.update(env)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, 4096)
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance()
    finally:
        os._exit(0)


def _join_and_fork(init: int, argv: list[str], env: dict, uid: int, limits: dict) -> None:
    """The zygote's child: join the sandbox, fork the kernel into it, end the sandbox after it."""
    try:
        libc = _libc()
        fds = []
        for ns in _NAMESPACES:
            path = f"/proc/{init}/ns/{ns}"
            if os.path.exists(path):
                fds.append((ns, os.open(path, os.O_RDONLY)))
        for ns, fd in fds:
            if libc.setns(fd, 0) != 0:
                raise OSError(ctypes.get_errno(), f"setns({ns})")
            os.close(fd)
        kernel = os.fork()  # the PID namespace applies to children: this one is inside
        if kernel == 0:
            _become_kernel(argv, env, uid, limits)
        os.waitpid(kernel, 0)
    finally:
        try:
            os.kill(init, signal.SIGKILL)  # the sandbox ends with its kernel
        except OSError:
            pass
        os._exit(0)


def spawn(request: dict) -> dict:
    init = sandbox_init(int(request["bwrap_pid"]), request.get("placeholder", "/usr/bin/sleep"))
    child = os.fork()
    if child == 0:
        _join_and_fork(init, request["argv"], request["env"], int(request["uid"]),
                       request["limits"])
    return {"ok": True, "pid": child}


def preload() -> None:
    """What every kernel would import: done once, before any fork."""
    import IPython  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import course_utils.checks  # noqa: F401
    import course_utils.grading.guard  # noqa: F401
    import course_utils.records  # noqa: F401


def serve() -> None:
    parent = os.getppid()
    _libc().prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: die with the worker
    if os.getppid() != parent:  # the worker died before the line above: no signal will come
        os._exit(0)
    preload()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        _reap(block=False)
        try:
            reply = spawn(json.loads(line))
        except Exception as exc:  # reported; the kernel manager falls back to exec
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), file=out, flush=True)
    _reap(block=True)


def _reap(block: bool) -> None:
    # Waiting (not ignoring SIGCHLD) is what adds the kernels' CPU time to this
    # process's children, and so to the benchmark's count.
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Zygote:
    """The worker's handle on its zygote process."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_utils.grading.zygote"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        first = self.proc.stdout.readline()
        if not first.strip() or not json.loads(first).get("ready"):
            raise RuntimeError("the grading zygote did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, bwrap_pid: int, argv: list[str], env: dict, uid: int, limits: dict) -> int:
        request = {"bwrap_pid": bwrap_pid, "argv": argv, "env": env, "uid": uid,
                   "limits": limits, "placeholder": PLACEHOLDER[0]}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("the grading zygote died")
        reply = json.loads(reply)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "zygote spawn failed"))
        return int(reply["pid"])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


PLACEHOLDER = ["/usr/bin/sleep", "infinity"]


def usable() -> bool:
    """Zygote kernels need root (to join namespaces) and Linux; else kernels are exec'd."""
    return (sys.platform.startswith("linux") and os.geteuid() == 0
            and os.environ.get("COURSE_GRADE_ZYGOTE", "1") != "0")


if __name__ == "__main__":
    serve()
