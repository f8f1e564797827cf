"""What every lesson's first cell calls: versions, device and mode, printed for the learner."""

import os
import platform
import sys

import torch

from course_utils.device import describe_device, get_device
from course_utils.fast import fast_notice


def in_colab() -> bool:
    return "google.colab" in sys.modules


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, VS Code), False in scripts and a plain shell."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _inline_figures() -> None:
    # Visualizers return Figure objects; the inline backend is what makes Jupyter
    # draw a returned Figure as a picture rather than as its repr text.
    if in_jupyter():
        from IPython import get_ipython

        get_ipython().run_line_magic("matplotlib", "inline")


def start_lesson(title: str) -> torch.device:
    """Print the lesson banner and return the device to compute on.

    In Colab, downloads of real datasets are switched on (the machine has a
    network); elsewhere the course stays offline unless COURSE_ALLOW_DOWNLOAD=1.
    """
    if in_colab():
        os.environ.setdefault("COURSE_ALLOW_DOWNLOAD", "1")
    _inline_figures()
    import torchvision  # imported here so a broken torchvision shows up at once

    from course_utils.data.cache import data_dir

    device = get_device()
    print(f"== {title} ==")
    print(f"python {platform.python_version()} | torch {torch.__version__} | "
          f"torchvision {torchvision.__version__}")
    print(f"device: {describe_device(device)}")
    print(f"data cache: {data_dir()}")
    print(fast_notice())
    return device
