"""Length-grouped training batches go by target length first: the Decoder steps through every padded target
position of a batch, and transformers would group by the source length alone."""

import random

from datasets import Dataset
from transformers import Seq2SeqTrainingArguments

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.training.trainer import EpochSeededLengthGroupedSampler, TranslationTrainer, target_first_lengths

BATCH = 8


def pairs_of_unrelated_lengths(n: int = 160) -> Dataset:
    rng = random.Random(0)
    lengths = [(rng.randint(1, 20), rng.randint(1, 20)) for _ in range(n)]
    return Dataset.from_dict(
        {"input_ids": [[5] * source for source, _ in lengths], "labels": [[5] * target for _, target in lengths]}
    )


def padded_target_positions(dataset: Dataset, batches: list[list[int]]) -> int:
    return sum(len(batch) * max(len(dataset[i]["labels"]) for i in batch) for batch in batches)


def batches_of(sampler) -> list[list[int]]:
    order = list(sampler)
    return [order[start : start + BATCH] for start in range(0, len(order), BATCH)]


def test_keys_order_pairs_by_target_then_source_length():
    dataset = pairs_of_unrelated_lengths()
    keys = target_first_lengths(dataset)
    by_key = sorted(range(len(dataset)), key=lambda i: (keys[i], i))
    by_lengths = sorted(range(len(dataset)), key=lambda i: (len(dataset[i]["labels"]), len(dataset[i]["input_ids"]), i))
    assert by_key == by_lengths


def test_the_trainer_groups_by_target_length(tmp_path):
    """Fewer padded target positions than transformers' grouping by source length, every pair still once."""
    dataset = pairs_of_unrelated_lengths()
    model = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(vocab_size=10, embedding_size=4, hidden_size=4))
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=BATCH, use_cpu=True, report_to=[]
    )  # train_sampling_strategy: group_by_length, the training command's default
    args.train_sampling_strategy = "group_by_length"
    sampler = TranslationTrainer(model=model, args=args, train_dataset=dataset)._get_train_sampler()
    assert isinstance(sampler, EpochSeededLengthGroupedSampler)
    ours = batches_of(sampler)
    by_source = batches_of(
        EpochSeededLengthGroupedSampler(BATCH, [len(ids) for ids in dataset["input_ids"]], seed=args.seed)
    )
    assert sorted(i for batch in ours for i in batch) == list(range(len(dataset)))
    assert padded_target_positions(dataset, ours) < 0.8 * padded_target_positions(dataset, by_source)
