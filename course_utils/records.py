"""Check records and the answer key: values as data, compared outside the student's process.

In grading, a hidden test's check does not judge anything inside the student's
kernel (whatever that kernel computes, a patched function can reach). It only
*records* the student's value, as data: JSON for Python values, raw bytes with
dtype and shape for tensors, never pickle. The expected side is a record made
by running the instructor's source solution under the same seeds, kept in the
answer key (:mod:`course_utils.grading.answer_key`). The grader compares the
two in its own process with :func:`compare`, using the comparison and the
parameters (tolerances, bounds) that the *key's* record carries.

This module needs only NumPy, so the grader can judge without importing torch.
"""

from __future__ import annotations

import base64
import math

MIME = "application/x-course-record+json"
MAX_ELEMENTS = 1_000_000  # a record larger than this is refused (it would not be a test value)

# torch dtype name -> (numpy dtype name, kind); bfloat16 travels as float32 (exact widening).
_DTYPES = {
    "torch.float64": "float64", "torch.float32": "float32", "torch.float16": "float16",
    "torch.bfloat16": "float32", "torch.int64": "int64", "torch.int32": "int32",
    "torch.int16": "int16", "torch.int8": "int8", "torch.uint8": "uint8", "torch.bool": "bool",
    "torch.complex64": "complex64", "torch.complex128": "complex128",
}


