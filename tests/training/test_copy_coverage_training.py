"""The pointer-generator and coverage from the command line: the config flags train, save and translate a model,
and copying with separate vocabularies is refused in one line before training."""

import json

import pytest
from tiny_models import NO_EVALUATION, TINY_MODEL, write_digit_corpus

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.training import main

COPY_AND_COVERAGE = ["--attention", "additive", "--copy_attention", "true", "--coverage", "true",
                     "--coverage_loss_weight", "0.5"]  # fmt: skip


def short_run(corpus, output_dir, *options: str) -> list[str]:
    return [
        "--train_file", str(corpus), "--output_dir", str(output_dir), "--tokenizer_type", "bpe", "--vocab_size", "100",
        "--max_steps", "3", "--per_device_train_batch_size", "8", *TINY_MODEL, *NO_EVALUATION, *options,
    ]  # fmt: skip


def test_train_and_translate_with_copy_and_coverage(tmp_path):
    corpus = write_digit_corpus(tmp_path / "train.jsonl", 40, seed=0)
    output_dir = tmp_path / "model"
    main(short_run(corpus, output_dir, *COPY_AND_COVERAGE))
    config = json.loads((output_dir / "config.json").read_text())
    assert (config["copy_attention"], config["coverage"], config["coverage_loss_weight"]) == (True, True, 0.5)
    translator = load_translator(output_dir)
    (translation,) = translator(["삼 일 사"], num_beams=3, max_new_tokens=5)
    assert isinstance(translation["translation_text"], str)


def test_copying_with_separate_vocabularies_is_refused(tmp_path):
    corpus = write_digit_corpus(tmp_path / "train.jsonl", 40, seed=0)
    arguments = short_run(corpus, tmp_path / "model", *COPY_AND_COVERAGE, "--separate_vocabularies", "true")
    with pytest.raises(SystemExit, match=r"^error: .*joint vocabulary"):
        main(arguments)
