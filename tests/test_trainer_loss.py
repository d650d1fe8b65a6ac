"""The loss under transformers' Trainer: gradient accumulation gives the update of one big batch."""

import torch
from datasets import Dataset
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration


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


def train_one_update(tmp_path, batch_size: int, accumulation: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    rows = []
    for n in (3, 7, 2, 5):  # very different target lengths: a per-batch mean would weigh them wrongly
        rows.append({"input_ids": torch.randint(3, 30, (4,), generator=g).tolist() + [2],
                     "labels": torch.randint(3, 30, (n,), generator=g).tolist() + [2]})
    config = RNNSeq2SeqConfig(vocab_size=30, embedding_size=8, hidden_size=8, dropout=0.0)
    model = RNNSeq2SeqForConditionalGeneration(config)
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
    )
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=IdCollator(model))
    trainer.train()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    big = train_one_update(tmp_path, batch_size=4, accumulation=1)
    accumulated = train_one_update(tmp_path, batch_size=2, accumulation=2)
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], atol=1e-6, rtol=1e-5, msg=name)
