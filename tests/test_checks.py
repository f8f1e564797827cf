"""The check library on good and bad answers: PyTorch is the oracle, hostile answers never pass."""

import math

import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils.checks import (check_close, check_equal, check_grad, check_module, check_true,
                                 set_grading_mode)


@pytest.fixture(autouse=True)
def lesson_mode():
    set_grading_mode(False)
    yield
    set_grading_mode(None)


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


def test_exact_and_approx_pass(capsys):
    x = torch.randn(4, 5)
    assert check_close("exact", x.clone(), x) == True
    assert "exact" in capsys.readouterr().out
    assert check_close("approx", x + 1e-8, x) == True
    assert "approx" in capsys.readouterr().out


def test_numbers_and_lists_as_expected():
    assert check_close("scalar", 0.5, torch.tensor(0.5)) == False  # float vs tensor expected: needs a tensor
    assert check_close("scalar float", 0.3932, 0.39322, atol=1e-4) == True
    assert check_close("list", torch.tensor([1.2, 1.5, 1.8]), [1.2, 1.5, 1.8]) == True


@pytest.mark.parametrize("bad, words", [
    (None, "forget to `return`"),
    ([1.0, 2.0], "Python list"),
    (AlwaysEqual(), "AlwaysEqual"),
    ("1.0", "a str"),
])
def test_wrong_kinds_fail_clearly(bad, words, capsys):
    assert check_close("answer", bad, torch.tensor([1.0, 2.0])) == False
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and words in out and "Traceback" not in out


def test_tensor_subclass_with_lying_comparisons_fails(capsys):
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return torch.tensor(True)

    liar = torch.zeros(2).as_subclass(Liar)
    assert check_close("liar", liar, torch.ones(2)) == False
    assert "subclass" in capsys.readouterr().out


def test_shape_dtype_device_mismatches_are_explained(capsys):
    expected = torch.arange(6.0).reshape(2, 3)
    assert check_close("shape", expected.reshape(3, 2), expected) == False
    assert "shape differs: got (3, 2), expected (2, 3)" in capsys.readouterr().out
    assert check_close("dtype", expected.double(), expected) == False
    assert "dtype differs" in capsys.readouterr().out
    assert check_close("no dtype", expected.double(), expected, check_dtype=False) == True
    on_meta = torch.empty(2, 3, device="meta")
    assert check_close("device", on_meta, expected) == False
    assert "on meta" in capsys.readouterr().out


def test_nan_and_value_differences_report_where(capsys):
    expected = torch.tensor([1.0, 2.0, 3.0])
    assert check_close("nan", torch.tensor([1.0, math.nan, 3.0]), expected) == False
    assert "NaN mismatch at index (1,)" in capsys.readouterr().out
    assert check_close("off", torch.tensor([1.0, 2.0, 3.5]), expected) == False
    out = capsys.readouterr().out
    assert "1 of 3 values differ" in out and "index (2,)" in out and "0.5" in out


def test_grading_mode_raises_the_same_message():
    set_grading_mode(True)
    with pytest.raises(AssertionError, match="shape differs"):
        check_close("g", torch.zeros(2), torch.zeros(3))
    assert check_close("g", torch.zeros(3), torch.zeros(3)) == True


def test_grading_mode_from_environment(monkeypatch):
    set_grading_mode(None)
    monkeypatch.setenv("COURSE_GRADING", "1")
    assert checks.grading_mode() == True
    with pytest.raises(AssertionError):
        check_true("flag", False)


def test_monkeypatched_torch_cannot_make_a_check_pass(monkeypatch, capsys):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "isclose", lambda a, b, **k: torch.ones_like(a, dtype=torch.bool))
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    assert check_close("patched", torch.zeros(3), torch.ones(3)) == False


def test_check_equal_is_type_strict(capsys):
    assert check_equal("offset", 5, 5) == True
    assert check_equal("offset", 5.0, 5) == False
    assert check_equal("stride", (4, 2, 1), (4, 2, 1)) == True
    assert check_equal("stride", [4, 2, 1], (4, 2, 1)) == False
    assert check_equal("always", AlwaysEqual(), 5) == False
    assert check_equal("tensor", torch.tensor(5), 5) == False
    assert ".item()" in capsys.readouterr().out
    assert check_equal("nested", {"a": [1, (2, 3)]}, {"a": [1, (2, 3)]}) == True
    assert check_equal("nested", {"a": [1, (2, AlwaysEqual())]}, {"a": [1, (2, 3)]}) == False


