"""The tasks a model can be trained for -- translation, summarization, dialogue, or any other text-to-text task --
and what each one means for the tools: its metrics, its model card's pipeline tag, and how a saved model says
which task it does (`model_task`).

Which metrics a task gets: translation BLEU, chrF and TER; summarization ROUGE-1/2/L; dialogue BLEU, chrF and
distinct-1/2 (replies are judged on overlap and on variety: a chatbot that answers everything with one safe reply
scores low distinct-n); any other task BLEU, chrF and ROUGE. This module imports no metric library, so that loading
a model for translating stays light.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import metadata_load
from transformers.utils import cached_file

TASKS = ("translation", "summarization", "dialogue", "text2text")
TASK_METRICS = {
    "translation": ("bleu", "chrf", "ter"),
    "summarization": ("rouge",),
    "dialogue": ("bleu", "chrf", "distinct"),
    "text2text": ("bleu", "chrf", "rouge"),
}
# The score that picks the best checkpoint unless --metric_for_best_model says otherwise.
TASK_BEST_METRIC = {"translation": "bleu", "summarization": "rougeL", "dialogue": "bleu", "text2text": "bleu"}
# The Hub's pipeline tag for a model card (the Hub has no dialogue tag: a reply is text-to-text generation).
PIPELINE_TAGS = {
    "translation": "translation",
    "summarization": "summarization",
    "dialogue": "text2text-generation",
    "text2text": "text2text-generation",
}
MODEL_CARD_FILE = "README.md"


@dataclass(frozen=True)
class ModelTask:
    """What a saved model does: its task (one of `TASKS`) and the languages its model card lists."""

    task: str = "translation"
    languages: tuple[str, ...] = ()


def model_task(model_dir: str | os.PathLike) -> ModelTask:
    """The task of the model in `model_dir` (folder or Hub id), from the tags of the model card that training
    writes (`task` is one of them). A model without a card, or with none of the tags, is a translation model: what
    every model was before other tasks existed. A local path that is not a folder gives the default too: loading
    the model then says what is wrong with it."""
    path = Path(model_dir)
    if path.is_dir():
        card_file = path / MODEL_CARD_FILE if (path / MODEL_CARD_FILE).is_file() else None
    elif path.exists() or path.is_absolute() or str(model_dir).startswith("."):
        card_file = None
    else:  # a Hub id
        card_file = cached_file(
            str(model_dir),
            MODEL_CARD_FILE,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    if card_file is None:
        return ModelTask()
    metadata = metadata_load(card_file) or {}
    tags = metadata.get("tags") or []
    languages = metadata.get("language") or []
    task = next((task for task in TASKS if task in tags), "translation")
    return ModelTask(task, tuple([languages] if isinstance(languages, str) else languages))


__all__ = ["PIPELINE_TAGS", "TASKS", "TASK_BEST_METRIC", "TASK_METRICS", "ModelTask", "model_task"]
