"""Self-checks shared by the lessons and the autograder (introduced in lesson 01).

PyTorch is the oracle: a check compares a learner's answer with a PyTorch
built-in or with a property, never with a stored answer. In a lesson a check
prints one line and returns a :class:`CheckResult` (truthy when it passed); in grading mode
(``COURSE_GRADING=1`` or :func:`set_grading_mode`) a failure raises
``AssertionError`` with the same readable message.

    check_close("x.sum(dim=0)", my_sum(x, 0), x.sum(dim=0))
    check_grad(MySigmoid.apply, torch.randn(5))
    check_module(MyLinear(3, 2), nn.Linear(3, 2), torch.randn(4, 3))

Every check prints exactly one line: ``PASS``, ``FAIL`` with the first mismatch and
the hint on the same line, or ``TODO`` for an untouched exercise (``NOT_DONE``).
A lesson's exercise checks name their exercise, ``exercise="01.3"``: the id leads
the line (``PASS  [01.3] ...``) and a PASS is remembered for ``course progress``
(:mod:`course_utils.progress`; not in grading mode, not with ``COURSE_NO_PROGRESS=1``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
import os
import re
import traceback

import torch

# Captured at import so a later monkeypatch of torch.* cannot make a check pass.
_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter
_as_tensor = torch.as_tensor
_isclose = torch.isclose
_isnan = torch.isnan
_equal = torch.equal
_gradcheck = torch.autograd.gradcheck
_no_grad = torch.no_grad

_grading = None  # None: follow the environment variable


class _Sentinel:
    """A named marker value: one object per name, falsy, printed by its name."""

    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):  # copies and pickles stay the very same marker
        return self._name


# The value an untouched exercise stub returns (``return NOT_DONE``). Checks
# recognise it and say "not done yet", so an exercise nobody has started is
# told apart from a function that forgot its ``return`` (None).
NOT_DONE = _Sentinel("NOT_DONE")

# ``expected=KEY`` in a hidden test: the expected value lives in the answer key.
# In grading (``COURSE_RECORD=1``, set by ``course grade`` in its sandboxed
# kernels) the check only records the student's value; the grader compares it
# with the key outside the student's process. Elsewhere (plain nbgrader, a
# solution notebook) the key is looked up by the check's name, in the file
# ``COURSE_ANSWER_KEY`` names or ``keys/<assignment>.json`` above the working
# directory; without a key the check says it cannot judge here.
KEY = _Sentinel("KEY")


def record_mode() -> bool:
    """True in a kernel that ``course grade`` started: keyed checks record, never judge."""
    return os.environ.get("COURSE_RECORD", "").strip() == "1"


def is_not_done(value) -> bool:
    """True for the stub sentinel, also inside a tuple or list an exercise returns."""
    if value is NOT_DONE:
        return True
    return isinstance(value, (tuple, list)) and any(v is NOT_DONE for v in value)


def set_grading_mode(on: bool | None) -> None:
    """Force grading mode on/off (``None`` goes back to ``COURSE_GRADING``)."""
    global _grading
    _grading = on


def grading_mode() -> bool:
    if _grading is not None:
        return _grading
    return os.environ.get("COURSE_GRADING", "").strip().lower() in {"1", "true", "yes"}


class CheckResult:
    """What a check returns: truthy when it passed; shows nothing extra in Jupyter.

    The check already printed its one line, so a notebook cell that ends with a
    check should not echo ``True``/``False`` underneath it.
    """

    __slots__ = ("passed", "message")

    def __init__(self, passed: bool, message: str):
        self.passed = passed
        self.message = message

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other):
        return self.passed is other if isinstance(other, bool) else NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        pass


# The exercise id the running check names (``exercise="01.3"``); set by @_names_exercise.
_exercise: contextvars.ContextVar[str | None] = contextvars.ContextVar("exercise", default=None)


def _names_exercise(check):
    """Give a check the ``exercise=`` keyword: the id shows on its line, and a PASS is
    remembered in the local progress record (:mod:`course_utils.progress`)."""
    @functools.wraps(check)
    def wrapper(*args, exercise: str | None = None, **kwargs):
        if exercise is None:  # a check called inside another keeps the outer one's id
            return check(*args, **kwargs)
        token = _exercise.set(str(exercise))
        try:
            return check(*args, **kwargs)
        finally:
            _exercise.reset(token)
    return wrapper


def _label(name: str) -> str:
    exercise = _exercise.get()
    return f"[{exercise}] {name}" if exercise else name


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _report(name: str, ok: bool, detail: str, hint: str | None = None) -> CheckResult:
    # One line per call, PASS or FAIL; a failure carries its hint on the same line.
    if ok:
        message = f"PASS  {_label(name)}: {_one_line(detail)}"
        print(message)
        if _exercise.get() and not grading_mode():
            from course_utils import progress

            progress.record_pass(_exercise.get(), name)
        return CheckResult(True, message)
    message = f"FAIL  {_label(name)}: {_one_line(detail)}"
    if hint:
        message += f"  hint: {_one_line(hint)}"
    if grading_mode():
        raise AssertionError(message)
    print(message)
    return CheckResult(False, message)


_seen_names: dict[str, int] = {}  # name -> calls so far (plain-mode key lookup)
_key_cache: dict[str, dict] = {}


def _emit_record(name: str, kind: str, got, params: dict) -> None:
    from course_utils.records import MIME, encode

    record = {"v": 1, "name": str(name)[:300], "kind": kind, "value": encode(got),
              "params": params}
    try:
        from IPython.display import display
    except ImportError:
        return
    display({MIME: record, "text/plain": ""}, raw=True)


def _find_key_file():
    from pathlib import Path

    named = os.environ.get("COURSE_ANSWER_KEY")
    if named:
        return Path(named)
    here = Path.cwd()
    for up in [here, *here.parents[:3]]:
        candidate = up / "keys" / f"{here.name}.json"
        if candidate.exists():
            return candidate
    return None


def _key_record(name: str) -> dict | None:
    import json

    n = _seen_names.get(name, 0)
    _seen_names[name] = n + 1
    path = _find_key_file()
    if path is None or not path.exists():
        return None  # no key here at all
    if str(path) not in _key_cache:
        data = json.loads(path.read_text())
        flat: dict = {}
        for records in data.get("cells", {}).values():
            for rec in records:
                flat.setdefault(rec["name"], []).append(rec)
        _key_cache[str(path)] = flat
    found = _key_cache[str(path)].get(name, [])
    return found[n] if n < len(found) else {}  # the key has no such call: it fails


def _keyed(name: str, kind: str, got, params: dict, hint: str | None) -> CheckResult:
    """A check whose judgement belongs to the answer key (hidden tests, bounds)."""
    if record_mode():
        _emit_record(name, kind, got, params)
        return CheckResult(True, f"recorded {name}")
    if kind in ("below", "above"):
        return _judge_bound(name, kind, got, params["bound"], hint)
    from course_utils.records import compare, encode

    key = _key_record(name)
    if key is None:
        # No key at all: plain nbgrader grading (its config sets COURSE_GRADING=1) cannot
        # judge and says so; a solution notebook run as a lesson only notes it.
        if os.environ.get("COURSE_GRADING", "").strip().lower() in {"1", "true", "yes"}:
            raise AssertionError(f"{name}: no answer key found; run `course assignments keys`")
        message = f"NOTE  {name}: judged against the answer key when graded (no key here)"
        print(message)
        return CheckResult(True, message)
    if not key:
        return _report(name, False, "the answer key has no such check (an extra or renamed call)",
                       hint)
    ok, why = compare({"value": encode(got)}, key)
    return _report(name, ok, "matches the answer key" if ok else why, hint)


def _judge_bound(name: str, kind: str, got, bound: float, hint: str | None) -> CheckResult:
    if isinstance(got, _Tensor) and _is_plain_tensor(got) and got.numel() == 1:
        got = got.item()
    if type(got) not in (int, float) or math.isnan(got):
        return _report(name, False, f"got {_kind(got)}, expected a number", hint)
    ok = got < bound if kind == "below" else got > bound
    word = "below" if kind == "below" else "above"
    return _report(name, ok, f"{got:.4g} is {'' if ok else 'not '}{word} {bound:g}", hint)


@_names_exercise
def check_below(name: str, got, bound: float, *, hint: str | None = None) -> CheckResult:
    """Pass when the number ``got`` is below ``bound`` (behaviour tests: "the loss ends below 0.3").

    In grading the bound comes from the answer key, not from the student's kernel.
    """
    if is_not_done(got):
        return _not_done(name)
    return _keyed(name, "below", got, {"bound": float(bound)}, hint)


@_names_exercise
def check_above(name: str, got, bound: float, *, hint: str | None = None) -> CheckResult:
    """Pass when the number ``got`` is above ``bound`` ("accuracy beats the majority baseline")."""
    if is_not_done(got):
        return _not_done(name)
    return _keyed(name, "above", got, {"bound": float(bound)}, hint)


def _not_done(name: str) -> CheckResult:
    message = f"TODO  {_label(name)}: not done yet (the exercise still returns NOT_DONE)"
    if grading_mode():
        raise AssertionError(message)
    print(message)
    return CheckResult(False, message)


def _kind(x) -> str:
    if x is None:
        return "None"
    if isinstance(x, _Tensor):
        return f"a tensor of shape {tuple(x.shape)}, dtype {x.dtype}, on {x.device}"
    return f"a {type(x).__name__}"


def _is_plain_tensor(x) -> bool:
    # Subclasses can override comparisons through __torch_function__; only
    # plain tensors and Parameters are trusted.
    return type(x) in (_Tensor, _Parameter)


def _expected_tensor(expected) -> torch.Tensor:
    if isinstance(expected, _Tensor):
        return expected.detach()
    return _as_tensor(expected)


def _format_index(flat_index: int, shape) -> str:
    if not shape:
        return "()"
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return str(tuple(reversed(idx)))


@_names_exercise
def check_close(name: str, got, expected, *, atol: float = 1e-6, rtol: float = 1e-5,
                check_dtype: bool = True, hint: str | None = None) -> CheckResult:
    """Compare ``got`` with a trusted ``expected`` value (tensor, number or nested list).

    Reports ``exact`` (bit-for-bit), ``approx`` (within ``atol + rtol*|expected|``)
    or a failure that says where and by how much the values differ. Shape, dtype
    and device mismatches are explained in words.
    """
    if is_not_done(got):
        return _not_done(name)
    if expected is KEY:
        return _keyed(name, "close", got, {"atol": float(atol), "rtol": float(rtol),
                                           "check_dtype": bool(check_dtype)}, hint)
    expected_t = _expected_tensor(expected)
    scalar_expected = not isinstance(expected, (_Tensor, list, tuple))

    if got is None:
        return _report(name, False, "got None. Did the function forget to `return` its result?", hint)
    if scalar_expected and type(got) in (int, float):  # not bool, not a float subclass
        if type(got) is int and type(expected) is int:  # ints compare exactly, no tolerance
            ok = got == expected
            return _report(name, ok, f"exact {got}" if ok else f"got {got}, expected exactly "
                           f"{expected}.", None if ok else hint)
        got_t = _as_tensor(float(got), dtype=torch.float64)
        expected_t = (_as_tensor(float(expected), dtype=torch.float64)
                      if type(expected) in (int, float) else expected_t.to(torch.float64))
        check_dtype = False
    elif isinstance(got, (list, tuple)):
        return _report(name, False, f"got a Python {type(got).__name__}, expected a torch.Tensor.",
                       hint or "wrap the values with torch.tensor(...) or build them with torch ops.")
    elif not isinstance(got, _Tensor):
        return _report(name, False, f"got {_kind(got)}, expected a torch.Tensor.", hint)
    elif not _is_plain_tensor(got):
        return _report(name, False, f"got a {type(got).__name__} (a tensor subclass); "
                       "expected a plain torch.Tensor.", hint)
    else:
        got_t = got.detach()

    if got_t.device != expected_t.device:
        return _report(name, False, f"got a tensor on {got_t.device}, expected one on "
                       f"{expected_t.device}.", hint or f"move it with .to('{expected_t.device}').")
    if tuple(got_t.shape) != tuple(expected_t.shape):
        return _report(name, False, f"shape differs: got {tuple(got_t.shape)}, expected "
                       f"{tuple(expected_t.shape)}.", hint or
                       "check which dim you reduced or kept (keepdim=), and any broadcasting.")
    if check_dtype and got_t.dtype != expected_t.dtype:
        return _report(name, False, f"dtype differs: got {got_t.dtype}, expected {expected_t.dtype}.",
                       hint or f"convert with .to({expected_t.dtype}) if the values are right.")

    common = torch.promote_types(got_t.dtype, expected_t.dtype)
    if not (common.is_floating_point or common.is_complex):
        # integer and bool tensors compare exactly: a float tolerance would let
        # 100000 pass for 100001
        atol, rtol = 0.0, 0.0
        common = torch.int64
    a = got_t.to(common).reshape(-1).cpu()
    b = expected_t.to(common).reshape(-1).cpu()
    with _no_grad():
        if _equal(a, b):
            return _report(name, True, f"exact {tuple(got_t.shape)}", None)
        nan_a, nan_b = _isnan(a), _isnan(b)
        if bool((nan_a != nan_b).any()):
            where = int((nan_a != nan_b).nonzero()[0])
            return _report(name, False, f"NaN mismatch at index {_format_index(where, got_t.shape)} "
                           f"(got {a[where].item()}, expected {b[where].item()}).",
                           hint or "look for 0/0, log of a negative number, or an overflow.")
        close = _isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        diff = (a - b).abs()
        # matching NaNs and equal infinities (inf - inf is NaN) are no difference at all
        diff = torch.where((nan_a & nan_b) | (a == b), torch.zeros_like(diff), diff)
        worst = int(diff.argmax()) if diff.numel() else 0
        max_diff = float(diff[worst]) if diff.numel() else 0.0
        if bool(close.all()):
            return _report(name, True, f"approx (max abs diff {max_diff:.2g})", None)
        n_bad = int((~close).sum())
        return _report(name, False,
                       f"{n_bad} of {a.numel()} values differ; max abs diff {max_diff:.4g} at index "
                       f"{_format_index(worst, got_t.shape)}: got {a[worst].item():.6g}, expected "
                       f"{b[worst].item():.6g} (atol={atol}, rtol={rtol}).", hint)


@_names_exercise
def check_equal(name: str, got, expected, *, hint: str | None = None) -> CheckResult:
    """Exact equality for plain Python answers (ints, tuples, strings, bools, lists).

    The type must match too, so an object that claims to equal everything fails.
    """
    if is_not_done(got):
        return _not_done(name)
    if expected is KEY:
        return _keyed(name, "equal", got, {}, hint)
    if got is None and expected is not None:
        return _report(name, False, "got None. Did the function forget to `return` its result?", hint)
    if isinstance(got, _Tensor) and not isinstance(expected, _Tensor):
        return _report(name, False, f"got a tensor, expected a {type(expected).__name__}.",
                       hint or "use .item() for one number or .tolist() for several.")
    if type(got) is not type(expected):
        return _report(name, False, f"got {_kind(got)}, expected a {type(expected).__name__}.", hint)
    if _plain_equal(got, expected):
        return _report(name, True, f"{expected!r}", None)
    return _report(name, False, f"got {got!r}, expected {expected!r}.", hint)


def _plain_equal(a, b) -> bool:
    # Walk containers ourselves: never trust a user-defined __eq__.
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_plain_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_plain_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (int, float, str, bool, bytes, type(None), torch.dtype, torch.Size)):
        return a == b
    if isinstance(a, _Tensor):
        return _is_plain_tensor(a) and a.shape == b.shape and a.dtype == b.dtype and _equal(a, b)
    return False


@_names_exercise
def check_true(name: str, condition, *, expected: str = "", hint: str | None = None) -> CheckResult:
    """Pass when ``condition`` is exactly ``True`` (a real bool, not a truthy object)."""
    if is_not_done(condition):
        return _not_done(name)
    if isinstance(condition, _Tensor) and condition.numel() == 1 and condition.dtype == torch.bool:
        condition = bool(condition.item())
    elif type(condition).__module__ == "numpy" and type(condition).__name__ in ("bool_", "bool"):
        condition = bool(condition)
    if condition is True:
        return _report(name, True, expected or "holds", None)
    return _report(name, False, f"expected {expected or 'the condition to hold'}, it does not.", hint)


@_names_exercise
def check_grad(fn, *inputs, name: str | None = None, atol: float = 1e-5, rtol: float = 1e-3,
               hint: str | None = None) -> CheckResult:
    """Run ``torch.autograd.gradcheck`` on ``fn`` in float64.

    Inputs are copied to float64 leaves that require grad; ``fn``'s analytic
    backward is compared with finite differences.
    """
    name = name or f"gradcheck({getattr(fn, '__name__', 'fn')})"
    try:
        # Only floating-point inputs become float64 leaves; an index (long) tensor stays long.
        args = tuple(x.detach().to(torch.float64).requires_grad_(True)
                     if isinstance(x, _Tensor) and x.is_floating_point() else x for x in inputs)
    except Exception as exc:  # e.g. a non-tensor that cannot be copied
        return _report(name, False, f"could not prepare the inputs: {exc}", hint)
    try:
        first = fn(*args)
    except Exception as exc:
        return _report(name, False, f"calling it raised {type(exc).__name__}: {exc}{_user_frame(exc)}", hint)
    if is_not_done(first):
        return _not_done(name)
    if first is None:
        return _report(name, False, "got None. Did forward forget to `return` its result?", hint)
    try:
        with _full_print(20_000):
            ok = _gradcheck(fn, args, eps=1e-6, atol=atol, rtol=rtol, raise_exception=True)
    except Exception as exc:  # gradcheck explains the mismatch in its message
        summary = _gradcheck_summary(str(exc), atol, rtol)
        where = _user_frame(exc)
        return _report(name, False, f"{type(exc).__name__}: {summary}{where}",
                       hint or "compare your backward's formula with the derivative of forward.")
    return _report(name, bool(ok), "analytic and numerical gradients agree (float64)", hint)


@contextlib.contextmanager
def _full_print(threshold: int):
    """Tensors print in full (no "...") up to ``threshold`` elements inside the block."""
    opts = torch._tensor_str.PRINT_OPTS
    saved = opts.threshold
    opts.threshold = max(saved, threshold)
    try:
        yield
    finally:
        opts.threshold = saved


def _parse_jacobian(text: str):
    """gradcheck's printed Jacobian (``tensor([[...]], dtype=...)``) as nested lists, or None."""
    body = re.sub(r"^\s*tensor\(|,\s*dtype=[\w.]+\)?\s*$|\)\s*$", "", text.strip())
    try:
        rows = json.loads(body.replace("nan", "NaN").replace("inf", "Infinity"))
    except ValueError:
        return None
    if isinstance(rows, list) and rows and all(isinstance(r, list) for r in rows):
        return rows
    return None


