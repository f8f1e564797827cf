"""A vocabulary: the two-way map token <-> index (introduced in lesson 06, X3).

Same names and behaviour as ``torchtext.vocab`` (discontinued: its last release,
0.18, is pinned to torch 2.3 and fails to import with current torch)::

    from course_utils.text.vocab import build_vocab_from_iterator
    vocab = build_vocab_from_iterator(token_lists, min_freq=2, specials=["<pad>", "<unk>"])
    vocab.set_default_index(vocab["<unk>"])     # unknown tokens -> <unk>
    vocab.lookup_indices(["a", "zyzzyva"])      # [5, 1]
    vocab.lookup_tokens([5, 1])                 # ['a', '<unk>']

What is stored: a list ``itos`` (index -> token) and a dict ``stoi``
(token -> index), kept in step, plus an optional default index. Looking up a
token that is not in ``stoi`` returns the default index, or raises
:class:`TokenNotFoundError` (both a ``KeyError`` and, like torchtext, a
``RuntimeError``) when no default is set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import MappingProxyType
from typing import Iterable, Mapping


class TokenNotFoundError(KeyError, RuntimeError):
    """A token is not in the vocabulary and no default index is set."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class _ReadOnlyList(Sequence):
    """A live, read-only view of the vocabulary's ``itos`` list."""

    def __init__(self, items: list[str]):
        self._items = items

    def __getitem__(self, index):
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._items[:8])
        return f"itos([{head}{', ...' if len(self._items) > 8 else ''}], len={len(self._items)})"


class Vocab:
    """Token <-> index map with an optional default index for unknown tokens.

    Args:
        tokens: the tokens in index order (token ``tokens[i]`` gets index ``i``);
            duplicates are an error.
    """

    def __init__(self, tokens: Iterable[str] = ()):
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        self._default_index: int | None = None
        for token in tokens:
            self.append_token(token)

    # -- size and membership -------------------------------------------------
    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __iter__(self):
        return iter(self._itos)

    def __repr__(self) -> str:
        return (f"Vocab(size={len(self)}, first={self._itos[:6]}, "
                f"default_index={self._default_index})")

    # -- token -> index --------------------------------------------------------
    def __getitem__(self, token: str) -> int:
        """The index of ``token`` (the default index when unknown, if one is set)."""
        index = self._stoi.get(token)
        if index is not None:
            return index
        if self._default_index is not None:
            return self._default_index
        raise TokenNotFoundError(
            f"Token {token!r} not found and default index is not set. Call "
            "vocab.set_default_index(vocab['<unk>']) to map unknown tokens to <unk>, "
            "or check `token in vocab` first.")

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        """``[vocab[t] for t in tokens]``: numericalize a list of tokens."""
        if isinstance(tokens, str):
            raise ValueError("lookup_indices expects a list of tokens, got one string; "
                             "tokenize it first (tokenizer(text)) or use vocab[token].")
        return [self[token] for token in tokens]

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        """Same as :meth:`lookup_indices` (torchtext's ``vocab(tokens)``)."""
        return self.lookup_indices(tokens)

    # -- index -> token --------------------------------------------------------
    def lookup_token(self, index: int) -> str:
        if not 0 <= int(index) < len(self._itos):
            raise IndexError(f"Specified index {index} is out of bounds of vocab of size "
                             f"{len(self._itos)}.")
        return self._itos[int(index)]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        """``[itos[i] for i in indices]`` (accepts a list or a 1-D tensor)."""
        if hasattr(indices, "tolist"):
            indices = indices.tolist()
        return [self.lookup_token(i) for i in indices]

    # -- default index -----------------------------------------------------------
    def set_default_index(self, index: int | None) -> None:
        """Index returned for unknown tokens (``None``: raise instead)."""
        if index is not None and not 0 <= int(index) < len(self._itos):
            raise IndexError(f"default index {index} is outside the vocabulary (size "
                             f"{len(self._itos)}); pass vocab['<unk>'] after adding '<unk>'.")
        self._default_index = None if index is None else int(index)

    def get_default_index(self) -> int | None:
        return self._default_index

    # -- growing -------------------------------------------------------------------
    def append_token(self, token: str) -> None:
        if not isinstance(token, str):
            raise ValueError(f"tokens are strings, got {type(token).__name__} {token!r}.")
        if token in self._stoi:
            raise ValueError(f"token {token!r} is already in the vocabulary at index "
                             f"{self._stoi[token]}.")
        self._stoi[token] = len(self._itos)
        self._itos.append(token)

    def insert_token(self, token: str, index: int) -> None:
        """Insert ``token`` at ``index``; tokens at and after it move up by one."""
        if token in self._stoi:
            raise ValueError(f"token {token!r} is already in the vocabulary.")
        if not 0 <= index <= len(self._itos):
            raise IndexError(f"index {index} outside 0..{len(self._itos)}.")
        self._itos.insert(index, token)
        self._stoi = {t: i for i, t in enumerate(self._itos)}
        if self._default_index is not None and self._default_index >= index:
            self._default_index += 1  # keep pointing at the same token

    # -- views -------------------------------------------------------------------
    def get_stoi(self) -> dict[str, int]:
        """A copy of the token -> index dict (torchtext returns a copy too)."""
        return dict(self._stoi)

    def get_itos(self) -> list[str]:
        """A copy of the index -> token list."""
        return list(self._itos)

    @property
    def stoi(self) -> Mapping[str, int]:
        """Live read-only view of token -> index."""
        return MappingProxyType(self._stoi)

    @property
    def itos(self) -> Sequence[str]:
        """Live read-only view of index -> token."""
        return _ReadOnlyList(self._itos)


