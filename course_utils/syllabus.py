"""Course metadata: the notebooks in order and the concept ids each one teaches.

The ids follow the course syllabus; the one-line summaries are ours. A test
checks that every id is tagged ``concept:<id>`` on a cell of its notebook.
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
    },
    "06_text_pipeline.ipynb": {
        "X1": "corpus, tokens, types, vocabulary, n-grams",
        "X2": "tokenize, numericalize, embed; word and subword tokenizers",
        "X3": "vocabularies with min_freq, specials and a default index",
        "X4": "one-hot and bag-of-words, and why they do not scale",
        "X5": "the embedding layer as a trainable lookup table",
        "X6": "a sentiment classifier on real movie reviews",
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
    },
}

CONCEPTS = {cid: (notebook, summary)
            for notebook, ids in _CONCEPTS_BY_NOTEBOOK.items()
            for cid, summary in ids.items()}


def concepts_for(notebook: str) -> dict[str, str]:
    """The concept ids (and our summaries) a notebook must teach."""
    return dict(_CONCEPTS_BY_NOTEBOOK.get(notebook, {}))
