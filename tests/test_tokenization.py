import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import itertools
import unicodedata

import pytest
from tokenizers import Tokenizer, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from hf_rnn_seq2seq.data import DataError
from hf_rnn_seq2seq.tokenization import (
    TARGET_TOKENIZER_DIR,
    load_tokenizers,
    save_tokenizers,
    train_tokenizer,
    train_tokenizers,
)

# 5 x 4 x 5 x 4 = 400 handwritten sentence pairs built from parts.
SUBJECTS = [
    ("저는", "I"),
    ("우리는", "we"),
    ("제 친구는", "my friend"),
    ("선생님은", "the teacher"),
    ("학생들은", "the students"),
]
TIMES = [("오늘", "today"), ("어제", "yesterday"), ("내일", "tomorrow"), ("매일", "every day")]
OBJECTS = [
    ("사과를", "an apple"),
    ("책을", "a book"),
    ("커피를", "coffee"),
    ("편지를", "a letter"),
    ("영화를", "a movie"),
]
VERBS = [("좋아합니다", "like"), ("봅니다", "see"), ("삽니다", "buy"), ("원합니다", "want")]
PAIRS = [
    (f"{s_ko} {t_ko} {o_ko} {v_ko}.", f"{s_en[0].upper()}{s_en[1:]} {v_en} {o_en} {t_en}.")
    for (s_ko, s_en), (t_ko, t_en), (o_ko, o_en), (v_ko, v_en) in itertools.product(SUBJECTS, TIMES, OBJECTS, VERBS)
]
KOREAN = [ko for ko, _ in PAIRS]
ENGLISH = [en for _, en in PAIRS]
VOCAB_SIZE = 300
PAD, BOS, EOS, UNK = 0, 1, 2, 3


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def joint_tokenizer(request) -> PreTrainedTokenizerFast:
    return train_tokenizer(KOREAN, ENGLISH, vocab_size=VOCAB_SIZE, model=request.param)


