"""Static tamper scan of the code a student wrote (``course grade``, issue 8).

Reads the student's cells (solution cells and cells they added; locked cells
are restored by nbgrader anyway) as Python syntax trees and reports code that
changes what tests rely on, rather than solving the exercise:

* assigning to, ``setattr``-ing or deleting attributes of ``torch``,
  ``builtins``, ``course_utils.checks``, ``numpy``, ``math``, ``sys`` ...
  (``torch.allclose = ...``, ``torch.Tensor.__eq__ = ...``, ``sys.modules[...]``);
* rebinding a check function, ``torch``, or a builtin that tests use
  (``def check_close(*a): return True``, ``isinstance = ...``);
* classes that define comparisons or tensor hooks (``__eq__``, ``__bool__``,
  ``__torch_function__``): objects whose comparisons always succeed;
* reaching into the grader: IPython hooks, frames, ``sys.settrace``,
  ``set_grading_mode(False)``, ``COURSE_*`` environment variables.

``exec``/``eval`` are reported as warnings only (the runtime guard,
:mod:`.guard`, sees what they do). A correct solution uses none of this.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

PROTECTED_MODULES = ("torch", "numpy", "builtins", "course_utils", "math", "sys", "IPython",
                     "operator", "unittest", "pytest")
DEFAULT_ROOTS = {"torch", "nn", "F", "np", "builtins", "__builtins__", "checks", "math", "sys"}
CHECK_NAMES = {"check_close", "check_equal", "check_true", "check_grad", "check_module",
               "set_grading_mode", "grading_mode"}
SHADOW_BUILTINS = {"isinstance", "issubclass", "type", "bool", "len", "abs", "all", "any",
                   "float", "int", "getattr", "hasattr", "AssertionError", "__import__"}
MAGIC_METHODS = {"__eq__", "__ne__", "__bool__", "__torch_function__", "__torch_dispatch__",
                 "__instancecheck__", "__subclasscheck__"}
INTERNALS = {"set_custom_exc", "custom_exceptions", "user_ns", "user_global_ns", "showtraceback",
             "_showtraceback", "f_globals", "f_builtins", "f_back", "f_locals", "tb_frame",
             "_course_grading_guard", "settrace", "setprofile", "_getframe", "currentframe",
             "get_referents", "get_referrers", "__globals__", "__code__"}
MAGIC_CALLS = {"run_line_magic", "run_cell_magic", "system", "getoutput", "magic"}


@dataclass
class Finding:
    cell: int          # index of the cell in the notebook
    line: int
    message: str
    severity: str = "tamper"   # tamper (voids later tests) | warning

    def __str__(self) -> str:
        return f"{self.severity}: cell {self.cell} line {self.line}: {self.message}"


def _root(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every expression
        return "?"


def _python_source(source: str) -> str:
    try:  # turn %magics and !shell lines into plain Python calls
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def protected_roots(sources: list[str]) -> set[str]:
    """Names the notebook binds to protected modules (``import torch as T`` -> ``T``)."""
    roots = set(DEFAULT_ROOTS)
    for src in sources:
        try:
            tree = ast.parse(_python_source(src))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in PROTECTED_MODULES:
                        roots.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.split(".")[0] in PROTECTED_MODULES:
                for a in node.names:
                    if a.name not in CHECK_NAMES:
                        roots.add(a.asname or a.name)
    return roots


class _Scanner(ast.NodeVisitor):
    def __init__(self, cell: int, roots: set[str]):
        self.cell, self.roots, self.found = cell, roots, []
        self.depth, self.globals = 0, set()

    def flag(self, node, message, severity="tamper"):
        self.found.append(Finding(self.cell, getattr(node, "lineno", 0), message, severity))

    # -- bindings -----------------------------------------------------------
    def _bind(self, name: str, node, how: str):
        if self.depth and name not in self.globals:
            return
        if name in CHECK_NAMES:
            self.flag(node, f"redefines the check function {name!r} ({how})")
        elif name in SHADOW_BUILTINS:
            self.flag(node, f"shadows the builtin {name!r} ({how})")
        elif name in ("torch", "checks", "builtins", "__builtins__") and how != "import":
            self.flag(node, f"rebinds {name!r} ({how})")

    def _target(self, target, node, how):
        if isinstance(target, ast.Name):
            self._bind(target.id, node, how)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._target(t, node, how)
        elif isinstance(target, ast.Starred):
            self._target(target.value, node, how)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            root = _root(target)
            if root in self.roots and not _dotted(target).startswith("torch.backends."):
                self.flag(node, f"{how} {_dotted(target)}")

    def visit_Assign(self, node):
        for t in node.targets:
            self._target(t, node, "assigns")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target, node, "assigns")
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._target(node.target, node, "assigns")
        self.generic_visit(node)

    def visit_Delete(self, node):
        for t in node.targets:
            self._target(t, node, "deletes")
        self.generic_visit(node)

    def visit_For(self, node):
        self._target(node.target, node, "loop variable")
        self.generic_visit(node)

    def visit_NamedExpr(self, node):
        self._target(node.target, node, "assigns")
        self.generic_visit(node)

    def visit_Global(self, node):
        self.globals.update(node.names)

    def visit_Import(self, node):
        for a in node.names:
            self._bind(a.asname or a.name.split(".")[0], node, "import")

    def visit_ImportFrom(self, node):
        for a in node.names:
            name = a.asname or a.name
            if node.module == "course_utils.checks" and a.name == name:
                continue
            self._bind(name, node, f"import from {node.module}")

    def _scope(self, node):
        self.depth += 1
        saved = set(self.globals)
        self.generic_visit(node)
        self.globals = saved
        self.depth -= 1

    def visit_FunctionDef(self, node):
        self._bind(node.name, node, "def")
        self._scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._scope(node)

    def visit_ClassDef(self, node):
        self._bind(node.name, node, "class")
        for item in node.body:
            names = []
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [item.name]
            elif isinstance(item, ast.Assign):
                names = [t.id for t in item.targets if isinstance(t, ast.Name)]
            for name in names:
                if name in MAGIC_METHODS:
                    self.flag(item, f"class {node.name} defines {name}: its comparisons "
                                    "are not the tensor's own")
        self._scope(node)

    # -- calls and attributes -----------------------------------------------
    def visit_Call(self, node):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in ("setattr", "delattr") and node.args and _root(node.args[0]) in self.roots:
            self.flag(node, f"{name}({_dotted(node.args[0])}, ...)")
        elif name in ("exec", "eval", "compile") and isinstance(func, ast.Name):
            self.flag(node, f"uses {name}()", "warning")
        elif name == "set_grading_mode" and not (
                node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value is True):
            self.flag(node, "changes the grading mode")
        elif name in ("pop", "update", "clear", "setdefault", "__setitem__", "__delitem__",
                      "putenv", "unsetenv", "reload") and \
                _dotted(func).split(".")[0] in self.roots | {"os", "importlib"} and \
                any(k in _dotted(func) for k in ("modules", "environ", "putenv", "unsetenv",
                                                 "reload")):
            self.flag(node, f"calls {_dotted(func)}()")
        elif name == "__import__" and node.args and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).split(".")[0] in ("builtins", "ctypes", "gc"):
            self.flag(node, f"imports {node.args[0].value!r} dynamically")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in INTERNALS:
            self.flag(node, f"reaches into the interpreter/grader ({_dotted(node)})")
        elif isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == \
                "get_ipython" and node.attr not in MAGIC_CALLS:
            self.flag(node, f"uses the IPython shell ({_dotted(node)})")
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if isinstance(node.ctx, ast.Store) and "environ" in _dotted(node.value):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else ""
            if str(key).startswith(("COURSE_", "JPY_")) or not key:
                self.flag(node, f"sets {_dotted(node)}")
        self.generic_visit(node)


def scan_source(source: str, cell: int = 0, roots: set[str] | None = None) -> list[Finding]:
    """Findings for one cell's source (a cell with a syntax error has none)."""
    try:
        tree = ast.parse(_python_source(source))
    except (SyntaxError, ValueError):
        return []
    scanner = _Scanner(cell, roots if roots is not None else protected_roots([source]))
    scanner.visit(tree)
    for node in ast.walk(tree):  # type("E", (), {"__eq__": ...}) builds a class too
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and key.value in MAGIC_METHODS:
                    scanner.flag(node, f"builds a class with {key.value}")
    return scanner.found


def student_cells(nb) -> list[int]:
    """Indices of code cells the student controls (solution cells and added cells)."""
    out = []
    for i, cell in enumerate(nb.cells):
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and (nbg.get("solution") or not nbg.get("grade_id")):
            out.append(i)
    return out


def scan_notebook(nb) -> list[Finding]:
    """Scan the student's code cells of an (already repaired) notebook."""
    roots = protected_roots([c.source for c in nb.cells if c.cell_type == "code"])
    found = []
    for i in student_cells(nb):
        found.extend(scan_source(nb.cells[i].source, i, roots))
    return found
