"""Saving and loading as a Hub repository holds it: safetensors, Auto classes, remote code."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration, RNNSeq2SeqModel
from hf_rnn_seq2seq.modeling.encoder import cpu_runs_bfloat16

SOURCE = torch.tensor([[5, 9, 13, 7, 2], [8, 4, 2, 0, 0]])
MASK = (SOURCE != 0).long()


def tiny(**options) -> RNNSeq2SeqForConditionalGeneration:
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(vocab_size=30, embedding_size=16, hidden_size=16, init_scale=0.5, **options)
    return RNNSeq2SeqForConditionalGeneration(config).eval()


def generate(model) -> list[list[int]]:
    return model.generate(SOURCE, attention_mask=MASK, max_new_tokens=6, num_beams=3).tolist()


@pytest.fixture
def saved(tmp_path):
    model = tiny(decoder_vocab_size=25)
    model.save_pretrained(tmp_path)
    return model, tmp_path


def test_round_trip_is_exact(saved):
    model, path = saved
    assert (path / "model.safetensors").exists()
    assert not list(path.glob("*.bin"))
    loaded = RNNSeq2SeqForConditionalGeneration.from_pretrained(path).eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert generate(loaded) == generate(model)


def test_auto_classes_load_it(saved):
    model, path = saved
    assert isinstance(AutoConfig.from_pretrained(path), RNNSeq2SeqConfig)
    assert isinstance(AutoModel.from_pretrained(path), RNNSeq2SeqModel)
    assert generate(AutoModelForSeq2SeqLM.from_pretrained(path).eval()) == generate(model)


def test_directory_holds_code_and_auto_map(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSeq2SeqLM"}
    for module in ("configuration_rnn_seq2seq", "modeling_rnn_seq2seq", "encoder", "decoder", "attention", "generator"):
        assert (path / f"{module}.py").exists(), module


def test_fresh_process_without_the_package_loads_it_with_remote_code(saved):
    model, path = saved
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["hf_rnn_seq2seq"] = None  # any import of the package now fails
        import torch
        from transformers import AutoModelForSeq2SeqLM
        model = AutoModelForSeq2SeqLM.from_pretrained({str(path)!r}, trust_remote_code=True).eval()
        assert not type(model).__module__.startswith("hf_rnn_seq2seq")
        source = torch.tensor({SOURCE.tolist()})
        out = model.generate(source, attention_mask=(source != 0).long(), max_new_tokens=6, num_beams=3)
        print(json.dumps(out.tolist()))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == generate(model)


def test_remote_code_refuses_a_transformers_older_than_5_24(saved):
    """Before 5.24 generate() and the output classes name the state `past_key_values`, not `cache`: the saved
    code must stop with an error that says what to install."""
    _, path = saved
    script = textwrap.dedent(
        f"""
        import importlib.metadata, sys
        sys.modules["hf_rnn_seq2seq"] = None
        from transformers import AutoModelForSeq2SeqLM
        installed = importlib.metadata.version
        importlib.metadata.version = lambda name: "5.23.0" if name == "transformers" else installed(name)
        AutoModelForSeq2SeqLM.from_pretrained({str(path)!r}, trust_remote_code=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=path, timeout=300)
    assert result.returncode != 0
    assert "transformers>=5.24" in result.stderr and "found transformers==5.23.0" in result.stderr


def test_tied_embeddings_stay_tied_through_save_and_load(tmp_path):
    model = tiny(tie_word_embeddings=True)
    assert model.generator.proj.weight is model.model.decoder.embed_tokens.weight
    model.save_pretrained(tmp_path)
    loaded = RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.generator.proj.weight is loaded.model.decoder.embed_tokens.weight
    assert torch.equal(loaded.generator.proj.weight, model.generator.proj.weight)


@pytest.mark.parametrize("cell_type", ["gru", "lstm", "rnn"])
def test_bfloat16_forward_runs(cell_type):
    """Where the CPU has no bfloat16 kernels, the model refuses to run in bfloat16 instead (tests/test_bfloat16.py)."""
    model = tiny(cell_type=cell_type).to(torch.bfloat16)
    if not cpu_runs_bfloat16():
        with pytest.raises(ValueError, match="bfloat16 needs a CPU with AVX512"):
            model(input_ids=SOURCE, attention_mask=MASK, labels=SOURCE.clamp(min=3))
        return
    out = model(input_ids=SOURCE, attention_mask=MASK, labels=SOURCE.clamp(min=3))
    assert out.logits.dtype == torch.bfloat16
    assert torch.isfinite(out.logits.float()).all() and torch.isfinite(out.loss)
    assert len(model.generate(SOURCE, attention_mask=MASK, max_new_tokens=4)) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_runs_on_cuda():
    model = tiny().to("cuda")
    assert (
        generate(model.cpu())
        == model.to("cuda").generate(SOURCE.cuda(), attention_mask=MASK.cuda(), max_new_tokens=6, num_beams=3).tolist()
    )
