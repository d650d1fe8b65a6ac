"""The Trainer side of training: batches (sampler, collator), the Trainer subclass, and the metrics it computes
on translations.

`TranslationTrainer` is transformers' Seq2SeqTrainer with four changes: the model smooths labels in its own loss,
length-grouped batches go by target length first and are shuffled reproducibly (a resumed run sees the batches an
unbroken one would), evaluation translates in dataset order, and a NaN loss stops training while the last
checkpoint is still good.
"""

import time
from collections.abc import Callable

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
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..metrics import compute_translation_metrics
from ..modeling.loss import IGNORE_INDEX
from ..tokenization import MIXED_PRECISION_PAD_MULTIPLE


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


def make_collator(
    source_tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, training_args: Seq2SeqTrainingArguments
) -> DataCollatorForSeq2Seq:
    """Pads a batch's sources and labels to its longest (labels with IGNORE_INDEX); under mixed precision to a
    multiple of MIXED_PRECISION_PAD_MULTIPLE, which the padding masks leave without effect on the results."""
    mixed = training_args.bf16 or training_args.fp16
    return DataCollatorForSeq2Seq(
        source_tokenizer,
        model=model,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=MIXED_PRECISION_PAD_MULTIPLE if mixed else None,
    )


def decode(tokenizer: PreTrainedTokenizerBase, token_ids: np.ndarray) -> list[str]:
    """Token ids (padded with IGNORE_INDEX by the Trainer) to text."""
    token_ids = np.where(token_ids == IGNORE_INDEX, tokenizer.pad_token_id, token_ids)
    return [text.strip() for text in tokenizer.batch_decode(token_ids, skip_special_tokens=True)]


def make_compute_metrics(target_tokenizer: PreTrainedTokenizerBase) -> Callable[[EvalPrediction], dict[str, float]]:
    """BLEU and chrF of the generated translations against the decoded labels (for picking checkpoints)."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        hypotheses = decode(target_tokenizer, prediction.predictions)
        references = decode(target_tokenizer, prediction.label_ids)
        return compute_translation_metrics(hypotheses, references)

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


class TranslationTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer that smooths labels in the model's loss, batches reproducibly, translates evaluation data
    in order, stops on a NaN loss and leaves the model card to `model_card`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # With `label_smoothing_factor` the Trainer takes the labels away from the model and smooths over the
        # returned logits: a float32 log-softmax of the whole batch kept for backward, and a mean per batch
        # even under gradient accumulation. The model's own loss smooths by the same formula without keeping
        # any (loss.py) and divides by the tokens of all accumulated batches.
        if not 0.0 <= self.args.label_smoothing_factor < 1.0:
            raise ValueError(f"--label_smoothing_factor must be in [0, 1), got {self.args.label_smoothing_factor}.")
        self.model.config.label_smoothing = self.args.label_smoothing_factor
        self.label_smoother = None

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            dataset = self.train_dataset if train_dataset is None else train_dataset
            lengths = sampler.lengths
            if self.args.length_column_name not in dataset.column_names and "labels" in dataset.column_names:
                lengths = target_first_lengths(dataset)
            return EpochSeededLengthGroupedSampler(sampler.batch_size, lengths, seed)
        return sampler

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
