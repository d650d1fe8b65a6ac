import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import logging
from pathlib import Path

import datasets
import huggingface_hub
import pytest

from hf_rnn_seq2seq import data
from hf_rnn_seq2seq.data import (
    DataError,
    filter_by_length,
    load_hub_dataset,
    load_parallel_text,
    load_translation_data,
    load_translation_jsonl,
    make_preprocess_function,
)
from hf_rnn_seq2seq.tokenization import train_tokenizer, train_tokenizers

KO = ["안녕하세요.", "저는 학생입니다.", "오늘 날씨가 좋네요!", "이것은 책입니다.", "커피를 좋아합니다."]
EN = ["Hello.", "I am a student.", "The weather is nice today!", "This is a book.", "I like coffee."]
EOS = 2


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_corpus(prefix: Path, ko: list[str] = KO, en: list[str] = EN) -> Path:
    write_lines(Path(f"{prefix}.ko"), ko)
    write_lines(Path(f"{prefix}.en"), en)
    return prefix


def write_jsonl(path: Path, records: list[dict]) -> Path:
    return write_lines(path, [json.dumps(record, ensure_ascii=False) for record in records])


def as_pairs(dataset: datasets.Dataset, source: str = "ko", target: str = "en") -> list[tuple[str, str]]:
    return [(row[source], row[target]) for row in dataset["translation"]]


# --- loading -----------------------------------------------------------------------------------------------


def test_parallel_text(tmp_path):
    prefix = write_corpus(tmp_path / "train")
    dataset = load_parallel_text(f"{prefix}.ko", f"{prefix}.en", "ko", "en")
    assert dataset.column_names == ["translation"]
    assert dataset.features["translation"] == datasets.Translation(languages=["ko", "en"])
    assert as_pairs(dataset) == list(zip(KO, EN))


def test_parallel_text_in_several_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "PAIRS_PER_CHUNK", 2)
    prefix = write_corpus(tmp_path / "train")
    assert as_pairs(load_parallel_text(f"{prefix}.ko", f"{prefix}.en")) == list(zip(KO, EN))


def test_parallel_text_strips_bom_and_crlf(tmp_path):
    (tmp_path / "a.ko").write_bytes("\ufeff안녕하세요.\r\n저는 학생입니다.\r\n".encode())
    (tmp_path / "a.en").write_bytes(b"Hello.\r\nI am a student.")  # no final newline
    assert as_pairs(load_parallel_text(tmp_path / "a.ko", tmp_path / "a.en")) == list(zip(KO[:2], EN[:2]))


def test_translation_jsonl(tmp_path):
    records = [{"translation": {"ko": ko, "en": en, "ja": "-"}, "id": i} for i, (ko, en) in enumerate(zip(KO, EN))]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n")  # a blank line holds no pair and is skipped
    dataset = load_translation_jsonl(path, "ko", "en")
    assert dataset.column_names == ["translation"]
    assert as_pairs(dataset) == list(zip(KO, EN))


def test_translation_jsonl_other_direction(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"translation": {"ko": KO[0], "en": EN[0]}}])
    assert load_translation_jsonl(path, "en", "ko")[0]["translation"] == {"en": EN[0], "ko": KO[0]}


def test_load_translation_data_dispatch(tmp_path):
    prefix = write_corpus(tmp_path / "train")
    jsonl = write_jsonl(tmp_path / "more.json", [{"translation": {"ko": "고맙습니다.", "en": "Thank you."}}])
    expected = list(zip(KO, EN))
    assert as_pairs(load_translation_data(str(prefix))) == expected
    assert as_pairs(load_translation_data(f"{prefix}.ko")) == expected
    assert as_pairs(load_translation_data(f"{prefix}.en")) == expected
    assert as_pairs(load_translation_data(str(jsonl))) == [("고맙습니다.", "Thank you.")]
    combined = load_translation_data(f"{prefix}, {jsonl},{prefix}")
    assert as_pairs(combined) == expected + [("고맙습니다.", "Thank you.")] + expected


# --- bad data: every error names the file and the line to fix --------------------------------------------


def test_mismatched_line_counts(tmp_path):
    prefix = write_corpus(tmp_path / "train", KO, EN[:3])
    with pytest.raises(DataError) as error:
        load_translation_data(str(prefix))
    message = str(error.value)
    assert f"{prefix}.ko has 5 lines" in message and f"{prefix}.en has 3" in message
    prefix = write_corpus(tmp_path / "other", KO[:2], EN)
    with pytest.raises(DataError, match=r"other\.ko has 2 lines but .*other\.en has 5"):
        load_translation_data(str(prefix))


