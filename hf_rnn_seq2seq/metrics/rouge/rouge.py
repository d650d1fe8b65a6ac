"""ROUGE-1/2/L by Google's `rouge_score` package (the one most summarization papers report), as a local `evaluate`
metric.

The Hub's "rouge" metric script is downloaded at `evaluate.load` time, so it fails offline. This folder is a
local equivalent: `evaluate.load("<path to this folder>")` works with or without the network.
"""

import datasets
import evaluate
from rouge_score import rouge_scorer

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    url = "https://aclanthology.org/W04-1013",
    pages = "74--81",
}
"""

_DESCRIPTION = """\
ROUGE-N (n-gram overlap) and ROUGE-L (longest common subsequence) F1 of each prediction against its reference(s),
computed by `rouge_score.rouge_scorer.RougeScorer` and averaged over the predictions, times 100. With several
references per prediction an example scores its best reference, per ROUGE type (`RougeScorer.score_multi`).
`rouge_score`'s own tokenizer lowercases and keeps only a-z and 0-9, so it suits English (and with stemming
matches published numbers) but scores text in other scripts as empty: pass `tokenizer="whitespace"` for those.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one generated text per example.
    references (`list[list[str]]` or `list[str]`): the reference(s) of each example.
    rouge_types (`list[str]`): default ["rouge1", "rouge2", "rougeL"].
    use_stemmer (`bool`): Porter-stem English words first, as papers do. Default True.
    tokenizer (`str`): "default" (rouge_score's, English) or "whitespace" (lowercased words split on whitespace,
        any script; no stemming). Default "default".
Returns:
    one F1 per ROUGE type, 0-100 (`rouge1`, `rouge2`, `rougeL`).
Examples:
    >>> rouge = evaluate.load("hf_rnn_seq2seq/metrics/rouge")
    >>> rouge.compute(predictions=["the cat sat"], references=[["the cat sat"]])["rouge1"]
    100.0
"""

DEFAULT_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
TOKENIZERS = ("default", "whitespace")


class _WhitespaceTokenizer:
    """Lowercased words split on whitespace: keeps Hangul and every other script that `rouge_score` drops."""

    def tokenize(self, text: str) -> list[str]:
        return text.lower().split()


def rouge_f1(
    predictions: list[str],
    references: list[list[str]] | list[str],
    rouge_types: tuple[str, ...] | list[str] = DEFAULT_ROUGE_TYPES,
    use_stemmer: bool = True,
    tokenizer: str = "default",
) -> dict[str, float]:
    """Mean F1 (0-100) of each ROUGE type, each example scored against its best reference."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown ROUGE tokenizer {tokenizer!r}; available: {', '.join(TOKENIZERS)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    scorer = rouge_scorer.RougeScorer(
        list(rouge_types),
        use_stemmer=use_stemmer and tokenizer == "default",
        tokenizer=_WhitespaceTokenizer() if tokenizer == "whitespace" else None,
    )
    totals = dict.fromkeys(rouge_types, 0.0)
    for index, (prediction, refs) in enumerate(zip(predictions, references)):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError(f"prediction {index} has no reference")
        scores = scorer.score_multi(refs, prediction)
        for rouge_type in rouge_types:
            totals[rouge_type] += scores[rouge_type].fmeasure
    return {rouge_type: 100 * total / len(predictions) for rouge_type, total in totals.items()}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            homepage="https://github.com/google-research/google-research/tree/master/rouge",
            # Several references per prediction, or a single reference string.
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.List(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://aclanthology.org/W04-1013"],
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[list[str]] | list[str],
        rouge_types: list[str] | None = None,
        use_stemmer: bool = True,
        tokenizer: str = "default",
    ) -> dict:
        return rouge_f1(predictions, references, tuple(rouge_types or DEFAULT_ROUGE_TYPES), use_stemmer, tokenizer)
