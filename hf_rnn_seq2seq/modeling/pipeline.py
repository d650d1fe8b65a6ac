"""A translation pipeline for the RNN encoder–decoder, registered with transformers as task "rnn-translation",
and its task-neutral twin "rnn-text2text" (summaries, replies, ...: `[{"generated_text": ...}]`).

transformers 5 removed `pipeline("translation")`; this brings back its interface for our model:

    from transformers import pipeline
    import hf_rnn_seq2seq  # registers the task

    translator = pipeline("rnn-translation", model=model, tokenizer=tokenizer)
    translator("저는 커피를 좋아합니다.")                  # [{"translation_text": "I like coffee."}]
    translator(["...", "..."], batch_size=32, num_beams=5, max_new_tokens=64)

`pipe.save_pretrained(directory)` writes the model and tokenizer(s), records the task under `custom_pipelines`
in config.json and copies this file next to the weights, so a process without our package runs
`pipeline(model=directory, trust_remote_code=True)`. Because of that copy, this file may import only
transformers, torch, the standard library and the model's other files.

The task is not registered as "translation": `pipeline()` refuses that name (it is in transformers'
`REMOVED_TASKS`) before it looks at the registry, so only a directory whose config.json lists a custom
"translation" pipeline could use it, never a model object.
"""

import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    Pipeline,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import cached_file, logging

from .encoder import check_bfloat16

logger = logging.get_logger(__name__)

TASK = "rnn-translation"
TEXT2TEXT_TASK = "rnn-text2text"
# Where `hf_rnn_seq2seq.tokenization.save_tokenizers` puts a separate target tokenizer. Repeated here, not
# imported, because this file must work alone in a model directory (a test checks that the two agree).
TARGET_TOKENIZER_DIR = "target_tokenizer"
# generate() would otherwise stop at its global default of 20 tokens, cutting translations short. A model's
# generation_config.json (`max_length` or `max_new_tokens`) and the caller's arguments override this.
DEFAULT_MAX_NEW_TOKENS = 256


