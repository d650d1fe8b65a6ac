"""Translation metrics that load offline: sacreBLEU's BLEU, chrF and TER, and local `evaluate` modules wrapping them.

`evaluate.load("sacrebleu")` fetches its script from the Hub; the folders beside this file hold local
equivalents (`sacrebleu/sacrebleu.py`, `chrf/chrf.py`) that `evaluate.load(<folder>)` reads from disk.
Reports score with sacreBLEU's metric objects directly, for the signature that makes a score reproducible.
"""

from pathlib import Path

import evaluate
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric

from .sacrebleu.sacrebleu import _reference_streams

METRICS_DIR = Path(__file__).parent
METRIC_NAMES = ("sacrebleu", "chrf")


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
