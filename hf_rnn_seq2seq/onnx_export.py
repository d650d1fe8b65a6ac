"""Export the model to ONNX as an encoder graph and a one-step decoder graph (`onnx_runtime` translates with them).

    encoder.onnx       input_ids, attention_mask (batch, src_len)
                       -> encoder_hidden_states (batch, src_len, enc_out), the Decoder's initial state
                          (hidden [, cell] [, input_feed]) and, with attention, attention_keys
    decoder_step.onnx  input_ids (batch, 1): the previous token, encoder_hidden_states, attention_mask,
                       the state and attention_keys
                       -> h_dec (batch, hidden): the Decoder's output, the next state (next_hidden [, next_cell]
                          [, next_input_feed]), with attention attention_weights (batch, src_len)
    generator.onnx     h_dec, and k (1,): how many best continuations to return
                       -> logits (batch, |V|) and the k best continuations top_log_probs, top_tokens (batch, k)
                          that beam search ranks

The Generator is a graph of its own so that a lexical shortlist can replace it: a model with one also gets its
`shortlist.npz`, the Generator's weights (`generator.npz`) and `generator_shortlist.onnx`, a graph without weights
that multiplies only the rows the runner gathers for a batch (onnxruntime runs every node of a graph, whichever
outputs are asked for). Quantized to int8, those weights are int8 (one scale per row), multiplied in integers as
the quantized Generator would.

State tensors keep the model's layout: hidden/cell `(decoder_layers, batch, hidden)`, the rest batch-first.
The graphs come from the same modules `generate()` runs (traced with torch.onnx's TorchScript exporter), so
their logits match PyTorch's to float rounding.

With `quantize="int8"` the graphs' weight matrices are then stored in int8 and multiplied in integers, each step's
activations quantized on the fly (onnxruntime's dynamic quantization); `quantization.json` records the settings.
"""

import json
import logging
import os
import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn
from torch.onnx import symbolic_helper, symbolic_opset11
from transformers import PreTrainedModel

from .loading import load_model
from .modeling.decoder import RecurrentState
from .modeling.encoder import EncoderOutput
from .onnx_runtime import (
    DECODER_STEP_FILE,
    ENCODER_FILE,
    GENERATOR_FILE,
    GENERATOR_WEIGHTS_FILE,
    QUANTIZATION_FILE,
    SHORTLISTED_GENERATOR_FILE,
    require_onnxruntime,
    state_names,
)
from .tokenization import load_tokenizers, save_tokenizers

DEFAULT_OPSET = 17
# Sizes of the example inputs traced at export. Batch and length are dynamic axes of the graphs; their example
# values only need to differ from every model dimension (layers, directions), so that no size gets confused
# with a constant.
EXAMPLE_BATCH, EXAMPLE_SOURCE_LENGTH = 3, 7
# Weight types the graphs can be quantized to (`quantize=`), with onnxruntime's quantize_dynamic settings: int8
# weights, one scale per output column (bench/DESIGN.md, "int8 decoding", has the measurements behind the choice).
QUANTIZATIONS = {"int8": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False}}
INT8_MAX = 127  # symmetric int8 weights: -127..127


def source_names(config) -> list[str]:
    """What the decoder step reads of the source besides `encoder_hidden_states`: the attention keys, computed
    once per sentence by the encoder graph."""
    return ["attention_keys"] if config.attention is not None else []


def _state_from(tensors: dict[str, torch.Tensor]) -> RecurrentState:
    return RecurrentState(**{f.name: tensors.get(f.name) for f in fields(RecurrentState)})


class EncoderGraph(nn.Module):
    """Everything computed once per sentence: the Encoder and the Decoder's initial state (via the bridge)."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoder_outputs = self.model.get_encoder()(input_ids, attention_mask)
        state = self.model.model.decoder.init_state(encoder_outputs)
        names = state_names(self.model.config) + source_names(self.model.config)
        return (encoder_outputs.last_hidden_state, *(getattr(state, name) for name in names))


class DecoderStepGraph(nn.Module):
    """One Decoder step, through the model's own forward with an explicit recurrent state: h_dec, not logits."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor, attention_mask: torch.Tensor, *state
    ) -> tuple[torch.Tensor, ...]:
        config = self.model.config
        names = state_names(config) + source_names(config)
        output = self.model.model(
            encoder_outputs=EncoderOutput(last_hidden_state=encoder_hidden_states),
            attention_mask=attention_mask,
            decoder_input_ids=input_ids,
            cache=_state_from(dict(zip(names, state))),
            use_cache=True,
            output_attentions=True,
        )
        outputs = [output.last_hidden_state[:, -1]]  # (batch, hidden)
        outputs += [getattr(output.cache, name) for name in state_names(config)]
        if config.attention is not None:
            outputs.append(output.cross_attentions[0][:, 0, -1])  # (batch, heads=1, 1, src_len) -> (batch, src_len)
        return tuple(outputs)


