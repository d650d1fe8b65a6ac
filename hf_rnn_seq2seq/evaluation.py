"""Score a saved model on a test set: translate (summarize, reply to) its source side and compare with its
references (by the model's task: sacreBLEU's BLEU, chrF and TER, ROUGE, distinct-n, with their signatures), timing
the generation; optionally test whether it differs significantly from a baseline (sacreBLEU's paired bootstrap
resampling). What `hf-rnn-seq2seq evaluate` prints and the demo reports."""

import os
import time
from collections.abc import Sequence
from pathlib import Path

from sacrebleu.significance import PairedTest
from transformers import GenerationConfig

from .data import load_translation_data
from .ensemble import load_ensemble_translator
from .errors import DataError
from .loading import check_engine, load_translator
from .metrics import parse_metric_names, reference_streams, sacrebleu_metrics, score_texts
from .modeling.pipeline import RNNTranslationPipeline
from .onnx_runtime import OnnxTranslator
from .tasks import TASK_METRICS, model_task
from .translate import DEFAULT_BATCH_SIZE, model_dirs, translate_lines

DEFAULT_BOOTSTRAP_SAMPLES = 1000  # sacreBLEU's default for --paired-bs-n
# TER is left out as sacreBLEU's command line leaves it out by default: resampling it is slow.
PAIRED_METRICS = ("bleu", "chrf")
SCORE_DIGITS = 2
P_VALUE_DIGITS = 4
# generate() options a report names when the call sets them: they change the translations it scores.
REPORTED_OPTIONS = ("max_new_tokens", "max_len_a", "max_len_b", "use_shortlist")


def paired_bootstrap(
    system: list[str],
    baseline: list[str],
    references: list[list[str]] | list[str],
    n_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
) -> dict[str, dict]:
    """sacreBLEU's paired bootstrap resampling of `system` against `baseline` (as `sacrebleu --paired-bs` runs it,
    seeded with SACREBLEU_SEED, 12345 unless set), for BLEU and chrF: both scores, the p-value of the difference,
    each system's bootstrap mean and the half-width of its 95% confidence interval, and the test's signature.
    As in sacreBLEU, a p-value counts resampled differences larger than the real one, so a system tested against
    itself gets the smallest p-value (1 / (n_samples + 1)): a zero difference is not attributed to chance."""
    if len(baseline) != len(system):
        raise ValueError(f"the baseline has {len(baseline)} translations but the test set has {len(system)} sentences")
    metrics = {name: metric for name, metric in sacrebleu_metrics().items() if name in PAIRED_METRICS}
    test = PairedTest(
        [("baseline", baseline), ("system", system)],
        metrics,
        reference_streams(system, references),
        test_type="bs",
        n_samples=n_samples,
    )
    signatures, results = test()
    # Both are keyed by sacreBLEU's score names ("BLEU", "chrF2"), in the order of `metrics`, after "System".
    metric_results = [result for name, result in results.items() if name != "System"]
    report = {}
    for name, (baseline_result, system_result), signature in zip(metrics, metric_results, signatures.values()):
        values = {
            "baseline": baseline_result.score,
            "system": system_result.score,
            "baseline_mean": baseline_result.mean,
            "baseline_ci": baseline_result.ci,
            "system_mean": system_result.mean,
            "system_ci": system_result.ci,
        }
        report[name] = {
            **{key: round(float(value), SCORE_DIGITS) for key, value in values.items()},  # numpy scalars: not JSON
            "p_value": round(system_result.p_value, P_VALUE_DIGITS),
            "signature": signature.format(),
        }
    return report


def _generation_config(translator: RNNTranslationPipeline | OnnxTranslator) -> GenerationConfig:
    """The saved generation config a translator decodes with: the model's, or the one beside the ONNX graphs."""
    if isinstance(translator, OnnxTranslator):
        return translator.generation_config
    return translator.model.generation_config


