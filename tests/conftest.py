"""Settings for every test, and the fixtures test modules share."""

import os

import pytest

# Tests never reach the Hugging Face Hub: everything they load is made or shipped here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained tiny Korean→English model directory (`tiny_models.save_tiny_translator`), one per test module."""
    from tiny_models import save_tiny_translator  # imported here: the settings above come before transformers

    return save_tiny_translator(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def translator(model_dir):
    from hf_rnn_seq2seq.loading import load_translator

    return load_translator(model_dir)