def _gradcheck_summary(message: str, atol: float, rtol: float) -> str:
    """gradcheck's failure on one line, with the numerical and the analytical Jacobian
    side by side (the whole matrices when short, else the row of the first mismatch)."""
    head, _, rest = message.strip().partition("\n")
    numerical = re.search(r"numerical:(.*?)(?=\nanalytical:|$)", rest, re.S)
    analytical = re.search(r"analytical:(.*?)(?=\n\S[^\n]*:|$)", rest, re.S)
    if not (numerical and analytical):
        return _one_line(message)[:600]
    head = head.rstrip(",")
    num, ana = _parse_jacobian(numerical.group(1)), _parse_jacobian(analytical.group(1))
    if num is None or ana is None or len(num) != len(ana):
        return (f"{head}; numerical {_one_line(numerical.group(1))[:250]} vs analytical "
                f"{_one_line(analytical.group(1))[:250]}")
    where = next(((i, j) for i, (rn, ra) in enumerate(zip(num, ana)) for j, (n, a) in
                  enumerate(zip(rn, ra)) if not abs(n - a) <= atol + rtol * abs(n)), None)
    full_n, full_a = json.dumps(num), json.dumps(ana)
    if where is None:
        return f"{head}; numerical {full_n} vs analytical {full_a}"
    i, j = where
    first = (f"first at row {i}, column {j} (d output[{j}] / d input[{i}]): numerical "
             f"{num[i][j]:.4g}, analytical {ana[i][j]:.4g}")
    if len(full_n) + len(full_a) <= 200:   # a 3x3 pair fits; larger ones show the row
        return f"{head}; {first}; numerical {full_n} vs analytical {full_a}"
    return f"{head}; {first}; row {i}: numerical {json.dumps(num[i])} vs analytical {json.dumps(ana[i])}"


