"""The moving average of the weights (`--ema_decay`, training/ema.py): checkpoints and the final model hold the
average of the weights trained, evaluation scores it, decay 0 is training without it, and a resumed run continues
it bit for bit."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tiny_models import NO_EVALUATION, TINY_MODEL, one_thread, write_digit_corpus

from hf_rnn_seq2seq.training import main
from hf_rnn_seq2seq.training.ema import RAW_WEIGHTS_NAME

WEIGHTS = "model.safetensors"
DECAY = 0.5  # far from the raw weights after a few steps, so that a swap of the two would show
N_EVAL = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("digits")
    return {
        "train": write_digit_corpus(folder / "train.jsonl", 200, seed=0),
        "validation": write_digit_corpus(folder / "validation.jsonl", N_EVAL, seed=1),
    }


def train(corpus: dict[str, Path], output_dir: Path, *options: str) -> dict:
    """Train the tiny model with dropout (resuming must restore the RNG that draws its masks) and return the
    results; `options` come last and win."""
    with one_thread():
        return main(
            [
                "--train_file", str(corpus["train"]),
                "--output_dir", str(output_dir),
                "--tokenizer_type", "bpe",
                "--vocab_size", "100",
                "--per_device_train_batch_size", "16",
                *NO_EVALUATION,
                "--seed", "5",
                "--dropout", "0.3",
                "--logging_steps", "5",
                *TINY_MODEL,
                *options,
            ]
        )  # fmt: skip


def assert_same_weights(weights: dict, expected: dict) -> None:
    assert weights.keys() == expected.keys()
    different = [name for name in expected if not weights[name].equal(expected[name])]
    assert not different, f"not bitwise equal: {different}"


def test_the_weights_trained_are_those_of_a_run_without_average(corpus, tmp_path):
    """The optimizer steps from the raw weights, never from the average: they follow a run without one exactly, and
    with decay 0 the average is them."""
    train(corpus, tmp_path / "plain", "--max_steps", "8")
    plain = load_file(tmp_path / "plain" / WEIGHTS)
    train(corpus, tmp_path / "decay0", "--max_steps", "8", "--ema_decay", "0")
    assert_same_weights(load_file(tmp_path / "decay0" / WEIGHTS), plain)

    averaged = tmp_path / "averaged"
    train(
        corpus, averaged, "--max_steps", "8", "--ema_decay", str(DECAY), "--save_strategy", "steps", "--save_steps", "8"
    )
    assert_same_weights(load_file(averaged / "checkpoint-8" / RAW_WEIGHTS_NAME), plain)
    assert not any(load_file(averaged / WEIGHTS)[name].equal(plain[name]) for name in plain)


def test_checkpoints_evaluation_and_final_model_hold_the_average(corpus, tmp_path):
    output_dir = tmp_path / "run"
    train(
        corpus, output_dir, "--max_steps", "3", "--ema_decay", str(DECAY),
        "--validation_file", str(corpus["validation"]),
        "--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "steps", "--save_steps", "1",
        "--save_total_limit", "3", "--metric_for_best_model", "loss", "--load_best_model_at_end", "true",
        "--num_beams", "1",
    )  # fmt: skip
    checkpoint = {step: output_dir / f"checkpoint-{step}" for step in (1, 2, 3)}
    average = {step: load_file(path / WEIGHTS) for step, path in checkpoint.items()}
    raw = {step: load_file(path / RAW_WEIGHTS_NAME) for step, path in checkpoint.items()}
    for step in (2, 3):  # average_t = d_t * average_{t-1} + (1 - d_t) * raw_t, as computed in training
        d_t = min(DECAY, (1 + step) / (10 + step))  # warming up to DECAY
        expected = {name: average[step - 1][name].lerp(raw[step][name], 1 - d_t) for name in raw[step]}
        assert_same_weights(average[step], expected)
        assert not all(average[step][name].equal(raw[step][name]) for name in raw[step])
    # The best checkpoint, which the run ends with, was picked by the averages' scores, and holds one.
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert_same_weights(load_file(output_dir / WEIGHTS), load_file(Path(state["best_model_checkpoint"]) / WEIGHTS))
    assert f"| weights | exponential moving average, decay {DECAY} " in (output_dir / "README.md").read_text()

    # The losses logged during training are those of the averages: evaluating checkpoint-3 alone gives step 3's.
    history = state["log_history"]
    logged = next(entry["eval_loss"] for entry in history if "eval_loss" in entry and entry["step"] == 3)
    with one_thread():
        alone = main(
            ["--model_name_or_path", str(checkpoint[3]), "--validation_file", str(corpus["validation"]),
             "--output_dir", str(tmp_path / "evaluation"), "--report_to", "none", "--num_beams", "1"]
        )  # fmt: skip
    assert alone["eval_loss"] == pytest.approx(logged, rel=1e-6)


@pytest.mark.parametrize(
    "batching",
    [
        [],
        # the seams with the other training options: batches by tokens, and scheduled sampling's draws
        ["--max_tokens_per_batch", "160", "--scheduled_sampling", "linear", "--scheduled_sampling_k", "20"],
    ],
    ids=["pairs", "tokens-scheduled-sampling"],
)
def test_resumed_run_continues_the_average_bitwise(corpus, tmp_path, batching):
    """20 steps straight, and the same run resumed from its checkpoint-10 (the schedule of the first run,
    max_steps 20, unchanged): the same average and the same raw weights at the end."""
    arguments = ["--max_steps", "20", "--save_strategy", "steps", "--save_steps", "10", "--ema_decay", "0.9"]
    arguments += batching
    straight = tmp_path / "straight"
    train(corpus, straight, *arguments)

    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoint-20")
    (resumed / WEIGHTS).unlink()
    train(corpus, resumed, *arguments, "--resume_from_checkpoint", "last")

    assert_same_weights(load_file(resumed / WEIGHTS), load_file(straight / WEIGHTS))
    for name in (WEIGHTS, RAW_WEIGHTS_NAME):
        assert_same_weights(load_file(resumed / "checkpoint-20" / name), load_file(straight / "checkpoint-20" / name))

    # Resuming it without --ema_decay would train on from the average: refused, naming the decay to give.
    refusal = r"^error: --resume_from_checkpoint .*checkpoint-20: that run averaged its weights; .* --ema_decay 0.9$"
    with pytest.raises(SystemExit, match=refusal):
        train(corpus, straight, "--max_steps", "30", "--resume_from_checkpoint", "last")


@pytest.mark.parametrize("decay", ["1", "-0.1"])
def test_decay_out_of_range_is_one_line(decay, tmp_path):
    with pytest.raises(SystemExit, match=rf"^error: --ema_decay must be in \[0, 1\) .*got {decay}"):
        main(["--train_file", "x", "--output_dir", str(tmp_path), *NO_EVALUATION, "--ema_decay", decay])
