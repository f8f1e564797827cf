"""Colab readiness: the one place that says where the course package comes from.

Every notebook's first code cell is generated from :func:`setup_cell_source`
(``python scripts/sync_setup_cells.py`` rewrites them; a test fails when one
drifts). In Colab that cell runs one visible ``pip install`` of this package at
the pinned ref below; anywhere else it only prints versions and the device.
"""

COURSE_REPO = "https://github.com/pytorch-under-the-hood/pytorch-under-the-hood"
COURSE_REF = "v0.1.0"
PIP_EXTRAS = "text,bert"


def pip_requirement() -> str:
    """The requirement string Colab installs, e.g. ``pkg[extras] @ git+URL@REF``."""
    return f"pytorch-under-the-hood[{PIP_EXTRAS}] @ git+{COURSE_REPO}@{COURSE_REF}"


def colab_url(notebook: str) -> str:
    """An 'Open in Colab' link for ``notebooks/<notebook>`` at the pinned ref."""
    path = COURSE_REPO.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{COURSE_REF}/notebooks/{notebook}"


def setup_cell_source(title: str) -> str:
    """The first code cell of a lesson notebook titled ``title``."""
    return (
        "# Setup: run this cell first. In Colab it installs the course package (one visible\n"
        "# pip command, nothing else); elsewhere it only prints versions and the device.\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    %pip install -q \"{pip_requirement()}\"\n"
        "from course_utils.lesson import start_lesson\n"
        f"device = start_lesson({title!r})"
    )
