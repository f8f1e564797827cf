"""Check records and the answer-key comparison (grading judges outside the student's kernel),
and the exactness fixes in the checks (issue 12)."""

import json

import numpy as np
import pytest
import torch

from course_utils import checks
from course_utils.checks import (KEY, check_above, check_below, check_close, check_equal,
                                 check_grad, check_true)
from course_utils.records import compare, encode


def _key(kind, value, **params):
    return {"kind": kind, "value": encode(value), "params": params}


def _judge(got, key):
    return compare({"value": encode(got)}, key)[0]


@pytest.mark.parametrize("value", [torch.randn(3, 4), torch.arange(6).reshape(2, 3),
                                   torch.tensor([True, False]), torch.randn(2, dtype=torch.float64),
                                   torch.randn(3).to(torch.bfloat16), 7, 2**70, 0.1, "s", None,
                                   (1, (2.5, "x")), [torch.ones(2), 3], True])
def test_a_value_equals_its_own_record(value):
    rec = json.loads(json.dumps(encode(value)))  # survives JSON: data, never pickle
    assert compare({"value": rec}, _key("equal", value))[0]


def test_close_uses_the_keys_tolerance_not_the_students():
    key = _key("close", torch.tensor([1.0, 2.0]), atol=1e-3, rtol=0.0)
    assert _judge(torch.tensor([1.0005, 2.0]), key)
    assert not _judge(torch.tensor([1.01, 2.0]), key)
    # a student record that claims a huge tolerance changes nothing
    forged = {"value": encode(torch.tensor([1.5, 2.0])), "params": {"atol": 10.0}}
    assert not compare(forged, key)[0]


@pytest.mark.parametrize("got, want", [(100000, 100001), (torch.tensor([100000]), torch.tensor([100001])),
                                       (torch.tensor([1, 2]), torch.tensor([1, 3]))])
def test_integers_compare_exactly_even_under_close(got, want):
    assert not _judge(got, _key("close", want, atol=1.0, rtol=1.0))
    assert _judge(want, _key("close", want, atol=0.0, rtol=0.0))


@pytest.mark.parametrize("got", [torch.tensor([1.0, 2.0]), torch.ones(2, 1), [1.0, 2.0], None, "x",
                                 torch.tensor([1.0, 2.0], dtype=torch.float64)])
def test_wrong_shapes_types_and_dtypes_fail(got):
    assert not _judge(got, _key("close", torch.tensor([1.0, 3.0])))


def test_tensor_subclasses_and_unknown_objects_never_match():
    class Sneaky(torch.Tensor):
        pass

    sneaky = torch.ones(2).as_subclass(Sneaky)
    assert not _judge(sneaky, _key("close", torch.ones(2)))

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    assert not _judge(AlwaysEqual(), _key("equal", 3))


def test_bounds_come_from_the_key():
    assert _judge(0.2, _key("below", None, bound=0.3))
    assert not _judge(0.4, _key("below", None, bound=0.3))
    assert not _judge(float("nan"), _key("below", None, bound=0.3))
    assert _judge(torch.tensor(0.9), _key("above", None, bound=0.5))
    assert not _judge("0.9", _key("above", None, bound=0.5))


def test_malformed_records_fail_instead_of_crashing():
    key = _key("close", torch.ones(2))
    for bad in [{}, {"value": {"t": "tensor", "dtype": "torch.float32", "shape": [2], "b64": "%%"}},
                {"value": {"t": "tensor", "dtype": "torch.float32", "shape": [3], "b64": "AAAA"}},
                {"value": "not a dict"}]:
        assert compare(bad, key)[0] is False


def test_record_mode_emits_and_judges_nothing(monkeypatch):
    shown = []
    monkeypatch.setenv("COURSE_RECORD", "1")
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    assert check_close("hidden", torch.zeros(2), KEY, atol=1e-4)     # wrong, yet not judged here
    assert check_below("loss", 5.0, 0.3)
    from course_utils.records import MIME
    recs = [s[MIME] for s in shown]
    assert [r["kind"] for r in recs] == ["close", "below"]
    assert recs[0]["params"]["atol"] == 1e-4 and recs[1]["params"]["bound"] == 0.3


def test_plain_mode_reads_the_answer_key(tmp_path, monkeypatch, capsys):
    key = {"cells": {"test_x": [dict(name="x hidden", **_key("close", torch.tensor([1.0, 2.0])))]}}
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    monkeypatch.setenv("COURSE_ANSWER_KEY", str(path))
    monkeypatch.setattr(checks, "_seen_names", {})
    monkeypatch.setattr(checks, "_key_cache", {})
    assert check_close("x hidden", torch.tensor([1.0, 2.0]), KEY)
    assert not check_close("x hidden", torch.tensor([1.0, 2.0]), KEY)  # second call: no record
    monkeypatch.setattr(checks, "_seen_names", {})
    assert not check_close("x hidden", torch.tensor([1.0, 2.5]), KEY)
    assert "FAIL" in capsys.readouterr().out


def test_check_fixes_from_reading():
    assert not check_close("ints", 100000, 100001)
    assert not check_close("int tensors", torch.tensor([100000]), torch.tensor([100001]))
    assert check_true("numpy bool", np.bool_(True))

    class F(float):
        pass

    assert not check_close("float subclass", F(0.3), 0.3)
    # an index (long) input stays long, so indexing works inside gradcheck
    assert check_grad(lambda x, i: x[i].sin(), torch.randn(5), torch.tensor([0, 2]))
    assert not check_above("acc", 0.4, 0.5) and check_below("loss", torch.tensor(0.1), 0.3)
    assert not check_equal("key without a key file", 3, KEY) or True  # prints a NOTE, never raises


def test_zero_dim_mismatch_and_dtype_records_explain_themselves():
    ok, why = compare({"value": encode(torch.tensor(1.5))}, _key("close", torch.tensor(1.0)))
    assert not ok and "max abs diff 0.5" in why
    ok, why = compare({"value": encode(torch.float32)}, _key("equal", torch.float64))
    assert not ok and "torch.float32" in why and "torch.float64" in why


def test_without_any_key_a_lesson_run_notes_and_plain_grading_refuses(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_ANSWER_KEY", raising=False)
    monkeypatch.chdir("/")
    monkeypatch.setenv("COURSE_GRADING", "0")
    checks.set_grading_mode(True)  # what an assignment's setup cell does
    try:
        assert check_close("hidden", torch.ones(1), KEY)
        assert "NOTE" in capsys.readouterr().out
        monkeypatch.setenv("COURSE_GRADING", "1")  # plain nbgrader's config
        with pytest.raises(AssertionError, match="course assignments keys"):
            check_close("hidden", torch.ones(1), KEY)
    finally:
        checks.set_grading_mode(None)
