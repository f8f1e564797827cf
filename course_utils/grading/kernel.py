"""Grading kernels: sandboxed, limited, and a crash-tolerant executor (``course grade``).

nbgrader runs each submission in a Jupyter kernel. Here we add what it lacks:

* :class:`GradingKernelManager` starts the kernel inside the bubblewrap jail of
  :mod:`.sandbox` (no view of the course, no network, own PID namespace, no
  capabilities, an unprivileged uid, rlimits set by :mod:`.launch`), talking
  over unix sockets in a folder of its own, with the runtime tamper guard
  (:mod:`.guard`) loaded and ``COURSE_RECORD=1`` (hidden checks record values
  for the answer key instead of judging). ``sandbox=False`` (``course grade
  --no-sandbox``) starts the same kernel without the jail.
* :class:`GradingExecute` is nbgrader's ``Execute`` preprocessor, except that a
  kernel that dies (``os._exit``, a segfault, the memory limit) no longer stops
  the notebook: the cell gets a ``KernelDied`` error, later cells a
  ``NotRun`` error, and nbgrader scores the notebook as usual.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, Unicode

from course_utils.grading import sandbox, zygote


class GradingKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start jailed and under resource limits."""

    memory_mb = Integer(2048, help="Data-segment limit of the kernel (MiB).").tag(config=True)
    cpu_seconds = Integer(600, help="CPU-time limit of the kernel (s).").tag(config=True)
    guard_log = Unicode("", help="File the tamper guard appends its JSON lines to.").tag(config=True)
    use_sandbox = Bool(True, help="Start the kernel in the bubblewrap jail.").tag(config=True)
    sandbox_uid = Integer(-1, help="Unprivileged uid of the kernel (-1: the slot's default).").tag(
        config=True)
    run_dir = Unicode("", help="Folder of the connection file and IPC sockets.").tag(config=True)
    pid_file = Unicode("", help="Where the grader notes the kernel's pid (outside the jail, "
                       "so the kernel cannot rewrite it).").tag(config=True)

    # The worker's zygote (:mod:`.zygote`), when it has one: kernels are then forked into
    # their fresh sandbox from a pre-imported interpreter instead of exec'd there.
    zygote: zygote.Zygote | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.run_dir:
            # unix sockets in the run folder: the jail has no network to listen on
            self.transport = "ipc"
            self.connection_file = str(Path(self.run_dir) / "k.json")

    def _uid(self) -> int | None:
        return self.sandbox_uid if self.sandbox_uid >= 0 else None

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        uid = self._uid()
        if uid is not None and os.geteuid() == 0 and self.use_sandbox:
            os.chown(self.connection_file, uid, uid)  # the kernel reads it as that uid

    def format_kernel_cmd(self, extra_arguments=None):
        if self.use_sandbox:
            # a signal to our Popen would reach bwrap, not the kernel inside: interrupt a
            # runaway cell with an interrupt_request on the control channel instead
            self.kernel_spec.interrupt_mode = "message"
        cmd = super().format_kernel_cmd(extra_arguments)
        cmd = [*cmd, "--InteractiveShellApp.extensions=course_utils.grading.guard"]
        limits = sandbox.Limits(memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds)
        env = sandbox.kernel_env({"COURSE_GUARD_LOG": self.guard_log or os.devnull})
        if not self.use_sandbox:
            # --no-sandbox: limits only, the kernel sees the grader's machine
            self._unsandboxed_env = env
            return [sys.executable, "-m", "course_utils.grading.launch",
                    "--memory-mb", str(limits.memory_mb), "--cpu-s", str(limits.cpu_seconds), "--",
                    *cmd]
        self._fork_request = None
        uid = self._uid()
        if self.zygote is not None and self.zygote.alive() and uid is not None:
            # the sandbox runs a placeholder; the zygote forks the kernel into it
            self._fork_request = {"argv": cmd[cmd.index("ipykernel_launcher") + 1:]
                                  if "ipykernel_launcher" in cmd else cmd[3:],
                                  "env": env, "uid": uid, "limits": limits.as_launch_args()}
            return sandbox.bwrap_command(zygote.PLACEHOLDER, Path(self.run_dir), limits, uid,
                                         env, launcher=False)
        return sandbox.bwrap_command(cmd, Path(self.run_dir), limits, uid, env)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        # the kernel's own console chatter is not the grader's output
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        if not self.use_sandbox:
            env = dict(os.environ)
            env.pop("JPY_PARENT_PID", None)
            env.update(getattr(self, "_unsandboxed_env", {}))
            kw["env"] = env
        await super()._async_launch_kernel(kernel_cmd, **kw)
        request = getattr(self, "_fork_request", None)
        if request is not None:
            try:
                self.zygote.spawn(self.provisioner.process.pid, **request)
            except RuntimeError:
                # no zygote kernel: end the placeholder sandbox, exec a kernel as usual
                await self.provisioner.kill()
                await self.provisioner.wait()
                type(self).zygote = None
                cmd = self.format_kernel_cmd(self._launch_args.get("extra_arguments"))
                await super()._async_launch_kernel(cmd, **kw)
        if self.pid_file:
            # the pid comes from this manager's own Popen, never from a file the kernel writes
            Path(self.pid_file).write_text(str(self.provisioner.process.pid))

    _launch_kernel = _async_launch_kernel


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


class GradingExecute(Execute):
    """nbgrader's Execute with jailed kernels; a dead kernel scores, not crashes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", GradingKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._died_at = None
        self._locked = False
        return super().preprocess(nb, resources, km)

    def _lock_run_dir(self) -> None:
        # Before the first cell (the kernel has answered, its sockets are bound): from here
        # on the kernel can create, rename or replace nothing in its run folder.
        run_dir = getattr(self.km, "run_dir", "")
        if run_dir and getattr(self.km, "use_sandbox", False):
            sandbox.lock_run_dir(Path(run_dir))
        self._locked = True

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if not self._locked:
            self._lock_run_dir()
        if self._died_at is not None:
            cell.outputs = [_error("NotRun", f"the kernel died in cell {self._died_at}; "
                                   "this cell was not executed")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._died_at = index
            cell.outputs = list(cell.get("outputs", [])) + [_error(
                "KernelDied", "the kernel died while running this cell (os._exit, a crash, "
                "or the memory/CPU limit of the grader)")]
            return cell, resources
