"""Grading kernels: resource limits and a crash-tolerant executor (``course grade``, issue 8).

nbgrader runs each submission in a Jupyter kernel. Here we add what it lacks:

* :class:`GradingKernelManager` starts the kernel through :mod:`.launch` (a
  tiny launcher) which sets ``RLIMIT_DATA``/``RLIMIT_AS`` (memory),
  ``RLIMIT_CPU`` (runaway CPU) and ``COURSE_GRADING=1``, then ``exec``s the
  usual ``ipykernel`` with the runtime tamper guard (:mod:`.guard`) loaded.
* :class:`GradingExecute` is nbgrader's ``Execute`` preprocessor, except that a
  kernel that dies (``os._exit``, a segfault, the memory limit) no longer stops
  the notebook: the cell gets a ``KernelDied`` error, later cells a
  ``NotRun`` error, and nbgrader scores the notebook as usual.
"""

from __future__ import annotations

import os
import sys

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode


class GradingKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start under resource limits."""

    memory_mb = Integer(2048, help="Data-segment limit of the kernel (MiB).").tag(config=True)
    cpu_seconds = Integer(600, help="CPU-time limit of the kernel (s).").tag(config=True)
    guard_log = Unicode("", help="File the tamper guard appends its JSON lines to.").tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return [sys.executable, "-m", "course_utils.grading.launch",
                "--memory-mb", str(self.memory_mb), "--cpu-s", str(self.cpu_seconds),
                "--guard-log", self.guard_log or os.devnull, "--", *cmd,
                "--InteractiveShellApp.extensions=course_utils.grading.guard"]


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


class GradingExecute(Execute):
    """nbgrader's Execute with limited kernels; a dead kernel scores, not crashes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", GradingKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._died_at = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
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
