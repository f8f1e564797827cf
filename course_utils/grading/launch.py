"""Start a grading kernel under resource limits, as the sandbox uid (``course grade``, issue 12).

    python -m course_utils.grading.launch --memory-mb N --cpu-s N --nproc N --fsize-mb N
        --nofile N [--uid U] -- <kernel argv>

Runs inside the bubblewrap jail (:mod:`.sandbox`), before any student code:
sets ``RLIMIT_DATA`` (the memory limit), ``RLIMIT_AS`` (the same plus
headroom), ``RLIMIT_CPU``, ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``,
``RLIMIT_NOFILE`` and no core dumps; switches to the unprivileged ``--uid``
(when started as root: root ignores ``RLIMIT_NPROC``), which also drops the
two capabilities bubblewrap left for this; sets ``no_new_privs``; then
``exec``s the kernel. It writes no pid file: the grader takes the kernel's pid
from its kernel manager. Imports nothing heavy: it runs once per kernel.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

# Address space a Python kernel with torch imported reserves without using it
# (shared libraries, thread stacks, allocator arenas): RLIMIT_AS gets this on
# top of the memory limit, which is enforced on the data segment (RLIMIT_DATA).
_AS_HEADROOM_MB = 8192
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24


def _set(limit: int, value: int, grace: int = 0) -> None:
    _, hard = resource.getrlimit(limit)
    soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(limit, (soft, soft + grace if grace else soft))


def apply_limits(values: dict[str, str]) -> None:
    mb = 2**20
    mem = int(values.get("--memory-mb", "2048")) * mb
    _set(resource.RLIMIT_DATA, mem)
    _set(resource.RLIMIT_AS, mem + _AS_HEADROOM_MB * mb)
    _set(resource.RLIMIT_CPU, int(values.get("--cpu-s", "600")), grace=10)  # SIGXCPU, then SIGKILL
    _set(resource.RLIMIT_CORE, 0)
    if "--nproc" in values:
        _set(resource.RLIMIT_NPROC, int(values["--nproc"]))
    if "--fsize-mb" in values:
        _set(resource.RLIMIT_FSIZE, int(values["--fsize-mb"]) * mb)
    if "--nofile" in values:
        _set(resource.RLIMIT_NOFILE, int(values["--nofile"]))


def drop_bounding_set() -> None:
    """Empty the capability bounding set, so nothing exec'd later can hold a capability."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def drop_privileges(uid: int) -> None:
    """Become ``uid`` for good: real, effective and saved ids, no groups, no capabilities."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to non-root: the kernel clears every capability
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not switch to the sandbox uid")


def no_new_privs() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_NO_NEW_PRIVS) failed")


def main(argv: list[str]) -> None:
    """Set limits, drop to the sandbox uid, then exec the kernel command that follows ``--``."""
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1:]
    values = dict(zip(opts[::2], opts[1::2]))
    apply_limits(values)
    if "--uid" in values:
        drop_bounding_set()
        drop_privileges(int(values["--uid"]))
    no_new_privs()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per submission
    os.environ.pop("JPY_PARENT_PID", None)  # its parent poller would see pid 1 and quit
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
