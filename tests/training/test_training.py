"""End-to-end tests of `hf_rnn_seq2seq.training`: train, save a Hub-ready folder, load it back, resume."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from tiny_models import NO_EVALUATION, TINY_MODEL, write_digit_corpus

from hf_rnn_seq2seq.demo import demo_settings
from hf_rnn_seq2seq.loading import load_model
from hf_rnn_seq2seq.modeling.encoder import cpu_runs_bfloat16
from hf_rnn_seq2seq.modeling.generator import Generator
from hf_rnn_seq2seq.training import main

REPO_ROOT = Path(__file__).parents[2]
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def digit_corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("digits")
    return {
        "train": write_digit_corpus(folder / "train.jsonl", 1200, seed=0),
        "validation": write_digit_corpus(folder / "validation.jsonl", 60, seed=1),
        "test": write_digit_corpus(folder / "test.jsonl", 60, seed=2),
    }


def digit_training(corpus: dict[str, Path], output_dir: Path, *options: str) -> list[str]:
    """Flags that train the tiny model on the digit corpus, evaluating on its validation split."""
    return [
        "--train_file", str(corpus["train"]),
        "--validation_file", str(corpus["validation"]),
        "--output_dir", str(output_dir),
        "--tokenizer_type", "bpe",  # whole digit names become tokens
        "--vocab_size", "100",
        "--num_train_epochs", "8",  # 38 steps each
        "--per_device_train_batch_size", "32",
        *TINY_MODEL,
        *options,
    ]  # fmt: skip


def eval_losses(output_dir: Path) -> list[float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry["eval_loss"] for entry in history if "eval_loss" in entry]


@pytest.mark.slow
def test_train_save_load_translate(digit_corpus, tmp_path):
    output_dir = tmp_path / "model"
    results = main(
        digit_training(digit_corpus, output_dir, "--test_file", str(digit_corpus["test"]), "--license", "apache-2.0")
    )

    losses = eval_losses(output_dir)
    assert len(losses) >= 2 and min(losses[1:]) < losses[0], losses
    assert results["test_bleu"] > 30, results
    assert json.loads((output_dir / "all_results.json").read_text())["test_bleu"] == results["test_bleu"]

    # The folder is a Hub repository: a fresh process that does not import hf_rnn_seq2seq (so the model type is
    # not registered) loads it with trust_remote_code, from the code saved beside the weights.
    load_and_translate = (
        "import sys\n"
        "sys.modules['hf_rnn_seq2seq'] = None  # the package cannot be imported\n"
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n"
        # AutoTokenizer reads config.json too, whose auto_map names the custom code: it needs the flag as well.
        f"tokenizer = AutoTokenizer.from_pretrained({str(output_dir)!r}, trust_remote_code=True)\n"
        f"model = AutoModelForSeq2SeqLM.from_pretrained({str(output_dir)!r}, trust_remote_code=True)\n"
        "print(type(model).__name__, model.generation_config.num_beams)\n"
        "outputs = model.generate(**tokenizer(['삼 일 사'], return_tensors='pt'))\n"
        "print(tokenizer.batch_decode(outputs, skip_special_tokens=True)[0])\n"
        # The pipeline's code was saved beside the model too.
        "from transformers import pipeline\n"
        f"translator = pipeline(model={str(output_dir)!r}, trust_remote_code=True)\n"
        "print(translator(['삼 일 사'])[0]['translation_text'])\n"
    )
    python_without_package = subprocess.run(
        [sys.executable, "-c", load_and_translate],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
        check=True,
    )
    loaded_class, translation, piped = python_without_package.stdout.strip().splitlines()[-3:]
    assert loaded_class == "RNNSeq2SeqForConditionalGeneration 5"
    assert translation.strip(), "the loaded model translated to nothing"
    assert piped == translation
    assert (output_dir / "training_curves.png").stat().st_size > 0

    generation_config = json.loads((output_dir / "generation_config.json").read_text())
    assert generation_config["num_beams"] == 5 and generation_config["max_length"] == 129
    assert "top_k" not in generation_config  # generate()'s defaults did not leak into the saved settings

    # Evaluating the saved folder reproduces the run's test score: it holds the best weights and their decoding.
    reloaded = main(["--model_name_or_path", str(output_dir), "--test_file", str(digit_corpus["test"]),
                     "--output_dir", str(tmp_path / "evaluation"), "--report_to", "none"])  # fmt: skip
    assert reloaded["test_bleu"] == results["test_bleu"]

    card = ModelCard.load(output_dir / "README.md")
    assert card.data.language == ["ko", "en"]
    assert card.data.license == "apache-2.0"
    assert {"translation", "rnn", "seq2seq", "hf-rnn-seq2seq"} <= set(card.data.tags)
    scores = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert scores[("test", "bleu")] == round(results["test_bleu"], 2)
    assert scores[("validation", "chrf")] == round(results["eval_chrf"], 2)


def test_short_run_on_shared_data(tmp_path):
    tatoeba = SHARED_DATA / "tatoeba-kor-eng"
    if not tatoeba.is_dir():
        pytest.skip(f"the staged corpora are not here ({SHARED_DATA.resolve()} has no tatoeba-kor-eng)")
    output_dir = tmp_path / "model"
    results = main(
        [
            "--train_file", str(tatoeba / "train"),
            "--validation_file", str(tatoeba / "dev"),
            "--test_file", str(tatoeba / "test"),
            "--output_dir", str(output_dir),
            "--max_train_samples", "2000",
            "--max_eval_samples", "50",
            "--max_predict_samples", "50",
            "--vocab_size", "1000",
            "--separate_vocabularies",
            "--num_train_epochs", "2",
            "--num_beams", "1",
            "--generation_max_length", "30",
            *TINY_MODEL,
        ]
    )  # fmt: skip

    losses = eval_losses(output_dir)
    assert losses[-1] < losses[0], losses
    assert results["train_samples"] <= 2000 and results["test_samples"] == 50
    assert (output_dir / "target_tokenizer" / "tokenizer.json").is_file()
    assert len((output_dir / "test_predictions.txt").read_text(encoding="utf-8").splitlines()) == 50


def test_resume_continues_from_the_checkpoint(digit_corpus, tmp_path):
    output_dir = tmp_path / "model"
    arguments = [
        "--train_file", str(digit_corpus["train"]),
        "--output_dir", str(output_dir),
        "--tokenizer_type", "bpe",
        "--vocab_size", "100",
        *NO_EVALUATION,
        "--save_strategy", "steps",
        "--save_steps", "10",
        "--logging_steps", "5",
        *TINY_MODEL,
    ]  # fmt: skip
    main([*arguments, "--max_steps", "20"])
    first_history = json.loads((output_dir / "checkpoint-20" / "trainer_state.json").read_text())["log_history"]

    main([*arguments, "--max_steps", "40", "--resume_from_checkpoint", "last"])
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 40
    # The learning rate decays linearly to 0 at max_steps: a run restarted from step 0 with max_steps=40 would
    # log other rates at steps 5-20 than the first run (max_steps=20) did. A resumed run keeps those entries.
    losses_logged = [entry for entry in state["log_history"] if "loss" in entry]
    assert losses_logged[: len(first_history)] == [entry for entry in first_history if "loss" in entry]
    assert [entry["step"] for entry in losses_logged] == list(range(5, 41, 5))


def test_a_tied_generator_is_not_reported_missing_from_checkpoints(digit_corpus, tmp_path, caplog):
    """The Decoder embedding is the Generator's weight, saved once: loading the best checkpoint at the end, or one
    to resume from, says nothing is missing, and the two stay one tensor."""
    output_dir = tmp_path / "model"
    arguments = digit_training(digit_corpus, output_dir, "--tie_word_embeddings", "true", "--eval_steps", "10",
                               "--save_steps", "10", "--max_eval_samples", "10")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        main([*arguments, "--max_steps", "20"])  # the best checkpoint loaded at the end
        main([*arguments, "--max_steps", "30", "--resume_from_checkpoint", "last"])
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 30
    assert [record.message for record in caplog.records if "missing keys" in record.message] == []
    model = load_model(output_dir)
    assert model.generator.proj.weight is model.model.decoder.embed_tokens.weight


def test_max_train_minutes_stops_at_the_first_step_past_the_limit_and_evaluates_there(digit_corpus, tmp_path):
    """A time limit shorter than one step: training ends after its first step, evaluated and saved there (so the
    best checkpoint is one that was evaluated), however many epochs were asked for."""
    output_dir = tmp_path / "model"
    arguments = digit_training(digit_corpus, output_dir, "--max_train_minutes", "0.0001", "--save_total_limit", "1")
    main([*arguments, "--max_eval_samples", "4"])
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 1
    assert {entry["step"] for entry in state["log_history"] if "eval_bleu" in entry} == {1}
    assert state["best_model_checkpoint"].endswith("checkpoint-1")


@pytest.mark.slow
def test_bf16_mixed_precision_learns(digit_corpus, tmp_path, monkeypatch):
    """`--bf16 true` alone (no --use_cpu needed on a machine without a GPU) runs the matrix products in bfloat16,
    keeps the weights in float32 and still learns the task; on a CPU without bfloat16 kernels it is refused."""
    generator_dtypes = set()
    forward = Generator.forward

    def recording_forward(self, h_dec, vocabulary=None):
        logits = forward(self, h_dec, vocabulary)
        generator_dtypes.add(logits.dtype)
        return logits

    monkeypatch.setattr(Generator, "forward", recording_forward)
    output_dir = tmp_path / "model"
    if not cpu_runs_bfloat16():  # refused before training starts, in one line (tests/test_bfloat16.py)
        with pytest.raises(SystemExit, match="^error: bfloat16 needs a CPU with AVX512"):
            main(digit_training(digit_corpus, output_dir, "--bf16", "true"))
        return
    results = main(digit_training(digit_corpus, output_dir, "--bf16", "true"))
    assert torch.bfloat16 in generator_dtypes
    assert results["eval_bleu"] > 30, results
    with safe_open(output_dir / "model.safetensors", "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.float32}


def test_config_file_with_overrides(tmp_path, monkeypatch):
    from hf_rnn_seq2seq.training.arguments import parse_arguments

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"output_dir": "out", "hidden_size": 128, "bidirectional": False}))
    for arguments in ([str(config), "--hidden_size", "32"], ["--config", str(config), "--hidden_size", "32"]):
        model_args, _, training_args = parse_arguments(arguments, defaults={"vocab_size": 500})
        assert (model_args.hidden_size, model_args.bidirectional, model_args.vocab_size) == (32, False, 500)
        assert training_args.output_dir == "out" and training_args.learning_rate == 1e-3


def test_bad_input_is_one_line(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hiden_size": 128}))
    with pytest.raises(SystemExit, match=r"^error: .*config.json: unknown option\(s\) hiden_size"):
        main([str(config)])
    with pytest.raises(SystemExit, match=r"^error: .*missing"):
        main(["--train_file", str(tmp_path / "missing.jsonl"), "--validation_file", "x", "--output_dir", "out"])


def test_demo_config_matches_the_demo():
    config = json.loads((REPO_ROOT / "training" / "configs" / "demo_koen.json").read_text())
    corpus = Path("hf_rnn_seq2seq") / "corpus" / "everyday-koen"  # the config's paths are relative to the repo root
    assert config == demo_settings(corpus)
    for split in ("train", "validation", "test"):
        assert (REPO_ROOT / corpus / f"{split}.ko").is_file()