def test_check_true_needs_a_real_bool():
    assert check_true("t", True) == True
    assert check_true("tensor bool", torch.tensor(True)) == True
    assert check_true("truthy", AlwaysEqual()) == False
    assert check_true("one", 1) == False


class GoodSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


class WrongTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)  # the sigmoid derivative: wrong for tanh


def test_check_grad_passes_a_right_backward_and_catches_a_wrong_one(capsys):
    assert check_grad(GoodSigmoid.apply, torch.randn(5)) == True
    assert check_grad(WrongTanh.apply, torch.randn(5), name="tanh") == False
    out = capsys.readouterr().out
    assert "FAIL  tanh" in out and "Jacobian" in out


def test_check_grad_reports_a_crash_without_internal_traceback(capsys):
    def broken(x):
        raise RuntimeError("boom")

    assert check_grad(broken, torch.randn(3)) == False
    assert "RuntimeError: boom" in capsys.readouterr().out

    class NoReturn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x * 2  # forgot the return

        @staticmethod
        def backward(ctx, grad):
            return grad

    assert check_grad(NoReturn.apply, torch.randn(3)) == False
    out = capsys.readouterr().out
    assert "got None" in out and "AttributeError" not in out


class MyLinear(nn.Module):
    def __init__(self, n_in, n_out, forget_return=False):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_out, n_in))
        self.b = nn.Parameter(torch.zeros(n_out))
        self.forget_return = forget_return

    def forward(self, x):
        y = x @ self.W.T + self.b
        if not self.forget_return:
            return y


class ListModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(3, 2)]  # a plain list hides the parameters

    def forward(self, x):
        return self.layers[0](x)


def test_check_module_copies_weights_by_order_and_compares(capsys):
    x = torch.randn(4, 3)
    assert check_module(MyLinear(3, 2), nn.Linear(3, 2), x) == True
    assert check_module(MyLinear(3, 2, forget_return=True), nn.Linear(3, 2), x) == False
    assert "forget to `return`" in capsys.readouterr().out
    assert check_module(ListModel(), nn.Linear(3, 2), x) == False
    assert "nn.ModuleList" in capsys.readouterr().out
    assert check_module(MyLinear(2, 3), nn.Linear(3, 2), x) == False
    assert "do not line up" in capsys.readouterr().out
    assert check_module("not a module", nn.Linear(3, 2), x) == False


def test_check_result_is_truthy_and_silent_in_jupyter():
    passed = check_close("p", torch.ones(2), torch.ones(2))
    failed = check_close("f", torch.zeros(2), torch.ones(2))
    assert bool(passed) and not bool(failed)
    assert passed == True and failed == False  # noqa: E712 - comparing with bools is the API
    assert "PASS" in passed.message and "FAIL" in failed.message
    assert passed._ipython_display_() is None  # IPython shows nothing for it


# --- The output format (issue 13): one line per call, the exercise id, the progress record ---

def _lines(capsys):
    return capsys.readouterr().out.splitlines()


def test_every_check_prints_one_line_with_its_hint(capsys):
    x = torch.randn(3, 4)
    calls = [
        lambda: check_close("c", x.sum(dim=1), x.sum(dim=0), hint="which dim\ndisappears?"),
        lambda: check_close("c", x + 1, x, hint="look at the first value"),
        lambda: check_close("c", None, x),
        lambda: check_equal("e", (1, 2), (2, 1), hint="order matters"),
        lambda: check_true("t", False, expected="a real bool", hint="compare"),
        lambda: check_grad(WrongTanh.apply, torch.randn(4), name="tanh"),
        lambda: check_module(MyLinear(2, 3), nn.Linear(3, 2), torch.randn(4, 3)),
    ]
    for call in calls:
        assert call() == False
        lines = _lines(capsys)
        assert len(lines) == 1 and lines[0].startswith("FAIL  "), lines
    check_close("c", x.sum(dim=1), x.sum(dim=0), hint="which dim\ndisappears?")
    assert _lines(capsys)[0].endswith("hint: which dim disappears?")


def test_the_exercise_id_leads_the_line(capsys):
    x = torch.randn(3)
    assert check_close("sum", x.sum(), x.sum(), exercise="01.3") == True
    assert _lines(capsys) == ["PASS  [01.3] sum: exact ()"]
    assert check_equal("slot", 4, 5, exercise="01.4") == False
    assert _lines(capsys)[0].startswith("FAIL  [01.4] slot: got 4, expected 5")
    assert check_close("sum", checks.NOT_DONE, x, exercise="01.5") == False
    assert _lines(capsys) == ["TODO  [01.5] sum: not done yet (the exercise still returns NOT_DONE)"]
    # a check inside another (check_module -> check_close) keeps the outer id
    assert check_module(MyLinear(3, 2), nn.Linear(3, 2), torch.randn(2, 3), exercise="03.1") == True
    assert _lines(capsys)[0].startswith("PASS  [03.1] ")
    assert check_close("plain", x, x) == True  # no id: no brackets
    assert _lines(capsys) == ["PASS  plain: exact (3,)"]


