"""Course metadata: the notebooks in order and the concept ids each one teaches.

The ids follow the course syllabus; the one-line summaries are ours. Every id
of the syllabus is recorded here; an id is *taught* once its lesson cell has
landed and carries the tag ``concept:<id>``, and *planned* until then (listed in
:data:`PLANNED`). A test checks that every taught id is tagged on a cell of its
notebook, and that no planned id is tagged yet (an empty cell is never tagged).
"""

NOTEBOOKS = {
    "00_setup.ipynb": "Setup and orientation",
    "01_tensors_and_strides.ipynb": "Tensors and strides",
    "02_autograd_graphs.ipynb": "Autograd graphs",
    "03_nn_module.ipynb": "nn.Module",
    "04_data_loading.ipynb": "Data loading",
    "05_cnn_cifar10.ipynb": "A CNN on CIFAR-10",
    "06_text_pipeline.ipynb": "The text pipeline",
    "07_transformer_bert.ipynb": "Transformer and BERT",
    "08_compile_export.ipynb": "Compile, export and deploy",
    "09_distributed.ipynb": "Distributed training",
    "10_debugging_clinic.ipynb": "The debugging clinic",
}

# Lessons on the syllabus that have not landed yet; a lesson moves to NOTEBOOKS
# when its notebook is committed (the notebook tests loop over NOTEBOOKS).
PLANNED_NOTEBOOKS = {
}

