"""Start a grading kernel under resource limits (``course grade``, issue 8).

    python -m course_utils.grading.launch --memory-mb N --cpu-s N --guard-log PATH -- <kernel argv>

Sets ``RLIMIT_DATA`` (the memory limit), ``RLIMIT_AS`` (the same plus
headroom), ``RLIMIT_CPU`` and no core dumps, exports ``COURSE_GRADING=1``,
writes its pid next to the guard log (so the grader can kill the kernel), then
``exec``s the kernel command. Imports nothing heavy: it runs once per kernel.
"""

from __future__ import annotations

import os
import resource
import sys

# Address space a Python kernel with torch imported reserves without using it
# (shared libraries, thread stacks, allocator arenas): RLIMIT_AS gets this on
# top of the memory limit, which is enforced on the data segment (RLIMIT_DATA).
_AS_HEADROOM_MB = 8192


def main(argv: list[str]) -> None:
    """Set limits, then exec the kernel command that follows ``--``."""
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1:]
    values = dict(zip(opts[::2], opts[1::2]))
    mem = int(values.get("--memory-mb", "2048")) * 2**20
    cpu = int(values.get("--cpu-s", "600"))
    for limit, value in ((resource.RLIMIT_DATA, mem),
                         (resource.RLIMIT_AS, mem + _AS_HEADROOM_MB * 2**20),
                         (resource.RLIMIT_CPU, cpu),
                         (resource.RLIMIT_CORE, 0)):
        _, hard = resource.getrlimit(limit)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        if limit == resource.RLIMIT_CPU:  # SIGXCPU at the soft limit, SIGKILL 10 s later
            hard = soft + 10 if hard == resource.RLIM_INFINITY else hard
        else:
            hard = soft
        resource.setrlimit(limit, (soft, hard))
    guard_log = values.get("--guard-log", os.devnull)
    os.environ["COURSE_GRADING"] = "1"
    os.environ["COURSE_GUARD_LOG"] = guard_log
    if guard_log != os.devnull:  # lets the grader kill this kernel by pid
        with open(guard_log + ".pid", "w") as fh:
            fh.write(str(os.getpid()))
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per submission
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
