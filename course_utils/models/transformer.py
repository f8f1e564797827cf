"""A transformer encoder and a BERT-style model from scratch (lesson 07, B4-B8).

Lesson 07 builds every piece in cells and then checks it against these classes
(and these against PyTorch's ``nn.TransformerEncoderLayer``), so this module is
what the lesson taught, kept for reuse:

- :class:`FeedForward` (B4): Linear C -> 4C, GELU, Linear 4C -> C, dropout.
- :class:`EncoderLayer` (B5): attention + feed-forward, each wrapped in a
  residual connection and a LayerNorm, either *pre-LN* (``norm_first=True``,
  the course's first version: ``x + f(LN(x))``) or *post-LN* (BERT:
  ``LN(x + f(x))``).
- :class:`Embeddings` (B5/B6): token + learned position + token-type embeddings.
- :class:`Encoder`: a stack of layers (plus a final LayerNorm when pre-LN).
- :class:`Bert` with :class:`BertForMaskedLM` (B7 pre-training) and
  :class:`BertForSequenceClassification` (B7 fine-tuning), configured by
  :class:`BertConfig`. ``course_utils.models.bert_weights`` loads real
  pretrained weights into :class:`Bert` (B8).

Shapes: ``B`` batch, ``T`` tokens, ``C`` hidden size, ``nh`` heads, ``hs`` head
size, ``L`` layers, ``V`` vocabulary size. ``attention_mask`` is BERT's [B, T]
with 1 = token and 0 = [PAD].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_utils.models.attention import MultiHeadAttention, padding_to_attn_mask

_ACTIVATIONS = {"gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "relu": nn.ReLU}


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


@dataclass
class BertConfig:
    """Every size of a BERT-style encoder in one place (names as in lesson 07).

    BERT-base: hidden=768, layers=12, heads=12, intermediate=3072.
    all-MiniLM-L6-v2: hidden=384, layers=6, heads=12, intermediate=1536.
    """

    vocab_size: int
    hidden: int = 256          # C
    layers: int = 4            # L
    heads: int = 4             # nh (hs = hidden // heads)
    intermediate: int = 1024   # feed-forward width, usually 4 * C
    max_len: int = 128         # number of learned positions
    type_vocab_size: int = 2   # sentence A / sentence B
    dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    act: str = "gelu"
    norm_first: bool = False   # BERT is post-LN
    pad_id: int = 0

    def __post_init__(self):
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")


class FeedForward(nn.Module):
    """Position-wise feed-forward: the same 2-layer MLP applied to every token (B4)."""

    def __init__(self, embed_dim: int, hidden_dim: int, dropout: float = 0.1, act: str = "gelu"):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.act = _activation(act)
        self.fc2 = nn.Linear(hidden_dim, embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        # [B, T, C] -> [B, T, 4C] -> [B, T, C]: tokens never mix here (that is attention's job)
        return self.drop(self.fc2(self.act(self.fc1(x))))


class EncoderLayer(nn.Module):
    """Self-attention and feed-forward, each with a residual connection and a LayerNorm (B5).

    Submodules are registered in the order of ``nn.TransformerEncoderLayer``
    (attention, feed-forward, norm1, norm2) so ``check_module`` can pair them.
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1,
                 norm_first: bool = True, layer_norm_eps: float = 1e-5, act: str = "gelu"):
        super().__init__()
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout)
        self.ffn = FeedForward(embed_dim, ff_dim, dropout, act)
        self.ln1 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.ln2 = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.drop = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x, mask=None, return_weights=False):
        # x: [B, T, C]; mask: bool broadcastable to [B, nh, T, T] (True = may attend)
        if self.norm_first:  # pre-LN: the residual path x stays un-normalised
            a, w = self.attn(self.ln1(x), mask, return_weights=True)
            x = x + self.drop(a)
            x = x + self.ffn(self.ln2(x))
        else:  # post-LN (original transformer, BERT): normalise after each sum
            a, w = self.attn(x, mask, return_weights=True)
            x = self.ln1(x + self.drop(a))
            x = self.ln2(x + self.ffn(x))
        return (x, w) if return_weights else x