@pytest.mark.parametrize("empty_side", ["ko", "en"])
def test_empty_file(tmp_path, empty_side):
    prefix = write_corpus(tmp_path / "train")
    Path(f"{prefix}.{empty_side}").write_text("")
    with pytest.raises(DataError, match=rf"train\.{empty_side}: file is empty"):
        load_translation_data(str(prefix))
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(DataError, match=r"train\.jsonl: file is empty"):
        load_translation_data(str(tmp_path / "train.jsonl"))


def test_empty_source_line(tmp_path):
    prefix = write_corpus(tmp_path / "train", [KO[0], "", *KO[2:]], EN)
    with pytest.raises(DataError, match=rf"{prefix}\.ko:2: empty line \(its pair is {prefix}\.en:2\)"):
        load_translation_data(str(prefix))


def test_blank_target_line(tmp_path):
    prefix = write_corpus(tmp_path / "train", KO, [*EN[:4], "   "])
    with pytest.raises(DataError, match=rf"{prefix}\.en:5: empty line"):
        load_translation_data(str(prefix))


def test_invalid_utf8(tmp_path):
    prefix = write_corpus(tmp_path / "train")
    with open(f"{prefix}.en", "ab") as handle:
        handle.write(b"caf\xe9\n")  # Latin-1, not UTF-8
    write_lines(Path(f"{prefix}.ko"), [*KO, "카페"])
    offset = len("".join(line + "\n" for line in EN).encode()) + len(b"caf")
    with pytest.raises(DataError, match=rf"{prefix}\.en:6: invalid UTF-8 \(byte 0xe9 at byte offset {offset}"):
        load_translation_data(str(prefix))


def test_invalid_json(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [json.dumps({"translation": {"ko": "가", "en": "a"}}), "{oops"])
    with pytest.raises(DataError, match=r"train\.jsonl:2: invalid JSON"):
        load_translation_data(str(path))


