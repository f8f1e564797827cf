"""Runtime tamper guard: an IPython extension loaded into every grading kernel (issue 8).

At kernel start, before any cell runs, it records the identity of everything a
test relies on: the check functions (``course_utils.checks``), torch's
comparison functions and ``Tensor`` methods, the builtins tests use, the
modules in ``sys.modules``, and IPython's own error reporting. After every cell
it compares, writes one JSON line to ``$COURSE_GUARD_LOG``::

    {"n": 3, "sha": "<sha1 of the cell source>", "tampered": ["torch.allclose replaced"]}

and puts the originals back, so later cells are judged with the real functions.
The grader (:mod:`.verdict`) gives no credit to tests that run after a
tampering cell. A genuine solution never changes any of these objects, so it
is never flagged. Nothing here runs outside grading.
"""

from __future__ import annotations

import builtins
import hashlib
import inspect
import json
import os
import sys

_TORCH = ("allclose", "equal", "isclose", "eq", "ne", "all", "any", "is_tensor",
          "as_tensor", "tensor", "where", "isnan", "abs", "promote_types", "manual_seed")
_TENSOR = ("__eq__", "__ne__", "__bool__", "__float__", "__int__", "__index__", "__len__",
           "__torch_function__", "allclose", "equal", "eq", "ne", "isclose", "all", "any",
           "item", "tolist", "detach", "to", "reshape", "abs", "__sub__", "__abs__")
_BUILTINS = ("isinstance", "issubclass", "type", "bool", "len", "abs", "all", "any",
             "float", "int", "str", "repr", "print", "getattr", "hasattr", "id", "max",
             "min", "sum", "round", "AssertionError", "Exception", "BaseException",
             "__import__", "__build_class__", "object", "super")
# Names a test cell may use directly: a solution must not rebind them globally.
_SHADOW = ("isinstance", "issubclass", "type", "bool", "len", "abs", "all", "any", "float",
           "int", "getattr", "hasattr", "AssertionError", "__import__")
_MODULES = ("torch", "torch.nn", "torch.testing", "builtins", "course_utils",
            "course_utils.checks", "math", "numpy")


def _get(owner, name):
    # Classes: the raw descriptor (a classmethod is a new object on each access).
    if isinstance(owner, type):
        return inspect.getattr_static(owner, name, None)
    return getattr(owner, name, None)


def _restore(owner, name, original) -> None:
    try:
        setattr(owner, name, original)
    except (AttributeError, TypeError):
        pass


def _torch_wrapper(new, original) -> bool:
    # torch patches a few of its own functions when a submodule is first imported
    # (torch._dynamo wraps torch.manual_seed when torch.optim loads): accept a
    # wrapper of the original whose code lives inside the torch package.
    import torch
    code = getattr(new, "__code__", None)
    return (getattr(new, "__wrapped__", None) is original and code is not None
            and code.co_filename.startswith(os.path.dirname(torch.__file__) + os.sep))


def cell_sha(text: str) -> str:
    """Short hash of a cell's source: how the grader maps log lines back to cells."""
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:16]


