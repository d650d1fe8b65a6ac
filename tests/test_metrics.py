import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import evaluate
import pytest
import sacrebleu
from tiny_models import PAIRS

from hf_rnn_seq2seq.evaluation import paired_bootstrap
from hf_rnn_seq2seq.metrics import METRICS_DIR, compute_translation_metrics, load_metric, score_translations

PREDICTIONS = [
    "The cat sat on the mat.",
    "I like coffee very much.",
    "Tomorrow we will see a movie.",
    "He reads the book every day.",
]
REFERENCES = [
    "The cat sat on the mat.",
    "I really like coffee.",
    "We will watch a movie tomorrow.",
    "He reads a book every day.",
]
SECOND_REFERENCES = [
    "A cat was sitting on the mat.",
    "I like coffee a lot.",
    "Tomorrow we are going to see a film.",
    "Every day he reads the book.",
]


def test_bleu_equals_sacrebleu():
    expected = sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES])
    result = load_metric("sacrebleu").compute(predictions=PREDICTIONS, references=[[ref] for ref in REFERENCES])
    assert result["score"] == pytest.approx(expected.score)
    assert 0 < result["score"] < 100
    assert result["counts"] == expected.counts and result["totals"] == expected.totals
    assert result["precisions"] == pytest.approx(expected.precisions)
    assert result["bp"] == pytest.approx(expected.bp)
    assert (result["sys_len"], result["ref_len"]) == (expected.sys_len, expected.ref_len)


def test_bleu_multiple_references_and_options():
    references = [[first, second] for first, second in zip(REFERENCES, SECOND_REFERENCES)]
    expected = sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES, SECOND_REFERENCES], lowercase=True, tokenize="intl")
    result = load_metric("sacrebleu").compute(
        predictions=PREDICTIONS, references=references, lowercase=True, tokenize="intl"
    )
    assert result["score"] == pytest.approx(expected.score)


def test_single_reference_strings_equal_nested_lists():
    bleu = load_metric("sacrebleu")
    nested = bleu.compute(predictions=PREDICTIONS, references=[[ref] for ref in REFERENCES])
    flat = bleu.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert flat == nested


def test_chrf_equals_sacrebleu():
    chrf = load_metric("chrf")
    result = chrf.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert result["score"] == pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score)
    chrf_plus_plus = chrf.compute(predictions=PREDICTIONS, references=REFERENCES, word_order=2)
    assert chrf_plus_plus["score"] == pytest.approx(
        sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES], word_order=2).score
    )
    assert chrf_plus_plus["word_order"] == 2
    assert chrf_plus_plus["score"] != result["score"]


def test_chrf_on_korean():
    predictions = ["저는 커피를 좋아합니다.", "오늘 날씨가 좋아요."]
    references = ["저는 커피를 정말 좋아합니다.", "오늘 날씨가 좋네요."]
    result = load_metric("chrf").compute(predictions=predictions, references=references)
    assert result["score"] == pytest.approx(sacrebleu.corpus_chrf(predictions, [references]).score)


def test_evaluate_load_of_the_local_folder():
    metric = evaluate.load(str(METRICS_DIR / "sacrebleu"))
    metric.add_batch(predictions=PREDICTIONS[:2], references=REFERENCES[:2])
    metric.add_batch(predictions=PREDICTIONS[2:], references=REFERENCES[2:])
    assert metric.compute()["score"] == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)


def test_compute_translation_metrics():
    result = compute_translation_metrics(PREDICTIONS, REFERENCES)
    assert result == {
        "bleu": pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score),
        "chrf": pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score),
        "ter": pytest.approx(sacrebleu.corpus_ter(PREDICTIONS, [REFERENCES]).score),
    }
    perfect = compute_translation_metrics(REFERENCES, [[ref] for ref in REFERENCES])
    assert perfect == {"bleu": pytest.approx(100), "chrf": pytest.approx(100), "ter": 0}


def test_scores_come_with_sacrebleus_signatures():
    references = [[first, second] for first, second in zip(REFERENCES, SECOND_REFERENCES)]
    scores, signatures = score_translations(PREDICTIONS, references)
    expected = {
        "bleu": sacrebleu.BLEU(),
        "chrf": sacrebleu.CHRF(),
        "ter": sacrebleu.TER(),
    }
    for name, metric in expected.items():
        assert scores[name] == pytest.approx(metric.corpus_score(PREDICTIONS, [REFERENCES, SECOND_REFERENCES]).score)
        assert signatures[name] == metric.get_signature().format()
    assert signatures["bleu"] == f"nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}"
    assert signatures["ter"].startswith("nrefs:2|case:lc|tok:tercom")


def reversed_words(sentence: str) -> str:
    return " ".join(sentence.split()[::-1])


def noisy(sentences: list[str], every: int) -> list[str]:
    """`sentences` with the word order of every `every`-th one reversed: a worse system."""
    return [reversed_words(line) if index % every == 0 else line for index, line in enumerate(sentences)]


def test_paired_bootstrap_finds_a_better_system():
    references = [en for _, en in PAIRS]
    report = paired_bootstrap(references, noisy(references, 2), references, n_samples=200)
    assert set(report) == {"bleu", "chrf"}
    bleu = report["bleu"]
    assert bleu["system"] == 100 and bleu["baseline"] < bleu["system"] and bleu["p_value"] < 0.01
    assert bleu["baseline_ci"] > 0 and abs(bleu["baseline_mean"] - bleu["baseline"]) < bleu["baseline_ci"]
    assert "bs:200|seed:12345" in bleu["signature"]
    assert paired_bootstrap(references, noisy(references, 2), references, n_samples=200) == report  # fixed seed


def test_paired_bootstrap_of_nearly_equal_systems():
    """Systems differing in two sentences out of many: the difference is what chance gives (large p-value). A system
    against itself gets sacreBLEU's smallest p-value, by design: a zero difference is not attributed to chance."""
    references = [en for _, en in PAIRS]
    baseline = noisy(references, 3)
    system = [references[0], reversed_words(references[1]), *baseline[2:]]  # one sentence better, one worse
    report = paired_bootstrap(system, baseline, references, n_samples=200)
    assert all(result["p_value"] > 0.05 for result in report.values()), report
    same = paired_bootstrap(baseline, baseline, references, n_samples=200)
    assert all(result["system"] == result["baseline"] for result in same.values())
    assert all(result["p_value"] == round(1 / 201, 4) for result in same.values())


def test_errors():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        load_metric("bleu")
    with pytest.raises(ValueError, match="no predictions"):
        compute_translation_metrics([], [])
    with pytest.raises(ValueError, match="prediction 1 has 1 references but prediction 0 has 2"):
        load_metric("sacrebleu").compute(predictions=PREDICTIONS[:2], references=[["a", "b"], ["c"]])
    with pytest.raises(ValueError, match="prediction 0 has no reference"):
        load_metric("chrf").compute(predictions=PREDICTIONS[:1], references=[[]])
