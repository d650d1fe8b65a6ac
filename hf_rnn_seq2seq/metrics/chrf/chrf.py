"""Corpus chrF / chrF++ by the `sacrebleu` library, as a local `evaluate` metric.

The Hub's "chrf" metric script is downloaded at `evaluate.load` time, so it fails offline. This folder is a
local equivalent: `evaluate.load("<path to this folder>")` works with or without the network.
"""

import datasets
import evaluate
import sacrebleu

_CITATION = """\
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    url = "https://aclanthology.org/W15-3049",
    pages = "392--395",
}
@inproceedings{popovic-2017-chrf,
    title = "chr{F}++: words helping character n-grams",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Second Conference on Machine Translation",
    year = "2017",
    url = "https://aclanthology.org/W17-4770",
    pages = "612--618",
}
"""

_DESCRIPTION = """\
Corpus-level chrF (character n-gram F-score) computed by `sacrebleu.corpus_chrf`; `word_order=2` gives
chrF++. Being character-based, it needs no tokeniser and suits Korean as well as English.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one translation per source sentence.
    references (`list[list[str]]` or `list[str]`): the reference translation(s) of each source sentence; every
        prediction needs the same number of references.
    char_order (`int`): character n-gram order. Default 6.
    word_order (`int`): word n-gram order; 0 (default) is chrF, 2 is chrF++.
    beta (`int`): weight of recall over precision. Default 2.
    remove_whitespace (`bool`): leave whitespace out of character n-grams. Default True.
    eps_smoothing (`bool`): the smoothing of sacrebleu < 2.0 and chrF++.py. Default False.
Returns:
    score (`float`): chrF, 0-100.
    char_order (`int`), word_order (`int`), beta (`int`): the settings used.
Examples:
    >>> chrf = evaluate.load("hf_rnn_seq2seq/metrics/chrf")
    >>> chrf.compute(predictions=["the cat sat on the mat"], references=[["the cat sat on the mat"]])["score"]
    100.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Chrf(evaluate.Metric):
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
        char_order: int = sacrebleu.CHRF.CHAR_ORDER,
        word_order: int = sacrebleu.CHRF.WORD_ORDER,
        beta: int = sacrebleu.CHRF.BETA,
        remove_whitespace: bool = True,
        eps_smoothing: bool = False,
    ) -> dict:
        result = sacrebleu.corpus_chrf(
            predictions,
            _reference_streams(references),
            char_order=char_order,
            word_order=word_order,
            beta=beta,
            remove_whitespace=remove_whitespace,
            eps_smoothing=eps_smoothing,
        )
        return {"score": result.score, "char_order": char_order, "word_order": word_order, "beta": beta}


def _reference_streams(references: list[list[str]] | list[str]) -> list[list[str]]:
    """Turn per-prediction references into sacrebleu's layout: one stream per reference index.

    (Each metric script must stand alone for `evaluate.load`, so the sacrebleu script has a copy of this.)
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