class Guard:
    """Snapshot of the objects tests trust, checked after each cell."""

    def __init__(self, ip, log_path: str):
        import math

        import torch
        import torch.testing

        from course_utils import checks

        self.ip, self.log_path, self.n = ip, log_path, 0
        self.refused: list[str] = []   # what the audit hook saw during the current cell
        self.checks = checks
        # (owner, attribute name, label) -> original object
        self.items = []
        for name in _TORCH:
            self._add(torch, name, f"torch.{name}")
        self._add(torch.testing, "assert_close", "torch.testing.assert_close")
        self._add(torch.autograd, "gradcheck", "torch.autograd.gradcheck")
        self._add(math, "isclose", "math.isclose")
        self._add(torch.nn.Module, "__call__", "torch.nn.Module.__call__")
        self._add(torch.nn.Module, "state_dict", "torch.nn.Module.state_dict")
        for name in _TENSOR:
            self._add(torch.Tensor, name, f"torch.Tensor.{name}")
        for name in _BUILTINS:
            self._add(builtins, name, f"builtins.{name}")
        for name, value in vars(checks).items():
            if name != "_grading" and not name.startswith("__"):
                self.items.append((checks, name, f"course_utils.checks.{name}", value))
        self.check_names = {n for n, v in vars(checks).items()
                            if callable(v) and not n.startswith("_")}
        self.modules = {m: sys.modules[m] for m in _MODULES if m in sys.modules}
        self.shell = {n: (_get(type(ip), n), vars(ip).get(n)) for n in (
            "run_cell", "showtraceback", "_showtraceback", "run_cell_async")}

    def audit(self, event: str, args) -> None:
        # An audit hook sees (and can act in) every later cell, and it can never be
        # removed; no solution needs one. Ours was added first, so it may refuse the
        # addition (a RuntimeError here is swallowed by sys.addaudithook) and report it.
        if event == "sys.addaudithook":
            self.refused.append("sys.addaudithook called (refused)")
            raise RuntimeError("audit hooks are not allowed while grading")

    def _add(self, owner, name, label):
        original = _get(owner, name)
        if original is not None:
            self.items.append((owner, name, label, original))

    def problems(self) -> list[str]:
        found, self.refused = list(dict.fromkeys(self.refused)), []
        for k, (owner, name, label, original) in enumerate(self.items):
            current = _get(owner, name)
            if current is original:
                continue
            if _torch_wrapper(current, original):
                self.items[k] = (owner, name, label, current)  # torch's own lazy patch
                continue
            found.append(f"{label} replaced")
            _restore(owner, name, original)
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                found.append(f"sys.modules[{name!r}] replaced")
                sys.modules[name] = module
        if not self.checks.grading_mode():
            found.append("grading mode switched off (set_grading_mode / COURSE_GRADING)")
            self.checks.set_grading_mode(True)
        ns = self.ip.user_ns
        for name in self.check_names:
            if name in ns and ns[name] is not getattr(self.checks, name):
                found.append(f"check function {name!r} redefined")
                ns[name] = getattr(self.checks, name)
        for name in _SHADOW:
            if name in ns and ns[name] is not getattr(builtins, name):
                found.append(f"builtin {name!r} shadowed")
                del ns[name]
        for name in ("torch", "checks"):
            target = self.modules.get("course_utils.checks" if name == "checks" else name)
            if name in ns and target is not None and ns[name] is not target:
                found.append(f"name {name!r} rebound")
                ns[name] = target
        for name, (on_class, on_instance) in self.shell.items():
            if (vars(self.ip).get(name) is not on_instance
                    or _get(type(self.ip), name) is not on_class):
                found.append(f"IPython shell.{name} replaced")
                vars(self.ip).pop(name, None)
                if on_instance is not None:
                    vars(self.ip)[name] = on_instance
                _restore(type(self.ip), name, on_class)
        if self.ip.custom_exceptions:
            found.append("IPython custom exception handler installed")
            self.ip.set_custom_exc((), None)
        if sys.gettrace() is not None or sys.getprofile() is not None:
            found.append("sys.settrace/setprofile hook installed")
            sys.settrace(None)
            sys.setprofile(None)
        return found

    def post_run_cell(self, result) -> None:
        self.n += 1
        record = {"n": self.n, "sha": cell_sha(result.info.raw_cell or ""),
                  "tampered": self.problems()}
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def load_ipython_extension(ip) -> None:
    log_path = os.environ.get("COURSE_GUARD_LOG", os.devnull)
    guard = Guard(ip, log_path)
    sys.addaudithook(guard.audit)
    ip.events.register("post_run_cell", guard.post_run_cell)
    with open(log_path, "a", encoding="utf-8") as fh:  # tells the grader the guard is on
        fh.write(json.dumps({"n": 0, "ready": True}) + "\n")
    ip._course_grading_guard = guard
