"""Execute notebooks top to bottom in fresh kernels (``course run``; the notebook tests use it).

Each notebook gets a new kernel, started in the notebook's own folder, with
``COURSE_FAST=1`` when asked. A failure is reported as the first failing cell:
its index, the first line of its source, and the error.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


class NotebookPathError(ValueError):
    """A path that is missing or not a readable notebook."""


@dataclass
class NotebookResult:
    path: Path
    ok: bool
    seconds: float
    failed_cell: int | None = None  # index among all cells
    cell_excerpt: str = ""
    error: str = ""
    verdicts: int = 0  # VERDICT lines printed (course_utils.claims)
    false_verdicts: list[str] = field(default_factory=list)  # "cell N: line" for each false one

    def summary(self) -> str:
        if self.ok and self.false_verdicts:
            return f"{len(self.false_verdicts)} false verdict(s): {self.false_verdicts[0]}"
        if self.ok:
            return "ok"
        where = f"cell {self.failed_cell} [{self.cell_excerpt}]: " if self.failed_cell is not None else ""
        return f"{where}{self.error}"


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read and validate a notebook, with a one-line error for anything wrong."""
    path = Path(path)
    if not path.exists():
        raise NotebookPathError(f"{path}: no such file")
    if path.is_dir():
        raise NotebookPathError(f"{path}: is a folder, expected a .ipynb file")
    if path.suffix != ".ipynb":
        raise NotebookPathError(f"{path}: not a notebook (expected a .ipynb file)")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - json errors, schema errors, encoding errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookPathError(f"{path}: not a valid notebook ({first[:200]})") from None
    return nb


@contextmanager
def _environment(updates: dict[str, str]):
    # The kernel inherits this process's environment when it starts.
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_notebook(path: str | Path, *, fast: bool = True, timeout: int = 600,
                 out_dir: str | Path | None = None, kernel_name: str = "python3",
                 extra_env: dict[str, str] | None = None) -> NotebookResult:
    """Execute ``path`` in a fresh kernel; write the executed copy to ``out_dir`` if given.

    ``timeout`` is per cell, in seconds. The notebook file itself is never modified.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = read_notebook(path)
    # Lesson mode unless asked otherwise: a grading setting left in this process's
    # environment must not turn a lesson's printed FAIL lines into errors.
    env = {"COURSE_FAST": "1" if fast else "0", "COURSE_GRADING": "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    env.update(extra_env or {})
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.resolve().parent)}})
    start = time.perf_counter()
    result = NotebookResult(path=path, ok=True, seconds=0.0)
    try:
        with _environment(env):
            client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        result.ok = False
        result.failed_cell, result.cell_excerpt = _failing_cell(nb)
        result.error = (f"timed out after {timeout} s (the per-cell limit)"
                        if isinstance(exc, CellTimeoutError) else _error_line(exc, nb, result.failed_cell))
    except Exception as exc:  # noqa: BLE001 - kernel start failures and the like
        result.ok = False
        result.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    result.seconds = time.perf_counter() - start
    result.verdicts, result.false_verdicts = count_verdicts(nb)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
    return result


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def count_verdicts(nb) -> tuple[int, list[str]]:
    """How many verdict lines an executed notebook printed, and each false one with its cell."""
    from course_utils.claims import verdict_lines

    total, false = 0, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        every, wrong = verdict_lines(_stream_text(cell))
        total += len(every)
        false += [f"cell {i}: {line}" for line in wrong]
    return total, false


def _failing_cell(nb) -> tuple[int | None, str]:
    """The first code cell with an error output, else the last cell that started running."""
    last_run = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index, _first_line(cell.source)
        if cell.get("execution_count") is not None:
            last_run = index
    if last_run is not None:
        # A timeout or dead kernel leaves no error output: the culprit is the next code cell.
        following = [i for i, c in enumerate(nb.cells) if i > last_run and c.cell_type == "code"]
        index = following[0] if following else last_run
        return index, _first_line(nb.cells[index].source)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
    return first_code, _first_line(nb.cells[first_code].source) if first_code is not None else ""


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() and not line.startswith("#")]
    text = lines[0] if lines else (source.splitlines() or [""])[0]
    return text[:60]


def _error_line(exc: Exception, nb, index: int | None) -> str:
    if index is not None:
        for output in nb.cells[index].get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {str(output.get('evalue'))[:200]}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1][:200] if text else ''}"


def format_results(results: list[NotebookResult]) -> str:
    """A table: notebook, status, seconds, and the first failing cell with its error."""
    width = max([len(str(r.path)) for r in results] + [8])
    lines = [f"{'notebook':<{width}}  status  seconds  verdicts  detail"]
    for r in results:
        status = "PASS" if r.ok and not r.false_verdicts else "FAIL"
        lines.append(f"{str(r.path):<{width}}  {status:<6}  {r.seconds:7.1f}  "
                     f"{r.verdicts - len(r.false_verdicts):>3}/{r.verdicts:<4}  "
                     f"{'' if status == 'PASS' else r.summary()}")
    return "\n".join(lines)