def encode(value) -> dict:
    """A JSON-able description of ``value`` (plain tensors, numbers, strings, containers)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and type(value) in (torch.Tensor, torch.nn.Parameter):
        return _encode_tensor(value, torch)
    if value is None:
        return {"t": "none"}
    if type(value) is bool:
        return {"t": "bool", "v": value}
    if type(value) is int:
        return {"t": "int", "v": str(value)}  # str: JSON numbers lose big ints
    if type(value) is float:
        return {"t": "float", "v": repr(value)}
    if type(value) is str:
        return {"t": "str", "v": value[:10_000]}
    if type(value) in (tuple, list):
        if len(value) > 10_000:
            return {"t": "refused", "why": "container too long"}
        return {"t": type(value).__name__, "v": [encode(v) for v in value]}
    if torch is not None and type(value) is torch.Size:
        return {"t": "tuple", "v": [encode(int(v)) for v in value]}
    if torch is not None and type(value) is torch.dtype:
        return {"t": "dtype", "v": str(value)}
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool"):
        return {"t": "bool", "v": bool(value)}
    return {"t": "other", "type": type(value).__name__}


def _encode_tensor(t, torch) -> dict:
    name = str(t.dtype)
    if name not in _DTYPES:
        return {"t": "refused", "why": f"dtype {name}"}
    if t.numel() > MAX_ELEMENTS:
        return {"t": "refused", "why": f"{t.numel()} elements"}
    flat = t.detach().to("cpu").contiguous()
    if name == "torch.bfloat16":
        flat = flat.to(torch.float32)
    data = flat.numpy().tobytes()
    return {"t": "tensor", "dtype": name, "shape": list(t.shape),
            "b64": base64.b64encode(data).decode("ascii")}


def _array(rec: dict):
    import numpy as np

    raw = base64.b64decode(rec["b64"].encode("ascii"), validate=True)
    arr = np.frombuffer(raw, dtype=_DTYPES[rec["dtype"]])
    return arr.reshape(rec["shape"])


def describe(rec: dict) -> str:
    t = rec.get("t")
    if t == "tensor":
        return f"a tensor of shape {tuple(rec['shape'])}, {rec['dtype']}"
    if t in ("int", "float", "bool", "str"):
        return f"{t} {rec['v']!s:.40}"
    if t == "dtype":
        return f"dtype {rec['v']}"
    return {"none": "None", "tuple": "a tuple", "list": "a list"}.get(t, f"a {rec.get('type', t)}")


def _number(rec: dict) -> float | None:
    """A real number from an int/float/bool record or a one-element real tensor."""
    t = rec.get("t")
    if t == "int":
        return float(int(rec["v"]))
    if t == "float":
        return float(rec["v"])
    if t == "tensor" and math.prod(rec["shape"]) == 1 and not rec["dtype"].startswith("torch.complex"):
        return float(_array(rec).reshape(-1)[0])
    return None


def _equal(got: dict, want: dict) -> bool:
    if got.get("t") != want.get("t"):
        return False
    t = want["t"]
    if t in ("tuple", "list"):
        return len(got["v"]) == len(want["v"]) and all(map(_equal, got["v"], want["v"]))
    if t == "float":
        a, b = float(got["v"]), float(want["v"])
        return a == b or (math.isnan(a) and math.isnan(b))
    if t == "tensor":
        import numpy as np

        if got["dtype"] != want["dtype"] or got["shape"] != want["shape"]:
            return False
        return bool(np.array_equal(_array(got), _array(want), equal_nan=want["dtype"].startswith(
            ("torch.float", "torch.bfloat", "torch.complex"))))
    if t in ("other", "refused"):
        return False
    return got.get("v") == want.get("v")


def _close(got: dict, want: dict, params: dict) -> tuple[bool, str]:
    import numpy as np

    atol, rtol = float(params.get("atol", 1e-6)), float(params.get("rtol", 1e-5))
    wt, gt = want.get("t"), got.get("t")
    if wt == "bool":
        ok = _equal(got, want)
        return ok, "" if ok else f"got {describe(got)}, expected {want['v']}"
    if wt == "int":  # Python ints compare exactly: 100000 vs 100001 is wrong at any tolerance
        if gt == "int":
            ok = int(got["v"]) == int(want["v"])
        else:
            ok = gt == "float" and float(got["v"]) == int(want["v"])
        return ok, "" if ok else f"got {describe(got)}, expected exactly {want['v']}"
    if wt == "float":
        if gt not in ("int", "float"):
            return False, f"got {describe(got)}, expected a number"
        a, b = _number(got), float(want["v"])
        ok = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol + rtol * abs(b)
        return ok, "" if ok else f"got {a:.6g}, off by {abs(a - b):.3g}"
    if wt != "tensor":
        ok = _equal(got, want)
        return ok, "" if ok else f"got {describe(got)}, expected {describe(want)}"
    if gt != "tensor":
        return False, f"got {describe(got)}, expected a tensor"
    if got["shape"] != want["shape"]:
        return False, f"shape {tuple(got['shape'])}, expected {tuple(want['shape'])}"
    if params.get("check_dtype", True) and got["dtype"] != want["dtype"]:
        return False, f"dtype {got['dtype']}, expected {want['dtype']}"
    a, b = _array(got), _array(want)
    if not (_floating(want) or _floating(got)):  # integer and bool tensors: exact
        ok = bool(np.array_equal(a.astype(np.int64), b.astype(np.int64)))
        return ok, "" if ok else f"{int((a != b).sum())} of {b.size} values differ (exact compare)"
    wide = np.complex128 if (a.dtype.kind == "c" or b.dtype.kind == "c") else np.float64
    a, b = a.astype(wide), b.astype(wide)
    if bool(np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True)):
        return True, ""
    diff = np.atleast_1d(np.abs(a - b))  # 0-dim values too
    diff[np.isnan(diff)] = np.inf
    return False, f"max abs diff {float(diff.max()):.4g} (atol={atol:g}, rtol={rtol:g})"


def _floating(rec: dict) -> bool:
    return rec["dtype"].startswith(("torch.float", "torch.bfloat", "torch.complex"))


def compare(got: dict, key: dict) -> tuple[bool, str]:
    """Judge one student record against its key record; (passed, why not).

    The kind of comparison and its parameters are read from ``key`` only.
    """
    kind, params, want = key.get("kind"), key.get("params", {}), key.get("value", {})
    value = got.get("value", {}) if isinstance(got, dict) else {}
    if not isinstance(value, dict):
        return False, "unreadable record"
    try:
        if kind == "equal":
            ok = _equal(value, want)
            return ok, "" if ok else f"got {describe(value)}, expected {describe(want)}"
        if kind == "close":
            return _close(value, want, params)
        if kind in ("below", "above"):
            x, bound = _number(value), float(params["bound"])
            if x is None or math.isnan(x):
                return False, f"got {describe(value)}, expected a number"
            ok = x < bound if kind == "below" else x > bound
            return ok, "" if ok else f"{x:.6g} is not {kind} {bound:g}"
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a malformed student record
        return False, f"unreadable record ({type(exc).__name__})"
    return False, f"unknown comparison {kind!r} in the answer key"
