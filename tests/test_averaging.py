"""Checkpoint averaging (`hf_rnn_seq2seq.averaging`, `hf-rnn-seq2seq average`): the mean of the weights, a model
directory that loads and translates, the newest N of a training run, and one line for what cannot be averaged."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import KOREAN, NO_EVALUATION, TINY_MODEL, one_thread, save_tiny_translator, write_digit_corpus

from hf_rnn_seq2seq.averaging import average_checkpoints, average_state_dicts, last_checkpoints
from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.tokenization import TARGET_TOKENIZER_DIR
from hf_rnn_seq2seq.training import main as train
from hf_rnn_seq2seq_cli import EXIT_ERROR
from hf_rnn_seq2seq_cli import main as command

WEIGHTS = "model.safetensors"
SAVE_STEPS, MAX_STEPS = 5, 15  # a run with checkpoints 5, 10 and 15


def mean(*weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: (sum(w[name].double() for w in weights) / len(weights)).float() for name in weights[0]}


def assert_same_weights(weights: dict, expected: dict) -> None:
    assert weights.keys() == expected.keys()
    assert all(weights[name].equal(expected[name]) for name in expected), "not bitwise equal"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny model, and a copy of it with other weights."""
    first = save_tiny_translator(tmp_path_factory.mktemp("first"))
    second = tmp_path_factory.mktemp("models") / "second"
    shutil.copytree(first, second)
    g = torch.Generator().manual_seed(1)
    weights = load_file(second / WEIGHTS)
    save_file({name: w + torch.randn(w.shape, generator=g) for name, w in weights.items()}, second / WEIGHTS)
    return first, second


def test_average_state_dicts_sums_in_float64_keeps_each_type_and_the_last_integers():
    first = {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([1.0, 3.0], dtype=torch.bfloat16), "n": torch.tensor(3)}
    second = {"w": torch.tensor([2.0, 4.0]), "h": torch.tensor([2.0, 3.0], dtype=torch.bfloat16), "n": torch.tensor(5)}
    third = {"w": torch.tensor([1e8, 1.0]), "h": first["h"], "n": torch.tensor(7)}
    average = average_state_dicts([first, second])
    assert average["w"].equal(torch.tensor([1.5, 3.0]))
    assert average["h"].dtype == torch.bfloat16 and average["h"].equal(torch.tensor([1.5, 3.0], dtype=torch.bfloat16))
    assert average["n"].item() == 5  # a counter: the last one's, not a mean
    # float32 sums would lose the small parts beside 1e8; float64 keeps them until the division
    assert average_state_dicts([first, second, third])["w"].equal(torch.tensor([(1 + 2 + 1e8) / 3, 7 / 3]))
    assert first["w"].equal(torch.tensor([1.0, 2.0])), "the inputs are left as they were"
    with pytest.raises(ValueError, match="other tensor names or shapes"):
        average_state_dicts([first, {**second, "w": torch.zeros(3)}])


def test_averaged_directory_holds_the_mean_and_translates(two_models, tmp_path):
    first, second = two_models
    output_dir = average_checkpoints([first, second], tmp_path / "averaged")
    assert_same_weights(load_file(output_dir / WEIGHTS), mean(load_file(first / WEIGHTS), load_file(second / WEIGHTS)))
    # What training leaves: config, generation config, tokenizer, modelling and pipeline code.
    for name in ("config.json", "generation_config.json", "tokenizer.json", "modeling_rnn_seq2seq.py", "pipeline.py"):
        assert (output_dir / name).is_file(), name
    assert json.loads((output_dir / "generation_config.json").read_text()) == json.loads(
        (second / "generation_config.json").read_text()
    )
    with one_thread():
        assert load_translator(output_dir)(KOREAN[0])[0]["translation_text"] is not None

    # The mean of a model and its copy is the model, bit for bit.
    shutil.copytree(first, tmp_path / "copy")
    same = average_checkpoints([first, tmp_path / "copy"], tmp_path / "same")
    assert_same_weights(load_file(same / WEIGHTS), load_file(first / WEIGHTS))


@pytest.fixture(scope="module")
def training_run(tmp_path_factory) -> Path:
    """A training output directory with checkpoints 5, 10 and 15 of a model with separate vocabularies, and a
    checkpoint-20 a crash left half-written."""
    folder = tmp_path_factory.mktemp("run")
    run_dir = folder / "run"
    with one_thread():
        train(
            [
                "--train_file", str(write_digit_corpus(folder / "train.jsonl", 200, seed=0)),
                "--output_dir", str(run_dir),
                "--tokenizer_type", "bpe",
                "--vocab_size", "100",
                "--separate_vocabularies",
                *NO_EVALUATION,
                "--save_strategy", "steps",
                "--save_steps", str(SAVE_STEPS),
                "--max_steps", str(MAX_STEPS),
                "--save_total_limit", "3",
                *TINY_MODEL,
            ]
        )  # fmt: skip
    shutil.copytree(run_dir / "checkpoint-15", run_dir / "checkpoint-20")
    (run_dir / "checkpoint-20" / "trainer_state.json").unlink()  # written last: the save was cut short
    return run_dir


