"""The Trainer side of training: batches (samplers, collator), the Trainer subclass, scheduled sampling, and the
metrics it computes on translations.

`TranslationTrainer` is transformers' Seq2SeqTrainer with six changes: the model smooths labels in its own loss,
length-grouped batches go by target length first and are shuffled reproducibly (a resumed run sees the batches an
unbroken one would), batches can hold a number of tokens rather than of pairs, evaluation translates in dataset
order, a NaN loss stops training while the last checkpoint is still good, and with `--ema_decay` a moving average of
the weights is what gets evaluated and saved (`ema`).
"""

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from datasets import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    EvalPrediction,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    TrainerCallback,
)
from transformers.trainer_pt_utils import BatchRebalanceSampler, LengthGroupedSampler

from ..errors import DataError
from ..metrics import TASK_METRICS, score_texts
from ..modeling.loss import IGNORE_INDEX
from ..tokenization import MIXED_PRECISION_PAD_MULTIPLE, save_target_tokenizer
from .ema import ExponentialMovingAverage, check_resumable


class NonFiniteLossError(ArithmeticError):
    """The training loss became NaN or infinite: the weights are no longer usable."""


class TimeLimitCallback(TrainerCallback):
    """Ends training at the first step after `minutes` of training, evaluating and saving at that step (as at the
    end of an epoch), so that the best checkpoint is picked from all that was trained."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.start = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.start >= self.seconds:
            control.should_training_stop = True
            control.should_evaluate = args.eval_strategy != "no"
            control.should_save = args.save_strategy != "no"
        return control


# Scheduled sampling (Bengio et al., 2015): the probability of feeding the Decoder its own prediction at optimizer
# step i, which is 1 - ε_i in the paper (ε_i being the probability of the gold token), for a parameter k.
SCHEDULED_SAMPLING: dict[str, Callable[[int, float], float]] = {
    "linear": lambda i, k: min(1.0, i / k),  # 0 at step 0, rising to 1 at step k
    "exponential": lambda i, k: 1.0 - k**i,  # 0 < k < 1
    "inverse_sigmoid": lambda i, k: 1.0 / (1.0 + k * math.exp(-i / k)),  # k >= 1; 1/(1+k) at step 0, 1/2 at k ln k
}
# The k each schedule takes, as (description, test).
SCHEDULED_SAMPLING_K: dict[str, tuple[str, Callable[[float], bool]]] = {
    "linear": ("positive (the steps until every token is the model's own)", lambda k: k > 0),
    "exponential": ("between 0 and 1 (the gold tokens' share decays as k^step)", lambda k: 0 < k < 1),
    "inverse_sigmoid": ("at least 1 (larger is slower)", lambda k: k >= 1),
}


def check_scheduled_sampling(schedule: str, k: float | None) -> None:
    """Refuse an unknown schedule or a k it cannot take, saying what to change."""
    if schedule not in SCHEDULED_SAMPLING:
        raise ValueError(f"--scheduled_sampling must be one of {', '.join(SCHEDULED_SAMPLING)}, got {schedule!r}")
    description, valid = SCHEDULED_SAMPLING_K[schedule]
    if k is None or not valid(k):
        raise ValueError(f"--scheduled_sampling {schedule} needs --scheduled_sampling_k {description}, got {k}")


class ScheduledSamplingCallback(TrainerCallback):
    """Sets the model's `scheduled_sampling_probability` from the schedule before every optimizer step (from the
    step count, so a resumed run goes on where it stopped), and back to 0 when training ends."""

    def __init__(self, schedule: str, k: float):
        check_scheduled_sampling(schedule, k)
        self.probability = SCHEDULED_SAMPLING[schedule]
        self.k = k

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        model.scheduled_sampling_probability = self.probability(state.global_step, self.k)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        model.scheduled_sampling_probability = 0.0


def padding_multiple(training_args: Seq2SeqTrainingArguments) -> int | None:
    """What the collator pads lengths to a multiple of: MIXED_PRECISION_PAD_MULTIPLE under mixed precision."""
    return MIXED_PRECISION_PAD_MULTIPLE if training_args.bf16 or training_args.fp16 else None


def make_collator(
    source_tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, training_args: Seq2SeqTrainingArguments
) -> DataCollatorForSeq2Seq:
    """Pads a batch's sources and labels to its longest (labels with IGNORE_INDEX); under mixed precision to a
    multiple of MIXED_PRECISION_PAD_MULTIPLE, which the padding masks leave without effect on the results."""
    return DataCollatorForSeq2Seq(
        source_tokenizer,
        model=model,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=padding_multiple(training_args),
    )


def decode(tokenizer: PreTrainedTokenizerBase, token_ids: np.ndarray) -> list[str]:
    """Token ids (padded with IGNORE_INDEX by the Trainer) to text."""
    token_ids = np.where(token_ids == IGNORE_INDEX, tokenizer.pad_token_id, token_ids)
    return [text.strip() for text in tokenizer.batch_decode(token_ids, skip_special_tokens=True)]


def make_compute_metrics(
    target_tokenizer: PreTrainedTokenizerBase,
    metrics: tuple[str, ...] = TASK_METRICS["translation"],
    rouge_tokenizer: str = "default",
) -> Callable[[EvalPrediction], dict[str, float]]:
    """The `metrics` (`score_texts`'s groups: BLEU, chrF, ROUGE, ...) of the generated texts against the decoded
    labels (for picking checkpoints)."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        hypotheses = decode(target_tokenizer, prediction.predictions)
        references = decode(target_tokenizer, prediction.label_ids)
        return score_texts(hypotheses, references, metrics, rouge_tokenizer)[0]

    return compute_metrics


def target_first_lengths(dataset: Dataset) -> list[int]:
    """Sort keys for length-grouped batches: each pair's target length, then its source length to break ties.

    transformers groups by the source length alone (`input_ids`), but the Decoder steps through, and the Generator
    scores, every padded target position of a batch, while the Encoder packs its sources: grouped by source length,
    32% of Multi30k's target positions in a batch of 64 are padding, against 3% grouped this way
    (bench/DESIGN.md)."""
    source_lengths = [len(ids) for ids in dataset["input_ids"]]
    stride = max(source_lengths, default=0) + 1
    return [len(labels) * stride + length for labels, length in zip(dataset["labels"], source_lengths)]


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches shuffled by a generator seeded with (seed, epoch) rather than by the global RNG.

    The Trainer restores the global RNG from a checkpoint only after the resumed epoch's shuffle has been drawn,
    so with the global RNG a run resumed in a later epoch would see its batches in another order than the run
    it continues, and end with other weights. The Trainer calls `set_epoch` before each epoch.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed + epoch)


