"""The OS sandbox every submission kernel runs in (``course grade``, issue 12).

Student code is hostile code, and an in-process guard cannot be sound: the code
that judges and the code judged would share one process. So each submission's
kernel runs inside a bubblewrap jail, and the verdict is reached outside it
(:mod:`.answer_key`). Inside the jail the kernel sees:

* read-only: ``/usr`` (system libraries), the Python installation, the
  virtual environment, the ``course_utils`` package and the data cache, each
  bound at its own path so imports work unchanged; nothing else of the host:
  not the checkout (``assignments/source`` stays out of view), not the course
  directory, the gradebook, other students' files or anyone's home;
* writable: a size-capped tmpfs as its working directory (``/scratch``, also
  ``HOME``), ``/tmp`` and ``/dev/shm``, all gone when it ends; and the folder
  of its own IPC sockets, which the grader locks read-only once the kernel is
  up (:func:`lock_run_dir`);
* no network: a network namespace of its own, with only a loopback device (so
  ``gloo`` on 127.0.0.1 still works);
* its own PID namespace: it sees no host process, and every process it starts
  dies with it (``--die-with-parent``; the namespace's init is killed with the
  kernel); a new session (no terminal to inject into);
* no capabilities and no way to gain any (``--cap-drop ALL``: with one left, a
  read-only bind can be remounted read-write; ``no_new_privs``), an
  unprivileged uid of its own (root ignores ``RLIMIT_NPROC``; one uid per
  worker slot, so two submissions graded at once cannot touch each other), and
  rlimits for memory, CPU, processes, file size and open files
  (:mod:`.launch` sets them, then drops to that uid).

The kernel talks to the grader over unix sockets (jupyter's ``ipc`` transport)
in that bound folder, not TCP: the jail has no network to listen on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# First uid of the unprivileged range the kernels run as (one per worker slot).
# Chosen above the usual range of real users and below 65534 (nobody);
# COURSE_SANDBOX_UID_BASE moves it (two graders on one machine, tests).
SANDBOX_UID_BASE = 61000


@dataclass
class Limits:
    memory_mb: int = 2048     # data segment (RLIMIT_DATA); RLIMIT_AS gets headroom on top
    cpu_seconds: int = 600    # RLIMIT_CPU: SIGXCPU, then SIGKILL 10 s later
    processes: int = 64       # RLIMIT_NPROC for the sandbox uid (threads count too)
    file_mb: int = 256        # RLIMIT_FSIZE: largest file it may write
    open_files: int = 256     # RLIMIT_NOFILE
    scratch_mb: int = 512     # size of the tmpfs at /scratch
    tmp_mb: int = 512         # size of the tmpfs at /tmp
    shm_mb: int = 256         # size of the tmpfs at /dev/shm

    def as_launch_args(self) -> dict[str, str]:
        """These limits as :mod:`.launch` reads them."""
        return {"--memory-mb": str(self.memory_mb), "--cpu-s": str(self.cpu_seconds),
                "--nproc": str(self.processes), "--fsize-mb": str(self.file_mb),
                "--nofile": str(self.open_files)}


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@lru_cache(maxsize=1)
def availability() -> tuple[bool, str]:
    """(True, "") when a sandbox can start here, else (False, why) with what to do."""
    if not sys.platform.startswith("linux"):
        return False, (f"the grading sandbox needs Linux (bubblewrap); this is {sys.platform}")
    exe = bwrap_path()
    if exe is None:
        return False, ("bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; "
                       "`make test` and `make lab` install it when run as root)")
    probe = [exe, *_namespace_flags(), "--ro-bind", "/", "/", "--proc", "/proc",
             "--dev", "/dev", "--die-with-parent", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap could not run: {exc}"
    if proc.returncode != 0:
        return False, ("bubblewrap cannot create namespaces here (unprivileged user namespaces "
                       f"disabled?): {proc.stderr.strip()[:300]}")
    return True, ""


def _privileged() -> bool:
    return os.geteuid() == 0


def _namespace_flags() -> list[str]:
    flags = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
             "--unshare-cgroup-try"]
    if not _privileged():
        flags.append("--unshare-user")  # unprivileged bwrap needs a user namespace
    return flags


def _dirs_above(path: Path, made: set[str]) -> list[str]:
    # bwrap creates missing parents with mode 0700, which an unprivileged uid
    # cannot traverse: create each one first, world-readable.
    out = []
    for parent in reversed(path.parents):
        p = str(parent)
        if p == "/" or p in made or p in ("/usr", "/tmp", "/dev", "/proc"):
            continue
        made.add(p)
        out += ["--perms", "0755", "--dir", p]
    return out


def read_only_paths() -> list[Path]:
    """What the kernel may read: the interpreter, the environment, the package, the data."""
    import course_utils
    from course_utils.data.cache import data_dir

    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(course_utils.__file__).resolve().parent]
    real_exe = Path(os.path.realpath(sys.executable))
    if not any(real_exe.is_relative_to(p) for p in paths):
        paths.append(real_exe.parent)
    data = Path(data_dir()).resolve()
    if data.exists():
        paths.append(data)
    out: list[Path] = []
    for p in sorted(set(paths), key=lambda q: len(q.parts)):
        if str(p).startswith("/usr/") or any(p.is_relative_to(q) for q in out):
            continue  # /usr is bound whole; nested paths come with their parent
        out.append(p)
    return out


def bwrap_command(command: list[str], run_dir: Path, limits: Limits, uid: int | None,
                  env: dict[str, str], launcher: bool = True) -> list[str]:
    """The full argv: bwrap with its mounts, then the launcher (limits, uid), then ``command``.

    ``launcher=False``: ``command`` runs as it is, with no capability at all (the
    placeholder of a zygote kernel, :mod:`.zygote`).
    """
    exe = bwrap_path()
    if exe is None:
        raise RuntimeError(availability()[1])
    made: set[str] = set()
    argv = [exe, *_namespace_flags(), "--die-with-parent", "--new-session",
            "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        target = Path("/") / name
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    for etc in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
                "passwd", "group"):
        if (Path("/etc") / etc).exists():
            argv += ["--ro-bind", f"/etc/{etc}", f"/etc/{etc}"]
    hosts = run_dir / "hosts"
    hosts.write_text("127.0.0.1 localhost sandbox\n::1 localhost\n")
    argv += ["--ro-bind", str(hosts), "/etc/hosts"]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(limits.shm_mb * 2**20), "--tmpfs", "/dev/shm",
             "--perms", "0777", "--size", str(limits.scratch_mb * 2**20), "--tmpfs", "/scratch"]
    for path in read_only_paths():
        argv += _dirs_above(path, made) + ["--ro-bind", str(path), str(path)]
    # the IPC sockets: bound at the same path so the connection file reads the same inside
    argv += _dirs_above(run_dir, made) + ["--bind", str(run_dir), str(run_dir)]
    argv += ["--chdir", "/scratch", "--clearenv"]
    for key, value in sorted(env.items()):
        argv += ["--setenv", key, value]
    if not launcher:
        if _privileged():
            argv += ["--cap-drop", "ALL"]
        return argv + ["--", *command]
    if _privileged():
        # the launcher needs these to empty the bounding set and switch to the sandbox
        # uid; after that it has none
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]
    start = [sys.executable, "-m", "course_utils.grading.launch"]
    for key, value in limits.as_launch_args().items():
        start += [key, value]
    if uid is not None and _privileged():
        start += ["--uid", str(uid)]
    return argv + ["--", *start, "--", *command]


def kernel_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed kernel (nothing leaks in from the grader's)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/scratch", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
        "COURSE_GRADING": "1", "COURSE_RECORD": "1", "COURSE_NO_PROGRESS": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LANG": "C.UTF-8",
    }
    from course_utils.data.cache import data_dir

    env["COURSE_DATA"] = str(Path(data_dir()).resolve())
    for key in ("COURSE_FAST", "COURSE_DEVICE"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra or {})
    return env


_RUN_OWNER = "owner.pid"


def _owner_alive(run_dir: Path) -> bool:
    try:
        pid = int((run_dir / _RUN_OWNER).read_text())
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):       # unreadable or no owner file: judge by age
        return time.time() - run_dir.stat().st_mtime < 6 * 3600
    return True


def sweep_run_dirs() -> int:
    """Remove run folders whose grader died without cleaning up (SIGKILL, a crash); return how many."""
    removed = 0
    for run_dir in Path("/tmp").glob("cg-*"):
        try:
            if run_dir.is_dir() and not run_dir.is_symlink() and not _owner_alive(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def make_run_dir(uid: int | None) -> Path:
    """A short folder for the connection file and IPC sockets (unix socket paths are short)."""
    sweep_run_dirs()
    run_dir = Path(tempfile.mkdtemp(prefix="cg-", dir="/tmp"))
    (run_dir / _RUN_OWNER).write_text(str(os.getpid()))   # for the next grader's sweep
    if uid is not None and _privileged():
        os.chown(run_dir, uid, uid)
    os.chmod(run_dir, 0o755)
    return run_dir


def lock_run_dir(run_dir: Path) -> None:
    """Once the kernel has bound its sockets: it may create nothing more there."""
    if _privileged():
        os.chown(run_dir, 0, 0)
    os.chmod(run_dir, 0o755 if _privileged() else 0o555)


def remove_run_dir(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


def uid_base() -> int:
    return int(os.environ.get("COURSE_SANDBOX_UID_BASE", SANDBOX_UID_BASE))


def slot_uid(slot: int) -> int:
    return uid_base() + int(slot)


_UID_LOCKS = Path("/tmp/.course-grade-uids")
_UID_RANGE = 1000


def _uid_in_use(uid: int) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            return True
                        break
        except OSError:
            continue
    return False


def claim_uid() -> tuple[int, int]:
    """(uid, lock fd): a sandbox uid no other grader holds and no process runs as.

    ``RLIMIT_NPROC`` counts a uid's processes machine-wide, so two graders (or
    two workers) sharing a uid could starve each other: each worker holds its
    own uid, by an exclusive lock, for as long as it lives (closing the fd, or
    dying, releases it).
    """
    import fcntl

    _UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    for uid in range(uid_base(), uid_base() + _UID_RANGE):
        fd = os.open(_UID_LOCKS / f"{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _uid_in_use(uid):  # a leftover of a grader that died: not this one
            os.close(fd)
            continue
        return uid, fd
    raise RuntimeError(f"no free sandbox uid in {uid_base()}..{uid_base() + _UID_RANGE - 1}")
