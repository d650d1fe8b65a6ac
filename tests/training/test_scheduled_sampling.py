"""Scheduled sampling in training (--scheduled_sampling, --scheduled_sampling_k): the schedules' values, the
callback that sets the model's probability step by step, and a training run with it."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_models import NO_EVALUATION, TINY_MODEL, write_digit_corpus

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.training import main, trainer
from hf_rnn_seq2seq.training.trainer import SCHEDULED_SAMPLING, ScheduledSamplingCallback, check_scheduled_sampling


@pytest.mark.parametrize(
    ("schedule", "k", "step", "probability"),
    [
        ("linear", 1000, 0, 0.0),
        ("linear", 1000, 250, 0.25),
        ("linear", 1000, 1000, 1.0),
        ("linear", 1000, 5000, 1.0),
        ("exponential", 0.99, 0, 0.0),
        ("exponential", 0.99, 100, 1 - 0.99**100),  # 0.634
        ("exponential", 0.5, 1, 0.5),
        ("inverse_sigmoid", 1, 0, 0.5),  # 1/(1+k) at step 0
        ("inverse_sigmoid", 100, 0, 1 / 101),
        ("inverse_sigmoid", 100, 100 * math.log(100), 0.5),  # half at k ln k
        ("inverse_sigmoid", 100, 10**6, 1.0),  # no overflow far along
    ],
)
def test_the_schedules_give_the_documented_probabilities(schedule, k, step, probability):
    assert SCHEDULED_SAMPLING[schedule](step, k) == pytest.approx(probability)


@pytest.mark.parametrize(
    ("schedule", "k", "message"),
    [
        ("linear", None, "--scheduled_sampling linear needs --scheduled_sampling_k positive"),
        ("linear", 0, "positive"),
        ("exponential", 1.0, "between 0 and 1"),
        ("inverse_sigmoid", 0.5, "at least 1"),
        ("cosine", 1.0, "must be one of linear, exponential, inverse_sigmoid"),
    ],
)
def test_a_bad_schedule_or_k_is_refused(schedule, k, message):
    with pytest.raises(ValueError, match=message):
        check_scheduled_sampling(schedule, k)


def test_the_callback_follows_the_schedule_by_step_and_ends_at_zero():
    model = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(vocab_size=10, embedding_size=4, hidden_size=4))
    callback = ScheduledSamplingCallback("linear", 10)
    for step, probability in [(0, 0.0), (3, 0.3), (12, 1.0)]:
        callback.on_step_begin(None, SimpleNamespace(global_step=step), None, model=model)
        assert model.scheduled_sampling_probability == pytest.approx(probability)
    callback.on_train_end(None, None, None, model=model)
    assert model.scheduled_sampling_probability == 0.0


def test_training_with_scheduled_sampling(tmp_path, monkeypatch):
    """A run with the linear schedule over its 12 steps: the model trains on probabilities 0, 1/8, ... 1 step by
    step, the loss goes down, the saved model does not sample, and the model card names the schedule."""
    probabilities = []
    training_step = trainer.TranslationTrainer.training_step

    def record(self, model, inputs, num_items_in_batch=None):
        probabilities.append(model.scheduled_sampling_probability)
        return training_step(self, model, inputs, num_items_in_batch)

    monkeypatch.setattr(trainer.TranslationTrainer, "training_step", record)
    output_dir = tmp_path / "model"
    main(
        [
            "--train_file",
            str(write_digit_corpus(tmp_path / "train.jsonl", 96, seed=0)),
            "--output_dir",
            str(output_dir),
            "--tokenizer_type",
            "bpe",
            "--vocab_size",
            "100",
            *NO_EVALUATION,
            "--save_strategy",
            "no",
            "--max_steps",
            "12",
            "--per_device_train_batch_size",
            "16",
            "--logging_steps",
            "1",
            "--learning_rate",
            "1e-2",
            "--scheduled_sampling",
            "linear",
            "--scheduled_sampling_k",
            "8",
            *TINY_MODEL,
        ]  # fmt: skip
    )
    assert probabilities == pytest.approx([min(1.0, step / 8) for step in range(12)])
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 12 and losses[-1] < losses[0]
    saved = RNNSeq2SeqForConditionalGeneration.from_pretrained(output_dir)
    assert saved.scheduled_sampling_probability == 0.0
    assert "scheduled_sampling" not in (output_dir / "config.json").read_text()
    assert "scheduled sampling (linear, k=8.0)" in Path(output_dir / "README.md").read_text(encoding="utf-8")


def test_a_bad_k_is_one_line(tmp_path, capsys):
    arguments = ["--train_file", "x", "--output_dir", str(tmp_path), "--scheduled_sampling", "exponential"]
    with pytest.raises(SystemExit, match="error: --scheduled_sampling exponential needs --scheduled_sampling_k"):
        main([*arguments, "--scheduled_sampling_k", "2", *NO_EVALUATION])


def test_scheduled_sampling_with_copy_attention_is_refused_before_training(tmp_path):
    arguments = [
        "--train_file", str(write_digit_corpus(tmp_path / "train.jsonl", 16, seed=0)), "--output_dir",
        str(tmp_path / "model"), "--tokenizer_type", "bpe", "--vocab_size", "100", "--max_steps", "1",
        "--attention", "additive", "--copy_attention", "true", "--scheduled_sampling", "linear",
        "--scheduled_sampling_k", "8", *TINY_MODEL, *NO_EVALUATION,
    ]  # fmt: skip
    with pytest.raises(SystemExit, match=r"^error: --scheduled_sampling does not support --copy_attention models"):
        main(arguments)
    assert not list((tmp_path / "model").glob("checkpoint-*"))
