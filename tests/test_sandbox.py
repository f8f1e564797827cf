"""The grading jail itself (course_utils.grading.sandbox, .launch, .zygote), probed from inside.

A real grading kernel is started both ways a worker starts one: exec'd in its
sandbox, and forked into it from a zygote. Code run in the kernel reports what
it can see and do; every answer must be the jail's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from course_utils.grading import sandbox, zygote

ROOT = Path(__file__).resolve().parents[1]
UID = sandbox.slot_uid(7)

pytestmark = pytest.mark.skipif(not sandbox.availability()[0],
                                reason=f"no grading sandbox here: {sandbox.availability()[1]}")

PROBE = r"""
import json, os, socket, subprocess, resource
report = {}
report["uid"] = os.getuid()
status = open("/proc/self/status").read()
report["cap_eff"] = status.split("CapEff:")[1].split()[0]
report["cap_bnd"] = status.split("CapBnd:")[1].split()[0]
report["no_new_privs"] = status.split("NoNewPrivs:")[1].split()[0]
report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
report["root"] = sorted(os.listdir("/"))
report["repo"] = sorted(os.listdir(REPO_DIR))
report["cwd"] = os.getcwd()
def attempt(fn):
    try:
        fn()
        return "ok"
    except Exception as exc:
        return type(exc).__name__
report["read_source"] = attempt(lambda: open(REPO_DIR + "/assignments/source/ch01_tensors/ch01_tensors.ipynb").read())
report["write_package"] = attempt(lambda: open(REPO_DIR + "/course_utils/checks.py", "a").write("#"))
report["remount"] = subprocess.run(["mount", "-o", "remount,rw,bind", REPO_DIR + "/course_utils"],
                                   capture_output=True).returncode
report["internet"] = attempt(lambda: socket.create_connection(("8.8.8.8", 53), timeout=2))
report["host_port"] = attempt(lambda: socket.create_connection(("127.0.0.1", HOST_PORT), timeout=2))
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname(), timeout=2)
report["loopback"] = "ok"
report["scratch_write"] = attempt(lambda: open("/scratch/x", "w").write("x"))
report["tmp_big"] = attempt(lambda: open("/tmp/big", "wb").write(b"0" * (TMP_MB + 8) * 2**20))
children = []
try:
    for _ in range(200):
        children.append(subprocess.Popen(["sleep", "30"]))
except OSError as exc:
    report["spawn_stopped_at"] = len(children)
for ch in children:
    ch.kill()
