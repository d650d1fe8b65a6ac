"""Load a saved model directory (a folder or Hub id) for use: the model, or the model with its tokenizer(s) as a
translation pipeline.

Weights are read from safetensors only: unpickling a `pytorch_model.bin` can run any code in it.
"""

import os
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, PreTrainedModel
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

from .modeling.pipeline import TEXT2TEXT_TASK, RNNText2TextPipeline, RNNTranslationPipeline
from .tokenization import check_vocabularies, load_tokenizers

SAFE_WEIGHT_FILES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
PICKLED_WEIGHT_FILES = (WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
# Weight types a model can be loaded in for translating. bfloat16 halves the memory and, on CPUs with AVX512-BF16
# or AMX and on recent GPUs, runs the matrix products about twice as fast; generate() scores in float32 either way.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
) -> RNNTranslationPipeline:
    """The model and tokenizer(s) saved in `model_dir`, as a pipeline on `device` (None: the first GPU if there is
    one, else the CPU), its weights in `dtype`: the text2text pipeline where the model was saved through it (a
    summarizer, a chatbot), else the translation pipeline."""
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


__all__ = ["DTYPES", "check_model_dir", "load_model", "load_translator"]
