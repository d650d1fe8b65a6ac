"""Translation metrics that load offline: local `evaluate` modules wrapping `sacrebleu`.

`evaluate.load("sacrebleu")` fetches its script from the Hub; the folders beside this file hold local
equivalents (`sacrebleu/sacrebleu.py`, `chrf/chrf.py`) that `evaluate.load(<folder>)` reads from disk.
"""

from pathlib import Path

import evaluate

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


def compute_translation_metrics(predictions: list[str], references: list[list[str]] | list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) of `predictions` against one or more `references` per prediction."""
    if not predictions:
        raise ValueError("no predictions to score")
    return {
        "bleu": load_metric("sacrebleu").compute(predictions=predictions, references=references)["score"],
        "chrf": load_metric("chrf").compute(predictions=predictions, references=references)["score"],
    }