def load_target_tokenizer(model: PreTrainedModel) -> PreTrainedTokenizerBase | None:
    """The separate target tokenizer saved with `model` (folder or Hub repo), or None for a joint vocabulary."""
    name_or_path = model.name_or_path
    if not name_or_path:
        return None
    target_file = cached_file(
        name_or_path,
        "tokenizer_config.json",
        subfolder=TARGET_TOKENIZER_DIR,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    if target_file is None:
        return None
    return AutoTokenizer.from_pretrained(name_or_path, subfolder=TARGET_TOKENIZER_DIR)


def unknown_characters(tokenizer: PreTrainedTokenizerBase, text: str, encoded: dict[str, torch.Tensor]) -> list[str]:
    """The pieces of `text` that `tokenizer` encoded as its unknown token, in order (`encoded` is its output for
    `text`, with `return_offsets_mapping=True`); none where the tokenizer has no unknown token or no offsets."""
    unk_token_id = tokenizer.unk_token_id
    if unk_token_id is None or "offset_mapping" not in encoded:
        return []
    unknown_positions = (encoded["input_ids"][0] == unk_token_id).nonzero().flatten().tolist()
    spans = encoded["offset_mapping"][0][unknown_positions].tolist()
    return [text[start:end] for start, end in spans]


class RNNTranslationPipeline(Pipeline):
    """Translate text with an encoder–decoder model: `[{"translation_text": ...}]` per input, as the
    `translation` pipeline of transformers 4 returned.

    The source tokenizer encodes the input; the target tokenizer (`target_tokenizer=`, else the one saved in the
    model's `target_tokenizer/` folder, else the source tokenizer) decodes the output. Every keyword argument of
    `generate()` (`num_beams`, `max_new_tokens`, `length_penalty`, `do_sample`, ...) is accepted at construction
    and per call.
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    output_key = "translation_text"  # the name of each result's text

    def __init__(self, *args, target_tokenizer: PreTrainedTokenizerBase | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            raise ValueError(f"the {TASK} pipeline needs a tokenizer: pass tokenizer=... or a model directory with one")
        if self.model.dtype == torch.bfloat16:
            check_bfloat16(self.device, "load the model in float32 (--dtype float32; dtype=torch.float32 in Python)")
        self.target_tokenizer = target_tokenizer or load_target_tokenizer(self.model) or self.tokenizer
        self._unknown_reported: set[str] = set()  # characters already warned about

    def _sanitize_parameters(self, clean_up_tokenization_spaces: bool | None = None, **generate_kwargs):
        postprocess_params = {}
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return {}, generate_kwargs, postprocess_params

    def __call__(self, inputs: str | list[str], **kwargs) -> list[dict[str, str]] | list[list[dict[str, str]]]:
        """One text gives `[{"translation_text": ...}]`; a list of texts gives one such dict per text (a list of
        `num_return_sequences` dicts per text when more than one is asked for)."""
        results = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and all(len(result) == 1 for result in results):
            return [result[0] for result in results]
        return results

    def preprocess(self, text: str) -> dict[str, torch.Tensor]:
        if not isinstance(text, str):
            raise ValueError(f"the {TASK} pipeline translates strings, got a {type(text).__name__}")
        encoded = self.tokenizer(text, return_tensors="pt", return_offsets_mapping=self.tokenizer.is_fast)
        self._report_unknown_characters(text, encoded)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _report_unknown_characters(self, text: str, encoded: dict[str, torch.Tensor]) -> None:
        """Warn (once per character) about text the vocabulary cannot represent: it reaches the model as <unk>."""
        new = sorted(set(unknown_characters(self.tokenizer, text, encoded)) - self._unknown_reported)
        if new:
            self._unknown_reported.update(new)
            logger.warning(
                f"not in the vocabulary, translated as {self.tokenizer.unk_token}: {' '.join(map(repr, new))} "
                f"(in {text[:50]!r}); a tokenizer trained on text that has them, or with byte fallback, keeps them"
            )

    def _forward(self, model_inputs: dict[str, torch.Tensor], **generate_kwargs) -> dict[str, torch.Tensor]:
        n_inputs = model_inputs["input_ids"].shape[0]
        output_ids = self.model.generate(**model_inputs, **self._prepare_generate_kwargs(generate_kwargs))
        # (inputs * num_return_sequences, len) -> (inputs, num_return_sequences, len): the pipeline's batching
        # then hands postprocess one input at a time.
        return {"output_ids": output_ids.reshape(n_inputs, -1, output_ids.shape[-1])}

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], clean_up_tokenization_spaces: bool = False
    ) -> list[dict[str, str]]:
        output_ids = model_outputs["output_ids"][0]  # (num_return_sequences, len)
        eos_token_id = self.model.generation_config.eos_token_id
        if eos_token_id is not None and not torch.isin(output_ids, torch.tensor(eos_token_id)).any(dim=-1).all():
            # Never cut a translation short in silence (once per process: a long file would repeat it).
            logger.warning_once(
                "a translation reached the length limit before its end-of-sentence token and is cut short; "
                "raise max_new_tokens (and max_len_a / max_len_b, where set) to let it finish"
            )
        return [
            {
                self.output_key: self.target_tokenizer.decode(
                    ids, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces
                )
            }
            for ids in output_ids
        ]

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Save model, tokenizer(s) and this pipeline's code (see the module docstring)."""
        super().save_pretrained(save_directory, **kwargs)
        if self.target_tokenizer is not self.tokenizer:
            self.target_tokenizer.save_pretrained(Path(save_directory) / TARGET_TOKENIZER_DIR, **kwargs)


class RNNText2TextPipeline(RNNTranslationPipeline):
    """Any text-to-text task (a summary, a chatbot's reply, ...): as `RNNTranslationPipeline`, with
    `[{"generated_text": ...}]` per input, the key of transformers' text2text-generation pipeline. A model directory
    saved through it lists "rnn-text2text" under `custom_pipelines`."""

    output_key = "generated_text"


# Registered once per process: a model directory's copy of this file (loaded as remote code) must not replace the
# package's registration, which transformers would announce with a warning at every such load.
for task, pipeline_class in ((TASK, RNNTranslationPipeline), (TEXT2TEXT_TASK, RNNText2TextPipeline)):
    if task not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            task, pipeline_class=pipeline_class, pt_model=AutoModelForSeq2SeqLM, type="text"
        )

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "TASK",
    "TEXT2TEXT_TASK",
    "RNNText2TextPipeline",
    "RNNTranslationPipeline",
    "load_target_tokenizer",
    "unknown_characters",
]
