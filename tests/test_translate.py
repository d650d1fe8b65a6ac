"""Translating lines, files and stdin with a saved model directory."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import io
import logging
import re
import shutil
import subprocess
import sys

import pytest
from tiny_models import KOREAN

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.translate import BATCHES_PER_WINDOW, translate_file, translate_lines

BATCH_SIZE = 2
WINDOW = BATCH_SIZE * BATCHES_PER_WINDOW
# Longer than two windows, with empty and blank lines, and sentences of different lengths.
LINES = [KOREAN[i] if i % 7 else "" for i in range(2 * WINDOW + 5)]
LINES[3] = "   "
LINES[4] = KOREAN[4] + " " + KOREAN[5]


@pytest.fixture(scope="module")
def one_by_one(translator) -> list[str]:
    """Each non-empty line translated alone, which no batching or sorting can affect."""
    return [translator(line)[0]["translation_text"] if line.strip() else "" for line in LINES]


def test_lines_keep_their_order_and_empty_lines_stay_empty(translator, one_by_one):
    translations = list(translate_lines(translator, LINES, batch_size=BATCH_SIZE))
    assert translations == one_by_one
    assert [t == "" for t in translations] == [not line.strip() for line in LINES]


def test_input_is_read_one_window_at_a_time(translator):
    pulled = 0

    def lines():
        nonlocal pulled
        for line in LINES:
            pulled += 1
            yield line

    translations = translate_lines(translator, lines(), batch_size=BATCH_SIZE)
    next(translations)
    assert pulled == WINDOW


def test_generation_options_reach_generate(translator):
    short = list(translate_lines(translator, KOREAN[:3], max_new_tokens=1))
    assert short == [r["translation_text"] for r in translator(KOREAN[:3], max_new_tokens=1)]


def test_file_to_file(tmp_path, model_dir, one_by_one):
    source, target = tmp_path / "in.ko", tmp_path / "out.en"
    source.write_text("".join(f"{line}\n" for line in LINES), encoding="utf-8")
    assert translate_file(model_dir, source, target, batch_size=BATCH_SIZE, progress=False) == len(LINES)
    assert target.read_text(encoding="utf-8").split("\n")[:-1] == one_by_one


def test_stdin_to_stdout(monkeypatch, capsys, model_dir, one_by_one):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(("\n".join(LINES[:5]) + "\n").encode())))
    translate_file(model_dir, batch_size=BATCH_SIZE, progress=False)
    assert capsys.readouterr().out.split("\n")[:-1] == one_by_one[:5]


def test_only_newline_ends_a_line(tmp_path, model_dir):
    source, target = tmp_path / "in.ko", tmp_path / "out.en"
    source.write_bytes(f"{KOREAN[0]}\r{KOREAN[1]}\r\n{KOREAN[2]}\n".encode())
    assert translate_file(model_dir, source, target, progress=False) == 2
    assert len(target.read_text(encoding="utf-8").split("\n")[:-1]) == 2


def test_progress_bar_goes_to_stderr(tmp_path, capsys, model_dir):
    source = tmp_path / "in.ko"
    source.write_text("\n".join(KOREAN[:3]) + "\n", encoding="utf-8")
    translate_file(model_dir, source, tmp_path / "out.en", progress=True)
    assert "3/3" in capsys.readouterr().err


def test_clear_errors(tmp_path, model_dir):
    with pytest.raises(OSError, match="no such file"):
        translate_file(model_dir, tmp_path / "missing.ko")
    source = tmp_path / "in.ko"
    source.write_text("문장\n", encoding="utf-8")
    with pytest.raises(OSError, match="is a directory"):
        translate_file(model_dir, source, tmp_path)
    with pytest.raises(OSError, match="no such model directory"):
        load_translator(tmp_path / "no-model")
    without_weights = shutil.copytree(
        model_dir, tmp_path / "no-weights", ignore=shutil.ignore_patterns("*.safetensors")
    )
    with pytest.raises(OSError, match="no model weights"):
        load_translator(without_weights)
    (tmp_path / "latin1.ko").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text"):
        translate_file(model_dir, tmp_path / "latin1.ko", tmp_path / "out.en")
    with pytest.raises(ValueError, match="batch_size"):
        next(translate_lines(None, ["x"], batch_size=0))


def test_output_file_appears_only_when_every_line_is_translated(tmp_path, model_dir):
    source, target = tmp_path / "in.ko", tmp_path / "out.en"
    target.write_text("an earlier complete translation\n", encoding="utf-8")
    # Enough lines that the bad byte is read (and fails) after the first windows were translated and written.
    source.write_bytes(("가\n" * 3000).encode("utf-8") + b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"not UTF-8 text .*; the (\d+) lines before it are translated in") as failed:
        translate_file(model_dir, source, target, batch_size=8)
    n_done = int(re.search(r"the (\d+) lines before it", str(failed.value)).group(1))
    assert 0 < n_done < 3000
    assert target.read_text(encoding="utf-8") == "an earlier complete translation\n"
    assert len((tmp_path / "out.en.partial").read_text(encoding="utf-8").splitlines()) == n_done

    source.write_text("가\n나\n", encoding="utf-8")
    assert translate_file(model_dir, source, target) == 2
    assert len(target.read_text(encoding="utf-8").splitlines()) == 2
    assert not (tmp_path / "out.en.partial").exists()


def test_ten_thousand_token_source_is_read_whole(translator, caplog):
    """An RNN's memory grows linearly with the source: nothing is truncated; a translation cut by the length
    limit says so."""
    long_source = " ".join(KOREAN * 8)
    input_ids = translator.tokenizer(long_source, return_tensors="pt")["input_ids"]
    assert input_ids.shape[1] >= 10_000
    logging.Logger.warning_once.cache_clear()  # warned once per process: let this test see it
    with caplog.at_level(logging.WARNING):
        translation = translator(long_source)[0]["translation_text"]
    expected = translator.model.generate(input_ids)  # the whole source, straight into generate()
    assert translation == translator.tokenizer.decode(expected[0], skip_special_tokens=True)
    assert "is cut short; raise max_new_tokens" in caplog.text


def test_translating_does_not_load_the_training_data_stack():
    """`datasets` brings pyarrow and pandas (about 80 MB of a process); translating and the tokenizers need none
    of it. A fresh interpreter, since this one has imported everything already."""
    code = "import sys, hf_rnn_seq2seq.translate; print(sorted({'datasets', 'pyarrow', 'pandas'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
