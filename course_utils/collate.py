"""Padding variable-length sequences into one batch (built by hand in lesson 04, reused in 06-07).

Lesson 04's exercise asks you to write this ``collate_fn`` yourself; this is the
package copy that the text (06) and transformer (07) lessons import::

    from course_utils.collate import pad_collate
    loader = DataLoader(dataset, batch_size=32, collate_fn=pad_collate)
    for padded, lengths, labels in loader:   # padded: [B, T_max], lengths: [B]
        ...

Why it is needed: the default collate ``torch.stack``s the samples of a batch,
and stacking needs equal shapes. Sentences have different lengths, so we pad
every sequence up to the longest one *in this batch* (not in the whole
dataset: short batches stay short) and keep the true lengths so a model can
mask the padding out (``mask = arange(T_max) < lengths[:, None]``).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import default_collate

__all__ = ["pad_collate", "lengths_to_mask"]


def _as_sequence(x, i: int) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        seq = x
    elif isinstance(x, (list, tuple)) and all(isinstance(v, int) for v in x):
        seq = torch.tensor(x, dtype=torch.long)  # a plain list of token ids
    else:
        raise ValueError(
            f"pad_collate: sample {i} holds a {type(x).__name__}; pass each sequence as a "
            "tensor of shape [T] (token ids) or [T, C] (features), or a list of ints.")
    if seq.dim() == 0:
        raise ValueError(f"pad_collate: sample {i} is a 0-dim tensor; a sequence needs shape [T] "
                         "(wrap a single token as torch.tensor([tok])).")
    return seq


def pad_collate(batch, pad_value=0, batch_first: bool = True):
    """Pad a list of variable-length sequences into one tensor.

    Args:
        batch: what the DataLoader hands a ``collate_fn``: a list of samples,
            each either a ``(sequence, label)`` pair or a bare sequence. A
            sequence is a tensor of shape ``[T]`` (token ids) or ``[T, C]``.
        pad_value: the value written into the padded positions (use your
            vocabulary's ``<pad>`` index).
        batch_first: ``True`` gives ``[B, T_max]``; ``False`` gives ``[T_max, B]``.

    Returns:
        ``(padded, lengths, labels)``:
        ``padded`` ``[B, T_max]`` (or ``[B, T_max, C]``), same dtype as the
        sequences (``long`` for token ids); ``lengths`` ``[B]`` long, the true
        length of each row; ``labels`` ``[B]`` collated with PyTorch's
        ``default_collate``, or ``None`` when the samples carry no label.
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError("pad_collate: expected a non-empty list of samples, e.g. "
                         "[(torch.tensor([5, 2, 9]), 1), (torch.tensor([4]), 0)].")
    paired = [isinstance(s, tuple) and len(s) == 2 for s in batch]
    if any(paired) and not all(paired):
        raise ValueError("pad_collate: mix of (sequence, label) pairs and bare sequences; "
                         "make every sample the same kind.")
    if all(paired):
        seqs = [_as_sequence(s, i) for i, (s, _) in enumerate(batch)]
        labels = default_collate([label for _, label in batch])
    else:
        seqs = [_as_sequence(s, i) for i, s in enumerate(batch)]
        labels = None
    tails = {tuple(s.shape[1:]) for s in seqs}
    if len(tails) > 1:
        raise ValueError(f"pad_collate: sequences differ beyond the time dim ({sorted(tails)}); "
                         "only the first dim (T) may vary.")
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)        # [B]
    padded = pad_sequence(seqs, batch_first=batch_first, padding_value=pad_value)  # [B, T_max, *]
    return padded, lengths, labels


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``[B]`` lengths -> ``[B, T_max]`` bool mask, True on real tokens, False on padding."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # [B, T_max]
