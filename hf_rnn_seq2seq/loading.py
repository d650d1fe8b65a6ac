"""Load a saved model directory (a folder or Hub id) for use: the model, or the model with its tokenizer(s) as a
translation pipeline.

Weights are read from safetensors only: unpickling a `pytorch_model.bin` can run any code in it.

`engine="onnxruntime"` translates with onnxruntime instead, over ONNX graphs of the model that are exported (and
with `dtype="int8"` quantized) on first use and kept in the model directory (`onnx_graphs`); int8 needs it.
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
from .onnx_runtime import ENCODER_FILE, QUANTIZATION_FILE, OnnxTranslator, require_onnxruntime
from .tokenization import check_vocabularies, load_tokenizers

SAFE_WEIGHT_FILES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
PICKLED_WEIGHT_FILES = (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
# Weight types a model can be loaded in for translating. bfloat16 halves the memory and, on CPUs with AVX512-BF16
# or AMX and on recent GPUs, runs the matrix products about twice as fast; generate() scores in float32 either way.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Weight types translated by onnxruntime over quantized graphs (onnx_export.QUANTIZATIONS), not by PyTorch: int8
# matrix products run on every x86-64 CPU with AVX2 and on ARM, where bfloat16 ones need AVX512-BF16 or AMX.
QUANTIZED_DTYPES = ("int8",)
# What runs the search: PyTorch (the model's generate()), or onnxruntime over the model's exported graphs
# (onnx_runtime.OnnxTranslator), whose decoder step costs less per call on a CPU; float32 graphs or int8 ones.
ENGINES = ("pytorch", "onnxruntime")
ONNX_DTYPES = ("float32", *QUANTIZED_DTYPES)
# Where `onnx_graphs` keeps a model's graphs of each weight type, inside the model directory.
ONNX_DIRS = {"float32": "onnx-float32", "int8": "onnx-int8"}
# Beside graphs made on first use: the model files they were made from and the layout they were made in.
MADE_FROM_FILE = "made_from.json"
# The graphs' layout (which files, inputs and outputs onnx_export writes), recorded with graphs made on first use:
# graphs an earlier version of this package made are made again. 2: the Generator a graph of its own; 3: float32
# graphs of a model with a shortlist get a shortlisted Generator graph too.
GRAPH_LAYOUT = 3
# The files of a model directory the graphs are made from: a change to any of them makes them again.
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
    model_dir: str | os.PathLike,
    device: str | int | None = None,
    dtype: str = "float32",
    engine: str | None = None,
    inter_threads: int = 1,
) -> RNNTranslationPipeline | OnnxTranslator:
    """The model and tokenizer(s) saved in `model_dir`, as a pipeline on `device` (None: the first GPU if there is
    one, else the CPU), its weights in `dtype`: the text2text pipeline where the model was saved through it (a
    summarizer, a chatbot), else the translation pipeline. With `engine="onnxruntime"` (the default for
    `dtype="int8"`), an `OnnxTranslator` over the model's float32 or int8 graphs (`onnx_graphs`; CPU only), called
    as the pipeline is: `translator(texts, num_beams=5)`; it translates `inter_threads` batches at once
    (`OnnxTranslator`)."""
    engine = check_engine(engine, dtype, inter_threads)
    if engine == "onnxruntime":
        if device not in (None, "cpu"):
            raise ValueError(f"onnxruntime translates on the CPU here, not on {device}: leave the device unset")
        # As many threads as PyTorch would use (OMP_NUM_THREADS, torch.set_num_threads), as a user who set them
        # expects: onnxruntime's own default takes every core.
        return OnnxTranslator(onnx_graphs(model_dir, dtype), torch.get_num_threads(), inter_threads)
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


def check_engine(engine: str | None, dtype: str, inter_threads: int = 1) -> str:
    """The engine that translates in `dtype` when asked for `engine` (None: onnxruntime for int8, else PyTorch);
    refuses a pair the engine cannot run, and `inter_threads` batches at once outside onnxruntime, saying what to
    ask for instead."""
    if dtype not in (*DTYPES, *QUANTIZED_DTYPES):
        raise ValueError(f"dtype must be one of {', '.join((*DTYPES, *QUANTIZED_DTYPES))}, got {dtype!r}")
    if engine is None:
        engine = "onnxruntime" if dtype in QUANTIZED_DTYPES else "pytorch"
    elif engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "pytorch" and dtype in QUANTIZED_DTYPES:
        raise ValueError(f"{dtype} translates with onnxruntime, not PyTorch: use engine onnxruntime")
    if engine == "onnxruntime" and dtype not in ONNX_DTYPES:
        raise ValueError(f"onnxruntime translates {' or '.join(ONNX_DTYPES)} graphs, not {dtype}")
    if inter_threads != 1 and engine != "onnxruntime":
        raise ValueError(
            "inter_threads (batches translated at once) needs engine onnxruntime: PyTorch's threads are shared by "
            "the whole process"
        )
    return engine


def onnx_graphs(model_dir: str | os.PathLike, dtype: str = "float32") -> Path:
    """The directory of `dtype` graphs (float32 or int8) for the model in `model_dir`: `model_dir/onnx-float32`
    or `model_dir/onnx-int8`, exported (`onnx_export.export_model_dir`, and quantized for int8: seconds to a
    minute) when missing or made from other weights, config, generation config or shortlist than the directory's
    own, or by an earlier layout of the graphs (GRAPH_LAYOUT). `model_dir` may also be a directory that
    `hf-rnn-seq2seq export` wrote: its graphs are used as they are."""
    check_engine("onnxruntime", dtype)
    path = Path(model_dir)
    if (path / ENCODER_FILE).is_file():  # an exported directory
        exported = (_read_record(path / QUANTIZATION_FILE) or {}).get("dtype", "float32")
        if exported != dtype:
            raise ValueError(f"{model_dir} holds {exported} graphs (hf-rnn-seq2seq export): translate it in {exported}")
        return path
    if not path.is_dir():
        check_model_dir(model_dir)  # names a missing local folder
        raise OSError(
            f"{model_dir}: translating with onnxruntime needs a local model directory, where its graphs are kept; "
            f"download it first: hf download {model_dir} --local-dir DIR"
        )
    check_model_dir(model_dir)
    require_onnxruntime(f"{dtype} translation with onnxruntime")
    graphs = path / ONNX_DIRS[dtype]
    made_from = {"source": _fingerprint(path), "layout": GRAPH_LAYOUT}
    if _read_record(graphs / MADE_FROM_FILE) == made_from:
        return graphs
    from .onnx_export import export_model_dir  # imports onnx and torch.onnx: only when there is work for them

    quantize = dtype if dtype in QUANTIZED_DTYPES else None
    export_flag = f" --quantize {quantize}" if quantize else ""
    logger.warning(f"{model_dir}: exporting the model's {dtype} graphs into {graphs} (once)")
    try:
        # Written beside and renamed into place: a run stopped half-way never leaves graphs that look complete.
        partial = Path(tempfile.mkdtemp(prefix=f".{graphs.name}-", dir=path))
    except PermissionError as err:
        raise OSError(
            f"{model_dir}: cannot write the {dtype} graphs here ({err.strerror}); write them elsewhere with "
            f"'hf-rnn-seq2seq export {model_dir} DIR{export_flag}' and translate with DIR"
        ) from None
    try:
        export_model_dir(path, partial, quantize=quantize)
        (partial / MADE_FROM_FILE).write_text(json.dumps(made_from, indent=2) + "\n", encoding="utf-8")
        if graphs.exists():
            shutil.rmtree(graphs)
        os.replace(partial, graphs)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return graphs


def _read_record(path: Path) -> dict | None:
    """The JSON record at `path` (what graphs were made from, or how they were quantized), or None if there is none."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _fingerprint(model_dir: Path) -> str:
    """SHA-256 over the names and contents of the model directory's `SOURCE_FILES`."""
    digest = hashlib.sha256()
    for path in sorted({path for pattern in SOURCE_FILES for path in model_dir.glob(pattern)}):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


__all__ = [
    "DTYPES",
    "ENGINES",
    "ONNX_DIRS",
    "ONNX_DTYPES",
    "QUANTIZED_DTYPES",
    "check_engine",
    "check_model_dir",
    "load_model",
    "load_translator",
    "onnx_graphs",
]
