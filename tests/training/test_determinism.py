"""Determinism and numerical safety: the same seed gives the same model and translations; a sentence is
translated the same whatever else shares its batch (all-padding rows, one-token and very long sources)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import (
    EOS,
    FIRST_WORD,
    NO_EVALUATION,
    PAD,
    TINY_MODEL,
    VOCAB,
    one_thread,
    train_reverse_model,
    until_eos,
    write_digit_corpus,
)

from hf_rnn_seq2seq.training import main

LONG_SOURCE = 400  # tokens: far longer than anything the model was trained on
MAX_NEW_TOKENS = 12


def train_once(corpus: dict[str, Path], output_dir: Path) -> tuple[dict, list[str]]:
    main(
        [
            "--train_file", str(corpus["train"]),
            "--test_file", str(corpus["test"]),
            "--output_dir", str(output_dir),
            "--tokenizer_type", "bpe",
            "--vocab_size", "100",
            *NO_EVALUATION,
            "--max_steps", "25",
            "--seed", "3",
            "--dropout", "0.3",
            *TINY_MODEL,
        ]
    )  # fmt: skip
    translations = (output_dir / "test_predictions.txt").read_text(encoding="utf-8").splitlines()
    return load_file(output_dir / "model.safetensors"), translations


def test_same_seed_same_weights_and_translations(tmp_path):
    corpus = {
        "train": write_digit_corpus(tmp_path / "train.jsonl", 400, seed=0),
        "test": write_digit_corpus(tmp_path / "test.jsonl", 40, seed=1),
    }
    first_weights, first_translations = train_once(corpus, tmp_path / "first")
    second_weights, second_translations = train_once(corpus, tmp_path / "second")
    assert first_weights.keys() == second_weights.keys()
    assert all(first_weights[name].equal(second_weights[name]) for name in first_weights)
    assert first_translations == second_translations and len(first_translations) == 40


@pytest.fixture(scope="module")
def model():
    return train_reverse_model(cell_type="lstm", bidirectional=True, attention="general", input_feeding=True)


def padded(sources: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, *(len(source) for source in sources))  # an all-padding source is one masked PAD
    input_ids = torch.tensor([source + [PAD] * (width - len(source)) for source in sources])
    mask = torch.tensor([[1] * len(source) + [0] * (width - len(source)) for source in sources])
    return input_ids, mask


def generate(model, sources: list[list[int]], **kwargs):
    input_ids, mask = padded(sources)
    with one_thread(), torch.inference_mode():
        return model.generate(
            input_ids=input_ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
            return_dict_in_generate=True, output_scores=True, **kwargs,
        )  # fmt: skip


@pytest.mark.parametrize("num_beams", [1, 4])
def test_a_sentence_translates_the_same_whatever_shares_its_batch(model, num_beams):
    g = torch.Generator().manual_seed(1)
    long_source = torch.randint(FIRST_WORD, VOCAB, (LONG_SOURCE,), generator=g).tolist() + [EOS]
    sources = [
        [5, 7, 9, EOS],
        [EOS],  # one token
        long_source,
        [],  # all padding
        [FIRST_WORD + 1, EOS],
        [6, 8, 10, 12, 14, 3, EOS],
    ]
    batch = generate(model, sources, num_beams=num_beams)
    for scores in batch.scores:
        assert torch.isfinite(scores).any(dim=-1).all(), "every row keeps finite scores (no NaN from empty rows)"
        assert not torch.isnan(scores).any()
    for row, source in zip(batch.sequences.tolist(), sources):
        alone = generate(model, [source], num_beams=num_beams).sequences[0].tolist()
        assert until_eos(row) == until_eos(alone), source[:10]
