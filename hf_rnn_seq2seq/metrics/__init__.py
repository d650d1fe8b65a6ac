"""Metrics that load offline: sacreBLEU's BLEU, chrF and TER, ROUGE-1/2/L by `rouge_score`, distinct-1/2 for
dialogue, and local `evaluate` modules wrapping the first ones.

`evaluate.load("sacrebleu")` fetches its script from the Hub; the folders beside this file hold local
equivalents (`sacrebleu/sacrebleu.py`, `chrf/chrf.py`, `rouge/rouge.py`) that `evaluate.load(<folder>)` reads
from disk. Reports score with sacreBLEU's metric objects directly, for the signature that makes a score
reproducible.

Which metrics a task gets: `tasks.TASK_METRICS`.
"""

import importlib.metadata
from collections.abc import Iterable
from pathlib import Path

import evaluate
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric

from ..tasks import TASK_METRICS
from .rouge.rouge import rouge_f1
from .sacrebleu.sacrebleu import _reference_streams

METRICS_DIR = Path(__file__).parent
METRIC_NAMES = ("sacrebleu", "chrf", "rouge")
# What `score_texts` takes: a group name gives one or more scores (rouge: rouge1, rouge2, rougeL).
SACREBLEU_METRICS = ("bleu", "chrf", "ter")
METRIC_GROUPS = {
    "bleu": ("bleu",),
    "chrf": ("chrf",),
    "ter": ("ter",),
    "rouge": ("rouge1", "rouge2", "rougeL"),
    "distinct": ("distinct1", "distinct2"),
}
# How reports and model cards write each score.
SCORE_LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "ter": "TER",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "distinct1": "distinct-1",
    "distinct2": "distinct-2",
}
# Distinct-n for these n (Li et al., 2016 report distinct-1 and distinct-2).
DISTINCT_ORDERS = (1, 2)


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the local metric `name` ("sacrebleu" or "chrf") with `evaluate.load`.

    Kept in memory rather than in evaluate's cache files: processes of a distributed run would otherwise
    fight over the same cache file.
    """
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(METRIC_NAMES)}")
    return evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)


def sacrebleu_metrics() -> dict[str, Metric]:
    """New sacreBLEU metric objects with sacreBLEU's default settings (those of its command line and of the
    local `evaluate` modules), so scores compare with published ones. New each time: a metric object caches
    the references it last scored against."""
    return {"bleu": BLEU(), "chrf": CHRF(), "ter": TER()}


def reference_streams(predictions: list[str], references: list[list[str]] | list[str]) -> list[list[str]]:
    """`references` (one or more per prediction) as sacreBLEU takes them: one stream per reference index."""
    if not predictions:
        raise ValueError("no predictions to score")
    if len(references) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    return _reference_streams(references)


def score_translations(
    predictions: list[str], references: list[list[str]] | list[str]
) -> tuple[dict[str, float], dict[str, str]]:
    """`(scores, signatures)`: corpus BLEU, chrF and TER (0-100; lower TER is better) of `predictions` against
    `references`, and the sacreBLEU signature of each (`nrefs:1|case:mixed|...|version:2.6.0`): what a
    reported score needs to be reproduced. A signature is only known once its metric has scored."""
    streams = reference_streams(predictions, references)
    metrics = sacrebleu_metrics()
    scores = {name: metric.corpus_score(predictions, streams).score for name, metric in metrics.items()}
    return scores, {name: metric.get_signature().format() for name, metric in metrics.items()}


def compute_translation_metrics(predictions: list[str], references: list[list[str]] | list[str]) -> dict[str, float]:
    """Corpus BLEU, chrF and TER (0-100) of `predictions` against one or more `references` per prediction."""
    return score_translations(predictions, references)[0]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct-n (Li et al., 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models"):
    distinct word n-grams over all n-grams of all `texts` (words split on whitespace), times 100. Texts too short
    to hold an n-gram add none; no n-gram at all scores 0."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    seen, total = set(), 0
    for text in texts:
        words = text.split()
        ngrams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        seen.update(ngrams)
        total += len(ngrams)
    return 100 * len(seen) / total if total else 0.0


def parse_metric_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """`"rouge,distinct"` (or a list) as a tuple of metric group names, refusing unknown ones."""
    parsed = tuple(name.strip() for name in (names.split(",") if isinstance(names, str) else names) if name.strip())
    unknown = [name for name in parsed if name not in METRIC_GROUPS]
    if unknown or not parsed:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown) or repr(names)}; choose from {', '.join(METRIC_GROUPS)}"
        )
    return parsed


def score_texts(
    predictions: list[str],
    references: list[list[str]] | list[str],
    metrics: str | Iterable[str] = TASK_METRICS["translation"],
    rouge_tokenizer: str = "default",
) -> tuple[dict[str, float], dict[str, str]]:
    """`(scores, signatures)` of `predictions` against one or more `references` each, for the metric groups
    `metrics` (`METRIC_GROUPS`: bleu, chrf, ter, rouge, distinct), all 0-100. ROUGE is the mean F1 with Porter
    stemming, each example scored against its best reference per ROUGE type; `rouge_tokenizer="whitespace"` for
    text that is not English (see `rouge_f1`). Distinct-n looks only at the predictions."""
    metrics = parse_metric_names(metrics)
    if not predictions:
        raise ValueError("no predictions to score")
    scores, signatures = {}, {}
    if sacrebleu_names := [name for name in SACREBLEU_METRICS if name in metrics]:
        streams = reference_streams(predictions, references)  # sacreBLEU: the same number of references each
        sacrebleu_objects = sacrebleu_metrics()
        for name in sacrebleu_names:
            scores[name] = sacrebleu_objects[name].corpus_score(predictions, streams).score
            signatures[name] = sacrebleu_objects[name].get_signature().format()
    if "rouge" in metrics:
        scores |= rouge_f1(predictions, references, METRIC_GROUPS["rouge"], use_stemmer=True, tokenizer=rouge_tokenizer)
        n_references = max(1 if isinstance(refs, str) else len(refs) for refs in references)
        stemmer = "yes" if rouge_tokenizer == "default" else "no"
        signatures["rouge"] = (
            f"nrefs:{n_references}|refs:best-per-example|stemmer:{stemmer}|tok:{rouge_tokenizer}"
            f"|version:rouge_score-{importlib.metadata.version('rouge_score')}"
        )
    if "distinct" in metrics:
        scores |= {f"distinct{n}": distinct_n(predictions, n) for n in DISTINCT_ORDERS}
    return scores, signatures
