"""Score a saved model on a test set: translate its source side and compare with its references (sacreBLEU's BLEU
and chrF), timing the translation. What `hf-rnn-seq2seq evaluate` prints and the demo reports."""

import os
import time

from .data import load_translation_data
from .loading import load_translator
from .metrics import compute_translation_metrics
from .translate import DEFAULT_BATCH_SIZE, translate_lines


def evaluate_model(
    model_dir: str | os.PathLike,
    data: str,
    source_lang: str = "ko",
    target_lang: str = "en",
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: str = "float32",
    **generate_kwargs,
) -> tuple[dict, list[str]]:
    """`(report, translations)` of the model in `model_dir` on `data` (anything `load_translation_data` reads).
    `generate_kwargs` (`num_beams`, `max_new_tokens`, ...) go to `generate()`; unset ones come from the model."""
    pairs = list(load_translation_data(data, source_lang, target_lang)["translation"])
    translator = load_translator(model_dir, dtype=dtype)
    start = time.perf_counter()
    sources = (pair[source_lang] for pair in pairs)
    translations = list(translate_lines(translator, sources, batch_size, **generate_kwargs))
    seconds = time.perf_counter() - start
    scores = compute_translation_metrics(translations, [pair[target_lang] for pair in pairs])
    report = {
        "model": str(model_dir),
        "data": str(data),
        "direction": f"{source_lang}-{target_lang}",
        "sentences": len(pairs),
        "bleu": round(scores["bleu"], 2),
        "chrf": round(scores["chrf"], 2),
        "num_beams": generate_kwargs.get("num_beams") or translator.model.generation_config.num_beams or 1,
        "dtype": dtype,
        "seconds": round(seconds, 2),
        "sentences_per_second": round(len(pairs) / seconds, 1),
    }
    return report, translations


__all__ = ["evaluate_model"]
