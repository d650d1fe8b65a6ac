"""Faults during training: killed runs resume to the same weights, a full disk or unwritable folder is reported
before it costs work, and a NaN loss stops training with the step it happened at."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import transformers
from safetensors.torch import load_file
from tiny_models import NO_EVALUATION, TINY_MODEL, subprocess_environment, write_digit_corpus

from hf_rnn_seq2seq.training import checkpoints, main

MAX_STEPS = 30
SAVE_STEPS = 10

# Runs `training.main` with the arguments after the first two, killing itself with SIGKILL when the Trainer's
# global step is `kill_step` and it reaches `where`: "saving" (the checkpoint's weights and optimizer are on
# disk, its RNG states and trainer_state.json not yet) or "training" (inside a training step).
KILLED_RUN = """
import os, signal, sys
import transformers
from hf_rnn_seq2seq.training import run, trainer

kill_step, where = int(sys.argv[1]), sys.argv[2]

def killing(method):
    def wrapped(self, *args, **kwargs):
        if self.state.global_step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        return method(self, *args, **kwargs)
    return wrapped

if where == "saving":
    transformers.Trainer._save_rng_state = killing(transformers.Trainer._save_rng_state)
else:
    trainer.TranslationTrainer.training_step = killing(trainer.TranslationTrainer.training_step)
run.main(sys.argv[3:])
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_digit_corpus(tmp_path_factory.mktemp("digits") / "train.jsonl", 600, seed=0)


def training_arguments(corpus: Path, output_dir: Path) -> list[str]:
    return [
        "--train_file", str(corpus),
        "--output_dir", str(output_dir),
        "--tokenizer_type", "bpe",
        "--vocab_size", "100",
        "--per_device_train_batch_size", "32",
        *NO_EVALUATION,
        "--save_strategy", "steps",
        "--save_steps", str(SAVE_STEPS),
        "--save_total_limit", "2",
        "--max_steps", str(MAX_STEPS),
        "--logging_steps", "5",
        "--seed", "7",
        "--dropout", "0.3",  # resuming must restore the RNG that draws the dropout masks
        *TINY_MODEL,
    ]  # fmt: skip


def run(*arguments: str) -> subprocess.CompletedProcess:
    """A training process; every run in a comparison is a fresh one, so that all start from the same state."""
    command = [sys.executable, "-c", KILLED_RUN, *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=subprocess_environment(), timeout=600)


def trained(corpus: Path, output_dir: Path) -> dict:
    result = run("-1", "never", *training_arguments(corpus, output_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return load_file(output_dir / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> dict:
    return trained(corpus, tmp_path_factory.mktemp("uninterrupted"))


def assert_same_weights(weights: dict, expected: dict) -> None:
    assert weights.keys() == expected.keys()
    different = [name for name in expected if not weights[name].equal(expected[name])]
    assert not different, f"not bitwise equal: {different}"


@pytest.mark.slow
@pytest.mark.parametrize(("kill_step", "where"), [(20, "saving"), (25, "training")])
def test_killed_run_resumes_to_the_same_weights(corpus, uninterrupted, tmp_path, kill_step, where):
    output_dir = tmp_path / "run"
    killed = run(str(kill_step), where, *training_arguments(corpus, output_dir))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (output_dir / "model.safetensors").exists()
    if where == "saving":  # the half-written checkpoint is there, and not complete
        assert (output_dir / "checkpoint-20").is_dir() and not checkpoints.is_complete(output_dir / "checkpoint-20")

    resumed = run("-1", "never", *training_arguments(corpus, output_dir), "--resume_from_checkpoint", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if where == "saving":
        assert "checkpoint-20 was not completely written" in resumed.stdout + resumed.stderr
        assert (output_dir / "incomplete-checkpoint-20").is_dir()
    assert_same_weights(load_file(output_dir / "model.safetensors"), uninterrupted)
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS


@pytest.mark.slow
def test_kill_at_a_random_moment(corpus, uninterrupted, tmp_path):
    """SIGKILL from outside, at a moment after the first checkpoint that the test does not choose."""
    output_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, "-1", "never", *training_arguments(corpus, output_dir)],
        env=subprocess_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not (output_dir / f"checkpoint-{SAVE_STEPS}").exists() and process.poll() is None:
        time.sleep(0.01)
    time.sleep(random.uniform(0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait()

    resumed = run("-1", "never", *training_arguments(corpus, output_dir), "--resume_from_checkpoint", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(load_file(output_dir / "model.safetensors"), uninterrupted)


def test_incomplete_checkpoint_named_explicitly_is_refused(corpus, tmp_path):
    half_written = tmp_path / "run" / "checkpoint-20"
    half_written.mkdir(parents=True)
    (half_written / "model.safetensors").write_bytes(b"")
    with pytest.raises(SystemExit, match="checkpoint-20: this checkpoint was not completely written"):
        main([*training_arguments(corpus, tmp_path / "run"), "--resume_from_checkpoint", str(half_written)])
    with pytest.raises(SystemExit, match="no complete checkpoint-\\* folder"):
        main([*training_arguments(corpus, tmp_path / "run"), "--resume_from_checkpoint", "last"])


def test_disk_full_while_saving_keeps_the_last_checkpoint(corpus, tmp_path, monkeypatch):
    output_dir = tmp_path / "run"
    save = transformers.Trainer._save_optimizer_and_scheduler

    def disk_full_at_step_20(self, directory):
        if self.state.global_step == 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)
        save(self, directory)

    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", disk_full_at_step_20)
    with pytest.raises(SystemExit) as stopped:
        main(training_arguments(corpus, output_dir))
    message = str(stopped.value)
    assert message.startswith("error: [Errno 28] No space left on device")
    assert "checkpoint-10: fix the cause and rerun with --resume_from_checkpoint last" in message
    assert checkpoints.is_complete(output_dir / "checkpoint-10")
    assert not (output_dir / "model.safetensors").exists()  # no final model presented as if training finished

    monkeypatch.undo()
    main([*training_arguments(corpus, output_dir), "--resume_from_checkpoint", "last"])
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == MAX_STEPS


def test_output_dir_that_cannot_be_written_is_refused_before_training(corpus, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(SystemExit, match=r"^error: --output_dir .*file/out: cannot write there \(Not a directory\)"):
        main(training_arguments(corpus, a_file / "out"))


def test_too_little_disk_space_is_refused_before_training(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: SimpleNamespace(total=10**9, used=10**9, free=0))
    with pytest.raises(SystemExit, match=r"^error: --output_dir .*: 0 MB free, but a checkpoint of this model"):
        main(training_arguments(corpus, tmp_path / "run"))
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_nan_loss_stops_training_with_the_step(corpus, tmp_path):
    output_dir = tmp_path / "run"
    # A learning rate this large sends the weights to infinity in the first update: the loss of step 2 is NaN.
    with pytest.raises(SystemExit) as stopped:
        main([*training_arguments(corpus, output_dir), "--learning_rate", "1e38", "--max_grad_norm", "0"])
    assert str(stopped.value).startswith("error: the training loss became nan at step 2 (lower --learning_rate")
    assert "no checkpoint was completed" in str(stopped.value)
    assert not (output_dir / "model.safetensors").exists()
