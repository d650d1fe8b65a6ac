"""Attention heatmaps and training curves: PNGs of the promised size, with something drawn, Hangul as Hangul."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import warnings

import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from PIL import Image
from tiny_models import KOREAN, save_tiny_translator

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.plotting import (
    CURVES_FIGSIZE,
    DPI,
    align,
    attention_figsize,
    font_families,
    plot_attention,
    plot_training_curves,
)

# A blank or single-colour image has (almost) no spread in its pixel values.
MIN_PIXEL_STD = 10.0
LOG_HISTORY = [{"step": step, "loss": 5.0 / step, "epoch": step / 40} for step in range(10, 201, 10)] + [
    {"step": step, "eval_loss": 4.0 / step**0.5, "eval_bleu": step / 10, "eval_chrf": step / 5}
    for step in (40, 80, 120)
]


def read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("L"), dtype=float)


def pixel_size(figsize: tuple[float, float]) -> tuple[int, int]:
    """(height, width) in pixels of a figure of `figsize` inches."""
    return round(figsize[1] * DPI), round(figsize[0] * DPI)


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    return load_translator(save_tiny_translator(tmp_path_factory.mktemp("tiny")))


def test_the_bundled_font_has_hangul():
    family = font_families()[0]
    font = FT2Font(font_manager.findfont(family, fallback_to_default=False))
    assert all(font.get_char_index(ord(char)) for char in "한국어 문장")


def test_attention_heatmap(tmp_path, translator):
    sentence = KOREAN[0]
    alignment = align(translator.model, translator.tokenizer, translator.target_tokenizer, sentence)
    assert alignment.weights.shape == (len(alignment.target_tokens), len(alignment.source_tokens))
    assert np.allclose(alignment.weights.sum(axis=1), 1.0, atol=1e-5)
    assert alignment.source_tokens[-1] == "</s>"
    assert alignment.translation == translator(sentence)[0]["translation_text"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for every box it draws
        path = plot_attention(alignment, tmp_path / "plots" / "attention.png")
    pixels = read_png(path)
    assert pixels.shape == pixel_size(attention_figsize(len(alignment.source_tokens), len(alignment.target_tokens)))
    assert pixels.std() > MIN_PIXEL_STD


def test_model_without_attention_is_refused(tmp_path):
    translator = load_translator(save_tiny_translator(tmp_path, attention=None, input_feeding=False))
    with pytest.raises(ValueError, match="no attention"):
        align(translator.model, translator.tokenizer, translator.target_tokenizer, KOREAN[0])


@pytest.mark.parametrize("source", ["list", "file", "folder"])
def test_training_curves(tmp_path, source):
    state_file = tmp_path / "trainer_state.json"
    state_file.write_text(json.dumps({"log_history": LOG_HISTORY}))
    given = {"list": LOG_HISTORY, "file": state_file, "folder": tmp_path}[source]
    pixels = read_png(plot_training_curves(given, tmp_path / "curves.png"))
    assert pixels.shape == pixel_size(CURVES_FIGSIZE)
    assert pixels.std() > MIN_PIXEL_STD


def test_training_curves_refuse_what_they_cannot_draw(tmp_path):
    with pytest.raises(ValueError, match="no loss"):
        plot_training_curves([{"step": 1, "epoch": 0.1}], tmp_path / "curves.png")
    bad = tmp_path / "trainer_state.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        plot_training_curves(bad, tmp_path / "curves.png")
    with pytest.raises(OSError, match="cannot read"):
        plot_training_curves(tmp_path / "missing.json", tmp_path / "curves.png")
