"""Byte fallback: characters a tokenizer never saw in training (rare Hangul syllables, Hanja) are encoded as their
UTF-8 bytes and decoded back whole with it, and become <unk> (with the pipeline's warning) without it."""

import json
import logging
import shutil

import pytest
import torch
from tiny_models import ENGLISH, KOREAN, PAIRS, VOCAB_SIZE, save_tiny_translator

from hf_rnn_seq2seq.ensemble import load_ensemble_translator
from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.tokenization import (
    BYTE_TOKENS,
    load_tokenizers,
    save_tokenizers,
    train_tokenizer,
    train_tokenizers,
)
from hf_rnn_seq2seq.training.arguments import parse_arguments
from hf_rnn_seq2seq.training.run import get_tokenizers
from hf_rnn_seq2seq_cli import main

# None of these characters is in the tiny corpus: two rare syllables, two Hanja and an emoji.
UNSEEN = "똠 뷁 漢字 😀"
TEXT = f"나는 {UNSEEN} 물을 마셔요."
BYTE_VOCAB_SIZE = VOCAB_SIZE + len(BYTE_TOKENS)


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def byte_tokenizer(request):
    return train_tokenizer(KOREAN, ENGLISH, vocab_size=BYTE_VOCAB_SIZE, model=request.param, byte_fallback=True)


def round_trip(tokenizer, text: str) -> str:
    return tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)


def test_unseen_characters_round_trip_as_bytes(byte_tokenizer):
    ids = byte_tokenizer(TEXT)["input_ids"]
    assert byte_tokenizer.unk_token_id not in ids
    tokens = byte_tokenizer.convert_ids_to_tokens(ids)
    assert "<0xE6>" in tokens  # the first byte of 漢 (U+6F22) in UTF-8
    assert round_trip(byte_tokenizer, TEXT) == TEXT
    assert round_trip(byte_tokenizer, KOREAN[0]) == KOREAN[0]  # seen text keeps its learned tokens


