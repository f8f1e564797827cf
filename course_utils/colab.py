"""Colab readiness: the one place that says where the course package comes from.

Every notebook's first code cell is generated from :func:`setup_cell_source`
(``python scripts/sync_setup_cells.py`` rewrites them; a test fails when one
drifts). In Colab that cell runs one visible ``pip install`` of this package at
the pinned ref below, with only the extras its lesson needs (``LESSON_EXTRAS``);
anywhere else it only prints versions and the device.
"""

COURSE_REPO = "https://github.com/pytorch-under-the-hood/pytorch-under-the-hood"
COURSE_REF = "v0.1.0"
# The extras each lesson's Colab cell installs, by lesson number ("06": ...); a
# lesson not listed installs the base package only (what every lesson imports).
# Colab already has its own Jupyter, kernel and tornado: nothing here may pull
# those (the `lab` and `grading` extras are for local machines only).
# tests/test_install.py checks that every module a lesson imports is covered.
LESSON_EXTRAS = {
    "06": ("text", "bert"),  # subword tokenizer; MiniLM vectors for pretrained embeddings
    "07": ("text", "bert"),  # subword tokenizer; B8 loads MiniLM into our encoder
    "08": ("export",),       # ONNX export and onnxruntime; safetensors
}


def lesson_extras(lesson: str) -> tuple[str, ...]:
    """The extras for a lesson, given its number or a name/title starting with it."""
    return LESSON_EXTRAS.get(str(lesson)[:2], ())


def pip_requirement(lesson: str = "") -> str:
    """The requirement string Colab installs, e.g. ``pkg[extras] @ git+URL@REF``."""
    extras = lesson_extras(lesson)
    bracket = f"[{','.join(extras)}]" if extras else ""
    return f"pytorch-under-the-hood{bracket} @ git+{COURSE_REPO}@{COURSE_REF}"


def colab_url(notebook: str) -> str:
    """An 'Open in Colab' link for ``notebooks/<notebook>`` at the pinned ref."""
    path = COURSE_REPO.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{COURSE_REF}/notebooks/{notebook}"


def setup_cell_source(title: str) -> str:
    """The first code cell of a lesson notebook titled ``title`` ("NN Title")."""
    return (
        "# Setup: run this cell first. In Colab it installs the course package (one visible\n"
        "# pip command, nothing else); elsewhere it only prints versions and the device.\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    %pip install -q \"{pip_requirement(title)}\"\n"
        "from course_utils.lesson import start_lesson\n"
        f"device = start_lesson({title!r})"
    )
