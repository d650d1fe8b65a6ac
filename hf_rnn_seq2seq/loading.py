"""Load a saved model directory (a folder or Hub id) for use: the model, or the model with its tokenizer(s) as a
translation pipeline.

Weights are read from safetensors only: unpickling a `pytorch_model.bin` can run any code in it.

`dtype="int8"` translates with onnxruntime instead, over int8 graphs of the model that are exported and quantized
on first use and kept in the model directory (`int8_graphs`).
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, PreTrainedModel
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

from .modeling.generator import SHORTLIST_FILE
from .modeling.pipeline import TEXT2TEXT_TASK, RNNText2TextPipeline, RNNTranslationPipeline
from .onnx_runtime import QUANTIZATION_FILE, OnnxTranslator, require_onnxruntime
from .tokenization import check_vocabularies, load_tokenizers

SAFE_WEIGHT_FILES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
PICKLED_WEIGHT_FILES = (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
# Weight types a model can be loaded in for translating. bfloat16 halves the memory and, on CPUs with AVX512-BF16
# or AMX and on recent GPUs, runs the matrix products about twice as fast; generate() scores in float32 either way.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Weight types translated by onnxruntime over quantized graphs (onnx_export.QUANTIZATIONS), not by PyTorch: int8
# matrix products run on every x86-64 CPU with AVX2 and on ARM, where bfloat16 ones need AVX512-BF16 or AMX.
QUANTIZED_DTYPES = ("int8",)
# Where `int8_graphs` keeps a model's int8 graphs, inside the model directory.
INT8_DIR = "onnx-int8"
# The files of a model directory the int8 graphs are made from: a change to any of them makes them again.
# The graphs' layout (which files, inputs and outputs onnx_export writes), recorded with graphs made on first use:
# graphs an earlier version of this package made are made again. 2: the Generator a graph of its own.
GRAPH_LAYOUT = 2
SOURCE_FILES = ("config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json", SHORTLIST_FILE)
HASH_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


def check_model_dir(model_dir: str | os.PathLike) -> None:
    """Refuse a local folder that cannot hold a model, naming what is missing (a Hub id is left to transformers)."""
    path = Path(model_dir)
    if not path.exists():
        if path.is_absolute() or str(model_dir).startswith("."):
            raise OSError(f"{model_dir}: no such model directory")
        return  # maybe a Hub repo id
    if not path.is_dir():
        raise OSError(f"{model_dir}: expected a model directory, got a file")
    if not (path / "config.json").is_file():
        raise OSError(f"{model_dir}: no config.json here; give the directory that training or save_pretrained wrote")
    if any((path / name).is_file() for name in SAFE_WEIGHT_FILES):
        return
    pickled = [name for name in PICKLED_WEIGHT_FILES if (path / name).is_file()]
    if pickled:
        raise OSError(
            f"{model_dir}: the weights are pickled ({pickled[0]}), and loading a pickle can run any code in it; "
            f"this package reads {SAFE_WEIGHTS_NAME} only. If you trust the file, convert it once: "
            "model = AutoModelForSeq2SeqLM.from_pretrained(dir, use_safetensors=False); model.save_pretrained(dir)"
        )
    raise OSError(f"{model_dir}: no model weights here (expected {SAFE_WEIGHTS_NAME}); was training finished?")


def load_model(model_dir: str | os.PathLike, dtype: str = "float32") -> PreTrainedModel:
    """The model saved in `model_dir` (a folder or Hub id), in eval mode, its weights read from safetensors and
    cast to `dtype` (a name in `DTYPES`)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    check_model_dir(model_dir)
    return AutoModelForSeq2SeqLM.from_pretrained(model_dir, use_safetensors=True, dtype=DTYPES[dtype]).eval()