def test_jsonl_missing_language_key(tmp_path):
    records = [{"translation": {"ko": "가", "en": "a"}}, {"translation": {"ko": "나", "de": "b"}}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    with pytest.raises(DataError, match=r'train\.jsonl:2: "translation" has no key "en" \(its keys: ko, de\)'):
        load_translation_jsonl(path, "ko", "en")


@pytest.mark.parametrize(
    "record, expected",
    [
        ({"ko": "가", "de": "a"}, r'train\.jsonl:1: no column "en" \(its keys: ko, de\); name the source and target'),
        ([1, 2], r"train\.jsonl:1: expected a JSON object"),
        ({"translation": {"ko": "", "en": "a"}}, r'train\.jsonl:1: "ko" must be a non-empty string'),
        ({"translation": {"ko": "가", "en": None}}, r'train\.jsonl:1: "en" must be a non-empty string'),
        ({"ko": "가", "en": 3}, r'train\.jsonl:1: "en" must be a non-empty string'),
    ],
)
def test_jsonl_bad_record(tmp_path, record, expected):
    path = write_jsonl(tmp_path / "train.jsonl", [record])
    with pytest.raises(DataError, match=expected):
        load_translation_jsonl(path, "ko", "en")


def test_one_side_of_a_parallel_corpus_missing(tmp_path):
    write_lines(tmp_path / "train.ko", KO)
    with pytest.raises(DataError, match=r"found .*train\.ko but not its parallel file .*train\.en"):
        load_translation_data(str(tmp_path / "train"))


def test_unknown_local_format(tmp_path):
    path = write_lines(tmp_path / "train.txt", KO)
    with pytest.raises(DataError, match=r"train\.txt: unknown data format"):
        load_translation_data(str(path))


# --- the Hub, offline ---------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    # The libraries read HF_HUB_OFFLINE at import time; set their copies too in case another test module
    # imported them first without it.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_hub_dataset_offline(offline):
    with pytest.raises(DataError) as error:
        load_hub_dataset("someone/ko-en-corpus", split="train")
    message = str(error.value)
    assert "Hugging Face Hub is unreachable" in message and "local files" in message
    assert "\n" not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_hub_loader_converts_columns(offline, tmp_path):
    # datasets' packaged "json" builder runs offline, standing in for a Hub dataset.
    nested = write_jsonl(tmp_path / "nested.jsonl", [{"translation": {"ko": ko, "en": en}} for ko, en in zip(KO, EN)])
    flat = write_jsonl(tmp_path / "flat.jsonl", [{"ko": ko, "en": en, "id": 0} for ko, en in zip(KO, EN)])
    cache_dir = str(tmp_path / "cache")
    for path in (nested, flat):
        dataset = load_hub_dataset("json", split="train", data_files=str(path), cache_dir=cache_dir)
        assert dataset.column_names == ["translation"]
        assert as_pairs(dataset) == list(zip(KO, EN))
    with pytest.raises(DataError, match=r"columns \['ko', 'en', 'id'\]; expected 'translation' or 'ko' and 'ja'"):
        load_hub_dataset("json", split="train", target_lang="ja", data_files=str(flat), cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"translation column has languages \['ko', 'en'\], not 'ko' and 'ja'"):
        load_hub_dataset("json", split="train", target_lang="ja", data_files=str(nested), cache_dir=cache_dir)


def test_unknown_name_falls_back_to_hub(offline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as error:
        load_translation_data("someone/ko-en")
    message = str(error.value)
    assert message.startswith("no local file someone/ko-en nor someone/ko-en.ko + someone/ko-en.en")
    assert "Hugging Face Hub is unreachable" in message


def test_missing_local_path(tmp_path):
    missing = tmp_path / "no-such-corpus"
    with pytest.raises(DataError, match=rf"no such file {missing} nor {missing}\.ko \+ {missing}\.en"):
        load_translation_data(str(missing))


# --- length filter and preprocessing --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(KO * 20, EN * 20, vocab_size=200)


def test_filter_by_length(tmp_path, tokenizer, caplog):
    dataset = load_translation_data(str(write_corpus(tmp_path / "train")))
    source_lengths = [len(tokenizer(ko)["input_ids"]) for ko in KO]
    target_lengths = [len(tokenizer(en)["input_ids"]) for en in EN]
    max_source, max_target = sorted(source_lengths)[3], sorted(target_lengths)[3]
    expected = [
        pair
        for pair, source, target in zip(zip(KO, EN), source_lengths, target_lengths)
        if source <= max_source and target <= max_target
    ]
    assert 0 < len(expected) < len(KO)
    with caplog.at_level(logging.WARNING, logger="hf_rnn_seq2seq.data"):
        kept, n_dropped = filter_by_length(dataset, tokenizer, tokenizer, max_source, max_target)
    assert as_pairs(kept) == expected
    assert n_dropped == len(KO) - len(expected)
    assert f"dropped {n_dropped} of {len(KO)} pairs" in caplog.text


def test_filter_by_length_keeps_all_quietly(tmp_path, tokenizer, caplog):
    dataset = load_translation_data(str(write_corpus(tmp_path / "train")))
    with caplog.at_level(logging.WARNING, logger="hf_rnn_seq2seq.data"):
        kept, n_dropped = filter_by_length(dataset, tokenizer, tokenizer, 1000, 1000)
    assert (len(kept), n_dropped) == (len(KO), 0)
    assert caplog.text == ""


def test_filter_by_length_dropping_everything_is_an_error(tmp_path, tokenizer):
    dataset = load_translation_data(str(write_corpus(tmp_path / "train")))
    with pytest.raises(DataError, match="all 5 pairs are longer than max_source_length=1"):
        filter_by_length(dataset, tokenizer, tokenizer, 1, 1)


def test_preprocess_joint_matches_text_target(tmp_path, tokenizer):
    dataset = load_translation_data(str(write_corpus(tmp_path / "train")))
    processed = dataset.map(
        make_preprocess_function(tokenizer, tokenizer, "ko", "en"), batched=True, remove_columns=["translation"]
    )
    expected = tokenizer(KO, text_target=EN)
    assert processed.column_names == ["input_ids", "attention_mask", "labels"]
    assert processed["input_ids"] == expected["input_ids"]
    assert processed["labels"] == expected["labels"]
    assert all(labels[-1] == EOS for labels in processed["labels"])


def test_preprocess_separate_vocabularies(tmp_path):
    source_tokenizer, target_tokenizer = train_tokenizers(KO * 20, EN * 20, joint=False, vocab_size=200)
    dataset = load_translation_data(str(write_corpus(tmp_path / "train")))
    processed = dataset.map(make_preprocess_function(source_tokenizer, target_tokenizer), batched=True)
    assert processed["input_ids"] == source_tokenizer(KO)["input_ids"]
    assert processed["labels"] == target_tokenizer(EN)["input_ids"]
    assert processed["input_ids"][0][-1] == processed["labels"][0][-1] == EOS


# --- any text-to-text task: other suffixes, named columns, saved datasets --------------------------------------

DOCUMENTS = ["the meeting moves to friday at noon", "gas prices rose in march", "please review the draft contract"]
SUMMARIES = ["meeting friday", "march gas prices", "contract draft"]


def test_parallel_text_with_any_suffixes(tmp_path):
    write_lines(tmp_path / "train.src", DOCUMENTS)
    write_lines(tmp_path / "train.tgt", SUMMARIES)
    for given in ("train", "train.src", "train.tgt"):
        dataset = load_translation_data(str(tmp_path / given), "src", "tgt")
        assert as_pairs(dataset, "src", "tgt") == list(zip(DOCUMENTS, SUMMARIES))


def test_jsonl_with_named_columns(tmp_path):
    records = [{"document": d, "summary": s, "id": i} for i, (d, s) in enumerate(zip(DOCUMENTS, SUMMARIES))]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    dataset = load_translation_data(str(path), "document", "summary")
    assert as_pairs(dataset, "document", "summary") == list(zip(DOCUMENTS, SUMMARIES))
    with pytest.raises(DataError, match=r'train\.jsonl:1: no column "text" \(its keys: document, summary, id\)'):
        load_translation_data(str(path), "text", "summary")


def test_same_name_for_both_sides(tmp_path):
    with pytest.raises(DataError, match="both named 'ko'; give them different names"):
        load_translation_data(str(tmp_path / "train"), "ko", "ko")


def test_saved_dataset_folder(tmp_path):
    columns = {"question": DOCUMENTS, "answer": SUMMARIES}
    datasets.Dataset.from_dict(columns).save_to_disk(tmp_path / "single")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(columns)}).save_to_disk(tmp_path / "dict")
    for folder in ("single", "dict"):
        dataset = load_translation_data(str(tmp_path / folder), "question", "answer")
        assert as_pairs(dataset, "question", "answer") == list(zip(DOCUMENTS, SUMMARIES))
    with pytest.raises(DataError, match=r"dict: no split 'test' in the saved dataset \(its splits: train\)"):
        load_translation_data(str(tmp_path / "dict"), "question", "answer", split="test")
    with pytest.raises(DataError, match=r"single has columns \['question', 'answer'\]; expected 'translation' or"):
        load_translation_data(str(tmp_path / "single"), "document", "summary")


