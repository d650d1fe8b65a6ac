"""The loss under transformers' Trainer: gradient accumulation gives the update of one big batch, and our
TranslationTrainer's label smoothing is the Trainer's, computed in the model."""

import pytest
import torch
from datasets import Dataset
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_pt_utils import LabelSmoother

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.training.trainer import TranslationTrainer


class IdCollator:
    """Pads pre-tokenised rows the way DataCollatorForSeq2Seq does, without a tokenizer object."""

    def __init__(self, model):
        self.model = model

    def __call__(self, rows):
        width = max(len(r["input_ids"]) for r in rows)
        label_width = max(len(r["labels"]) for r in rows)
        input_ids = torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows])
        labels = torch.tensor([r["labels"] + [-100] * (label_width - len(r["labels"])) for r in rows])
        return {
            "input_ids": input_ids,
            "attention_mask": (input_ids != 0).long(),
            "labels": labels,
            "decoder_input_ids": self.model.prepare_decoder_input_ids_from_labels(labels),
        }


def toy_rows() -> list[dict[str, list[int]]]:
    g = torch.Generator().manual_seed(0)
    rows = []
    for n in (3, 7, 2, 5):  # very different target lengths: a per-batch mean would weigh them wrongly
        rows.append(
            {
                "input_ids": torch.randint(3, 30, (4,), generator=g).tolist() + [2],
                "labels": torch.randint(3, 30, (n,), generator=g).tolist() + [2],
            }
        )
    return rows


def toy_model() -> RNNSeq2SeqForConditionalGeneration:
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(vocab_size=30, embedding_size=8, hidden_size=8, dropout=0.0)
    return RNNSeq2SeqForConditionalGeneration(config)


def train_one_update(tmp_path, batch_size: int, accumulation: int, smoothing: float) -> dict[str, torch.Tensor]:
    rows, model = toy_rows(), toy_model()
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / f"run{batch_size}x{accumulation}"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        learning_rate=0.1,
        optim="sgd",
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        dataloader_drop_last=False,
        train_sampling_strategy="sequential",
        label_smoothing_factor=smoothing,
    )
    trainer_class = TranslationTrainer if smoothing else Seq2SeqTrainer  # (the Trainer's own smoothing would not match)
    trainer = trainer_class(
        model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=IdCollator(model)
    )
    trainer.train()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_gradient_accumulation_matches_one_big_batch(tmp_path, smoothing):
    big = train_one_update(tmp_path, batch_size=4, accumulation=1, smoothing=smoothing)
    accumulated = train_one_update(tmp_path, batch_size=2, accumulation=2, smoothing=smoothing)
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], atol=1e-6, rtol=1e-5, msg=name)


def test_translation_trainer_smooths_labels_as_the_trainer_does(tmp_path):
    """Same loss as transformers' LabelSmoother on the model's logits, but computed by the model (labels kept)."""
    model = toy_model()
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=0.1, use_cpu=True, report_to=[])
    trainer = TranslationTrainer(model=model, args=args, data_collator=IdCollator(model))
    assert trainer.label_smoother is None and model.config.label_smoothing == 0.1
    batch = IdCollator(model)(toy_rows())
    loss = trainer.compute_loss(model, dict(batch))
    without_labels = {k: v for k, v in batch.items() if k != "labels"}
    torch.testing.assert_close(loss, LabelSmoother(epsilon=0.1)(model(**without_labels), batch["labels"]))
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=1.0, use_cpu=True)
    with pytest.raises(ValueError, match="label_smoothing_factor must be in"):
        TranslationTrainer(model=model, args=args)
