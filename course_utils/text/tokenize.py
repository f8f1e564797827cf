"""Word tokenizers with torchtext's names (introduced in lesson 06, X1-X2).

torchtext is discontinued: its last release (0.18, 2024) is pinned to torch 2.3
and fails to import with current torch, so the course does not use it. This
module keeps the API learners know from it::

    from course_utils.text.tokenize import get_tokenizer
    tokenizer = get_tokenizer("basic_english")
    tokenizer("Don't panic: it's (only) 3.5 stars!")
    # ['don', "'", 't', 'panic', 'it', "'", 's', '(', 'only', ')', '3', '.', '5', 'stars', '!']

``basic_english`` reproduces torchtext's ``_basic_english_normalize`` rule for
rule, in this order:

1. lower-case the whole line (``str.lower``);
2. ``'`` (apostrophe) -> `` ' `` : split off as its own token, so
   ``don't`` -> ``don ' t`` (no special case for contractions);
3. ``"`` (double quote) -> removed;
4. ``.`` -> `` . ``: a token of its own, also inside numbers (``3.5`` -> ``3 . 5``);
5. ``<br />`` (the HTML line break in IMDB reviews) -> a space;
6. ``,``  ``(``  ``)``  ``!``  ``?`` -> split off as tokens;
7. ``;`` and ``:`` -> removed;
8. any run of whitespace (spaces, tabs, newlines) separates tokens.

Everything else stays inside a word: hyphens (``well-made``), slashes, digits
(``21st``), ``$``, ``%``, ``&``, ``*``, ``#``, ``@``, emoji and accented letters.
An empty or all-whitespace string gives ``[]``.
"""

from __future__ import annotations

import re
from typing import Callable

# (pattern, replacement) pairs applied in order, exactly as torchtext 0.18 does.
_BASIC_ENGLISH_RULES = [
    (re.compile(r"\'"), " '  "),
    (re.compile(r"\""), ""),
    (re.compile(r"\."), " . "),
    (re.compile(r"<br \/>"), " "),
    (re.compile(r","), " , "),
    (re.compile(r"\("), " ( "),
    (re.compile(r"\)"), " ) "),
    (re.compile(r"\!"), " ! "),
    (re.compile(r"\?"), " ? "),
    (re.compile(r"\;"), " "),
    (re.compile(r"\:"), " "),
    (re.compile(r"\s+"), " "),
]


def basic_english(line: str) -> list[str]:
    """Lower-case ``line`` and split punctuation off (the rules in the module docstring)."""
    if not isinstance(line, str):
        raise ValueError(f"basic_english expects one string, got {type(line).__name__}; "
                         "tokenize a list of texts with [tokenizer(t) for t in texts].")
    line = line.lower()
    for pattern, replacement in _BASIC_ENGLISH_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def whitespace_split(line: str) -> list[str]:
    """``str.split()``: split on runs of whitespace, keep case and punctuation."""
    if not isinstance(line, str):
        raise ValueError(f"expected one string, got {type(line).__name__}.")
    return line.split()


_TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"basic_english": basic_english}


def get_tokenizer(tokenizer: str | Callable[[str], list[str]] | None,
                  language: str = "en") -> Callable[[str], list[str]]:
    """Return a function ``str -> list[str]``, like ``torchtext.data.get_tokenizer``.

    Args:
        tokenizer: ``"basic_english"`` (lower-case, punctuation split off),
            ``None`` (plain ``str.split``) or any callable (returned as is).
        language: only ``"en"`` is supported for ``basic_english`` (as in torchtext).
    """
    if tokenizer is None:
        return whitespace_split
    if callable(tokenizer):
        return tokenizer
    if tokenizer in _TOKENIZERS:
        if language != "en":
            raise ValueError(f"'{tokenizer}' only supports language='en', got {language!r}.")
        return _TOKENIZERS[tokenizer]
    raise ValueError(f"unknown tokenizer {tokenizer!r}; pass 'basic_english', None (str.split) "
                     "or your own function str -> list[str]. For subwords use "
                     "course_utils.text.subword.train_subword_tokenizer.")
