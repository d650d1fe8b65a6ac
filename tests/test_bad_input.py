"""Bad input, one case per row: each must end in an error that names the problem and what to do (or, where
going on is right, a warning and a correct result), never a deep stack trace or silent truncation.

A case is a function of the `Setup` below that triggers the problem; the row gives the exception type (or
`WARNS`) and a regular expression its message must match. CLI cases also check that stderr is one line.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tiny_models import ENGLISH, KOREAN, NO_EVALUATION, save_tiny_translator

from hf_rnn_seq2seq import RNNSeq2SeqConfig
from hf_rnn_seq2seq.data import DataError, load_translation_data
from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.modeling.pipeline import RNNTranslationPipeline
from hf_rnn_seq2seq.tokenization import save_tokenizers, train_tokenizer
from hf_rnn_seq2seq.training import main as train
from hf_rnn_seq2seq.translate import translate_file, translate_lines
from hf_rnn_seq2seq_cli import EXIT_ERROR
from hf_rnn_seq2seq_cli import main as cli

WARNS = "warns"  # the case proceeds with a correct result and a warning


@dataclass
class Setup:
    tmp: Path
    model_dir: Path
    translator: RNNTranslationPipeline

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def parallel(self, name: str, ko: str, en: str) -> str:
        self.write(f"{name}.ko", ko)
        self.write(f"{name}.en", en)
        return str(self.tmp / name)

    def model_copy(self, name: str) -> Path:
        return Path(shutil.copytree(self.model_dir, self.tmp / name))

    def train(self, *arguments: str) -> None:
        train(["--output_dir", str(self.tmp / "out"), "--report_to", "none", *arguments])

    def cli(self, *arguments: str) -> None:
        """The CLI as a user runs it: a failure becomes a ValueError with its one stderr line."""
        assert cli(list(arguments)) == EXIT_ERROR


def model_with_foreign_tokenizer(s: Setup) -> None:
    model_dir = s.model_copy("foreign")
    other = train_tokenizer(KOREAN[:50], ENGLISH[:50], vocab_size=120)
    save_tokenizers(other, other, model_dir)
    load_translator(model_dir)


def model_with_pickled_weights(s: Setup) -> None:
    model_dir = s.model_copy("pickled")
    torch.save(s.translator.model.state_dict(), model_dir / "pytorch_model.bin")
    (model_dir / "model.safetensors").unlink()
    load_translator(model_dir)


def hand_edited_config(s: Setup) -> None:
    model_dir = s.model_copy("edited")
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps(config | {"cell_type": "lstn"}))
    load_translator(model_dir)


def model_dir_without_config(s: Setup) -> None:
    model_dir = s.model_copy("no-config")
    (model_dir / "config.json").unlink()
    load_translator(model_dir)


def untranslatable_characters(s: Setup) -> None:
    result = s.translator("漢字 😀 " + KOREAN[0])
    assert len(result) == 1 and isinstance(result[0]["translation_text"], str)


def translation_cut_by_length_limit(s: Setup) -> None:
    logging.Logger.warning_once.cache_clear()  # warned once per process
    assert s.translator(KOREAN[0], max_new_tokens=2)[0]["translation_text"] is not None


def ten_thousand_token_source(s: Setup) -> None:
    source = " ".join(KOREAN * 8)  # read whole (test_translate checks that); the 8-token output limit warns
    logging.Logger.warning_once.cache_clear()
    s.translator(source)


def tokenizer_vocab_too_small(s: Setup) -> None:
    corpus = s.parallel("tok", "".join(f"{ko}\n" for ko in KOREAN), "".join(f"{en}\n" for en in ENGLISH))
    s.cli("tokenizer", corpus, str(s.tmp / "tok-out"), "--vocab-size", "5")


def load_parallel(s: Setup, name: str, ko: str | bytes, en: str) -> None:
    load_translation_data(s.parallel(name, ko, en), "ko", "en")


def load_jsonl(s: Setup, name: str, text: str) -> None:
    load_translation_data(str(s.write(name, text)), "ko", "en")


def mismatched_src_tgt(s: Setup) -> None:
    s.write("m.src", "a\nb\n")
    s.write("m.tgt", "a\n")
    load_translation_data(str(s.tmp / "m"), "src", "tgt")


def all_pairs_over_the_length_limit(s: Setup) -> None:
    corpus = s.parallel("long", "가 나 다 라 마 바\n", "a b c d e f\n")
    s.train("--train_file", corpus, *NO_EVALUATION, "--max_source_length", "2", "--vocab_size", "40")


def resume_from_a_missing_folder(s: Setup) -> None:
    corpus = s.parallel("tr", "가\n", "a\n")
    s.train("--train_file", corpus, *NO_EVALUATION, "--resume_from_checkpoint", str(s.tmp / "nope"))


def model_dir_without_weights(s: Setup) -> None:
    model_dir = s.model_copy("no-weights")
    (model_dir / "model.safetensors").unlink()
    load_translator(model_dir)


def early_stopping_without_best_checkpoint(s: Setup) -> None:
    s.train("--train_file", "x", "--validation_file", "x", "--load_best_model_at_end", "false")


def early_stopping_without_evaluation(s: Setup) -> None:
    s.train("--train_file", "x", "--validation_file", "x", "--eval_strategy", "no", "--save_strategy", "no")


CASES: list[tuple[str, Callable[[Setup], None], type[Exception] | str, str]] = [
    # configuration
    ("unknown cell_type", lambda s: RNNSeq2SeqConfig(cell_type="transformer"), ValueError, r"cell_type must be one of .*'gru'.*got 'transformer'"),
    ("unknown attention", lambda s: RNNSeq2SeqConfig(attention="luong"), ValueError, r"attention.*'luong'"),
    ("hidden_size 0", lambda s: RNNSeq2SeqConfig(hidden_size=0), ValueError, r"hidden_size"),
    ("dropout above 1", lambda s: RNNSeq2SeqConfig(dropout=1.5), ValueError, r"dropout"),
    ("label smoothing of 1", lambda s: RNNSeq2SeqConfig(label_smoothing=1.0), ValueError, r"label_smoothing must be in"),
    ("odd bidirectional hidden", lambda s: RNNSeq2SeqConfig(hidden_size=15), ValueError, r"must be even.*encoder_hidden_size"),
    ("input feeding without attention", lambda s: RNNSeq2SeqConfig(attention=None, input_feeding=True), ValueError, r"input_feeding"),
    ("pad id outside vocabulary", lambda s: RNNSeq2SeqConfig(vocab_size=10, pad_token_id=10), ValueError, r"pad_token_id"),
    ("hand-edited config.json", hand_edited_config, ValueError, r"cell_type.*'lstn'"),
    # data
    ("mismatched line counts", lambda s: load_parallel(s, "mis", "a\nb\n", "a\n"), DataError, r"mis\.ko has 2 lines but .*mis\.en has 1"),
    ("empty files", lambda s: load_parallel(s, "empty", "", ""), DataError, r"empty\.ko: file is empty"),
    ("empty source line", lambda s: load_parallel(s, "hole", "a\n\nc\n", "a\nb\nc\n"), DataError, r"hole\.ko:2: empty line"),
    ("invalid UTF-8", lambda s: load_parallel(s, "latin", b"caf\xe9\n", "cafe\n"), DataError, r"latin\.ko:1.*UTF-8"),
    ("JSONL without the language", lambda s: load_jsonl(s, "nokey.jsonl", '{"translation": {"ko": "a"}}\n'), DataError, r"nokey\.jsonl:1.*\"en\""),
    ("JSONL broken line", lambda s: load_jsonl(s, "broken.jsonl", "{not json\n"), DataError, r"broken\.jsonl:1"),
    ("JSONL without the named column", lambda s: load_translation_data(str(s.write("cols.jsonl", '{"document": "a b", "title": "a"}\n')), "document", "summary"), DataError, r'cols\.jsonl:1: no column "summary" \(its keys: document, title\); name the source and target columns with --text_column'),
    ("empty JSONL", lambda s: load_translation_data(str(s.write("nothing.jsonl", "")), "document", "summary"), DataError, r"nothing\.jsonl: file is empty"),
    ("mismatched .src/.tgt", mismatched_src_tgt, DataError, r"m\.src has 2 lines but .*m\.tgt has 1"),
    ("both sides with the same name", lambda s: s.train("--train_file", "x", "--source_lang", "ko", "--target_lang", "ko"), SystemExit, r"both named 'ko'; give them different names"),
    ("unknown metric", lambda s: s.cli("evaluate", str(s.model_dir), "x", "--metrics", "rouge,meteor"), "cli", r"evaluate: error: unknown metric\(s\) meteor; choose from bleu, chrf, ter, rouge, distinct"),
    ("missing data file", lambda s: load_translation_data(str(s.tmp / "nowhere.jsonl"), "ko", "en"), DataError, r"nowhere"),
    ("Hub dataset offline", lambda s: load_translation_data("someone/some-dataset", "ko", "en"), DataError, r"Hub is unreachable.*use local files"),
    ("pairs all over the length limit", all_pairs_over_the_length_limit, SystemExit, r"all 1 pairs are longer"),
    # tokenizer
    ("tokenizer vocabulary too small", tokenizer_vocab_too_small, "cli", r"tokenizer: error: .*vocab_size=5"),
    ("characters outside the vocabulary", untranslatable_characters, WARNS, r"not in the vocabulary, translated as <unk>: '漢字' '😀'"),
    ("checkpoint and tokenizer vocabularies differ", model_with_foreign_tokenizer, ValueError, r"vocabularies \(\d+ source.*do not match the tokenizers \(\d+.*holds a tokenizer from another model"),
    # model loading
    ("directory without weights", model_dir_without_weights, OSError, r"no model weights here"),
    ("directory without config.json", model_dir_without_config, OSError, r"no config\.json here"),
    ("model directory that does not exist", lambda s: load_translator(s.tmp / "no-model"), OSError, r"no such model directory"),
    ("model path is a file", lambda s: load_translator(s.write("model.txt", "")), OSError, r"expected a model directory, got a file"),
    ("pickled weights", model_with_pickled_weights, OSError, r"weights are pickled"),
    ("unknown weight type", lambda s: load_translator(s.model_dir, dtype="int4"), ValueError, r"dtype must be one of float32, bfloat16, float16, int8, got 'int4'"),
    # generate arguments
    ("num_return_sequences > num_beams", lambda s: s.translator(KOREAN[0], num_beams=2, num_return_sequences=3), ValueError, r"num_return_sequences.*num_beams"),
    ("max_new_tokens=0", lambda s: s.translator(KOREAN[0], max_new_tokens=0), ValueError, r"max_new_tokens.*greater than 0"),
    ("token ids outside the vocabulary", lambda s: s.translator.model.generate(torch.tensor([[10_000, 2]])), ValueError, r"input_ids holds token ids in \[2, 10000\] but the model's vocabulary has \d+ entries"),
    ("input that is not text", lambda s: s.translator(42), ValueError, r"translates strings, got a int"),
    ("translation cut by the length limit", translation_cut_by_length_limit, WARNS, r"cut short; raise max_new_tokens"),
    ("10,000-token source", ten_thousand_token_source, WARNS, r"cut short"),
    ("batch_size 0", lambda s: next(translate_lines(s.translator, ["a"], batch_size=0)), ValueError, r"batch_size must be at least 1"),
    # command line and files
    ("translate input that does not exist", lambda s: translate_file(s.model_dir, s.tmp / "missing.ko"), OSError, r"missing\.ko: no such file"),
    ("translate output path is a directory", lambda s: translate_file(s.model_dir, s.write("in.ko", "가\n"), s.tmp), OSError, r"is a directory; give a file name"),
    ("translate input not UTF-8", lambda s: translate_file(s.model_dir, s.write("l1.ko", b"\xe9\n"), s.tmp / "o.en"), ValueError, r"not UTF-8 text.*re-encode"),
    ("CLI translate without a model", lambda s: s.cli("translate", str(s.tmp / "no-model")), "cli", r"translate: error: .*no such model directory"),
    ("CLI evaluate with mismatched files", lambda s: s.cli("evaluate", str(s.model_dir), s.parallel("ev", "a\nb\n", "a\n")), "cli", r"evaluate: error: .*has 2 lines but"),
    ("training config with a misspelt option", lambda s: s.train("--config", str(s.write("c.json", '{"hiden_size": 8}'))), SystemExit, r"unknown option\(s\) hiden_size"),
    ("training config that is not JSON", lambda s: s.train("--config", str(s.write("bad.json", "{"))), SystemExit, r"bad\.json:1: invalid JSON"),
    ("early stopping without the best checkpoint", early_stopping_without_best_checkpoint, SystemExit, r"--early_stopping_patience needs --load_best_model_at_end"),
    ("early stopping without evaluation", early_stopping_without_evaluation, SystemExit, r"--eval_strategy no leaves nothing to pick the best checkpoint or stop early on"),
    ("resume from a folder that does not exist", resume_from_a_missing_folder, SystemExit, r"--resume_from_checkpoint .*nope: no such folder"),
]  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_translator(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def translator(model_dir) -> RNNTranslationPipeline:
    return load_translator(model_dir)


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(("case", "expected", "message"), [row[1:] for row in CASES], ids=[row[0] for row in CASES])
def test_bad_input(case, expected, message, tmp_path, model_dir, translator, caplog, capsys):
    setup = Setup(tmp_path, model_dir, translator)
    if expected == WARNS:
        with caplog.at_level(logging.WARNING):
            case(setup)
        assert re.search(message, caplog.text), caplog.text
    elif expected == "cli":
        case(setup)
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err
    else:
        with pytest.raises(expected) as raised:
            case(setup)
        text = str(raised.value.code if isinstance(raised.value, SystemExit) else raised.value)
        assert re.search(message, text), text
        assert "\n" not in text.strip(), "one line"
