"""The nbgrader course directory and its configuration (``course grade``, issue 8).

Everything goes through nbgrader's own objects: :func:`load_config` reads the
course's ``nbgrader_config.py`` (the repo's ``assignments/nbgrader_config.py``
when the course directory has none) and :func:`nbgrader_api` returns an
``nbgrader.apps.NbGraderAPI`` bound to it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENTS_DIR = REPO_ROOT / "assignments"
CONFIG_NAME = "nbgrader_config.py"
# file name -> student id: the part before the first "_" (alice_ch01_tensors.ipynb -> alice)
DEFAULT_PATTERN = r"(?P<student>[^_]+)_.*\.ipynb"


def sqlite_url(path: os.PathLike | str) -> str:
    return "sqlite:///" + str(Path(path).resolve())


def load_config(course_dir: os.PathLike | str, *, db_url: str | None = None,
                cell_timeout: int | None = None, memory_mb: int | None = None,
                cpu_seconds: int | None = None, guard_log: str | None = None,
                hardened: bool = False, use_sandbox: bool = True, sandbox_uid: int | None = None,
                run_dir: str | None = None, pid_file: str | None = None) -> Config:
    """nbgrader Config for ``course_dir`` (root, gradebook, limits).

    ``db_url`` defaults to ``$COURSE_GRADEBOOK_URL`` or ``<course_dir>/gradebook.db``.
    ``hardened=True`` swaps nbgrader's Execute for :class:`.kernel.GradingExecute`
    (jailed, limited kernels in ``run_dir``, tamper guard, dead kernels scored).
    """
    _venv_on_path()
    course_dir = Path(course_dir).resolve()
    cfg_file = course_dir / CONFIG_NAME
    if not cfg_file.exists():
        cfg_file = ASSIGNMENTS_DIR / CONFIG_NAME
    cfg = Config()
    if cfg_file.exists():
        # The config sets COURSE_GRADING=1 for the kernels plain nbgrader starts; this
        # process (the grader, a test run) must not switch its own checks into grading mode.
        before = os.environ.get("COURSE_GRADING")
        cfg.merge(PyFileConfigLoader(cfg_file.name, path=str(cfg_file.parent)).load_config())
        if before is None:
            os.environ.pop("COURSE_GRADING", None)
        else:
            os.environ["COURSE_GRADING"] = before
    cfg.CourseDirectory.root = str(course_dir)
    cfg.CourseDirectory.db_url = db_url or os.environ.get("COURSE_GRADEBOOK_URL") or \
        sqlite_url(course_dir / "gradebook.db")
    if cell_timeout is not None:
        cfg.Execute.timeout = int(cell_timeout)
    if hardened:
        from nbgrader.converters import Autograde
        from nbgrader.preprocessors import Execute

        from course_utils.grading.kernel import GradingExecute
        cfg.Autograde.autograde_preprocessors = [
            GradingExecute if pp is Execute else pp
            for pp in Autograde.class_traits()["autograde_preprocessors"].default()]
        cfg.GradingKernelManager.use_sandbox = bool(use_sandbox)
        given = dict(memory_mb=(memory_mb, int), cpu_seconds=(cpu_seconds, int), sandbox_uid=(sandbox_uid, int),
                     guard_log=(guard_log, str), run_dir=(run_dir, str), pid_file=(pid_file, str))
        for trait, (value, kind) in given.items():
            if value is not None:          # unset: the kernel manager's default
                setattr(cfg.GradingKernelManager, trait, kind(value))
    # The exchange (release/collect over a shared folder) is not used here.
    cfg.Exchange.root = str(course_dir / ".exchange")
    return cfg


def _venv_on_path() -> None:
    # nbgrader creates a new gradebook by running the `alembic` script found on
    # PATH; make it find the one installed next to this Python.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_api(config: Config):
    """An ``NbGraderAPI`` for this config, quiet unless something goes wrong."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    api.log.setLevel(logging.WARNING)
    return api


def check_result(result: dict, what: str) -> dict:
    """Raise with nbgrader's own log when an NbGraderAPI call failed."""
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed:\n{result.get('error', '')}\n"
                           f"{result.get('log', '')}")
    return result