def _user_frame(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "torch" not in f.filename and "course_utils" not in f.filename]
    return f" (raised at line {frames[-1].lineno}: {frames[-1].line})" if frames else ""


@_names_exercise
def check_module(student: torch.nn.Module, reference: torch.nn.Module, *inputs,
                 name: str | None = None, atol: float = 1e-6, rtol: float = 1e-5,
                 hint: str | None = None) -> CheckResult:
    """Copy ``reference``'s weights into ``student`` and compare their outputs.

    Parameters are matched by name; when names differ but the shapes line up in
    order (your ``W`` vs nn.Linear's ``weight``), they are matched by order.
    """
    name = name or f"{type(student).__name__} vs {type(reference).__name__}"
    if not isinstance(student, torch.nn.Module):
        return _report(name, False, f"got {_kind(student)}, expected an nn.Module.", hint)
    ref_state = reference.state_dict()
    stu_state = student.state_dict()
    if not stu_state and ref_state:
        try:  # the exercise untouched (forward still returns NOT_DONE): say so, not "no parameters"
            if is_not_done(student(*inputs)):
                return _not_done(name)
        except Exception:  # noqa: BLE001 - its forward needs the missing parameters: report those
            pass
        return _report(name, False, "your module has no parameters or buffers registered.",
                       hint or "assign nn.Parameter / nn.Module objects as attributes in __init__ "
                       "(a plain Python list hides them: use nn.ModuleList).")
    try:
        if set(stu_state) == set(ref_state):
            mapping = {k: k for k in ref_state}
        else:
            ref_items, stu_items = list(ref_state.items()), list(stu_state.items())
            shapes_match = len(ref_items) == len(stu_items) and all(
                tuple(r.shape) == tuple(s.shape) for (_, r), (_, s) in zip(ref_items, stu_items))
            if not shapes_match:
                return _report(name, False, "parameters do not line up: yours "
                               f"{[(k, tuple(v.shape)) for k, v in stu_items]} vs reference "
                               f"{[(k, tuple(v.shape)) for k, v in ref_items]}.", hint)
            mapping = {rk: sk for (rk, _), (sk, _) in zip(ref_items, stu_items)}
        with _no_grad():
            for rk, sk in mapping.items():
                if tuple(stu_state[sk].shape) != tuple(ref_state[rk].shape):
                    return _report(name, False, f"parameter '{sk}' has shape {tuple(stu_state[sk].shape)}"
                                   f", expected {tuple(ref_state[rk].shape)}.", hint)
                stu_state[sk].copy_(ref_state[rk])
        expected = reference(*inputs)
        got = student(*inputs)
        if is_not_done(got):
            return _not_done(name)
    except Exception as exc:
        return _report(name, False, f"running your module raised {type(exc).__name__}: {exc}"
                       f"{_user_frame(exc)}", hint)
    return check_close(name, got, expected, atol=atol, rtol=rtol, hint=hint)
