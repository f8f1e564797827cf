"""Masked-language-model batches: BERT's masking rule in a ``collate_fn`` (lesson 07, B6).

BERT learns by filling in blanks. For every sequence:

1. choose each *non-special* token with probability 15% (``[CLS]``, ``[SEP]``,
   ``[PAD]``... are never chosen: there is nothing to learn from them);
2. of the chosen tokens, replace 80% by ``[MASK]``, 10% by a random
   (non-special) token, and leave 10% unchanged. The model cannot tell which
   visible tokens were tampered with, so it must build a good representation
   of every token, not only of ``[MASK]`` (which never appears at fine-tuning);
3. ``labels`` hold the original id at chosen positions and ``-100`` everywhere
   else, the value ``F.cross_entropy(..., ignore_index=-100)`` skips.

Then sequences are padded with ``[PAD]`` to the longest of the batch and an
``attention_mask`` (1 = token, 0 = padding) says which positions are real::

    from course_utils.text.mlm import MLMCollator
    collate = MLMCollator(vocab_size=tok.get_vocab_size())   # ids as in text.subword
    loader = DataLoader(encoded_texts, batch_size=64, shuffle=True, collate_fn=collate)
    batch = next(iter(loader))   # dict: input_ids, attention_mask, labels  (each [B, T])

Each position is chosen independently (a Bernoulli draw), as in BERT and
Hugging Face's ``DataCollatorForLanguageModeling``, so a short sentence may get
no chosen token at all; the 15% holds on average.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from course_utils.collate import lengths_to_mask, pad_collate
from course_utils.text.subword import MASK_ID, PAD_ID, SPECIAL_TOKENS

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index


def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, *, mask_id: int,
                vocab_size: int, special_ids: Iterable[int] = (), mlm_prob: float = 0.15,
                mask_frac: float = 0.8, random_frac: float = 0.1,
                generator: torch.Generator | None = None):
    """Apply the MLM rule to a padded batch; returns ``(inputs, labels)``, both [B, T] long.

    Args:
        input_ids: [B, T] long token ids (already padded).
        special_mask: [B, T] bool, True where a token must never be chosen
            (special tokens and padding).
        mask_id: the id of ``[MASK]``.
        vocab_size: random replacements are drawn from ``0 .. vocab_size-1``
            minus ``special_ids``.
        mlm_prob, mask_frac, random_frac: 15% / 80% / 10% in BERT (the rest,
            10%, stays unchanged).
        generator: a ``torch.Generator`` for reproducible masks.
    """
    if input_ids.shape != special_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and special_mask "
                         f"{tuple(special_mask.shape)} must have the same shape [B, T]")
    device = input_ids.device
    prob = torch.full(input_ids.shape, mlm_prob, device=device)
    prob.masked_fill_(special_mask, 0.0)  # specials and padding: never chosen
    chosen = torch.bernoulli(prob, generator=generator).bool()  # [B, T]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

    # One uniform number per position splits the chosen ones 80 / 10 / 10.
    u = torch.rand(input_ids.shape, generator=generator, device=device)
    to_mask = chosen & (u < mask_frac)
    to_random = chosen & (u >= mask_frac) & (u < mask_frac + random_frac)
    # chosen & (u >= mask_frac + random_frac): left as it is, but still predicted

    allowed = torch.ones(vocab_size, dtype=torch.bool)
    allowed[list(special_ids)] = False
    candidates = allowed.nonzero().squeeze(1).to(device)  # ids a random replacement may take
    pick = torch.randint(len(candidates), input_ids.shape, generator=generator, device=device)
    inputs = input_ids.clone()
    inputs[to_mask] = mask_id
    inputs[to_random] = candidates[pick][to_random]
    return inputs, labels


class MLMCollator:
    """``collate_fn`` for MLM: pad, build the attention mask, mask tokens (see module doc).

    A sample is a sequence of token ids (list of ints or 1-D tensor, usually
    starting with ``[CLS]`` and ending with ``[SEP]``), or a ``(sequence, label)``
    pair whose label is ignored. Returns a dict of [B, T] long tensors:
    ``input_ids`` (masked), ``attention_mask`` (1 = token, 0 = padding) and
    ``labels`` (original id at chosen positions, -100 elsewhere). Special ids
    default to the course tokenizer's ``[PAD] [UNK] [CLS] [SEP] [MASK]`` = 0..4.
    """

    def __init__(self, vocab_size: int, *, mask_id: int = MASK_ID, pad_id: int = PAD_ID,
                 special_ids: Iterable[int] = range(len(SPECIAL_TOKENS)), mlm_prob: float = 0.15,
                 max_len: int | None = None, generator: torch.Generator | None = None):
        self.vocab_size = vocab_size
        self.mask_id, self.pad_id = mask_id, pad_id
        self.special_ids = sorted(set(special_ids) | {mask_id, pad_id})
        self.mlm_prob = mlm_prob
        self.max_len = max_len
        self.generator = generator

    def _truncate(self, seq):
        if self.max_len is None or len(seq) <= self.max_len:
            return seq
        seq = list(seq)
        return seq[: self.max_len - 1] + seq[-1:]  # keep the final [SEP]

    def __call__(self, batch):
        seqs = [s[0] if isinstance(s, tuple) else s for s in batch]
        seqs = [self._truncate(torch.as_tensor(s, dtype=torch.long).tolist()) for s in seqs]
        ids, lengths, _ = pad_collate(seqs, pad_value=self.pad_id)  # [B, T], [B]
        attention_mask = lengths_to_mask(lengths, ids.shape[1])  # [B, T] bool, True = token
        special = torch.isin(ids, torch.tensor(self.special_ids)) | ~attention_mask
        inputs, labels = mask_tokens(ids, special, mask_id=self.mask_id, vocab_size=self.vocab_size,
                                     special_ids=self.special_ids, mlm_prob=self.mlm_prob,
                                     generator=self.generator)
        return {"input_ids": inputs, "attention_mask": attention_mask.long(), "labels": labels}