class GeneratorGraph(nn.Module):
    """The Generator over the whole vocabulary: logits (batch, |V|) of h_dec (batch, hidden)."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.generator = model.generator

    def forward(self, h_dec: torch.Tensor) -> torch.Tensor:
        return self.generator(h_dec)


@symbolic_helper.parse_args("v", "b", "i", "b")
def _stable_argsort(g, values, stable: bool, dim: int, descending: bool):
    """`argsort(stable=True)` as ONNX TopK, which breaks ties by the lower index, as a stable sort does.

    The Encoder sorts each row's padding behind its tokens this way; torch's TorchScript exporter mistakes the
    `stable` overload for one with an `out` argument and refuses it.
    """
    size = g.op("Gather", g.op("Shape", values), g.op("Constant", value_t=torch.tensor([dim])))
    values = g.op("Cast", values, to_i=TensorProto.INT32)  # onnxruntime's TopK has no int8 kernel
    return g.op("TopK", values, size, axis_i=dim, largest_i=int(descending), sorted_i=1, outputs=2)[1]


def _argsort(g, values, *args):
    if len(args) == 3:  # (stable, dim, descending)
        return _stable_argsort(g, values, *args)
    return symbolic_opset11.argsort(g, values, *args)


# Config options the graphs and the onnxruntime translator do not implement: the pointer-generator's mixture and
# the coverage vector would need more graph inputs and outputs, and beam search in onnx_runtime would carry them.
NOT_EXPORTED = ("copy_attention", "coverage")


def check_exportable(config) -> None:
    """Refuse, in one line, a model whose decoder step the graphs cannot express."""
    options = [name for name in NOT_EXPORTED if getattr(config, name, False)]
    if options:
        raise ValueError(
            f"ONNX export does not support models with {' or '.join(options)}=True: translate them with PyTorch "
            "(hf-rnn-seq2seq translate)"
        )


def export_onnx(
    model: PreTrainedModel, output_dir: str | os.PathLike, opset: int = DEFAULT_OPSET, quantize: str | None = None
) -> list[Path]:
    """Write `encoder.onnx`, `decoder_step.onnx` and `generator.onnx` for `model` into `output_dir`, with the
    model's config and generation config (which the runner reads), and its shortlist if it has one; returns the
    paths of the graphs. `quantize` ("int8", a key of
    `QUANTIZATIONS`) quantizes them (`quantize_graphs`).

    The model is put in eval mode (dropout off), which is how it translates.
    """
    check_exportable(model.config)
    if quantize is not None:
        check_quantization(quantize)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    config = model.config
    model.eval()
    encoder, step, generator = EncoderGraph(model).eval(), DecoderStepGraph(model).eval(), GeneratorGraph(model)

    input_ids = torch.full((EXAMPLE_BATCH, EXAMPLE_SOURCE_LENGTH), config.eos_token_id)
    attention_mask = torch.ones_like(input_ids)
    with torch.no_grad():
        encoded = encoder(input_ids, attention_mask)
    names, source_side = state_names(config), source_names(config)
    encoder_outputs = ["encoder_hidden_states", *names, *source_side]
    step_inputs = ["input_ids", "encoder_hidden_states", "attention_mask", *names, *source_side]
    step_outputs = ["h_dec", *(f"next_{name}" for name in names)] + (["attention_weights"] if source_side else [])

    source_axes = {0: "batch", 1: "src_len"}
    axes = {"input_ids": source_axes, "attention_mask": source_axes, "encoder_hidden_states": source_axes}
    axes |= {"attention_keys": source_axes, "input_feed": {0: "batch"}, "next_input_feed": {0: "batch"}}
    axes |= {name: {1: "batch"} for name in ("hidden", "cell", "next_hidden", "next_cell")}
    axes |= {"h_dec": {0: "batch"}, "logits": {0: "batch"}, "attention_weights": source_axes}

    start = torch.full((EXAMPLE_BATCH, 1), config.decoder_start_token_id)
    with torch.no_grad():
        h_dec = step(start, encoded[0], attention_mask, *encoded[1:])[0]
    exports = [
        (encoder, (input_ids, attention_mask), ["input_ids", "attention_mask"], encoder_outputs, ENCODER_FILE),
        (step, (start, encoded[0], attention_mask, *encoded[1:]), step_inputs, step_outputs, DECODER_STEP_FILE),
        (generator, (h_dec,), ["h_dec"], ["logits"], GENERATOR_FILE),
    ]
    torch.onnx.register_custom_op_symbolic("aten::argsort", _argsort, opset)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated, and the tracer about Python-side checks
            # (vocabulary range, padding side) that it records as constants: both expected here.
            warnings.simplefilter("ignore")
            for module, args, input_names, output_names, file_name in exports:
                torch.onnx.export(
                    module,
                    args,
                    output_dir / file_name,
                    dynamo=False,
                    input_names=input_names,
                    output_names=output_names,
                    dynamic_axes={name: axes[name] for name in input_names + output_names},
                    opset_version=opset,
                )
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::argsort", opset)
    _add_top_k(output_dir / GENERATOR_FILE)
    model.config.save_pretrained(output_dir)
    model.generation_config.save_pretrained(output_dir)
    if model.shortlist is not None:
        model.shortlist.save(output_dir)
        weights = {"weight": model.generator.proj.weight, "bias": model.generator.proj.bias}
        weights = {name: value.detach().float().numpy() for name, value in weights.items()}
        if quantize is not None:  # the int8 rows replace the float32 ones: the runner reads one or the other
            weights |= _int8_rows(weights.pop("weight"))
        _write_shortlisted_generator(output_dir / SHORTLISTED_GENERATOR_FILE, opset, quantized=quantize is not None)
        np.savez(output_dir / GENERATOR_WEIGHTS_FILE, **weights)
    paths = [output_dir / file_name for *_, file_name in exports]
    if quantize is not None:
        quantize_graphs(paths, quantize)
    return paths


def check_quantization(quantize: str) -> None:
    """Refuse an unknown weight type, and a quantization without onnxruntime (one line naming the extra)."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    require_onnxruntime(f"quantizing to {quantize}")


