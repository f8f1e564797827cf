"""Verdict lines: a lesson's claim about its own run, printed from the numbers it just computed.

A sentence in a lesson that states how a run turned out ("Adam ends lower than
SGD", "the loss rises") is backed by one call here, right after the numbers:

    verdict("Adam ends lower than plain SGD", adam_loss < sgd_loss,
            f"Adam ended at {adam_loss:.1e}, plain SGD at {sgd_loss:.1e}")

prints ``VERDICT ✓ Adam ended at 3.8e-06, plain SGD at 7.2e-02 -> Adam ends
lower than plain SGD``, or, when the numbers disagree with the text,
``VERDICT ✗ ... -> NOT as the text says: Adam ends lower than plain SGD``.
A false verdict is a bug in the lesson (the notebook tests and the book build
fail on it); it is not an exercise result, which :mod:`course_utils.checks` prints.

Where fast mode is too small for a claim, make the claim conditional on what
was printed with :func:`verdict_either` (it says which of two readings the
numbers support) and write the prose the same way.
"""

from __future__ import annotations

import re

TRUE_MARK = "VERDICT \u2713"   # VERDICT ✓
FALSE_MARK = "VERDICT \u2717"  # VERDICT ✗
# What the notebook tests and the book build search executed outputs for.
VERDICT_LINE = re.compile(r"^VERDICT [\u2713\u2717] .*$", re.M)
FALSE_LINE = re.compile(r"^VERDICT \u2717 .*$", re.M)


class Verdict:
    """What :func:`verdict` returns: truthy when the claim held; shows nothing extra in Jupyter."""

    __slots__ = ("holds", "line")

    def __init__(self, holds: bool, line: str):
        self.holds, self.line = holds, line

    def __bool__(self) -> bool:
        return self.holds

    def __repr__(self) -> str:
        return f"Verdict(holds={self.holds})"

    def _ipython_display_(self) -> None:
        pass


def _as_bool(holds) -> bool:
    # numpy.bool_ and one-element bool tensors are fine; anything else is a lesson bug.
    if hasattr(holds, "item") and not isinstance(holds, (bool, int, float)):
        holds = holds.item()
    if type(holds).__module__ == "numpy" and type(holds).__name__ in ("bool_", "bool"):
        holds = bool(holds)
    if not isinstance(holds, bool):
        raise TypeError(f"verdict() needs a bool computed from the numbers, got {type(holds).__name__}")
    return bool(holds)


def verdict(claim: str, holds, evidence: str) -> Verdict:
    """Print one marked line: the numbers (``evidence``), then whether ``claim`` holds."""
    ok = _as_bool(holds)
    if ok:
        line = f"{TRUE_MARK} {evidence} -> {claim}"
    else:
        line = f"{FALSE_MARK} {evidence} -> NOT as the text says: {claim}"
    print(line)
    return Verdict(ok, line)


def verdict_either(holds, evidence: str, if_true: str, if_false: str) -> Verdict:
    """A conditional claim: print the reading the numbers support (never a false verdict)."""
    ok = _as_bool(holds)
    line = f"{TRUE_MARK} {evidence} -> {if_true if ok else if_false}"
    print(line)
    return Verdict(True, line)


def verdict_lines(text: str) -> tuple[list[str], list[str]]:
    """(all verdict lines, the false ones) found in printed text."""
    return VERDICT_LINE.findall(text), FALSE_LINE.findall(text)
