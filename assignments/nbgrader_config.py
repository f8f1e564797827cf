# nbgrader configuration of the course directory `assignments/` (issue 8).
#
# Plain nbgrader commands work from this folder (`cd assignments && nbgrader
# autograde ch01_tensors`), and `course grade` / `course assignments generate`
# load this same file (then point `root` at the course directory they are given).
# Instructor notes: assignments/README.md.
import os

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

_here = os.path.dirname(os.path.abspath(__file__))

# ---- course directory layout (nbgrader's defaults, spelled out) -------------
c.CourseDirectory.course_id = "pytorch-under-the-hood"
c.CourseDirectory.root = os.environ.get("COURSE_NBGRADER_ROOT", _here)
c.CourseDirectory.source_directory = "source"          # committed: one folder per chapter
c.CourseDirectory.release_directory = "release"        # committed: generated student versions
c.CourseDirectory.submitted_directory = "submitted"    # student data: never committed
c.CourseDirectory.autograded_directory = "autograded"  # student data: never committed
c.CourseDirectory.feedback_directory = "feedback"      # student data: never committed
# The gradebook holds student grades: keep it out of git. Point it elsewhere
# (any SQLAlchemy URL) with COURSE_GRADEBOOK_URL, e.g. sqlite:////srv/grades/gb.db
c.CourseDirectory.db_url = os.environ.get(
    "COURSE_GRADEBOOK_URL",
    "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db"))

# ---- generating the student version ----------------------------------------
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.GenerateAssignment.create_assignment = True

# ---- executing submissions -------------------------------------------------
# Per-cell timeout (seconds); the kernel is interrupted and the cell scored as an
# error. Assignments are meant to run in < 30 s in total.
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "60"))
c.Execute.startup_timeout = 120
c.Execute.interrupt_on_timeout = True
# Long outputs (a print in a loop) are truncated in the autograded notebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50

# Checks in course_utils.checks raise AssertionError when this is set (they print
# PASS/FAIL otherwise). Kernels started by nbgrader inherit the environment.
os.environ.setdefault("COURSE_GRADING", "1")