class TokenBatchSampler(BatchRebalanceSampler):
    """Batches of as many pairs as fit in `max_tokens` tokens a side, padding included (fairseq's --max-tokens):
    the batch size times its longest source, and times its longest target, are each at most `max_tokens`. Each
    process (`rank` of `num_replicas`) takes its own batches, and every process the same number of them.

    The pairs are sorted by length (the longer side's, as the collator pads it) and cut into batches in that
    order, so a batch holds pairs of about one length and little padding. Since the cuts depend only on the
    lengths, every epoch has the same number of batches; a generator seeded with (seed, epoch), not the global
    RNG, orders pairs of equal length and then the batches, so a resumed run sees the batches an unbroken one
    would. Every pair is in exactly one batch of every epoch: the count of batches is made a multiple of
    `num_replicas` by halving the largest batches, never by repeating or leaving out pairs.

    A subclass of BatchRebalanceSampler for how the Trainer treats one (transformers 5.25, `_get_dataloader`):
    it hands the sampler to the DataLoader as its batch sampler, and keeps accelerate from sharding its batches
    among the processes a second time. Nothing else is inherited.
    """

    def __init__(
        self,
        source_lengths: list[int],
        target_lengths: list[int],
        max_tokens: int,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        pad_to_multiple_of: int | None = None,
    ):
        multiple = pad_to_multiple_of or 1
        sizes = np.maximum(source_lengths, target_lengths)
        sizes = -(-sizes // multiple) * multiple  # (n_pairs,) the longer side, padded as the collator pads it
        if (sizes > max_tokens).any():
            pair = int(np.argmax(sizes > max_tokens))
            raise DataError(
                f"training pair {pair + 1} (counting those within the length limits) has {source_lengths[pair]} "
                f"source and {target_lengths[pair]} target tokens"
                f"{' (padded to a multiple of ' + str(multiple) + ')' if multiple > 1 else ''}, more than "
                f"--max_tokens_per_batch {max_tokens}: raise it to at least {sizes[pair]}, or lower "
                "--max_source_length/--max_target_length to leave such pairs out"
            )
        self.sizes = sizes
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.bounds = self._cut(np.sort(sizes, kind="stable"), max_tokens)
        self.set_epoch(0)

    def _cut(self, sorted_sizes: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
        """(start, end) of each batch in the length order: the longest runs within the budget, then the largest
        halved until every process gets as many."""
        bounds, start = [], 0
        for end, size in enumerate(sorted_sizes):
            if (end + 1 - start) * size > max_tokens:  # with pair `end` (the batch's longest) it would not fit
                bounds.append((start, end))
                start = end
        if start < len(sorted_sizes):
            bounds.append((start, len(sorted_sizes)))
        while len(bounds) % self.num_replicas:
            largest = max(range(len(bounds)), key=lambda b: bounds[b][1] - bounds[b][0])
            start, end = bounds[largest]
            if end - start < 2:
                raise DataError(
                    f"{len(sorted_sizes)} training pairs are too few to give each of {self.num_replicas} processes "
                    "the same number of batches: use fewer processes or more data"
                )
            bounds[largest : largest + 1] = [(start, (start + end) // 2), ((start + end) // 2, end)]
        return bounds

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        shuffled = torch.randperm(len(self.sizes), generator=generator).numpy()
        # Sorting shuffled pairs stably by length: equal lengths in a new order every epoch.
        by_length = shuffled[np.argsort(self.sizes[shuffled], kind="stable")]
        batch_order = torch.randperm(len(self.bounds), generator=generator).tolist()
        for batch in batch_order[self.rank :: self.num_replicas]:
            start, end = self.bounds[batch]
            yield by_length[start:end].tolist()

    def __len__(self) -> int:
        return len(self.bounds) // self.num_replicas


class TranslationTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer that smooths labels in the model's loss, batches reproducibly (by pairs, or by tokens with
    `max_tokens_per_batch`), translates evaluation data in order, stops on a NaN loss, averages the weights if
    asked and leaves the model card to `model_card`."""

    def __init__(
        self,
        *args,
        max_tokens_per_batch: int | None = None,
        target_tokenizer: PreTrainedTokenizerBase | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        # A separate target vocabulary goes into every checkpoint beside the source one (`processing_class`, which
        # the Trainer saves), so that a checkpoint, or an average of checkpoints, decodes with the right one.
        self.target_tokenizer = target_tokenizer or self.processing_class
        # With `label_smoothing_factor` the Trainer takes the labels away from the model and smooths over the
        # returned logits: a float32 log-softmax of the whole batch kept for backward, and a mean per batch
        # even under gradient accumulation. The model's own loss smooths by the same formula without keeping
        # any (loss.py) and divides by the tokens of all accumulated batches.
        if not 0.0 <= self.args.label_smoothing_factor < 1.0:
            raise ValueError(f"--label_smoothing_factor must be in [0, 1), got {self.args.label_smoothing_factor}.")
        self.model.config.label_smoothing = self.args.label_smoothing_factor
        self.label_smoother = None
        # --ema_decay (RNNTrainingArguments; plain Seq2SeqTrainingArguments have none): the callback keeps the
        # average in the model between optimizer steps, and its raw weights go with the optimizer's state.
        ema_decay = getattr(self.args, "ema_decay", None)
        self.weight_average = None if ema_decay is None else ExponentialMovingAverage(ema_decay)
        if self.weight_average is not None:
            self.add_callback(self.weight_average)
        # Made here, not when training starts, so that a pair over the budget is reported before any training.
        self.token_batches = None
        if max_tokens_per_batch is not None and self.train_dataset is not None:
            self.token_batches = TokenBatchSampler(
                [len(ids) for ids in self.train_dataset["input_ids"]],
                [len(ids) for ids in self.train_dataset["labels"]],
                max_tokens_per_batch,
                self.args.data_seed if self.args.data_seed is not None else self.args.seed,
                num_replicas=self.args.world_size,
                rank=self.args.process_index,
                pad_to_multiple_of=padding_multiple(self.args),
            )

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        if self.token_batches is not None:
            return self.token_batches
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            dataset = self.train_dataset if train_dataset is None else train_dataset
            lengths = sampler.lengths
            if self.args.length_column_name not in dataset.column_names and "labels" in dataset.column_names:
                lengths = target_first_lengths(dataset)
            return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths, seed)
        return sampler

    def get_resumed_dataloader(self, dataloader, num_batches: int):
        resumed = super().get_resumed_dataloader(dataloader, num_batches)
        if self.token_batches is not None:
            # accelerate skips the batches trained with a SkipBatchSampler around ours, and with several processes
            # around the BatchSamplerShard around ours, which does not pass on the epoch the Trainer then sets: the
            # resumed epoch would be ordered as epoch 0 (test_distributed.py).
            resumed.batch_sampler.set_epoch = self.token_batches.set_epoch
        return resumed

    def _get_eval_sampler(self, eval_dataset: Dataset) -> None:
        # `train_sampling_strategy="group_by_length"` would shuffle evaluation batches too; the translations must
        # come back in dataset order to be paired with their sources. No sampler: the DataLoader's sequential
        # order, which accelerate shards and gathers back in order when distributed.
        return None

    def evaluation_loop(self, *args, **kwargs):
        # Seq2SeqTrainer gathers with `accelerator.gather`, which keeps the samples a distributed run repeats to
        # even out its last batch: the metrics would count them twice and the translations would not line up
        # with the sources. `gather_for_metrics` (the Trainer's own choice) drops them.
        self.gather_function = self.accelerator.gather_for_metrics
        return super().evaluation_loop(*args, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)  # the model and the source tokenizer, on the process that writes
        if self.args.should_save and self.processing_class is not None:
            save_target_tokenizer(self.processing_class, self.target_tokenizer, output_dir or self.args.output_dir)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        # Here, not in a callback's on_save: that comes after trainer_state.json, which is written last so that a
        # checkpoint that has it is complete (checkpoints.py), raw weights included.
        if self.weight_average is not None and self.args.should_save:
            self.weight_average.save(output_dir)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        check_resumable(checkpoint, getattr(self.args, "ema_decay", None))
        if self.weight_average is not None:
            self.weight_average.load(checkpoint, self.model)

    def _issue_warnings_after_load(self, load_result) -> None:
        # A tied Generator weight is not saved (it is the Decoder embedding, which is): the Trainer would report it
        # as missing from every checkpoint it loads (the best one at the end, one to resume from), though nothing is
        # lost. transformers#27972: it compares with `_keys_to_ignore_on_save`, not with the tied weights.
        tied = getattr(self.model, "all_tied_weights_keys", None) or {}
        missing = [key for key in load_result.missing_keys if key not in tied]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        # The Trainer would go on (its `logging_nan_inf_filter` even hides the NaN from the logs) and the
        # weights would turn to NaN at the optimizer step: stop before it, while the last checkpoint is good.
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1} (lower --learning_rate "
                "or --max_grad_norm, or look for broken pairs in the data)"
            )
        return loss

    def create_model_card(self, **kwargs) -> None:
        # push_to_hub() would overwrite README.md with the Trainer's generic draft; ours has the scores.
        pass
