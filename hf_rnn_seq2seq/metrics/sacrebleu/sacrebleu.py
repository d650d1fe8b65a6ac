"""Corpus BLEU by the `sacrebleu` library, as a local `evaluate` metric.

The Hub's "sacrebleu" metric script is downloaded at `evaluate.load` time, so it fails offline. This folder
is a local equivalent: `evaluate.load("<path to this folder>")` works with or without the network.
"""

import datasets
import evaluate
import sacrebleu

_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    url = "https://www.aclweb.org/anthology/W18-6319",
    pages = "186--191",
}
"""

_DESCRIPTION = """\
Corpus-level BLEU computed by `sacrebleu.corpus_bleu`, with its standard tokenisation ("13a" by default), so
scores are comparable with published sacreBLEU numbers.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one translation per source sentence (detokenised text).
    references (`list[list[str]]` or `list[str]`): the reference translation(s) of each source sentence; every
        prediction needs the same number of references.
    tokenize (`str`): sacrebleu tokeniser: "13a" (default), "intl", "char", "ko-mecab" (needs mecab), "none", ...
    lowercase (`bool`): lowercase before scoring. Default False.
    smooth_method (`str`): "exp" (default), "floor", "add-k" or "none".
    smooth_value (`float | None`): the value for "floor" / "add-k" smoothing.
    use_effective_order (`bool`): ignore n-gram orders with no matches (for sentence-level use). Default False.
Returns:
    score (`float`): BLEU, 0-100.
    counts (`list[int]`), totals (`list[int]`): matching and total n-grams, n = 1..4.
    precisions (`list[float]`): n-gram precisions, 0-100.
    bp (`float`): brevity penalty.
    sys_len (`int`), ref_len (`int`): prediction and effective reference lengths in tokens.
Examples:
    >>> bleu = evaluate.load("hf_rnn_seq2seq/metrics/sacrebleu")
    >>> bleu.compute(predictions=["the cat sat on the mat"], references=[["the cat sat on the mat"]])["score"]
    100.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Sacrebleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            homepage="https://github.com/mjpost/sacrebleu",
            # Several references per prediction, or a single reference string.
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.List(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[list[str]] | list[str],
        tokenize: str = sacrebleu.BLEU.TOKENIZER_DEFAULT,
        lowercase: bool = False,
        smooth_method: str = "exp",
        smooth_value: float | None = None,
        use_effective_order: bool = False,
    ) -> dict:
        result = sacrebleu.corpus_bleu(
            predictions,
            _reference_streams(references),
            tokenize=tokenize,
            lowercase=lowercase,
            smooth_method=smooth_method,
            smooth_value=smooth_value,
            use_effective_order=use_effective_order,
        )
        return {
            "score": result.score,
            "counts": result.counts,
            "totals": result.totals,
            "precisions": result.precisions,
            "bp": result.bp,
            "sys_len": result.sys_len,
            "ref_len": result.ref_len,
        }


def _reference_streams(references: list[list[str]] | list[str]) -> list[list[str]]:
    """Turn per-prediction references into sacrebleu's layout: one stream per reference index.

    (Each metric script must stand alone for `evaluate.load`, so the chrF script has a copy of this.)
    """
    per_prediction = [[reference] if isinstance(reference, str) else reference for reference in references]
    for index, refs in enumerate(per_prediction):
        if not refs:
            raise ValueError(f"prediction {index} has no reference translation")
        if len(refs) != len(per_prediction[0]):
            raise ValueError(
                f"prediction {index} has {len(refs)} references but prediction 0 has {len(per_prediction[0])}; "
                f"sacrebleu needs the same number of references for every prediction"
            )
    return [list(stream) for stream in zip(*per_prediction)]
