"""Token-based batching (--max_tokens_per_batch): every batch within the budget with its padding, every pair once
per epoch, the same batches after a resume, and as many batches on every process."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_models import NO_EVALUATION, TINY_MODEL, write_digit_corpus

from hf_rnn_seq2seq.errors import DataError
from hf_rnn_seq2seq.training import main, trainer
from hf_rnn_seq2seq.training.trainer import TokenBatchSampler

MAX_TOKENS = 40


def random_lengths(n: int, seed: int = 0) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 20, n).tolist(), rng.integers(1, 20, n).tolist()


def padded_sizes(batch: list[int], source: list[int], target: list[int], multiple: int = 1) -> tuple[int, int]:
    """Tokens of a batch's padded source and target, as the collator pads them."""

    def padded(lengths: list[int]) -> int:
        longest = max(lengths[i] for i in batch)
        return len(batch) * (-(-longest // multiple) * multiple)

    return padded(source), padded(target)


@pytest.mark.parametrize("multiple", [1, 8])
def test_every_batch_fits_the_budget_with_its_padding(multiple):
    source, target = random_lengths(500)
    sampler = TokenBatchSampler(source, target, MAX_TOKENS, seed=0, pad_to_multiple_of=multiple)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    used = [max(padded_sizes(batch, source, target, multiple)) for batch in batches]
    assert max(used) <= MAX_TOKENS
    # Pairs of about one length together: the batches use most of the budget on real tokens or little padding.
    assert np.mean(used) > 0.6 * MAX_TOKENS


def test_every_pair_once_per_epoch_in_a_new_order_each_epoch():
    source, target = random_lengths(300)
    sampler = TokenBatchSampler(source, target, MAX_TOKENS, seed=0)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(i for batch in batches for i in batch) == list(range(300))
        assert len(batches) == len(sampler)  # the same number every epoch: the Trainer counts steps once
        epochs.append(batches)
    assert epochs[0] != epochs[1] != epochs[2]
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1]  # a function of (seed, epoch) only: what a resumed run sees
    assert list(TokenBatchSampler(source, target, MAX_TOKENS, seed=1)) != epochs[0]


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_each_process_its_own_batches_and_as_many_as_the_others(processes):
    source, target = random_lengths(301)
    ranks = [TokenBatchSampler(source, target, MAX_TOKENS, 0, processes, rank) for rank in range(processes)]
    for sampler in ranks:
        sampler.set_epoch(2)
    batches = [list(sampler) for sampler in ranks]
    assert len({len(sampler) for sampler in ranks}) == 1
    assert [len(rank_batches) for rank_batches in batches] == [len(ranks[0])] * processes
    every_pair = sorted(i for rank_batches in batches for batch in rank_batches for i in batch)
    assert every_pair == list(range(301))
    assert all(max(padded_sizes(b, source, target)) <= MAX_TOKENS for rank_batches in batches for b in rank_batches)


def test_too_few_pairs_for_the_processes_is_one_clear_error():
    with pytest.raises(DataError, match="too few to give each of 4 processes"):
        TokenBatchSampler([3, 3, 3], [3, 3, 3], MAX_TOKENS, 0, num_replicas=4)


def test_a_pair_longer_than_the_budget_is_an_error_not_dropped():
    with pytest.raises(DataError, match=r"training pair 3 \(.*\) has 5 source and 41 target tokens.* at least 41"):
        TokenBatchSampler([3, 4, 5, 2], [3, 4, 41, 2], MAX_TOKENS, 0)
    with pytest.raises(DataError, match=r"padded to a multiple of 8.*at least 48"):
        TokenBatchSampler([3, 41], [3, 4], 47, 0, pad_to_multiple_of=8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_digit_corpus(tmp_path_factory.mktemp("digits") / "train.jsonl", 200, seed=0)


def arguments(corpus: Path, output_dir: Path, *options: str) -> list[str]:
    return [
        "--train_file", str(corpus),
        "--output_dir", str(output_dir),
        "--tokenizer_type", "bpe",
        "--vocab_size", "100",
        *NO_EVALUATION,
        "--max_tokens_per_batch", str(MAX_TOKENS),
        "--logging_steps", "1",
        *TINY_MODEL,
        *options,
    ]  # fmt: skip


def test_training_batches_stay_within_the_budget(corpus, tmp_path, monkeypatch):
    shapes = []
    training_step = trainer.TranslationTrainer.training_step

    def record(self, model, inputs, num_items_in_batch=None):
        shapes.append((tuple(inputs["input_ids"].shape), tuple(inputs["labels"].shape)))
        return training_step(self, model, inputs, num_items_in_batch)

    monkeypatch.setattr(trainer.TranslationTrainer, "training_step", record)
    main(arguments(corpus, tmp_path / "model", "--num_train_epochs", "1", "--save_strategy", "no"))
    assert len(shapes) > 200 // MAX_TOKENS  # more than one batch of pairs of at most MAX_TOKENS tokens
    for (pairs, source_len), (label_pairs, target_len) in shapes:
        assert pairs == label_pairs
        assert pairs * source_len <= MAX_TOKENS and pairs * target_len <= MAX_TOKENS
    assert sum(pairs for (pairs, _), _ in shapes) == 200  # the epoch saw every pair once


@pytest.mark.parametrize(
    "extra",
    [(), ("--scheduled_sampling", "linear", "--scheduled_sampling_k", "60")],
    ids=["teacher-forcing", "scheduled-sampling"],
)
def test_a_resumed_run_ends_with_the_same_weights(corpus, tmp_path, extra):
    """Resumed mid-epoch after the first epoch: the resumed epoch's batches are those of the unbroken run (and
    with scheduled sampling, its coin flips at p = 0.6 to 0.73: the Trainer restores the RNG they come from)."""
    options = ("--max_steps", "44", "--save_strategy", "steps", "--save_steps", "36", "--save_total_limit", "3", *extra)
    unbroken = tmp_path / "unbroken"
    main(arguments(corpus, unbroken, *options))
    state = json.loads((unbroken / "checkpoint-36" / "trainer_state.json").read_text())
    assert 1 < state["epoch"] < 2  # mid-way through the second epoch

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(unbroken / "checkpoint-36", resumed / "checkpoint-36")
    main(arguments(corpus, resumed, *options, "--tokenizer_name", str(unbroken), "--resume_from_checkpoint", "last"))
    weights = "checkpoint-44/model.safetensors"
    assert (resumed / weights).read_bytes() == (unbroken / weights).read_bytes()


def test_a_pair_over_the_budget_stops_training_before_it_starts_in_one_line(corpus, tmp_path):
    with pytest.raises(
        SystemExit, match=r"^error: training pair \d+ \(.*\) has \d+ source and \d+ target tokens"
    ) as stop:
        main(arguments(corpus, tmp_path / "model", "--max_tokens_per_batch", "4"))
    assert "\n" not in str(stop.value.code)
    assert not (tmp_path / "model" / "checkpoint-1").exists()
    with pytest.raises(SystemExit, match="^error: --max_tokens_per_batch must be positive, got 0$"):
        main(arguments(corpus, tmp_path / "model", "--max_tokens_per_batch", "0"))