def test_command_averages_the_last_n_checkpoints_of_a_run(training_run, tmp_path, capsys):
    output_dir = tmp_path / "averaged"
    assert command(["average", "--last", "2", str(training_run), "-o", str(output_dir)]) == 0
    assert "averaged 2 checkpoints" in capsys.readouterr().out
    checkpoints = [training_run / "checkpoint-10", training_run / "checkpoint-15"]
    assert last_checkpoints(training_run, 2) == checkpoints  # checkpoint-20 is not complete
    assert_same_weights(load_file(output_dir / WEIGHTS), mean(*(load_file(path / WEIGHTS) for path in checkpoints)))
    # Every checkpoint holds the target tokenizer beside the source one, and so does the average.
    target = (training_run / TARGET_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8")
    for checkpoint in checkpoints:
        assert (checkpoint / TARGET_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8") == target
    assert (output_dir / TARGET_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8") == target
    assert json.loads((output_dir / "config.json").read_text())["use_cache"] is True
    with one_thread():
        translation = load_translator(output_dir)("삼 일 사")[0]["translation_text"]
    assert isinstance(translation, str)

    explicit = tmp_path / "explicit"
    assert command(["average", *map(str, checkpoints), "-o", str(explicit)]) == 0
    assert_same_weights(load_file(explicit / WEIGHTS), load_file(output_dir / WEIGHTS))


def test_checkpoints_without_the_target_tokenizer_take_the_runs(training_run, tmp_path, capsys):
    """Checkpoints an earlier version wrote held the source tokenizer alone: the average takes both from the run's
    folder, even where the two vocabularies have one size (the source one would then pass for the target)."""
    run = shutil.copytree(training_run, tmp_path / "run")
    for checkpoint in run.glob("checkpoint-*"):
        shutil.rmtree(checkpoint / TARGET_TOKENIZER_DIR, ignore_errors=True)
    assert command(["average", "--last", "2", str(run), "-o", str(tmp_path / "averaged")]) == 0
    target = (run / TARGET_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8")
    assert (tmp_path / "averaged" / TARGET_TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8") == target
    capsys.readouterr()


def edited_tokenizer(model_dir: Path, copy: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of `model_dir` whose tokenizer.json's model `edit` changes."""
    shutil.copytree(model_dir, copy)
    tokenizer = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    edit(tokenizer["model"])
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    return copy


def swap_last_two(model: dict) -> None:
    """Two tokens get each other's ids: same sizes, other vocabulary."""
    model["vocab"][-1], model["vocab"][-2] = model["vocab"][-2], model["vocab"][-1]


def toggle_byte_fallback(model: dict) -> None:
    """The same vocabulary, but unseen characters encoded otherwise (as bytes, or <unk>)."""
    model["byte_fallback"] = not model["byte_fallback"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("one", "averaging needs at least 2 checkpoints, got 1"),
        ("missing", "nope: no such checkpoint directory"),
        ("twice", "is given twice"),
        ("architecture", "are different models (encoder_hidden_size 8 and 12, hidden_size 16 and 24)"),
        ("vocabulary", "have different tokenizers"),
        ("byte fallback", "have different tokenizers"),
        ("half-written", "checkpoint-20: not completely written"),
        ("too many", "--last 4: "),
        ("into a checkpoint", "is one of the checkpoints"),
        ("last with two folders", "--last 2 takes one training output directory, got 2"),
    ],
)
def test_what_cannot_be_averaged_is_one_line(case, message, two_models, training_run, tmp_path, capsys):
    first, second = map(str, two_models)
    output = str(tmp_path / "out")
    argv = {
        "one": [first, "-o", output],
        "missing": [first, str(tmp_path / "nope"), "-o", output],
        "twice": [first, second, first, "-o", output],
        "architecture": [first, str(save_tiny_translator(tmp_path / "wider", hidden_size=24)), "-o", output],
        "vocabulary": [first, str(edited_tokenizer(Path(first), tmp_path / "swapped", swap_last_two)), "-o", output],
        "byte fallback": [
            first,
            str(edited_tokenizer(Path(first), tmp_path / "bytes", toggle_byte_fallback)),
            "-o",
            output,
        ],
        "half-written": [str(training_run / "checkpoint-15"), str(training_run / "checkpoint-20"), "-o", output],
        "too many": ["--last", "4", str(training_run), "-o", output],
        "into a checkpoint": [first, second, "-o", second],
        "last with two folders": ["--last", "2", first, second, "-o", output],
    }[case]
    with one_thread():
        assert command(["average", *argv]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert err.startswith("hf-rnn-seq2seq average: error: ")
    assert not (tmp_path / "out").exists()


def test_copy_and_coverage_models_average_every_parameter(tmp_path):
    """The pointer-generator's gate and coverage's weight are averaged like the rest; a coverage loss weight that
    differs (a training setting, as label smoothing) does not make two checkpoints different models."""
    first = save_tiny_translator(tmp_path / "first", attention="additive", copy_attention=True, coverage=True)
    second = tmp_path / "second"
    shutil.copytree(first, second)
    config = json.loads((second / "config.json").read_text())
    (second / "config.json").write_text(json.dumps(config | {"coverage_loss_weight": 0.5}))
    weights = load_file(second / WEIGHTS)
    save_file({name: w + 1.0 for name, w in weights.items()}, second / WEIGHTS)
    output_dir = average_checkpoints([first, second], tmp_path / "averaged")
    averaged = load_file(output_dir / WEIGHTS)
    assert any("copy_gate" in name for name in averaged) and any("coverage_weight" in name for name in averaged)
    assert_same_weights(averaged, mean(load_file(first / WEIGHTS), load_file(second / WEIGHTS)))
    with one_thread():
        assert load_translator(output_dir)(KOREAN[0])[0]["translation_text"] is not None