report["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
print("REPORT" + json.dumps(report))
"""


def _probe(use_zygote: bool, host_port: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    from course_utils.grading.kernel import GradingKernelManager

    z = zygote.Zygote(env=sandbox.kernel_env()) if use_zygote else None
    GradingKernelManager.zygote = z
    run_dir = sandbox.make_run_dir(UID)
    limits = sandbox.Limits()
    try:
        from traitlets.config import Config

        cfg = Config()
        cfg.GradingKernelManager.run_dir = str(run_dir)
        cfg.GradingKernelManager.sandbox_uid = UID
        code = (PROBE.replace("REPO_DIR", repr(str(ROOT))).replace("HOST_PORT", str(host_port))
                .replace("TMP_MB", str(limits.tmp_mb)))
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        client = NotebookClient(nb, kernel_manager_class=GradingKernelManager, config=cfg,
                                timeout=120, resources={"metadata": {"path": "/tmp"}})
        client.execute()
        text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
        assert "REPORT" in text, nb.cells[0].outputs
        return json.loads(text.split("REPORT", 1)[1].splitlines()[0])
    finally:
        GradingKernelManager.zygote = None
        if z is not None:
            z.close()
        sandbox.remove_run_dir(run_dir)


@pytest.fixture(scope="module")
def host_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    yield srv.getsockname()[1]
    srv.close()


@pytest.mark.parametrize("use_zygote", [False, True], ids=["exec", "zygote"])
def test_a_kernel_sees_and_does_only_what_the_jail_allows(use_zygote, host_server):
    if use_zygote and not zygote.usable():
        pytest.skip("zygote kernels need root")
    r = _probe(use_zygote, host_server)
    if os.geteuid() == 0:
        assert r["uid"] == UID                      # an unprivileged uid of its own
        assert r["nproc"] == sandbox.Limits().processes
        assert r["spawn_stopped_at"] < sandbox.Limits().processes
    assert r["cap_eff"] == "0000000000000000"
    assert r["no_new_privs"] == "1"
    if os.geteuid() == 0:
        assert r["cap_bnd"] == "0000000000000000"
    assert max(r["pids"]) < 50                       # its own PID namespace
    assert "assignments" not in r["repo"] and "course_utils" in r["repo"]
    assert r["read_source"] == "FileNotFoundError"
    assert r["write_package"] in ("OSError", "PermissionError")  # read-only, not its own
    assert r["remount"] != 0
    assert r["internet"] == "OSError" and r["host_port"] in ("ConnectionRefusedError", "OSError")
    assert r["loopback"] == "ok" and r["scratch_write"] == "ok" and r["cwd"] == "/scratch"
    assert r["tmp_big"] == "OSError"                  # the tmpfs is size-capped


def _running_as(uid: int) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
        except OSError:
            continue
        if int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1]) == uid:
            found.append(f"{pid} {cmd}")
    return found


def test_no_process_is_left_after_a_kernel_ends(host_server):
    deadline = time.monotonic() + 20  # a loaded machine may take a moment to reap
    while _running_as(UID) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _running_as(UID) == []


def test_bwrap_command_binds_no_checkout_and_caps_everything(tmp_path):
    argv = sandbox.bwrap_command(["true"], tmp_path, sandbox.Limits(tmp_mb=64), 61009, {"A": "1"})
    joined = " ".join(argv)
    assert "--die-with-parent" in argv and "--unshare-net" in argv and "--unshare-pid" in argv
    assert "--clearenv" in argv and "--setenv A 1" in joined
    assert f"--ro-bind {ROOT} " not in joined + " "          # the checkout is never bound whole
    assert f"{ROOT / 'course_utils'}" in joined
    assert "--size 67108864 --tmpfs /tmp" in joined
    if os.geteuid() == 0:
        assert "--cap-drop ALL" in joined and "--uid 61009" in joined


def test_no_sandbox_no_grading(monkeypatch, tmp_path):
    from course_utils.grading import pipeline

    monkeypatch.setattr(sandbox, "availability", lambda: (False, "bubblewrap is not installed"))
    with pytest.raises(pipeline.SandboxUnavailable, match="--no-sandbox"):
        pipeline.grade("tiny", tmp_path, tmp_path, pipeline.Options(quiet=True))


def test_each_claimed_uid_is_held_and_a_busy_one_is_skipped(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("uids are claimed only as root")
    import subprocess

    monkeypatch.setenv("COURSE_SANDBOX_UID_BASE", "64900")
    first, lock1 = sandbox.claim_uid()
    second, lock2 = sandbox.claim_uid()
    assert first == 64900 and second == 64901       # the first is locked: the next one
    os.close(lock1)
    # a process running as the released uid makes it busy (a grader that died left it)
    squatter = subprocess.Popen(["setpriv", f"--reuid={first}", f"--regid={first}",
                                 "--clear-groups", "sleep", "30"])
    try:
        time.sleep(0.3)
        third, lock3 = sandbox.claim_uid()
        assert third == 64902
        os.close(lock3)
    finally:
        squatter.kill()
        squatter.wait()
    os.close(lock2)


def test_run_folders_of_dead_graders_are_swept_and_live_ones_kept():
    import subprocess as sp
    import tempfile

    gone = sp.Popen(["true"])
    gone.wait()
    dead, live = (Path(tempfile.mkdtemp(prefix="cg-", dir="/tmp")) for _ in range(2))
    (dead / "owner.pid").write_text(str(gone.pid))
    (live / "owner.pid").write_text(str(os.getpid()))
    try:
        sandbox.sweep_run_dirs()
        assert not dead.exists() and live.exists()
    finally:
        for folder in (dead, live):
            shutil.rmtree(folder, ignore_errors=True)
