"""Training in 2 processes (CPU, gloo) under torchrun and accelerate launch: both ranks end with the same
weights, and the run matches a single process that sees the same global batch (2 x 8 = 16 pairs); with batches
by tokens, a run resumed mid-epoch ends with the weights of an unbroken one."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tiny_models import NO_EVALUATION, TINY_MODEL, subprocess_environment, write_digit_corpus

PER_DEVICE_BATCH = 8
PROCESSES = 2
# Launchers as a user types them (`torchrun ...`, `accelerate launch ...`), through this interpreter.
LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--nproc_per_node", str(PROCESSES)],
    "accelerate": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(PROCESSES)],
}
# training.main, then each rank saves the weights it ended with as rank<N>.safetensors.
EACH_RANK_SAVES = """
import os, sys
from safetensors.torch import save_file
from hf_rnn_seq2seq.training import run, trainer

train = trainer.TranslationTrainer.train

def train_and_save(self, *args, **kwargs):
    result = train(self, *args, **kwargs)
    weights = {name: tensor.detach().contiguous() for name, tensor in self.model.state_dict().items()}
    save_file(weights, os.path.join(sys.argv[1], f"rank{os.environ.get('RANK', '0')}.safetensors"))
    return result

trainer.TranslationTrainer.train = train_and_save
run.main(sys.argv[2:])
"""


def run(tmp_path: Path, launcher: list[str], output_dir: Path, batch_size: int, *options: str) -> None:
    """Train as `arguments` below say, then `options` (which override them)."""
    script = tmp_path / "each_rank_saves.py"
    script.write_text(EACH_RANK_SAVES)
    corpus = write_digit_corpus(tmp_path / "train.jsonl", 200, seed=0)
    output_dir.mkdir(exist_ok=True)
    arguments = [
        "--train_file", str(corpus),
        "--output_dir", str(output_dir),
        "--tokenizer_type", "bpe",
        "--vocab_size", "100",
        *NO_EVALUATION,
        "--save_strategy", "no",
        "--max_steps", "6",
        "--logging_steps", "1",
        "--dropout", "0",  # dropout masks would differ between 2 x 8 rows and 16
        "--train_sampling_strategy", "sequential",  # rank 0 takes rows 0-7, rank 1 rows 8-15: one batch of 16
        "--per_device_train_batch_size", str(batch_size),
        "--use_cpu", "true",
        *TINY_MODEL,
        *options,
    ]  # fmt: skip
    command = [sys.executable, *launcher, str(script), str(output_dir), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env=subprocess_environment(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def losses(output_dir: Path) -> list[float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


@pytest.fixture(scope="module")
def single_process(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("single")
    run(tmp_path, [], tmp_path / "out", PROCESSES * PER_DEVICE_BATCH)
    return tmp_path / "out"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, single_process, launcher):
    output_dir = tmp_path / "out"
    run(tmp_path, LAUNCHERS[launcher], output_dir, PER_DEVICE_BATCH)

    ranks = [load_file(output_dir / f"rank{rank}.safetensors") for rank in range(PROCESSES)]
    assert all(ranks[0][name].equal(ranks[1][name]) for name in ranks[0]), "the ranks' weights differ"
    single = load_file(single_process / "rank0.safetensors")
    # The same sums in another order (each rank's half, then all-reduce): equal to float32 rounding.
    for name in single:
        assert (ranks[0][name] - single[name]).abs().max() < 1e-5, name
    assert losses(output_dir) == pytest.approx(losses(single_process), rel=1e-6)
    assert len(losses(output_dir)) == 6
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "tokenizer.json").is_file()


@pytest.mark.slow
def test_token_batches_resume_to_the_same_weights_on_every_rank(tmp_path):
    """Each rank takes its own batches of at most 40 tokens, as many as the other (else the all-reduce would wait
    for ever); resumed mid-way through the second epoch, both ranks end where the unbroken run did."""
    options = ["--max_tokens_per_batch", "40", "--max_steps", "20", "--save_strategy", "steps", "--save_steps", "17"]
    unbroken = tmp_path / "unbroken"
    run(tmp_path, LAUNCHERS["torchrun"], unbroken, PER_DEVICE_BATCH, *options)
    assert 1 < json.loads((unbroken / "checkpoint-17" / "trainer_state.json").read_text())["epoch"] < 2

    resumed = tmp_path / "resumed"
    shutil.copytree(unbroken / "checkpoint-17", resumed / "checkpoint-17")
    resume = ["--tokenizer_name", str(unbroken), "--resume_from_checkpoint", "last"]
    run(tmp_path, LAUNCHERS["torchrun"], resumed, PER_DEVICE_BATCH, *options, *resume)
    expected = load_file(unbroken / "rank0.safetensors")
    for rank in range(PROCESSES):
        weights = load_file(resumed / f"rank{rank}.safetensors")
        assert all(weights[name].equal(expected[name]) for name in expected), f"rank {rank}"