def test_hub_loader_reads_named_columns(offline, tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"document": d, "summary": s} for d, s in zip(DOCUMENTS, SUMMARIES)])
    dataset = load_hub_dataset(
        "json",
        split="train",
        source_lang="document",
        target_lang="summary",
        data_files=str(path),
        cache_dir=str(tmp_path / "cache"),
    )
    assert as_pairs(dataset, "document", "summary") == list(zip(DOCUMENTS, SUMMARIES))


SHARED_DATA = Path("/work/shared/data")


@pytest.mark.parametrize("corpus", ["aeslc-en", "songys-chatbot-ko", "scitldr-a-en"])
def test_shared_src_tgt_corpora(corpus):
    folder = SHARED_DATA / corpus
    if not (folder / "dev.src").is_file():
        pytest.skip(f"{folder} is not on this machine (the staged data of issue 26)")
    dataset = load_translation_data(str(folder / "dev"), "src", "tgt")
    assert len(dataset) == sum(1 for _ in open(folder / "dev.src", encoding="utf-8"))


def test_truncate_sources_cuts_long_sources_and_keeps_their_end_token(tmp_path, tokenizer, caplog):
    dataset = load_translation_data(str(write_corpus(tmp_path / "train")))
    # Targets only: sources are cut after tokenising instead.
    kept, n_dropped = filter_by_length(dataset, tokenizer, tokenizer, None, 1000)
    assert (len(kept), n_dropped) == (len(KO), 0)
    tokenized = kept.map(make_preprocess_function(tokenizer, tokenizer), batched=True, remove_columns=["translation"])
    lengths = [len(ids) for ids in tokenized["input_ids"]]
    limit = sorted(lengths)[2]  # the two longest are cut
    with caplog.at_level(logging.WARNING, logger="hf_rnn_seq2seq.data"):
        cut, n_cut = data.truncate_sources(tokenized, limit)
    assert n_cut == sum(length > limit for length in lengths)
    assert f"cut {n_cut} of {len(KO)} sources to their first {limit} tokens" in caplog.text
    for before, after, mask in zip(tokenized["input_ids"], cut["input_ids"], cut["attention_mask"]):
        expected = before if len(before) <= limit else before[: limit - 1] + [EOS]
        assert after == expected and len(mask) == len(after)
    assert cut["labels"] == tokenized["labels"]  # targets untouched
    assert data.truncate_sources(tokenized, max(lengths)) == (tokenized, 0)
    with pytest.raises(ValueError, match="max_source_length must leave room"):
        data.truncate_sources(tokenized, 1)
