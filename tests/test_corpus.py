"""The embedded corpus keeps the rules its README states (hf_rnn_seq2seq/corpus/check.py), and the check finds
each kind of break."""

import shutil

import pytest

from hf_rnn_seq2seq.corpus.check import EVERYDAY_KOEN, check, main


def test_the_embedded_corpus_keeps_its_rules(capsys):
    assert main([]) == 0
    assert "train 49,620" in capsys.readouterr().out


@pytest.fixture
def corpus(tmp_path):
    return shutil.copytree(EVERYDAY_KOEN, tmp_path / "corpus")


def append(path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def first_line(path) -> str:
    return path.read_text(encoding="utf-8").split("\n", 1)[0]


BREAKS = {
    "a Korean sentence in two splits": lambda c: [
        append(c / "test.ko", first_line(c / "train.ko")),
        append(c / "test.en", "A new English sentence."),
        append(c / "test.topic", "food"),
    ],
    "an English sentence in two splits": lambda c: [
        append(c / "test.ko", "새로 쓴 한국어 문장이에요."),
        append(c / "test.en", first_line(c / "train.en")),
        append(c / "test.topic", "food"),
    ],
    "files not line-aligned": lambda c: append(c / "validation.en", "One sentence too many."),
    "not NFC": lambda c: [
        append(c / "held-out.ko", "\u1100\u1161\u11a8 분해된 한글이에요."),  # 각, decomposed
        append(c / "held-out.en", "Decomposed Hangul."),
        append(c / "held-out.topic", "food"),
    ],
    "curly quotes": lambda c: [
        append(c / "held-out.ko", "그건 제 거예요."),
        append(c / "held-out.en", "That\u2019s mine."),
        append(c / "held-out.topic", "food"),
    ],
    "an empty line": lambda c: [append(c / f"train.{ext}", "") for ext in ("ko", "en", "topic")],
    "a stale topic table": lambda c: [
        append(c / "train.ko", "표가 낡았어요."),
        append(c / "train.en", "The table is out of date."),
        append(c / "train.topic", "food"),
    ],
}


@pytest.mark.parametrize("name", BREAKS)
def test_each_break_is_found(corpus, name):
    assert check(corpus)[0] == []
    BREAKS[name](corpus)
    assert check(corpus)[0], name
