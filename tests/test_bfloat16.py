"""bfloat16 on a CPU without oneDNN's bfloat16 kernels (AVX2 only: most laptops, many cloud CPUs) is refused
before anything runs, in one line that names what the CPU lacks and what to use instead; float32 is untouched.

These tests make every CPU look like such a one, so that they run everywhere; the tests that run bfloat16 for real
(tests/training/test_training.py, tests/cli/test_cli.py, tests/modeling/test_optimised_paths.py, tests/test_bench.py)
check the refusal instead on the CPUs that lack the kernels.
"""

import copy
import re

import pytest
import torch
from tiny_models import KOREAN, NO_EVALUATION, TINY_MODEL, save_tiny_translator, write_digit_corpus

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.modeling import encoder
from hf_rnn_seq2seq.modeling.pipeline import RNNTranslationPipeline
from hf_rnn_seq2seq_cli import EXIT_ERROR
from hf_rnn_seq2seq_cli import main as cli

REFUSAL = "bfloat16 needs a CPU with AVX512 (best with AVX512-BF16 or AMX) or Arm BF16, and this one has "


@pytest.fixture
def cpu_without_bfloat16(monkeypatch):
    monkeypatch.setattr(encoder, "cpu_runs_bfloat16", lambda: False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_translator(tmp_path_factory.mktemp("model"), cell_type="lstm")


def test_training_with_bf16_is_refused_in_one_line(cpu_without_bfloat16, tmp_path, capsys):
    corpus = write_digit_corpus(tmp_path / "train.jsonl", n_pairs=20, seed=0)
    argv = ["train", "--train_file", str(corpus), "--output_dir", str(tmp_path / "out"), *NO_EVALUATION]
    assert cli([*argv, *TINY_MODEL, "--max_steps", "1", "--bf16", "true"]) == EXIT_ERROR
    error = capsys.readouterr().err
    assert error.startswith(f"hf-rnn-seq2seq train: error: {REFUSAL}{torch.backends.cpu.get_cpu_capability()}")
    assert error.endswith("train in float32 (leave out --bf16 and --bf16_full_eval)\n") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_translating_with_bfloat16_weights_is_refused_in_one_line(cpu_without_bfloat16, model_dir, capsys):
    for command in (["translate", str(model_dir)], ["plot-attention", str(model_dir), KOREAN[0]]):
        assert cli([*command, "--dtype", "bfloat16"]) == EXIT_ERROR
        error = capsys.readouterr().err
        assert REFUSAL in error and error.endswith("(--dtype float32; dtype=torch.float32 in Python)\n")
        assert error.count("\n") == 1


def test_the_pipeline_and_the_model_refuse_bfloat16_and_run_float32(cpu_without_bfloat16, model_dir):
    translator = load_translator(model_dir)
    halved = copy.deepcopy(translator.model).to(torch.bfloat16)
    with pytest.raises(ValueError, match=re.escape(REFUSAL)):
        RNNTranslationPipeline(model=halved, tokenizer=translator.tokenizer)
    source = translator.tokenizer(KOREAN[:2], return_tensors="pt", padding=True)
    with pytest.raises(ValueError, match=re.escape(REFUSAL)):  # a model used directly, as `model.generate()` does
        halved.generate(**source, max_new_tokens=3)
    with pytest.raises(ValueError, match=re.escape(REFUSAL)), torch.autocast("cpu", dtype=torch.bfloat16):
        translator.model.generate(**source, max_new_tokens=3)
    assert translator(KOREAN[0])[0]["translation_text"] is not None  # float32 runs as before
