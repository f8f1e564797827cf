"""The local progress record for self-learners (``course progress``).

Every exercise check in a lesson names its exercise, ``exercise="01.3"``
(lesson 01, exercise 3). When such a check prints PASS, the id is remembered
in ``progress.json`` in the data cache (:func:`course_utils.data.cache.data_dir`),
so ``course progress`` can print, per lesson, which exercises are done.

Nothing is recorded in grading mode (the grader's runs are not the learner's
progress) nor when ``COURSE_NO_PROGRESS=1`` (the test suite sets it). Recording
never breaks a check: a cache that cannot be written is skipped silently.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

FILENAME = "progress.json"
# An exercise id: the lesson's two digits, a dot, the exercise's own label ("01.3", "02.4b").
EXERCISE_ID = re.compile(r"^(?P<lesson>\d\d)\.(?P<label>[0-9A-Za-z_]+)$")
# How an exercise id appears in a lesson's code: check_...(..., exercise="01.3")
_IN_SOURCE = re.compile(r"""exercise\s*=\s*["'](\d\d\.[0-9A-Za-z_]+)["']""")


def enabled() -> bool:
    """Whether a PASS is recorded now (not in grading mode, not with COURSE_NO_PROGRESS=1)."""
    if os.environ.get("COURSE_NO_PROGRESS", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    from course_utils.checks import grading_mode  # lazy: checks imports this module

    return not grading_mode()


def progress_file() -> Path:
    from course_utils.data.cache import data_dir

    return data_dir() / FILENAME


def load(path: Path | None = None) -> dict[str, dict]:
    """{exercise id: {"name": check name, "first": time, "last": time}}; {} when unreadable."""
    path = Path(path) if path is not None else progress_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    done = data.get("done") if isinstance(data, dict) else None
    if not isinstance(done, dict):
        return {}
    return {k: v for k, v in done.items() if isinstance(k, str) and EXERCISE_ID.match(k)
            and isinstance(v, dict)}


def record_pass(exercise: str | None, name: str = "") -> bool:
    """Remember that ``exercise`` passed; True when it was written."""
    if not exercise or not EXERCISE_ID.match(exercise) or not enabled():
        return False
    try:
        path = progress_file()
        done = load(path)
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        entry = done.get(exercise, {"first": now})
        entry.update(name=str(name)[:200], last=now)
        done[exercise] = entry
        # Write a temporary file and rename it: a crash never leaves half a record.
        fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "done": done}, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def reset(path: Path | None = None) -> None:
    """Forget every recorded exercise."""
    path = Path(path) if path is not None else progress_file()
    path.unlink(missing_ok=True)


def _sort_key(exercise: str):
    lesson, label = exercise.split(".", 1)
    return (lesson, int(label) if label.isdigit() else 10**6, label)


def exercises_in(notebooks: Path) -> dict[str, list[str]]:
    """{lesson file name: its exercise ids in order}, read from the lessons' code cells."""
    import nbformat

    found = {}
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - an unreadable notebook just has no exercises here
            continue
        ids = []
        for cell in nb.cells:
            if cell.cell_type == "code":
                for i in _IN_SOURCE.findall(cell.source):
                    if i not in ids:
                        ids.append(i)
        if ids:
            found[path.name] = sorted(ids, key=_sort_key)
    return found


def report(notebooks: Path, done: dict[str, dict] | None = None) -> str:
    """Per lesson: how many exercises are done, and which (``x`` done, ``.`` not yet)."""
    done = load() if done is None else done
    by_lesson = exercises_in(notebooks)
    lines = []
    seen = set()
    for name, ids in by_lesson.items():
        n_done = sum(i in done for i in ids)
        marks = "  ".join(f"[{'x' if i in done else ' '}] {i}" for i in ids)
        lines.append(f"{name[:-6]:<28} {n_done:>2}/{len(ids):<2} {marks}")
        seen |= set(ids)
    others = sorted((i for i in done if i not in seen), key=_sort_key)
    if others:  # recorded by an older version of a lesson, or a lesson not in this checkout
        lines.append(f"{'(other recorded exercises)':<28} {', '.join(others)}")
    if not lines:
        lines.append("no exercises found")
    total = sum(len(v) for v in by_lesson.values())
    n = sum(i in done for ids in by_lesson.values() for i in ids)
    lines.append(f"{n} of {total} exercises done (record: {progress_file()})")
    return "\n".join(lines)
