"""Attention from scratch (introduced in lesson 07, sections B1-B3).

Three ways to write the same computation, each one checked in lesson 07 against
PyTorch (``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``):

- :func:`scaled_dot_product_attention`: softmax(Q K^T / sqrt(hs)) V.
- :class:`AttentionHead` and :class:`MultiHeadAttentionList`: one head with its
  own q, k, v projections; ``nh`` of them in an ``nn.ModuleList``, outputs
  concatenated and mixed by an output Linear.
- :class:`MultiHeadAttention`: the fused version: one Linear makes q, k and v
  for every head at once, and a reshape splits the channels into heads.

Shapes: ``B`` batch, ``T`` sequence length, ``C`` embedding size,
``nh`` number of heads, ``hs`` head size (``C = nh * hs``).

Masks follow ``F.scaled_dot_product_attention``: a **boolean** mask where
``True`` means "this query may look at this key". A padding mask of shape
``[B, T]`` (True = real token, as BERT's ``attention_mask``) is turned into
``[B, 1, 1, T]`` by :func:`padding_to_attn_mask`. (``nn.MultiheadAttention``'s
``key_padding_mask`` uses the opposite convention: True = ignore.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def padding_to_attn_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """BERT-style ``attention_mask`` [B, T] (1/True = token, 0 = [PAD]) -> bool [B, 1, 1, T].

    The two singleton dims broadcast over heads (nh) and over queries (T):
    every query row sees the same allowed keys.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be [B, T] (1 = token, 0 = padding), "
                         f"got shape {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]  # [B, T] -> [B, 1, 1, T]


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                                 training: bool = False):
    """softmax(q @ k^T / sqrt(hs)) @ v, returning ``(out, weights)``.

    q: [..., Tq, hs], k: [..., Tk, hs], v: [..., Tk, hv]  (``...`` = B or B, nh)
    mask: bool, broadcastable to [..., Tq, Tk], True = may attend.
    Returns out [..., Tq, hv] and weights [..., Tq, Tk] (each row sums to 1).
    """
    hs = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # [..., Tq, hs] @ [..., hs, Tk] -> [..., Tq, Tk]
    if mask is not None:
        # -inf before the softmax gives exactly 0 weight after it.
        scores = scores.masked_fill(~mask.bool(), float("-inf"))
    weights = scores.softmax(dim=-1)  # softmax over keys: each query's row sums to 1
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # [..., Tq, Tk] @ [..., Tk, hv] -> [..., Tq, hv]


class AttentionHead(nn.Module):
    """One head: its own q, k, v projections C -> hs (lesson 07, B2: 512 -> 64)."""

    def __init__(self, embed_dim: int, head_size: int, bias: bool = True):
        super().__init__()
        self.query = nn.Linear(embed_dim, head_size, bias=bias)
        self.key = nn.Linear(embed_dim, head_size, bias=bias)
        self.value = nn.Linear(embed_dim, head_size, bias=bias)

    def forward(self, x, mask=None, return_weights=False):
        # x: [B, T, C]; mask: bool broadcastable to [B, T, T]
        q, k, v = self.query(x), self.key(x), self.value(x)  # each [B, T, hs]
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # [B, T, hs], [B, T, T]
        return (out, weights) if return_weights else out


class MultiHeadAttentionList(nn.Module):
    """``nh`` separate heads in an ``nn.ModuleList``, concatenated, then an output Linear.

    Clear but slow: ``nh`` small matmuls instead of one big one. See
    :class:`MultiHeadAttention` for the fused version.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        head_size = embed_dim // num_heads
        self.heads = nn.ModuleList(AttentionHead(embed_dim, head_size, bias) for _ in range(num_heads))
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, x, mask=None):
        # x: [B, T, C]; mask: bool [B, 1, T] (padding) or [T, T]; each head: [B, T, hs]
        if mask is not None and mask.dim() == 4:
            mask = mask[:, 0]  # [B, 1, 1, T] -> [B, 1, T]: no head dim here
        out = torch.cat([head(x, mask) for head in self.heads], dim=-1)  # nh x [B, T, hs] -> [B, T, C]
        return self.proj(out)


class MultiHeadAttention(nn.Module):
    """Fused multi-head self-attention: one Linear for q, k, v of all heads.

    Parameters are registered in the same order and shapes as
    ``nn.MultiheadAttention`` (``in_proj_weight`` [3C, C] ~ ``qkv.weight``,
    ``out_proj`` ~ ``proj``), so weights can be copied across one to one.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_size = embed_dim // num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)  # rows: [q of all heads | k | v]
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, x, mask=None, return_weights=False):
        # x: [B, T, C]; mask: bool broadcastable to [B, nh, T, T], e.g. [B, 1, 1, T]
        B, T, C = x.shape
        nh, hs = self.num_heads, self.head_size
        q, k, v = self.qkv(x).split(C, dim=-1)  # [B, T, 3C] -> 3 x [B, T, C]
        q = q.view(B, T, nh, hs).transpose(1, 2)  # [B, T, C] -> [B, T, nh, hs] -> [B, nh, T, hs]
        k = k.view(B, T, nh, hs).transpose(1, 2)  # [B, nh, T, hs]
        v = v.view(B, T, nh, hs).transpose(1, 2)  # [B, nh, T, hs]
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout, self.training)
        # out: [B, nh, T, hs] -> [B, T, nh, hs] -> [B, T, C] (transpose made it non-contiguous)
        out = out.transpose(1, 2).contiguous().view(B, T, C)
        out = self.proj(out)
        return (out, weights) if return_weights else out  # weights: [B, nh, T, T]
