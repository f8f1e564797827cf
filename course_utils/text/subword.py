"""Subword tokenizers (WordPiece or BPE) trained on a corpus (introduced in lesson 06, X2; used in 07).

A word vocabulary maps every unseen word to ``<unk>``; a subword vocabulary
spells an unseen word out of known pieces (``"zyzzyva"`` -> ``z ##y ##zz ...``),
so almost nothing is unknown. Training and encoding are done by Hugging Face
``tokenizers`` (Rust, fast); this module only fixes the settings the course
uses::

    from course_utils.text.subword import train_subword_tokenizer, PAD_ID
    tok = train_subword_tokenizer(texts, vocab_size=4000, kind="wordpiece")
    enc = tok.encode("An unwatchable mess!")
    enc.tokens   # ['[CLS]', 'an', 'un', '##watch', '##able', 'mess', '!', '[SEP]']
    enc.ids      # the numbers the model sees
    tok.encode(text, add_special_tokens=False)   # without [CLS]/[SEP]

Special token ids are FIXED (the trainer is given them first, in this order):

    [PAD]=0  [UNK]=1  [CLS]=2  [SEP]=3  [MASK]=4

so padding with 0 is always padding with ``[PAD]``. ``encode`` adds BERT's
template ``[CLS] A [SEP]`` (and ``[CLS] A [SEP] B [SEP]`` for pairs, with
``type_ids`` 0 then 1). Text is normalized BERT-style (clean control chars,
lower-case, strip accents, split CJK characters), then pre-split on whitespace
and punctuation; pieces never cross a word boundary.
"""

from __future__ import annotations

from typing import Iterable

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))
KINDS = ("wordpiece", "bpe")


def train_subword_tokenizer(texts: Iterable[str], vocab_size: int = 8000, kind: str = "wordpiece",
                            min_frequency: int = 2, lowercase: bool = True,
                            add_special_tokens: bool = True):
    """Train a WordPiece or BPE tokenizer on ``texts`` and return a ``tokenizers.Tokenizer``.

    Args:
        texts: the training corpus (an iterable of strings; use the TRAIN split only).
        vocab_size: the target size, special tokens and single characters included.
        kind: ``"wordpiece"`` (BERT: continuation pieces start with ``##``) or
            ``"bpe"`` (merges of frequent pairs; word ends marked ``</w>``).
        min_frequency: a merge must be seen at least this often.
        lowercase: lower-case (and strip accents) before splitting.
        add_special_tokens: attach the ``[CLS] ... [SEP]`` template to ``encode``.

    Returns:
        ``tokenizers.Tokenizer`` with ids ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3
        [MASK]=4``. Save it with ``tok.save(path)``, load with
        ``tokenizers.Tokenizer.from_file(path)``.
    """
    try:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    except ImportError as exc:  # pragma: no cover - the 'text' extra installs it
        raise ImportError("Hugging Face `tokenizers` is missing: pip install "
                          "'pytorch-under-the-hood[text]' (or pip install tokenizers).") from exc
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    if isinstance(texts, str):
        raise ValueError("pass a list (or iterable) of texts, not one string.")
    texts = list(texts)
    if not texts:
        raise ValueError("the training corpus is empty.")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} leaves no room beside the special tokens.")

    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(SPECIAL_TOKENS),
                                            continuing_subword_prefix="##", show_progress=False)
        tokenizer.decoder = decoders.WordPiece(prefix="##")
    else:
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIAL_TOKENS),
                                      end_of_word_suffix="</w>", show_progress=False)
        tokenizer.decoder = decoders.BPEDecoder(suffix="</w>")
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=lowercase, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))

    for expected_id, token in enumerate(SPECIAL_TOKENS):  # the contract other lessons rely on
        got = tokenizer.token_to_id(token)
        if got != expected_id:
            raise RuntimeError(f"special token {token} got id {got}, expected {expected_id}.")
    if add_special_tokens:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
        )
    return tokenizer


def unknown_rate(tokenizer, texts: Iterable[str]) -> float:
    """Fraction of subword tokens in ``texts`` that are ``[UNK]`` (special tokens not counted)."""
    total = unknown = 0
    for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        total += len(encoding.ids)
        unknown += sum(1 for i in encoding.ids if i == UNK_ID)
    return unknown / max(total, 1)