def read_translations(path: str | os.PathLike) -> list[str]:
    """The lines of a translations file (what `evaluate --predictions` writes): line N translates sentence N."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def read_references(paths: list[str | os.PathLike], n_examples: int, data: str) -> list[list[str]]:
    """The references of each example from files with one reference per line (line N: example N)."""
    per_file = []
    for path in paths:
        lines = read_translations(path)
        if len(lines) != n_examples:
            raise DataError(
                f"{path} has {len(lines)} lines but {data} has {n_examples} examples; give one reference a line"
            )
        per_file.append(lines)
    return [list(references) for references in zip(*per_file)]


def evaluate_model(
    model_dir: str | os.PathLike | Sequence[str | os.PathLike],
    data: str,
    source_lang: str = "ko",
    target_lang: str = "en",
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: str = "float32",
    baseline: str | os.PathLike | None = None,
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
    weights: Sequence[float] | None = None,
    metrics: str | list[str] | None = None,
    rouge_tokenizer: str = "default",
    reference_files: list[str | os.PathLike] | None = None,
    engine: str | None = None,
    inter_threads: int = 1,
    **generate_kwargs,
) -> tuple[dict, list[str]]:
    """`(report, translations)` of the model in `model_dir` on `data` (anything `load_translation_data` reads);
    several model directories are evaluated as their ensemble, weighted by `weights` (`hf_rnn_seq2seq.ensemble`).
    `metrics` (`score_texts`'s names, a list or "rouge,distinct") default to the model's task's (`model_task`).
    `reference_files` (one reference per line, line-aligned with `data`; AESLC's test.ann0..2) replace the data's
    target side as the references: several references per example, each metric taking them as it does (ROUGE
    scores each example against its best reference).
    `generate_kwargs` (`num_beams`, `max_new_tokens`, ...) go to `generate()`; unset ones come from the model.
    `dtype`, `engine` and `inter_threads` are `load_translator`'s (engine None: onnxruntime for int8, else PyTorch).
    With a `baseline` (a model directory, translated the same way, or a file of its translations) the report
    also has the paired bootstrap test against it (`paired_bootstrap`)."""
    members = model_dirs(model_dir)
    task = model_task(members[0]).task
    metric_names = parse_metric_names(metrics) if metrics else TASK_METRICS[task]  # a bad name fails before generating
    pairs = list(load_translation_data(data, source_lang, target_lang)["translation"])
    sources = [pair[source_lang] for pair in pairs]
    references = [pair[target_lang] for pair in pairs]
    if reference_files:
        references = read_references(reference_files, len(pairs), data)
    baseline_translations = None
    if baseline is not None and not Path(baseline).is_dir():
        baseline_translations = read_translations(baseline)  # read first: a bad file fails before translating
        if len(baseline_translations) != len(pairs):
            raise ValueError(f"{baseline} has {len(baseline_translations)} lines but {data} has {len(pairs)} sentences")
    translator = load_ensemble_translator(members, weights, dtype=dtype, engine=engine, inter_threads=inter_threads)
    start = time.perf_counter()
    translations = list(translate_lines(translator, sources, batch_size, **generate_kwargs))
    seconds = time.perf_counter() - start
    scores, signatures = score_texts(translations, references, metric_names, rouge_tokenizer)
    report = {
        "model": str(members[0]) if len(members) == 1 else [str(member) for member in members],
        **({} if weights is None else {"weights": [float(weight) for weight in weights]}),
        "data": str(data),
        "task": task,
        "direction": f"{source_lang}-{target_lang}",
        "references": [str(path) for path in reference_files] if reference_files else f"{data} ({target_lang})",
        "sentences": len(pairs),
        **{name: round(score, SCORE_DIGITS) for name, score in scores.items()},
        "num_beams": generate_kwargs.get("num_beams") or _generation_config(translator).num_beams or 1,
        **{name: generate_kwargs[name] for name in REPORTED_OPTIONS if generate_kwargs.get(name) is not None},
        "dtype": dtype,
        "engine": check_engine(engine, dtype),
        "seconds": round(seconds, 2),
        "sentences_per_second": round(len(pairs) / seconds, 1),
        "signatures": signatures,
    }
    if baseline is not None:
        if baseline_translations is None:
            baseline_translator = load_translator(baseline, dtype=dtype, engine=engine, inter_threads=inter_threads)
            baseline_translations = list(translate_lines(baseline_translator, sources, batch_size, **generate_kwargs))
        report["baseline"] = str(baseline)
        report["paired_bootstrap"] = paired_bootstrap(
            translations, baseline_translations, references, bootstrap_samples
        )
    return report, translations


__all__ = ["DEFAULT_BOOTSTRAP_SAMPLES", "evaluate_model", "paired_bootstrap", "read_translations"]
