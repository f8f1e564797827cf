"""Fast mode: one switch that shrinks every long run so the whole course runs in CI.

Set ``COURSE_FAST=1`` (``course run --fast`` does it for you). Notebooks pick
sizes with :func:`pick`, so the full and the fast value sit side by side::

    EPOCHS = pick(full=10, fast=1)
"""

import os

_TRUE = {"1", "true", "yes", "on"}


def is_fast() -> bool:
    """True when ``COURSE_FAST`` is set to 1/true/yes/on."""
    return os.environ.get("COURSE_FAST", "").strip().lower() in _TRUE


def pick(full, fast):
    """Return ``fast`` in fast mode, else ``full``."""
    return fast if is_fast() else full


def fast_notice() -> str:
    """A line notebooks print so a learner knows which mode produced the numbers."""
    if is_fast():
        return ("FAST MODE (COURSE_FAST=1): small data and few steps, so numbers "
                "below are rough. Unset COURSE_FAST for the full run.")
    return "Full mode: data sizes and training steps as the lesson describes."