def test_byte_tokens_follow_the_learned_ones_within_the_vocabulary_size(byte_tokenizer):
    vocab = byte_tokenizer.get_vocab()
    assert len(byte_tokenizer) <= BYTE_VOCAB_SIZE
    byte_ids = [vocab[token] for token in BYTE_TOKENS]
    assert byte_ids == list(range(len(byte_tokenizer) - len(BYTE_TOKENS), len(byte_tokenizer)))
    assert [byte_tokenizer.convert_ids_to_tokens(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    serialized = json.loads(byte_tokenizer.backend_tokenizer.to_str())
    assert serialized["model"]["byte_fallback"] is True
    assert [decoder["type"] for decoder in serialized["decoder"]["decoders"]] == ["ByteFallback", "Metaspace"]


def test_without_byte_fallback_unseen_characters_are_unknown():
    tokenizer = train_tokenizer(KOREAN, ENGLISH, vocab_size=VOCAB_SIZE)
    assert tokenizer.unk_token_id in tokenizer(TEXT)["input_ids"]
    assert round_trip(tokenizer, TEXT) != TEXT
    assert not any(token in tokenizer.get_vocab() for token in BYTE_TOKENS)


def test_saved_byte_fallback_tokenizer_loads_and_round_trips(byte_tokenizer, tmp_path):
    save_tokenizers(byte_tokenizer, byte_tokenizer, tmp_path)
    source, target = load_tokenizers(tmp_path)
    assert round_trip(source, TEXT) == TEXT and target is source


def test_vocab_size_must_leave_room_for_the_byte_tokens():
    with pytest.raises(ValueError, match="vocab_size=200 leaves no room beside the 4 special tokens and 256 byte"):
        train_tokenizer(KOREAN, ENGLISH, vocab_size=200, byte_fallback=True)


def test_separate_vocabularies_both_fall_back_on_bytes():
    source, target = train_tokenizers(KOREAN, ENGLISH, joint=False, vocab_size=BYTE_VOCAB_SIZE, byte_fallback=True)
    assert round_trip(source, TEXT) == TEXT and round_trip(target, "Ünïcödé 漢字") == "Ünïcödé 漢字"


def test_training_flag_trains_a_byte_fallback_tokenizer(tmp_path):
    flags = ["--output_dir", str(tmp_path), "--vocab_size", str(BYTE_VOCAB_SIZE), "--report_to", "none"]
    model_args, data_args, training_args = parse_arguments([*flags, "--byte_fallback", "true"])
    train_data = {"translation": [{"ko": ko, "en": en} for ko, en in PAIRS]}
    source, _ = get_tokenizers(model_args, data_args, training_args, train_data, resuming=False)
    assert round_trip(source, TEXT) == TEXT
    assert round_trip(load_tokenizers(tmp_path)[0], TEXT) == TEXT  # as saved beside the model


BYTE_MODEL_TRAIN_STEPS = 20  # a trained model, not an untrained one: what a user would save and load


@pytest.fixture(scope="module")
def byte_model_dir(tmp_path_factory):
    return save_tiny_translator(
        tmp_path_factory.mktemp("bytes"), train_steps=BYTE_MODEL_TRAIN_STEPS, byte_fallback=True
    )


def test_model_with_byte_fallback_loads_translates_and_decodes_bytes(byte_model_dir, caplog):
    translator = load_translator(byte_model_dir)
    with caplog.at_level(logging.WARNING):
        result = translator(TEXT)
    assert isinstance(result[0]["translation_text"], str)
    assert "not in the vocabulary" not in caplog.text  # every character has tokens: nothing reaches it as <unk>
    # A translation made of byte tokens decodes to the characters they spell.
    ids = translator.target_tokenizer("漢字", add_special_tokens=False)["input_ids"]
    output_ids = torch.tensor([[1, *ids, 2]])[None]  # (inputs, num_return_sequences, len)
    assert translator.postprocess({"output_ids": output_ids}) == [{"translation_text": "漢字"}]


def test_ensemble_keeps_byte_fallback_and_refuses_a_member_without(byte_model_dir, tmp_path, caplog):
    """Two copies of a byte-fallback model translate as it does, with nothing <unk>; the same vocabulary without
    byte fallback encodes the unseen characters otherwise, so an ensemble with it is refused."""
    twin = shutil.copytree(byte_model_dir, tmp_path / "twin")
    with caplog.at_level(logging.WARNING):
        assert load_ensemble_translator([byte_model_dir, twin])(TEXT) == load_translator(byte_model_dir)(TEXT)
    assert "not in the vocabulary" not in caplog.text
    without = shutil.copytree(byte_model_dir, tmp_path / "without")
    tokenizer = json.loads((without / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["model"]["byte_fallback"] = False
    (without / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="has another source tokenizer than"):
        load_ensemble_translator([byte_model_dir, without])


def test_model_without_byte_fallback_still_warns(model_dir, caplog):
    translator = load_translator(model_dir)
    with caplog.at_level(logging.WARNING):
        translator(TEXT)
    assert "not in the vocabulary, translated as <unk>" in caplog.text and "'漢字'" in caplog.text


def test_tokenizer_command_with_byte_fallback(tmp_path, capsys):
    (tmp_path / "train.ko").write_text("".join(f"{ko}\n" for ko in KOREAN), encoding="utf-8")
    (tmp_path / "train.en").write_text("".join(f"{en}\n" for en in ENGLISH), encoding="utf-8")
    args = [str(tmp_path / "train"), str(tmp_path / "tok"), "--vocab-size", str(BYTE_VOCAB_SIZE)]
    assert main(["tokenizer", *args, "--byte-fallback"]) == 0
    assert "joint unigram tokenizer with byte fallback" in capsys.readouterr().out
    source, _ = load_tokenizers(tmp_path / "tok")
    assert round_trip(source, TEXT) == TEXT
    assert main(["tokenizer", *args]) == 0  # without the flag, as before
    source, _ = load_tokenizers(tmp_path / "tok")
    assert source.unk_token_id in source(TEXT)["input_ids"]
