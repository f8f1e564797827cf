"""Models the course builds from scratch (lesson 07: attention, the encoder, BERT).

    from course_utils.models.attention import MultiHeadAttention
    from course_utils.models.transformer import BertConfig, Bert, BertForMaskedLM
    from course_utils.models.bert_weights import load_minilm   # needs the [bert] extra

The names below are re-exported for convenience; ``bert_weights`` is not
imported here because it needs optional packages.
"""

from course_utils.models.attention import (
    AttentionHead,
    MultiHeadAttention,
    MultiHeadAttentionList,
    padding_to_attn_mask,
    scaled_dot_product_attention,
)
from course_utils.models.transformer import (
    Bert,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    Embeddings,
    Encoder,
    EncoderLayer,
    FeedForward,
    MLMHead,
)

__all__ = [
    "AttentionHead", "MultiHeadAttention", "MultiHeadAttentionList", "padding_to_attn_mask",
    "scaled_dot_product_attention", "Bert", "BertConfig", "BertForMaskedLM",
    "BertForSequenceClassification", "Embeddings", "Encoder", "EncoderLayer", "FeedForward",
    "MLMHead",
]
