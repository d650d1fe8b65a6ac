"""ROUGE (by the rouge_score package, offline) and distinct-n, on strings whose scores were worked out by hand."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from rouge_score import rouge_scorer

from hf_rnn_seq2seq.metrics import TASK_METRICS, distinct_n, load_metric, parse_metric_names, score_texts


def test_rouge_hand_checked():
    # "cats" stems to "cat": 5 of 6 unigrams match each way (the second "the" has no partner), F1 5/6;
    # bigrams the-cat, cat-sat, sat-on of 5 each way: 3/5. LCS: the cat sat on mat, 5/6.
    # "a b" vs "a b c": P 1, R 2/3, F1 0.8; bigrams P 1, R 1/2, F1 2/3; LCS as unigrams.
    scores, signatures = score_texts(["the cats sat on the mat", "a b"], ["the cat sat on a mat", "a b c"], "rouge")
    assert scores["rouge1"] == pytest.approx(100 * (5 / 6 + 0.8) / 2)
    assert scores["rouge2"] == pytest.approx(100 * (3 / 5 + 2 / 3) / 2)
    assert scores["rougeL"] == pytest.approx(100 * (5 / 6 + 0.8) / 2)
    assert "stemmer:yes" in signatures["rouge"] and "nrefs:1" in signatures["rouge"]


def test_rouge_equals_rouge_score_package():
    predictions = ["Meeting moved to Friday afternoon", "gas prices for March", "re: the deal"]
    references = ["meeting on friday", "March gas price update", "deal signed"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    per_example = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    scores, _ = score_texts(predictions, references, ["rouge"])
    for rouge_type in ("rouge1", "rouge2", "rougeL"):
        expected = 100 * sum(score[rouge_type].fmeasure for score in per_example) / len(per_example)
        assert scores[rouge_type] == pytest.approx(expected)
    # The local evaluate module gives the same numbers offline.
    module = load_metric("rouge").compute(predictions=predictions, references=references)
    assert module == pytest.approx(scores)


def test_rouge_multi_reference_takes_the_best_reference_per_example():
    scores, signatures = score_texts(["gas prices"], [["weekly report", "gas prices", "hello"]], "rouge")
    assert scores == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    assert "nrefs:3" in signatures["rouge"]
    # Examples may have different numbers of references (SciTLDR): ROUGE does not need sacreBLEU's streams.
    scores, _ = score_texts(["a b", "c d"], [["a b"], ["x", "c d"]], "rouge")
    assert scores["rouge1"] == 100.0


def test_rouge_whitespace_tokenizer_scores_korean():
    # rouge_score's own tokenizer keeps only a-z0-9: Korean would score 0.
    assert score_texts(["안녕 하세요"], ["안녕 하세요"], "rouge")[0]["rouge1"] == 0.0
    scores, signatures = score_texts(["안녕 하세요 반가워요"], ["안녕 하세요"], "rouge", rouge_tokenizer="whitespace")
    assert scores["rouge1"] == pytest.approx(100 * 0.8)  # P 2/3, R 1
    assert "tok:whitespace" in signatures["rouge"]


def test_distinct_n_hand_computed():
    replies = ["i am fine", "i am good", "i am fine"]
    # unigrams: 9 in all, distinct i, am, fine, good = 4; bigrams: 6, distinct i-am, am-fine, am-good = 3.
    assert distinct_n(replies, 1) == pytest.approx(100 * 4 / 9)
    assert distinct_n(replies, 2) == pytest.approx(100 * 3 / 6)
    assert distinct_n(["yes", "no"], 2) == 0.0  # no bigram at all
    scores, signatures = score_texts(replies, ["x", "y", "z"], "distinct")
    assert scores == pytest.approx({"distinct1": 100 * 4 / 9, "distinct2": 50.0})
    assert signatures == {}


def test_metric_names_and_tasks():
    assert parse_metric_names("rouge, distinct") == ("rouge", "distinct")
    assert set(score_texts(["a b"], ["a b"], TASK_METRICS["dialogue"])[0]) == {
        "bleu",
        "chrf",
        "distinct1",
        "distinct2",
    }
    with pytest.raises(ValueError, match="unknown metric.*meteor; choose from bleu, chrf, ter, rouge, distinct"):
        parse_metric_names("rouge,meteor")
    with pytest.raises(ValueError, match="no predictions"):
        score_texts([], [], "rouge")
    with pytest.raises(ValueError, match="unknown ROUGE tokenizer"):
        score_texts(["a"], ["a"], "rouge", rouge_tokenizer="mecab")