class _DropPreprocessingAdvice(logging.Filter):
    """quantize_dynamic advises (on the root logger, each call) running its shape-inference pre-processing, which
    serves convolutional graphs; ours quantize without it (their MatMuls have known weight shapes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_graphs(paths: list[Path], quantize: str = "int8") -> None:
    """Quantize the graphs at `paths` in place with onnxruntime's dynamic quantization: the weights of their
    MatMuls (the Generator, the Decoder's cell and attention, the bridge) and LSTM ops become int8 with float
    scales, and each call quantizes its activations to uint8 from their own range, so no calibration data is
    needed; embeddings are stored in int8 and the looked-up rows turned back to float. What onnxruntime cannot
    quantize (the encoder's GRU or plain RNN op) stays float32: the encoder runs once per sentence, the decoder
    step, nearly all int8, once per token. Writes the settings to `quantization.json` beside the graphs."""
    check_quantization(quantize)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings = QUANTIZATIONS[quantize]
    options = settings | {"weight_type": QuantType[settings["weight_type"]]}
    advice = _DropPreprocessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        for path in paths:
            quantize_dynamic(path, path, **options)
    finally:
        logging.getLogger().removeFilter(advice)
    record = {"dtype": quantize, "engine": "onnxruntime.quantization.quantize_dynamic", **settings}
    (paths[0].parent / QUANTIZATION_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _int8_rows(weight: np.ndarray) -> dict[str, np.ndarray]:
    """`weight` (|V|, hidden) in int8 with one scale per row (symmetric, as quantize_dynamic's per-channel int8):
    `weight_int8` transposed to (hidden, |V|), whose columns the runner gathers, and `scale` (|V|,)."""
    scale = np.abs(weight).max(axis=1) / INT8_MAX
    scale[scale == 0] = 1.0  # an all-zero row: any scale gives zeros
    quantized = np.clip(np.rint(weight / scale[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return {"weight_int8": np.ascontiguousarray(quantized.T), "scale": scale.astype(np.float32)}


def _write_shortlisted_generator(path: Path, opset: int, quantized: bool) -> None:
    """The Generator over one batch's shortlisted tokens, their weights given as inputs: h_dec (batch, hidden) times
    `weight` (shortlisted, hidden) float32, plus `bias` (shortlisted,); or, `quantized`, h_dec quantized to uint8 on
    the fly times `weight` (hidden, shortlisted) int8 in integers, rescaled by `scale` (shortlisted,) and the
    activations' scale, plus `bias`. Then log-softmax and the `k` best (`top_log_probs`, `top_positions` into the
    shortlisted tokens, ties to the lower position)."""
    shortlisted = ["shortlisted"]
    h_dec = helper.make_tensor_value_info("h_dec", TensorProto.FLOAT, ["batch", "hidden"])
    bias = helper.make_tensor_value_info("bias", TensorProto.FLOAT, shortlisted)
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [1])
    if quantized:
        weight = helper.make_tensor_value_info("weight", TensorProto.INT8, ["hidden", *shortlisted])
        inputs = [h_dec, weight, helper.make_tensor_value_info("scale", TensorProto.FLOAT, shortlisted), bias, k]
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["h_dec"], ["h_quantized", "h_scale", "h_zero_point"]),
            helper.make_node("MatMulInteger", ["h_quantized", "weight", "h_zero_point"], ["products"]),
            helper.make_node("Cast", ["products"], ["products_float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["h_scale", "scale"], ["scales"]),
            helper.make_node("Mul", ["products_float", "scales"], ["unbiased"]),
            helper.make_node("Add", ["unbiased", "bias"], ["logits"]),
        ]
    else:
        weight = helper.make_tensor_value_info("weight", TensorProto.FLOAT, [*shortlisted, "hidden"])
        inputs = [h_dec, weight, bias, k]
        nodes = [helper.make_node("Gemm", ["h_dec", "weight", "bias"], ["logits"], transB=1)]
    nodes += [
        helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
        helper.make_node("TopK", ["log_probs", "k"], ["top_log_probs", "top_positions"], axis=-1, largest=1, sorted=1),
    ]
    outputs = [
        helper.make_tensor_value_info("top_log_probs", TensorProto.FLOAT, ["batch", "k"]),
        helper.make_tensor_value_info("top_positions", TensorProto.INT64, ["batch", "k"]),
    ]
    graph = helper.make_graph(nodes, "shortlisted_generator", inputs, outputs)
    graph_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, path)


def _add_top_k(generator_path: Path) -> None:
    """Append log-softmax + TopK to the Generator: `top_log_probs`, `top_tokens` (batch, k) for an input `k`.

    Beam search needs only each beam's best 2 * num_beams continuations (the best of a sentence are among
    them), and onnxruntime picks those several times faster than numpy sorts the whole vocabulary.
    """
    graph_model = onnx.load(generator_path)
    graph = graph_model.graph
    graph.input.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
    graph.node.extend(
        [
            helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
            helper.make_node("TopK", ["log_probs", "k"], ["top_log_probs", "top_tokens"], axis=-1, largest=1, sorted=1),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info("top_log_probs", TensorProto.FLOAT, ["batch", "k"]),
            helper.make_tensor_value_info("top_tokens", TensorProto.INT64, ["batch", "k"]),
        ]
    )
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, generator_path)


def export_model_dir(
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
) -> list[Path]:
    """Export a saved model directory: the two graphs with the config and generation config, plus the
    tokenizer(s) that `OnnxTranslator(output_dir).translate` needs for text; `quantize="int8"` quantizes the
    graphs (`quantize_graphs`)."""
    if quantize is not None:
        check_quantization(quantize)  # before the export's seconds, not after
    model = load_model(model_dir)
    source_tokenizer, target_tokenizer = load_tokenizers(model_dir)
    paths = export_onnx(model, output_dir, opset, quantize)
    save_tokenizers(source_tokenizer, target_tokenizer, output_dir)
    return paths


__all__ = ["DEFAULT_OPSET", "QUANTIZATIONS", "check_quantization", "export_model_dir", "export_onnx", "quantize_graphs"]
