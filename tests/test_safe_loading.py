"""Loading a model directory never runs code from it: pickled weights are refused, and modelling code saved
beside the weights runs only with `trust_remote_code=True`."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_translator
from transformers import AutoModelForSeq2SeqLM

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq_cli import EXIT_ERROR
from hf_rnn_seq2seq_cli import main as cli

PACKAGE = Path(__file__).parents[1] / "hf_rnn_seq2seq"


class Payload:
    """Unpickling this calls os.mkdir(path): proof that the pickle was loaded."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.fixture
def pickled_model_dir(tmp_path) -> Path:
    """A model directory whose weights are a pickle that runs code when loaded."""
    model_dir = save_tiny_translator(tmp_path / "model")
    (model_dir / "model.safetensors").unlink()
    torch.save({"weights": Payload(tmp_path / "code-ran")}, model_dir / "pytorch_model.bin")
    return model_dir


def test_pickled_weights_are_refused_by_our_loaders(pickled_model_dir, capsys):
    with pytest.raises(OSError, match=r"the weights are pickled \(pytorch_model.bin\).*reads model.safetensors only"):
        load_translator(pickled_model_dir)
    lines = pickled_model_dir / "in.txt"
    lines.write_text("안녕\n", encoding="utf-8")
    assert cli(["translate", str(pickled_model_dir), "-i", str(lines)]) == EXIT_ERROR
    assert re.match(r"hf-rnn-seq2seq translate: error: .*the weights are pickled", capsys.readouterr().err)
    assert not (pickled_model_dir.parent / "code-ran").exists()


def test_pickled_weights_are_refused_by_from_pretrained(pickled_model_dir):
    with pytest.raises(OSError, match="model.safetensors"):
        AutoModelForSeq2SeqLM.from_pretrained(pickled_model_dir)
    assert not (pickled_model_dir.parent / "code-ran").exists()


def test_every_torch_load_in_the_package_is_weights_only():
    for source in PACKAGE.rglob("*.py"):
        for call in re.findall(r"torch\.load\([^)]*\)", source.read_text(encoding="utf-8")):
            assert "weights_only=True" in call, f"{source.name}: {call}"


def test_code_in_a_model_directory_runs_only_when_trusted(tmp_path):
    model_dir = save_tiny_translator(tmp_path / "model")
    marker = tmp_path / "code-ran"
    # The saved modelling file announces itself when imported.
    modeling = model_dir / "modeling_rnn_seq2seq.py"
    modeling.write_text(f"import os\nos.mkdir({str(marker)!r})\n" + modeling.read_text(encoding="utf-8"))

    load_translator(model_dir)  # this package's own classes are registered: the saved code is not needed
    assert not marker.exists()

    def load_in_a_process_without_the_package(trust: bool) -> subprocess.CompletedProcess:
        script = (
            "import sys\n"
            "sys.modules['hf_rnn_seq2seq'] = None\n"
            "from transformers import AutoModelForSeq2SeqLM\n"
            f"AutoModelForSeq2SeqLM.from_pretrained({str(model_dir)!r}, trust_remote_code={trust})\n"
        )
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)

    result = load_in_a_process_without_the_package(trust=False)
    assert result.returncode != 0 and "trust_remote_code=True" in result.stderr
    assert not marker.exists()
    result = load_in_a_process_without_the_package(trust=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert marker.exists()