def load_translator(
    model_dir: str | os.PathLike, device: str | int | None = None, dtype: str = "float32"
) -> RNNTranslationPipeline | OnnxTranslator:
    """The model and tokenizer(s) saved in `model_dir`, as a pipeline on `device` (None: the first GPU if there is
    one, else the CPU), its weights in `dtype`: the text2text pipeline where the model was saved through it (a
    summarizer, a chatbot), else the translation pipeline. With `dtype="int8"`, an `OnnxTranslator` over the
    model's int8 graphs (`int8_graphs`; CPU only), called as the pipeline is: `translator(texts, num_beams=5)`."""
    if dtype not in (*DTYPES, *QUANTIZED_DTYPES):
        raise ValueError(f"dtype must be one of {', '.join((*DTYPES, *QUANTIZED_DTYPES))}, got {dtype!r}")
    if dtype in QUANTIZED_DTYPES:
        if device not in (None, "cpu"):
            raise ValueError(f"{dtype} translates on the CPU (onnxruntime), not on {device}")
        # As many threads as PyTorch would use (OMP_NUM_THREADS, torch.set_num_threads), as a user who set them
        # expects: onnxruntime's own default takes every core.
        return OnnxTranslator(int8_graphs(model_dir), num_threads=torch.get_num_threads())
    model = load_model(model_dir, dtype)
    source_tokenizer, target_tokenizer = load_tokenizers(model_dir)
    check_vocabularies(
        model.config,
        source_tokenizer,
        target_tokenizer,
        f"{model_dir} holds a tokenizer from another model: save "
        "the tokenizer the model was trained with beside its weights",
    )
    text2text = TEXT2TEXT_TASK in (getattr(model.config, "custom_pipelines", None) or {})
    pipeline_class = RNNText2TextPipeline if text2text else RNNTranslationPipeline
    return pipeline_class(model=model, tokenizer=source_tokenizer, target_tokenizer=target_tokenizer, device=device)


def int8_graphs(model_dir: str | os.PathLike) -> Path:
    """The directory of int8 graphs for the model in `model_dir`: `model_dir/onnx-int8`, exported and quantized
    (`onnx_export.export_model_dir(..., quantize="int8")`, seconds to a minute) when missing or made from other
    weights, config, generation config or shortlist than the directory's own, or by an earlier layout of the graphs
    (GRAPH_LAYOUT). `model_dir` may also be a directory that
    `hf-rnn-seq2seq export --quantize int8` wrote: its graphs are used as they are."""
    path = Path(model_dir)
    if _quantization(path) is not None:
        return path  # an exported int8 directory
    if not path.is_dir():
        check_model_dir(model_dir)  # names a missing local folder
        raise OSError(
            f"{model_dir}: int8 translation needs a local model directory, where its int8 graphs are kept; "
            f"download it first: hf download {model_dir} --local-dir DIR"
        )
    check_model_dir(model_dir)
    require_onnxruntime("int8 translation")
    graphs = path / INT8_DIR
    fingerprint = _fingerprint(path)
    record = _quantization(graphs)
    if record is not None and record.get("source") == fingerprint and record.get("layout") == GRAPH_LAYOUT:
        return graphs
    from .onnx_export import export_model_dir  # imports onnx and torch.onnx: only when there is work for them

    logger.warning(f"{model_dir}: quantizing the model to int8 into {graphs} (once)")
    try:
        # Written beside and renamed into place: a run stopped half-way never leaves graphs that look complete.
        partial = Path(tempfile.mkdtemp(prefix=f".{INT8_DIR}-", dir=path))
    except PermissionError as err:
        raise OSError(
            f"{model_dir}: cannot write the int8 graphs here ({err.strerror}); write them elsewhere with "
            f"'hf-rnn-seq2seq export {model_dir} DIR --quantize int8' and translate with DIR"
        ) from None
    try:
        export_model_dir(path, partial, quantize="int8")
        record_path = partial / QUANTIZATION_FILE
        record = json.loads(record_path.read_text(encoding="utf-8")) | {"source": fingerprint, "layout": GRAPH_LAYOUT}
        record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if graphs.exists():
            shutil.rmtree(graphs)
        os.replace(partial, graphs)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return graphs


def _quantization(directory: Path) -> dict | None:
    """What `quantization.json` in `directory` records (weight type, settings, source), or None if it has none."""
    record = directory / QUANTIZATION_FILE
    return json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None


def _fingerprint(model_dir: Path) -> str:
    """SHA-256 over the names and contents of the model directory's `SOURCE_FILES`."""
    digest = hashlib.sha256()
    for path in sorted({path for pattern in SOURCE_FILES for path in model_dir.glob(pattern)}):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


__all__ = ["DTYPES", "INT8_DIR", "QUANTIZED_DTYPES", "check_model_dir", "int8_graphs", "load_model", "load_translator"]