def test_untouched_stub_and_missing_return_are_told_apart(capsys):
    expected = torch.ones(2)
    for check in (lambda v: check_close("a", v, expected), lambda v: check_equal("a", v, 2),
                  lambda v: check_true("a", v)):
        check(checks.NOT_DONE)
        out = capsys.readouterr().out
        assert out.startswith("TODO") and "not done yet" in out and "return" not in out.split("(")[0]
    check_close("a", None, expected)
    assert "forget to `return`" in capsys.readouterr().out
    check_close("a", (checks.NOT_DONE, 1), expected)  # a tuple answer half done
    assert capsys.readouterr().out.startswith("TODO")


def test_check_grad_failure_shows_both_jacobians(capsys):
    x = torch.tensor([0.5, -1.0, 2.0])
    assert check_grad(WrongTanh.apply, x, name="tanh") == False
    (line,) = _lines(capsys)
    assert "numerical [[" in line and "analytical [[" in line
    # the first mismatch, with both values: d tanh(0.5)/dx = 1 - tanh(0.5)^2
    want = 1 - math.tanh(0.5) ** 2
    wrong = math.tanh(0.5) * (1 - math.tanh(0.5))
    assert f"numerical {want:.4g}, analytical {wrong:.4g}" in line
    assert "row 0, column 0" in line


def test_check_grad_long_inputs_show_the_mismatching_row(capsys):
    assert check_grad(WrongTanh.apply, torch.randn(40), name="tanh") == False
    (line,) = _lines(capsys)
    assert "row 0: numerical [" in line and "vs analytical [" in line and "Jacobian" in line


@pytest.fixture
def learner(data_home, monkeypatch):
    monkeypatch.delenv("COURSE_NO_PROGRESS", raising=False)
    return data_home


def test_a_pass_with_an_exercise_id_is_recorded(learner, capsys):
    from course_utils import progress

    x = torch.randn(3)
    check_close("sum", x.sum(), x.sum(), exercise="01.3")
    check_close("wrong", x, x + 1, exercise="01.4")              # FAIL: not recorded
    check_close("stub", checks.NOT_DONE, x, exercise="01.5")     # TODO: not recorded
    check_close("unnamed", x, x)                                 # no id: nothing to record
    assert sorted(progress.load()) == ["01.3"]
    set_grading_mode(True)
    check_close("graded", x, x, exercise="01.6")
    assert sorted(progress.load()) == ["01.3"]


def test_no_record_under_the_tests(data_home, capsys):
    from course_utils import progress

    check_close("sum", torch.ones(1), torch.ones(1), exercise="01.3")
    assert progress.load() == {}


class StubLinear(nn.Module):
    """An exercise module nobody has started: no parameters, forward returns NOT_DONE."""

    def __init__(self, n_in, n_out):
        super().__init__()

    def forward(self, x):
        return checks.NOT_DONE


def test_check_module_on_an_untouched_exercise_says_not_done(capsys):
    assert check_module(StubLinear(3, 2), nn.Linear(3, 2), torch.randn(4, 3), exercise="03.1") == False
    assert _lines(capsys) == ["TODO  [03.1] StubLinear vs Linear: not done yet (the exercise still returns NOT_DONE)"]
    # no parameters and a forward that uses them: the real problem is reported
    assert check_module(ListModel(), nn.Linear(3, 2), torch.randn(4, 3)) == False
    assert "nn.ModuleList" in capsys.readouterr().out


def test_check_close_points_at_the_real_mismatch_next_to_equal_infinities(capsys):
    got = torch.tensor([1.0, float("-inf"), 2.0])
    assert check_close("with infs", got, torch.tensor([1.5, float("-inf"), 2.0])) == False
    (line,) = _lines(capsys)
    assert "max abs diff 0.5 at index (0,)" in line and "nan" not in line
    assert check_close("same infs", got, got.clone())
    assert check_close("inf vs finite", got, torch.tensor([1.0, 0.0, 2.0])) == False
    assert "at index (1,)" in _lines(capsys)[-1]
