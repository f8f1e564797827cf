"""Lesson 08's exercise checks catch typical wrong answers and pass the right ones.

The check cells of ``lessons/08_compile_export.ipynb`` (tagged ``check:<exercise>``) are run
here against answers written in this file: the worked one must print only PASS lines, each
typical mistake at least one FAIL, and an untouched stub TODO.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "lessons" / "08_compile_export.ipynb"

pytest.importorskip("onnx")           # the lesson's setup imports need the `export` extra
pytest.importorskip("onnxruntime")


def _code(cell) -> str:
    # Drop IPython magics and the last top-level line (the cell's call on the learner's answer).
    lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith("%")]
    if "check:" in " ".join(cell.metadata.get("tags", [])):
        while lines and not lines[-1].strip():
            lines.pop()
        lines.pop()
    return "\n".join(lines)


@pytest.fixture(scope="module")
def lesson():
    """A namespace with the lesson's imports/config cell and every check cell's definitions."""
    nb = nbformat.read(SOURCE, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup_index = next(i for i, c in enumerate(code) if "setup" in c.metadata.get("tags", []))
    ns: dict = {"__name__": "lesson08_checks"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(_code(code[setup_index + 1]), "imports-cell", "exec"), ns)
        for cell in code:
            if any(t.startswith("check:") for t in cell.metadata.get("tags", [])):
                exec(compile(_code(cell), "check-cell", "exec"), ns)
    yield ns
    import shutil
    shutil.rmtree(ns["WORK"], ignore_errors=True)


def _lines(fn, *args) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(*args)
    return [line for line in out.getvalue().splitlines() if line[:4] in {"PASS", "FAIL", "TODO"}]


def _all_pass(lines):
    assert lines and all(line.startswith("PASS") for line in lines), lines


def _some_fail(lines):
    assert any(line.startswith("FAIL") for line in lines), lines


def test_the_check_cells_were_found(lesson):
    for name in ("check_gate", "check_export", "check_quantize", "check_weights"):
        assert callable(lesson.get(name)), name


# --- debugging task: gate_fixed ---------------------------------------------------------
def test_gate_right_answer_passes(lesson):
    _all_pass(_lines(lesson["check_gate"], lambda x: torch.where(x.mean() > 0, x * 2, -x)))


def test_gate_python_if_fails(lesson):
    def python_if(x):
        return x * 2 if x.mean() > 0 else -x
    lines = _lines(lesson["check_gate"], python_if)
    _some_fail(lines)
    assert any("traced" in line and line.startswith("FAIL") for line in lines)
    assert any("graph breaks" in line and line.startswith("FAIL") for line in lines)


def test_gate_wrong_branch_fails(lesson):
    _some_fail(_lines(lesson["check_gate"], lambda x: torch.where(x.mean() > 0, x * 2, x)))


def test_gate_stub_says_todo(lesson):
    lines = _lines(lesson["check_gate"], lambda x: lesson["NOT_DONE"])
    assert lines and lines[0].startswith("TODO"), lines


# --- exercise 1: export_with_dynamic_batch ----------------------------------------------
def _dynamic_export(model, example):
    import inspect
    name = next(iter(inspect.signature(model.forward).parameters))
    return torch.export.export(model, (example,),
                               dynamic_shapes={name: {0: torch.export.Dim("batch", min=1, max=4096)}})


def test_export_right_answer_passes(lesson):
    _all_pass(_lines(lesson["check_export"], _dynamic_export))


def test_export_static_fails(lesson):
    _some_fail(_lines(lesson["check_export"], lambda m, x: torch.export.export(m, (x,))))


def test_export_wrong_argument_name_fails_in_one_line(lesson):
    def keyed_by_input(m, x):
        return torch.export.export(m, (x,), dynamic_shapes={"input": {0: torch.export.Dim("batch")}})
    lines = _lines(lesson["check_export"], keyed_by_input)
    assert len(lines) == 1 and lines[0].startswith("FAIL"), lines


def test_export_returning_the_module_fails(lesson):
    _some_fail(_lines(lesson["check_export"], lambda m, x: m))


# --- exercise 2: quantize_int8 / dequantize_int8 ----------------------------------------
def _quantize(x, *, denominator=255, zp_sign=1, clamp=True, dtype=torch.int8, lo_with_zero=True):
    lo = min(x.min().item(), 0.0) if lo_with_zero else x.min().item()
    hi = max(x.max().item(), 0.0)
    scale = (hi - lo) / denominator
    zero_point = int(round(-128 - lo / scale)) if zp_sign > 0 else int(round(128 + lo / scale))
    q = torch.round(x / scale) + zero_point
    if clamp:
        q = torch.clamp(q, -128, 127)
    return q.to(dtype), scale, zero_point


def _dequantize(q, scale, zero_point):
    return (q.to(torch.float32) - zero_point) * scale


def test_quantize_right_answer_passes(lesson):
    _all_pass(_lines(lesson["check_quantize"], _quantize, _dequantize))


@pytest.mark.parametrize("mistake", [dict(denominator=256), dict(zp_sign=-1), dict(dtype=torch.float32),
                                     dict(lo_with_zero=False)],
                         ids=["scale/256", "zero-point-sign", "float-q", "range-without-0"])
def test_quantize_typical_mistakes_fail(lesson, mistake):
    _some_fail(_lines(lesson["check_quantize"], lambda x: _quantize(x, **mistake), _dequantize))


def test_dequantize_forgetting_the_zero_point_fails(lesson):
    _some_fail(_lines(lesson["check_quantize"], _quantize, lambda q, s, z: q.to(torch.float32) * s))


def test_quantize_stub_says_todo(lesson):
    lines = _lines(lesson["check_quantize"], lambda x: lesson["NOT_DONE"], _dequantize)
    assert lines and lines[0].startswith("TODO"), lines


# --- exercise 3: save_weights / load_weights --------------------------------------------
def _save(model, path):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def _load(model, path):
    from safetensors.torch import load_file
    model.load_state_dict(load_file(str(path)))
    return model


def test_weights_right_answer_passes(lesson, tmp_path):
    _all_pass(_lines(lesson["check_weights"], _save, _load, tmp_path))


def test_weights_torch_save_fails(lesson, tmp_path):
    def save_pickle(model, path):
        torch.save(model.state_dict(), path)

    def load_pickle(model, path):
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    _some_fail(_lines(lesson["check_weights"], save_pickle, load_pickle, tmp_path))


def test_weights_load_without_return_fails(lesson, tmp_path):
    def load_no_return(model, path):
        _load(model, path)
    _some_fail(_lines(lesson["check_weights"], _save, load_no_return, tmp_path))


def test_weights_stub_says_todo(lesson, tmp_path):
    lines = _lines(lesson["check_weights"], lambda m, p: lesson["NOT_DONE"], _load, tmp_path)
    assert lines and lines[0].startswith("TODO"), lines
