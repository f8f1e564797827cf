"""Text pipeline helpers (lesson 06): tokenizers, vocabularies, subword tokenizers.

torchtext is discontinued (last release 0.18, pinned to torch 2.3; it fails to
import with current torch), so the course ships the same ideas under the same
names. Import from the concept modules::

    from course_utils.text.tokenize import get_tokenizer
    from course_utils.text.vocab import Vocab, build_vocab_from_iterator
    from course_utils.text.subword import train_subword_tokenizer, PAD_ID
"""
