"""Helpers for the PyTorch Under the Hood course.

Import what you need from the concept modules, e.g.::

    from course_utils.device import get_device
    from course_utils.checks import check_close
    from course_utils.viz.strides import show_strides

This file stays light on purpose: ``course doctor`` must work even when torch
itself is broken, so nothing heavy is imported here.
"""

__version__ = "0.1.0"
