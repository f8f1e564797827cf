"""Environment check (lesson 00, S1): every probe reports OK / WARN / FAIL with a fix.

    from course_utils.doctor import doctor, format_table
    print(format_table(doctor()))

``course doctor`` prints the same table and exits 1 when any probe FAILs.
One failing probe never stops the others: each runs inside its own try.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass
class Probe:
    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""


def _python() -> Probe:
    version = platform.python_version()
    if (3, 10) <= sys.version_info[:2] < (3, 14):
        return Probe("python", OK, version)
    return Probe("python", FAIL, version, "use Python 3.10 to 3.13")


def _torch() -> Probe:
    import torch

    return Probe("torch", OK, torch.__version__)


def _torchvision() -> Probe:
    import torch
    import torchvision

    # A torchvision built for another torch fails on its compiled ops: try one.
    try:
        boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        torchvision.ops.nms(boxes, torch.tensor([1.0]), 0.5)
    except Exception as exc:  # noqa: BLE001
        return Probe("torchvision", FAIL, f"{torchvision.__version__} does not work with torch "
                     f"{torch.__version__}: {exc}",
                     "install the torchvision release that pairs with your torch "
                     "(pip install torch==X torchvision==Y from the same release)")
    return Probe("torchvision", OK, f"{torchvision.__version__} (pairs with torch {torch.__version__})")


def _accelerator() -> Probe:
    import torch

    from course_utils.device import describe_device, get_device

    device = get_device()
    detail = describe_device(device)
    if device.type == "cpu":
        return Probe("device", OK, detail + "; no CUDA or MPS, lessons run on the CPU (fast mode helps)",
                     "optional: a CUDA GPU (e.g. Colab's) makes lessons 05 and 07 much faster")
    if device.type == "cuda":
        x = torch.ones(2, device=device)
        assert float((x + x).sum()) == 4.0
    return Probe("device", OK, detail)


def _widgets() -> Probe:
    import ipywidgets

    major = int(ipywidgets.__version__.split(".")[0])
    if major < 8:
        return Probe("ipywidgets", WARN, ipywidgets.__version__, "pip install 'ipywidgets>=8'")
    return Probe("ipywidgets", OK, ipywidgets.__version__)


def _graphviz() -> Probe:
    dot = shutil.which("dot")
    if dot:
        return Probe("graphviz dot", OK, dot)
    return Probe("graphviz dot", WARN, "the `dot` program is missing; autograd graphs fall back to "
                 "matplotlib drawings", "Debian/Ubuntu: sudo apt-get install graphviz; macOS: "
                 "brew install graphviz; conda: conda install graphviz")


def _data_cache() -> Probe:
    from course_utils.data.cache import data_dir

    root = data_dir()
    try:
        with tempfile.NamedTemporaryFile(dir=root):
            pass
    except OSError as exc:
        return Probe("data cache", FAIL, f"{root} is not writable: {exc}",
                     "set COURSE_DATA to a writable folder")
    free_gb = shutil.disk_usage(root).free / 2**30
    source = "COURSE_DATA" if os.environ.get("COURSE_DATA") else "user cache dir"
    status = OK if free_gb > 1 else WARN
    return Probe("data cache", status, f"{root} ({source}, writable, {free_gb:.0f} GiB free)",
                 "" if status == OK else "free some disk space or point COURSE_DATA elsewhere")


def _offline_data() -> Probe:
    from course_utils.data.prepare import offline_status

    status = offline_status()
    missing = [name for name, ready in status.items() if not ready]
    if missing:
        return Probe("offline data", WARN, "not prepared: " + ", ".join(missing),
                     "run `course data prepare` (make lab does it)")
    return Probe("offline data", OK, "prepared: " + ", ".join(status))


def _fast_mode() -> Probe:
    from course_utils.fast import is_fast

    return Probe("fast mode", OK, "on (COURSE_FAST=1): small data, few steps" if is_fast()
                 else "off: full-size runs")


def _colab() -> Probe:
    from course_utils.lesson import in_colab

    return Probe("colab", OK, "running in Google Colab" if in_colab() else "not in Colab")


PROBES: list[tuple[str, Callable[[], Probe]]] = [
    ("python", _python), ("torch", _torch), ("torchvision", _torchvision),
    ("device", _accelerator), ("ipywidgets", _widgets), ("graphviz dot", _graphviz),
    ("data cache", _data_cache), ("offline data", _offline_data),
    ("fast mode", _fast_mode), ("colab", _colab),
]


def doctor(probes=None) -> list[Probe]:
    """Run every probe; a probe that raises becomes a FAIL line, the rest still run."""
    results = []
    for name, probe in probes or PROBES:
        try:
            results.append(probe())
        except ImportError as exc:
            results.append(Probe(name, FAIL, f"cannot import: {exc}",
                                 "reinstall the course: pip install -e . (or make lab)"))
        except Exception as exc:  # noqa: BLE001 - the point is to keep going
            results.append(Probe(name, FAIL, f"{type(exc).__name__}: {exc}", "see the error above"))
    return results


def format_table(results: list[Probe]) -> str:
    """A plain-text table: name, status, detail, and the fix under any WARN/FAIL."""
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.status:<4}  {r.detail}")
        if r.status != OK and r.fix:
            lines.append(f"{'':<{width}}        fix: {r.fix}")
    return "\n".join(lines)

