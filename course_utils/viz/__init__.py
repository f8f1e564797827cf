"""Visualizers: each one is a function that returns an object (Figure, Digraph or widget).

Import from the concept module, e.g. ``from course_utils.viz.strides import show_strides``.
"""

import io


def figure_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib Figure as PNG bytes, for an ``ipywidgets.Image`` in an interactive visualizer."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
