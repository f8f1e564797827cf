"""Static pages: whether interactive widgets should draw a still figure instead.

A static web page (the course book, issue 18) cannot run ipywidgets. When
``COURSE_STATIC_WIDGETS=1`` (the book build sets it), every function that
returns a widget returns a static ``matplotlib.figure.Figure`` of the same
picture instead, and prints one line saying the notebook has the interactive
version (:func:`interactive_note`).
"""

import os


def static_widgets() -> bool:
    return os.environ.get("COURSE_STATIC_WIDGETS", "").strip().lower() in {"1", "true", "yes"}


def interactive_note(what: str) -> None:
    print(f"(static picture of {what}: run the notebook for the interactive version)")
