"""The install never fights Colab (issue 19).

Colab runs its own Jupyter server and pins its own tornado and ipykernel, so the
package the setup cell installs (the base dependencies plus the extras of one
lesson) must not pull any of them. The JupyterLab / runner / grader stack lives
in the `lab` and `grading` extras. Checked three ways, offline: the dependency
lists resolved against this environment's metadata, a fresh interpreter that
imports what the lessons import, and the `course lab` / `course run` commands.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from course_utils import cli
from course_utils.colab import LESSON_EXTRAS, lesson_extras, pip_requirement
from course_utils.syllabus import NOTEBOOKS, PLANNED_NOTEBOOKS

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SELF = canonicalize_name(PROJECT["name"])
# Colab's own Jupyter stack: nothing the setup cell installs may bring these.
FORBIDDEN = {"jupyterlab", "jupyter-server", "notebook", "tornado", "ipykernel", "nbclient", "nbgrader"}
FORBIDDEN_MODULES = {"jupyterlab", "jupyter_server", "notebook", "tornado", "ipykernel", "nbclient", "nbgrader"}
LESSONS = {name: title for name, title in {**NOTEBOOKS, **PLANNED_NOTEBOOKS}.items()
           if (ROOT / "notebooks" / name).exists()}


def _own_requirements(extras: set[str]) -> list[Requirement]:
    """This project's requirements for ``extras`` (read from pyproject.toml; self-references expanded)."""
    reqs, todo, done = [], set(extras), set()
    reqs += [Requirement(r) for r in PROJECT["dependencies"]]
    while todo:
        extra = todo.pop()
        done.add(extra)
        for text in PROJECT["optional-dependencies"][extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == SELF:
                todo |= req.extras - done
            else:
                reqs.append(req)
    return reqs


def resolve(extras: set[str] = frozenset()) -> tuple[dict[str, list[str]], set[str]]:
    """Walk the installed distributions' metadata from the project's requirements.

    Returns ({distribution: the chain that pulled it}, names that are not installed).
    """
    env = default_environment()
    seen: dict[str, list[str]] = {}
    missing: set[str] = set()
    todo = [(req, [PROJECT["name"]]) for req in _own_requirements(set(extras))]
    while todo:
        req, chain = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen[key] = chain + [name]
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker is not None and not any(
                    child.marker.evaluate({**env, "extra": e}) for e in {"", *req.extras}):
                continue
            todo.append((child, chain + [name]))
    names: dict[str, list[str]] = {}
    for (name, _), chain in seen.items():
        names.setdefault(name, chain)
    return names, missing


# ----------------------------------------------------------------------------- dependency lists

def test_base_dependencies_name_none_of_the_jupyter_stack():
    base = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert base & FORBIDDEN == set()
    # What the issue lists as the lessons' imports stays core.
    assert {"torch", "torchvision", "numpy", "matplotlib", "ipywidgets", "tqdm", "pooch",
            "platformdirs", "graphviz", "scikit-learn"} <= base


def test_base_install_pulls_none_of_the_jupyter_stack_transitively():
    names, missing = resolve()
    assert missing == set(), f"not installed here, so their dependencies were not walked: {missing}"
    pulled = {n: " -> ".join(names[n]) for n in names.keys() & FORBIDDEN}
    assert pulled == {}, pulled
    # The walk is real: it reaches packages only found through other packages.
    assert {"ipython", "pillow", "scipy", "comm", "traitlets"} <= names.keys()


@pytest.mark.parametrize("lesson", sorted({*LESSON_EXTRAS, "00"}))
def test_each_colab_install_pulls_none_of_the_jupyter_stack(lesson):
    extras = set(lesson_extras(lesson))
    names, missing = resolve(extras)
    pulled = {n: " -> ".join(names[n]) for n in names.keys() & FORBIDDEN}
    assert pulled == {}, f"lesson {lesson} [{','.join(sorted(extras))}]: {pulled}"
    assert missing == set(), missing


def test_the_walk_does_find_the_stack_where_it_is():
    # The same resolver on the local-only extras finds what the base must not have.
    names, _ = resolve({"lab"})
    assert {"jupyterlab", "jupyter-server", "tornado", "ipykernel", "nbclient"} <= names.keys()
    assert len(names["tornado"]) > 2  # found through another package, not listed by us


def _makefile_extras(target: str) -> set[str]:
    """The extras the recipe of ``target`` installs with ``pip install -e '.[...]'``."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"$(VENV)/{target}:"))
    recipe = [line for line in lines[at + 1:at + 6] if line.startswith("\t") and "-e '.[" in line]
    assert recipe, f"no pip install -e line under {target}"
    return set(recipe[0].split("-e '.[")[1].split("]")[0].split(","))


def test_make_lab_and_make_test_install_the_local_extras():
    extras = PROJECT["optional-dependencies"]
    lab, test = _makefile_extras(".installed-lab"), _makefile_extras(".installed-test")
    assert lab <= extras.keys() and test <= extras.keys()
    assert {"lab", "text", "bert", "export", "grading"} <= lab
    assert lab | {"test"} <= test
    assert {"onnx", "onnxruntime", "onnxscript", "safetensors"} <= {
        canonicalize_name(Requirement(r).name) for r in extras["export"]}


# ----------------------------------------------------------------------------- what lessons import

def _imports(path: Path) -> set[str]:
    """Top-level modules imported by the code cells of a notebook (magics and shell lines skipped)."""
    found, written = set(), set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        if cell.source.startswith("%%"):  # a cell magic: not Python; %%writefile makes a local module
            first = cell.source.split("\n", 1)[0].split()
            if first[0] == "%%writefile" and first[-1].endswith(".py"):
                written.add(Path(first[-1]).stem)
            continue
        code = "\n".join(line[:len(line) - len(line.lstrip())] + "pass"  # keep the indentation
                         if line.lstrip().startswith(("%", "!")) else line
                         for line in cell.source.splitlines())
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - written


def _third_party(modules: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and m not in {"course_utils", "__future__"}}


@pytest.mark.parametrize("name", sorted(LESSONS))
def test_what_a_lesson_imports_comes_with_its_colab_install(name):
    extras = set(lesson_extras(name))
    allowed, _ = resolve(extras)
    providers = metadata.packages_distributions()
    outside = {}
    for module in sorted(_third_party(_imports(ROOT / "notebooks" / name))):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & allowed.keys():
            outside[module] = sorted(dists) or "not installed"
    assert outside == {}, (f"{name} imports these, but its Colab cell installs "
                           f"{pip_requirement(name).split(' @ ')[0]}: add an extra in course_utils/colab.py "
                           f"LESSON_EXTRAS (or a core dependency): {outside}")


def _lesson_facing_modules() -> list[str]:
    """Every course_utils module except the local-only tools (runner, grader, generators)."""
    local_only = ("course_utils.grading", "course_utils.runner", "course_utils.lesson_sources",
                  "course_utils.assignments")
    modules = []
    for path in sorted((ROOT / "course_utils").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(local_only):
            modules.append(name)
    return modules


def test_importing_what_lessons_import_loads_no_jupyter_server_or_kernel():
    modules = _lesson_facing_modules()
    assert {"course_utils.lesson", "course_utils.checks", "course_utils.viz.strides",
            "course_utils.viz.autograd", "course_utils.data.cifar", "course_utils.text.vocab",
            "course_utils.models.transformer", "course_utils.models.bert_weights"} <= set(modules)
    third_party = set()
    for name in LESSONS:
        third_party |= _third_party(_imports(ROOT / "notebooks" / name))
    assert {"torch", "matplotlib", "IPython", "sklearn"} <= third_party
    script = f"""
import importlib, importlib.util, json, sys
for name in {sorted(third_party)!r}:
    if importlib.util.find_spec(name) is not None:   # optional ones a lesson guards
        importlib.import_module(name)
for name in {modules!r}:
    importlib.import_module(name)
from course_utils.lesson import start_lesson
start_lesson("00 import check")
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    env = {**os.environ, "MPLBACKEND": "Agg", "COURSE_FAST": "1"}
    env.pop("COURSE_ALLOW_DOWNLOAD", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"torch", "course_utils", "ipywidgets", "IPython"} <= loaded  # the imports did happen
    assert loaded & FORBIDDEN_MODULES == set()


# ----------------------------------------------------------------------------- the commands

@pytest.mark.parametrize("command, module", [(["lab"], "jupyterlab"), (["lab", "--no-browser"], "jupyterlab"),
                                             (["run", "x.ipynb"], "nbclient"), (["run"], "ipykernel"),
                                             (["lessons", "generate"], "nbformat"),
                                             (["lessons", "generate", "--check"], "nbformat")])
def test_commands_without_their_extra_print_one_line(command, module, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # find_spec -> None, import -> ImportError
    launched = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: launched.append(a))
    assert cli.main(command) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "'lab' extra" in err and '.[lab]' in err and module in err
    assert launched == [] and "starting:" not in captured.out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment contains ``marker`` (those this test started)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir() or sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_course_lab_stopped_by_a_signal_leaves_no_jupyterlab(tmp_path, signum):
    pytest.importorskip("jupyterlab")
    marker = f"COURSE_LAB_TEST_{os.getpid()}_{int(signum)}"
    runtime = tmp_path / "runtime"
    env = {**os.environ, marker: "1", "JUPYTER_RUNTIME_DIR": str(runtime),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    log = (tmp_path / "lab.log").open("w")
    course = subprocess.Popen(
        [sys.executable, "-m", "course_utils.cli", "lab", "--no-browser", f"--port={_free_port()}",
         "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token="],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not list(runtime.glob("jpserver-*.json")):
            assert course.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not start in 120 s"
            time.sleep(0.5)
        server = json.loads(next(runtime.glob("jpserver-*.json")).read_text())["pid"]
        assert server != course.pid and server in _processes_with(marker)

        course.send_signal(signum)
        code = course.wait(timeout=90)
        survivors = _processes_with(marker)
        text = (tmp_path / "lab.log").read_text()
        assert survivors == [], f"still running after `course lab` exited: {survivors}\n{text[-2000:]}"
        assert code in (0, 128 + signum), (code, text[-2000:])
        assert "Traceback" not in text, text[-3000:]
    finally:
        for pid in _processes_with(marker):  # only processes this test started
            os.kill(pid, signal.SIGKILL)
        if course.poll() is None:
            course.kill()
        course.wait()
        log.close()