def vocab(ordered_dict: Mapping[str, int], min_freq: int = 1, specials: list[str] | None = None,
          special_first: bool = True) -> Vocab:
    """A :class:`Vocab` from ``token -> count`` in the order given (torchtext's ``vocab()``).

    Tokens with ``count < min_freq`` are dropped; ``specials`` are put first
    (or last) whatever their counts.
    """
    if min_freq < 1:
        raise ValueError(f"min_freq must be >= 1, got {min_freq}.")
    specials = list(specials or [])
    tokens = [t for t, n in ordered_dict.items() if n >= min_freq and t not in specials]
    return Vocab(specials + tokens if special_first else tokens + specials)


def build_vocab_from_iterator(iterator: Iterable[Iterable[str]], min_freq: int = 1,
                              specials: list[str] | None = None, special_first: bool = True,
                              max_tokens: int | None = None) -> Vocab:
    """Count tokens and build a :class:`Vocab`, like ``torchtext.vocab.build_vocab_from_iterator``.

    Args:
        iterator: yields one list of tokens per text (e.g. ``map(tokenizer, texts)``).
        min_freq: keep tokens seen at least this many times.
        specials: e.g. ``["<pad>", "<unk>"]``; always kept, in this order.
        special_first: specials get the first indices (else the last).
        max_tokens: cap on the size, specials included: the ``max_tokens -
            len(specials)`` most frequent tokens are kept.

    Order: specials, then tokens by descending count, ties broken
    alphabetically. (One deliberate difference from torchtext: specials that also
    occur in the text are removed *before* the ``max_tokens`` cut, so the
    vocabulary really has ``max_tokens`` entries when the text allows it.)
    """
    if isinstance(iterator, str):
        raise ValueError("pass an iterable of token lists, e.g. map(tokenizer, texts), not one string.")
    specials = list(specials or [])
    counter: Counter[str] = Counter()
    for tokens in iterator:
        if isinstance(tokens, str):
            raise ValueError(f"each item must be a list of tokens, got the string {tokens[:30]!r}; "
                             "use map(tokenizer, texts).")
        counter.update(tokens)
    for special in specials:
        counter.pop(special, None)
    by_freq = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    if max_tokens is not None:
        if max_tokens <= len(specials):
            raise ValueError(f"max_tokens={max_tokens} leaves no room beside the "
                             f"{len(specials)} special tokens.")
        by_freq = by_freq[: max_tokens - len(specials)]
    return vocab(dict(by_freq), min_freq=min_freq, specials=specials, special_first=special_first)