_CONCEPTS_BY_NOTEBOOK = {
    "00_setup.ipynb": {
        "S1": "check the environment: versions, device, widgets, graphviz, data cache",
        "S2": "how lessons, self-checks, assignments and fast mode fit together",
        "S3": "PyTorch's parts and ecosystem, the C++ core and kernel dispatch, why not lists",
    },
    "01_tensors_and_strides.ipynb": {
        "T1": "the attributes a tensor carries",
        "T2": "a tensor is a view (sizes, strides, offset) over flat storage",
        "T3": "offset = storage_offset + sum(index_k * stride_k)",
        "T4": "reading a shape from nested brackets",
        "T5": "0-dim tensors and .item()",
        "T6": "reductions traced through storage",
        "T7": "which operations cost time or memory, answered from the layout",
        "T8": "views versus copies, shared storage",
        "T9": "creating tensors and the everyday ops, broadcasting",
        "T10": "the NumPy bridge shares memory",
        "T11": "in-place ops and the autograd version counter",
        "T12": "devices and transfers",
        "T13": "other layouts: sparse COO",
        "T14": "constructor pitfalls: torch.Tensor vs torch.tensor, pair indexing, row/column broadcasting",
        "T15": "as_strided sliding windows and a loop-free 1-D convolution",
    },
    "02_autograd_graphs.ipynb": {
        "A1": "leaves, requires_grad and grad_fn",
        "A2": "the sigmoid worked example, node by node",
        "A3": "the graph as data: next_functions, saved tensors, AccumulateGrad",
        "A4": "several paths: gradients add up",
        "A5": "symbolic, numerical and automatic differentiation; forward vs reverse; dynamic graphs",
        "A6": "a tiny tape-based reverse-mode engine",
        "A7": "custom autograd.Function checked with gradcheck",
        "A8": "gradients accumulate; retain_graph; the graph is freed",
        "A9": "non-scalar outputs need a gradient argument",
        "A10": "no_grad, inference_mode, detach and the memory they save",
        "A11": "freezing parameters to train only a head",
        "A12": "gradient tools: tensor hooks, un-broadcasting, create_graph, detect_anomaly",
        "A13": "backward run by hand over PyTorch's own graph",
        "A14": "the single sigmoid neuron's gradient derived and matched",
    },
    "03_nn_module.ipynb": {
        "M1": "the raw training loop in five parts",
        "M2": "a forward pass by hand, number by number",
        "M3": "nn.Parameter and a Linear layer from scratch",
        "M4": "what Module registers and why order matters",
        "M5": "Sequential, ModuleList, ModuleDict; functional vs layers",
        "M6": "forward and backward hooks for debugging",
        "M7": "losses and why CrossEntropy takes raw logits",
        "M8": "optimizers by hand and learning-rate schedules",
        "M9": "activations and gradient flow",
        "M10": "sine-wave regression end to end",
        "M11": "the 784-100-50-20-1 MLP, its parameter count and debugging",
        "M12": "reproducibility: seeds and deterministic flags",
        "M13": "what Module.__init__ and __call__ do (hooks run only through model(x))",
        "M14": "Dropout and BatchNorm in train() vs eval(); running statistics in buffers",
        "M15": "initialisation: default Linear init, Xavier, Kaiming, measured layer by layer",
        "M16": "the training sanity recipe: overfit one batch, clipping, AdamW, save and resume",
    },
    "04_data_loading.ipynb": {
        "D1": "the naive loop and its drawbacks",
        "D2": "map-style datasets, concatenation and splits",
        "D3": "iterable datasets and sharding across workers",
        "D4": "DataLoader options and samplers",
        "D5": "collate_fn and padding",
        "D6": "worker processes, prefetching, pinned memory, measured",
        "D7": "transforms applied lazily per sample",
        "D8": "where torch data pipelines went",
        "D9": "worker seeds, generators, copy-on-read growth, fork vs spawn",
    },
    "05_cnn_cifar10.ipynb": {
        "C1": "images as tensors and why recognition is hard",
        "C2": "convolution arithmetic, weight sharing, pooling",
        "C3": "convolution as a strided view plus matmul",
        "C4": "CIFAR-10: loading, normalisation, augmentation",
        "C5": "the model ladder, training and evaluation",
        "C6": "filters, feature maps and saliency",
        "C7": "fast training: channels_last, mixed precision, compile",
        "C8": "transfer learning with a frozen ResNet-18",
        "C9": "a validation split, BatchNorm, augmentation's effect, receptive fields, input resolution",
    },
    "06_text_pipeline.ipynb": {
        "X1": "corpus, tokens, types, vocabulary, n-grams",
        "X2": "tokenize, numericalize, embed; word and subword tokenizers",
        "X3": "vocabularies with min_freq, specials and a default index",
        "X4": "one-hot and bag-of-words, and why they do not scale",
        "X5": "the embedding layer as a trainable lookup table",
        "X6": "a sentiment classifier on real movie reviews",
        "X7": "an RNN cell from its equations, unrolled; the GRU's gates",
        "X8": "byte-pair encoding from scratch, matched against HF tokenizers",
    },
    "07_transformer_bert.ipynb": {
        "B1": "scaled dot-product attention",
        "B2": "one attention head",
        "B3": "multi-head attention, split and fused",
        "B4": "the position-wise feed-forward block",
        "B5": "the encoder layer, positions and masks",
        "B6": "BERT's masked-language-model data",
        "B7": "pre-training a mini-BERT and fine-tuning it",
        "B8": "loading a real pretrained model into our encoder",
        "B9": "a tiny decoder-only model: causal mask, sampling, the KV cache",
        "B10": "the learner's own encoder loads the real pretrained weights",
    },
    "08_compile_export.ipynb": {
        "P1": "per-op overhead against the arithmetic; eager vs captured graphs",
        "P2": "TorchScript's status; tracing freezes a data-dependent branch",
        "P3": "torch.export: the ATen graph, shape guards, dynamic shapes",
        "P4": "torch.compile: Dynamo graphs, graph breaks, recompiles, Inductor code",
        "P5": "ONNX export run with onnxruntime and matched",
        "P6": "int8 quantization by hand, then dynamic quantization measured",
        "P7": "saving models safely: state_dict, weights_only, safetensors",
    },
    "09_distributed.ipynb": {
        "R1": "shared-memory tensors across processes; Hogwild",
        "R2": "process groups, gloo, torchrun and mp.spawn; the collectives",
        "R3": "data parallel by hand, matched against one process",
        "R4": "DistributedDataParallel: buckets, overlap, DistributedSampler, no_sync",
        "R5": "FSDP, tensor and pipeline parallel; the ring all-reduce cost model",
    },
    "10_debugging_clinic.ipynb": {
        "G1": "a method for silent bugs and the first checks of a training recipe",
        "G2": "shape bugs: silent broadcasting, view vs permute, the wrong dim",
        "G3": "graph bugs: a cut graph, frozen parameters, a forgotten optimizer group",
        "G4": "numerical bugs: softmax before CrossEntropy, log 0, exploding learning rates",
        "G5": "mode and state bugs: train() at evaluation, missing zero_grad, schedulers, checkpoints",
        "G6": "data bugs: shuffled labels, leaked statistics, identical augmentation in workers",
        "G7": "the mystery run: several bugs at once, a triage log",
    },
}

CONCEPTS = {cid: (notebook, summary)
            for notebook, ids in _CONCEPTS_BY_NOTEBOOK.items()
            for cid, summary in ids.items()}

# Ids on the syllabus whose lesson cell has not landed yet. Remove an id from
# here in the same commit that tags its cell.
PLANNED: frozenset[str] = frozenset()
TAUGHT = {cid: where for cid, where in CONCEPTS.items() if cid not in PLANNED}


def concepts_for(notebook: str, *, planned: bool = True) -> dict[str, str]:
    """The concept ids (and our summaries) of a notebook; ``planned=False`` keeps the taught ones."""
    return {cid: summary for cid, summary in _CONCEPTS_BY_NOTEBOOK.get(notebook, {}).items()
            if planned or cid not in PLANNED}