@pytest.fixture(scope="module")
def separate_tokenizers() -> tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]:
    return train_tokenizers(KOREAN, ENGLISH, joint=False, vocab_size=VOCAB_SIZE, target_vocab_size=VOCAB_SIZE // 2)


def decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


def test_round_trip_korean_and_english(joint_tokenizer):
    for text in KOREAN + ENGLISH:
        assert decode(joint_tokenizer, joint_tokenizer(text)["input_ids"]) == text


def test_round_trip_normalises_whitespace_and_unicode(joint_tokenizer):
    messy = "  저는\t오늘   사과를\n좋아합니다. "
    assert decode(joint_tokenizer, joint_tokenizer(messy)["input_ids"]) == "저는 오늘 사과를 좋아합니다."
    # Decomposed Hangul (jamo, as macOS file names give) and full-width Latin letters come back composed.
    decomposed = unicodedata.normalize("NFD", "제 친구는 책을 삽니다.")
    assert decomposed != "제 친구는 책을 삽니다."
    assert decode(joint_tokenizer, joint_tokenizer(decomposed)["input_ids"]) == "제 친구는 책을 삽니다."
    assert decode(joint_tokenizer, joint_tokenizer("Ｉ ｌｉｋｅ coffee.")["input_ids"]) == "I like coffee."


def test_special_token_ids(joint_tokenizer):
    assert (joint_tokenizer.pad_token_id, joint_tokenizer.bos_token_id) == (PAD, BOS)
    assert (joint_tokenizer.eos_token_id, joint_tokenizer.unk_token_id) == (EOS, UNK)
    assert joint_tokenizer.convert_ids_to_tokens([PAD, BOS, EOS, UNK]) == ["<pad>", "<s>", "</s>", "<unk>"]
    assert joint_tokenizer("Ω")["input_ids"][-2] == UNK  # unseen character


def test_input_ids_and_labels_end_with_eos(joint_tokenizer):
    encoded = joint_tokenizer(KOREAN[:3], text_target=ENGLISH[:3])
    for input_ids, labels in zip(encoded["input_ids"], encoded["labels"]):
        assert input_ids[-1] == EOS and labels[-1] == EOS
        assert EOS not in input_ids[:-1] + labels[:-1]
        assert BOS not in input_ids + labels  # BOS only starts the decoder input, added by the model
    assert decode(joint_tokenizer, encoded["labels"][0]) == ENGLISH[0]


def test_no_length_limit(joint_tokenizer):
    long_text = " ".join(KOREAN)
    ids = joint_tokenizer(long_text, truncation=True)["input_ids"]
    assert decode(joint_tokenizer, ids) == long_text


def test_joint_vocabulary_trains_on_both_sides(joint_tokenizer):
    vocab = joint_tokenizer.get_vocab()
    assert any("사" in token for token in vocab) and any("e" in token for token in vocab)
    assert len(joint_tokenizer) <= VOCAB_SIZE


def test_accepts_generators():
    tokenizer = train_tokenizer((text for text in KOREAN), (text for text in ENGLISH), vocab_size=VOCAB_SIZE)
    assert decode(tokenizer, tokenizer(ENGLISH[7])["input_ids"]) == ENGLISH[7]


def test_separate_vocabularies(separate_tokenizers):
    source, target = separate_tokenizers
    assert source is not target
    assert not any("사" in token for token in target.get_vocab())
    assert len(target) <= VOCAB_SIZE // 2
    for tokenizer in (source, target):
        special_ids = [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id]
        assert special_ids == [PAD, BOS, EOS, UNK]
    assert decode(source, source(KOREAN[5])["input_ids"]) == KOREAN[5]
    assert decode(target, target(ENGLISH[5])["input_ids"]) == ENGLISH[5]


def test_joint_save_and_load(joint_tokenizer, tmp_path):
    save_tokenizers(joint_tokenizer, joint_tokenizer, tmp_path)
    assert not (tmp_path / TARGET_TOKENIZER_DIR).exists()
    auto = AutoTokenizer.from_pretrained(tmp_path)
    assert auto(KOREAN[1], text_target=ENGLISH[1]) == joint_tokenizer(KOREAN[1], text_target=ENGLISH[1])
    source, target = load_tokenizers(tmp_path)
    assert source is target
    assert source(ENGLISH[2])["input_ids"] == joint_tokenizer(ENGLISH[2])["input_ids"]


def test_separate_save_and_load(separate_tokenizers, tmp_path):
    source, target = separate_tokenizers
    save_tokenizers(source, target, tmp_path)
    assert (tmp_path / TARGET_TOKENIZER_DIR / "tokenizer.json").is_file()
    assert AutoTokenizer.from_pretrained(tmp_path)(KOREAN[3])["input_ids"] == source(KOREAN[3])["input_ids"]
    loaded_source, loaded_target = load_tokenizers(tmp_path)
    assert loaded_source is not loaded_target
    assert loaded_source(KOREAN[3])["input_ids"] == source(KOREAN[3])["input_ids"]
    assert loaded_target(ENGLISH[3])["input_ids"] == target(ENGLISH[3])["input_ids"]
    assert loaded_target.eos_token_id == loaded_source.eos_token_id == EOS


def test_joint_save_removes_stale_target_tokenizer(separate_tokenizers, joint_tokenizer, tmp_path):
    save_tokenizers(*separate_tokenizers, tmp_path)
    save_tokenizers(joint_tokenizer, joint_tokenizer, tmp_path)
    source, target = load_tokenizers(tmp_path)
    assert source is target


def test_save_rejects_tokenizers_with_different_special_ids(joint_tokenizer, tmp_path):
    other_order = {"<unk>": 0, "<pad>": 1, "<s>": 2, "</s>": 3}
    other = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(other_order, unk_token="<unk>")),
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    with pytest.raises(ValueError, match="pad_token_id"):
        save_tokenizers(joint_tokenizer, other, tmp_path)


def test_empty_training_text():
    with pytest.raises(DataError, match="empty"):
        train_tokenizer([], [])
    with pytest.raises(DataError, match="target texts are empty"):
        train_tokenizers(KOREAN, ["", "  "], joint=False, vocab_size=VOCAB_SIZE)


def test_non_string_training_text():
    with pytest.raises(DataError, match="item 1 is a NoneType"):
        train_tokenizer(["안녕하세요", None])


def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="vocab_size=4 leaves no room"):
        train_tokenizer(KOREAN, ENGLISH, vocab_size=4)
    # Unigram keeps every character as a token: 10 ids cannot hold the ~60 characters of this corpus.
    with pytest.raises(ValueError, match="vocab_size=10 is too small"):
        train_tokenizer(KOREAN, ENGLISH, vocab_size=10, model="unigram")


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown tokenizer model 'wordpiece'"):
        train_tokenizer(KOREAN, model="wordpiece")