class Encoder(nn.Module):
    """A stack of ``L`` encoder layers; pre-LN stacks end with one more LayerNorm."""

    def __init__(self, num_layers: int, embed_dim: int, num_heads: int, ff_dim: int,
                 dropout: float = 0.1, norm_first: bool = True, layer_norm_eps: float = 1e-5,
                 act: str = "gelu"):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(embed_dim, num_heads, ff_dim, dropout, norm_first, layer_norm_eps, act)
            for _ in range(num_layers))
        # Pre-LN leaves the residual stream un-normalised: normalise it once at the end.
        self.ln_f = nn.LayerNorm(embed_dim, eps=layer_norm_eps) if norm_first else nn.Identity()

    def forward(self, x, attention_mask=None, return_weights=False):
        # x: [B, T, C]; attention_mask: [B, T] with 1 = token, 0 = padding
        mask = None if attention_mask is None else padding_to_attn_mask(attention_mask)  # [B, 1, 1, T]
        weights = []
        for layer in self.layers:
            x, w = layer(x, mask, return_weights=True)
            weights.append(w)  # [B, nh, T, T]
        x = self.ln_f(x)
        return (x, torch.stack(weights, dim=1)) if return_weights else x  # weights: [B, L, nh, T, T]


class Embeddings(nn.Module):
    """token + position + token type, then LayerNorm and dropout (as BERT does)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.hidden, padding_idx=cfg.pad_id)  # [V, C]
        self.pos = nn.Embedding(cfg.max_len, cfg.hidden)  # one learned vector per position
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden)
        self.ln = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, input_ids, token_type_ids=None):
        B, T = input_ids.shape
        if T > self.pos.num_embeddings:
            raise ValueError(f"sequence of {T} tokens is longer than max_len={self.pos.num_embeddings}; "
                             "truncate it in the tokenizer/collate_fn")
        positions = torch.arange(T, device=input_ids.device)  # [T], broadcast over B
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.tok(input_ids) + self.pos(positions) + self.token_type(token_type_ids)  # [B, T, C]
        return self.drop(self.ln(x))


class Bert(nn.Module):
    """A BERT encoder: embeddings + a post-LN stack. Returns hidden states [B, T, C]."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg.layers, cfg.hidden, cfg.heads, cfg.intermediate, cfg.dropout,
                               cfg.norm_first, cfg.layer_norm_eps, cfg.act)
        self.apply(_init_weights)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, return_weights=False):
        # input_ids: [B, T] long; attention_mask: [B, T] (1 = token, 0 = [PAD])
        x = self.embeddings(input_ids, token_type_ids)  # [B, T, C]
        return self.encoder(x, attention_mask, return_weights)  # [B, T, C] (+ [B, L, nh, T, T])


def _init_weights(module: nn.Module) -> None:
    # BERT's init: N(0, 0.02) for Linear/Embedding weights, zero biases, LayerNorm = identity.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class MLMHead(nn.Module):
    """Hidden state -> a score for every vocabulary token: dense, GELU, LayerNorm, decoder."""

    def __init__(self, cfg: BertConfig, embedding: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.hidden)
        self.act = _activation(cfg.act)
        self.ln = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.hidden, cfg.vocab_size)
        self.decoder.weight = embedding.weight  # tied with the token embedding: [V, C]
        nn.init.normal_(self.dense.weight, std=0.02)
        nn.init.zeros_(self.dense.bias)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, h):
        return self.decoder(self.ln(self.act(self.dense(h))))  # [..., C] -> [..., V]


class BertForMaskedLM(nn.Module):
    """BERT + the masked-language-model head (B7). ``forward`` returns logits [B, T, V].

    The decoder shares (ties) its weight with the token embedding: predicting a
    token reuses the vector that represents it. Training only needs scores at the
    chosen positions, so lesson 07 calls ``model.head(h[labels != -100])``
    instead of scoring all B*T positions against the whole vocabulary.
    """

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.bert = Bert(cfg)
        self.head = MLMHead(cfg, self.bert.embeddings.tok)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        h = self.bert(input_ids, attention_mask, token_type_ids)  # [B, T, C]
        return self.head(h)  # [B, T, V]


class BertForSequenceClassification(nn.Module):
    """BERT + a classifier on one vector per sequence (B7 fine-tuning).

    ``pooling="cls"`` uses the [CLS] token's final state (BERT's choice);
    ``"mean"`` averages the states of real tokens (what sentence embedders use).
    """

    def __init__(self, cfg: BertConfig, num_labels: int = 2, pooling: str = "cls"):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.bert = Bert(cfg)
        self.pooling = pooling
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.hidden, num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        h = self.bert(input_ids, attention_mask, token_type_ids)  # [B, T, C]
        if self.pooling == "cls":
            pooled = h[:, 0]  # [B, C]: the [CLS] position
        else:
            m = (torch.ones_like(input_ids) if attention_mask is None else attention_mask)
            m = m.unsqueeze(-1).to(h.dtype)  # [B, T, 1]
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)  # [B, C]
        return self.classifier(self.drop(pooled))  # [B, num_labels]
