"""The `hf-rnn-seq2seq` command: each subcommand end to end on a tiny model, its help, and its errors."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from tiny_models import KOREAN, PAIRS, save_tiny_translator, write_test_set

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.modeling.encoder import cpu_runs_bfloat16
from hf_rnn_seq2seq.tokenization import TARGET_TOKENIZER_DIR, load_tokenizers
from hf_rnn_seq2seq_cli import EXIT_ERROR, main

COMMANDS = ["train", "translate", "evaluate", "tokenizer", "average", "export", "shortlist", "plot-attention", "app"]
N_TEST = 12


@pytest.fixture(scope="module")
def test_prefix(tmp_path_factory):
    """A parallel test set: test.ko + test.en."""
    return write_test_set(tmp_path_factory.mktemp("data"), N_TEST)


def fails_with(capsys, argv: list[str], message: str) -> None:
    """The command exits with EXIT_ERROR and one line on stderr that contains `message`."""
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert err.startswith(f"hf-rnn-seq2seq {argv[0]}: error: ")


def printed_report(out: str) -> dict[str, str]:
    """What `evaluate` printed, a `name  value` line each, as a dict."""
    return dict(line.split(maxsplit=1) for line in out.splitlines())


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    expected_option = {
        "train": "--output_dir", "tokenizer": "--vocab-size", "average": "--last", "export": "--opset",
        "app": "--write-space",
    }.get(command)  # fmt: skip
    assert expected_option is None or expected_option in out


def test_translate(tmp_path, model_dir, translator):
    source, target = tmp_path / "in.ko", tmp_path / "out.en"
    lines = [KOREAN[0], "", KOREAN[1], KOREAN[2]]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["translate", str(model_dir), "-i", str(source), "-o", str(target), "--num-beams", "2", "--batch-size", "2"]
    assert main([*argv, "--no-progress"]) == 0
    expected = [translator(line, num_beams=2)[0]["translation_text"] if line else "" for line in lines]
    assert target.read_text(encoding="utf-8").split("\n")[:-1] == expected


def test_evaluate_prints_a_report_and_writes_json(tmp_path, capsys, model_dir, test_prefix, translator):
    report_file, predictions_file = tmp_path / "report.json", tmp_path / "predictions.en"
    argv = ["evaluate", str(model_dir), str(test_prefix), "--json", str(report_file)]
    assert main([*argv, "--predictions", str(predictions_file)]) == 0
    out = capsys.readouterr().out
    report = json.loads(report_file.read_text())
    assert report["sentences"] == N_TEST and 0 <= report["bleu"] <= 100 and 0 <= report["chrf"] <= 100
    assert report["ter"] >= 0 and set(report["signatures"]) == {"bleu", "chrf", "ter"}
    printed = printed_report(out)
    assert all(printed[name] == str(report[name]) for name in ("bleu", "chrf", "ter"))
    assert all(printed[f"signatures.{name}"] == signature for name, signature in report["signatures"].items())
    expected = [r["translation_text"] for r in translator(KOREAN[:N_TEST])]
    assert predictions_file.read_text(encoding="utf-8").split("\n")[:-1] == expected


def test_evaluate_paired_bootstrap(tmp_path, capsys, model_dir, test_prefix):
    """Against a file of translations (the references: a better system than ours) and against a model directory
    (the model itself: the same translations, so the same scores)."""
    report_file, baseline_file = tmp_path / "report.json", tmp_path / "baseline.en"
    baseline_file.write_text(test_prefix.with_suffix(".en").read_text(encoding="utf-8"), encoding="utf-8")
    argv = ["evaluate", str(model_dir), str(test_prefix), "--json", str(report_file), "--bootstrap-samples", "100"]
    assert main([*argv, "--paired-bootstrap", str(baseline_file)]) == 0
    out = capsys.readouterr().out
    paired = json.loads(report_file.read_text())["paired_bootstrap"]
    assert set(paired) == {"bleu", "chrf"}
    assert paired["bleu"]["baseline"] == 100 and paired["bleu"]["p_value"] < 0.05
    assert printed_report(out)["paired_bootstrap.bleu.p_value"] == str(paired["bleu"]["p_value"])
    assert "bs:100|seed:12345" in paired["chrf"]["signature"]

    assert main([*argv, "--paired-bootstrap", str(model_dir)]) == 0
    report = json.loads(report_file.read_text())
    paired = report["paired_bootstrap"]
    assert all(result["baseline"] == result["system"] == report[name] for name, result in paired.items())

    baseline_file.write_text("one line\n", encoding="utf-8")
    fails_with(capsys, [*argv, "--paired-bootstrap", str(baseline_file)], f"has 1 lines but {test_prefix} has {N_TEST}")


def test_bfloat16_weights(tmp_path, capsys, model_dir, test_prefix):
    """--dtype loads the weights in another type: the commands run and say which (on a CPU without bfloat16
    kernels they stop with one line saying so instead)."""
    report_file, target = tmp_path / "report.json", tmp_path / "out.en"
    if not cpu_runs_bfloat16():
        assert main(["translate", str(model_dir), "-i", f"{test_prefix}.ko", "--dtype", "bfloat16"]) == EXIT_ERROR
        assert capsys.readouterr().err.startswith("hf-rnn-seq2seq translate: error: bfloat16 needs a CPU with AVX512")
        return
    assert main(["evaluate", str(model_dir), str(test_prefix), "--dtype", "bfloat16", "--json", str(report_file)]) == 0
    assert json.loads(report_file.read_text())["dtype"] == "bfloat16"
    argv = ["translate", str(model_dir), "-i", f"{test_prefix}.ko", "-o", str(target), "--dtype", "bfloat16"]
    assert main(argv) == 0
    assert len(target.read_text(encoding="utf-8").splitlines()) == N_TEST
    assert load_translator(model_dir, dtype="bfloat16").model.dtype == torch.bfloat16


def test_evaluate_reads_jsonl(tmp_path, capsys, model_dir):
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"translation": {"ko": ko, "en": en}}) + "\n" for ko, en in PAIRS[:3]))
    assert main(["evaluate", str(model_dir), str(data)]) == 0
    assert "sentences" in capsys.readouterr().out


@pytest.mark.parametrize("separate", [False, True])
def test_tokenizer(tmp_path, capsys, test_prefix, separate):
    output_dir = tmp_path / "tokenizer"
    options = ["--separate-vocabularies", "--target-vocab-size", "60"] if separate else []
    assert main(["tokenizer", str(test_prefix), str(output_dir), "--vocab-size", "80", *options]) == 0
    source_tokenizer, target_tokenizer = load_tokenizers(output_dir)
    assert (target_tokenizer is not source_tokenizer) == separate
    assert (output_dir / TARGET_TOKENIZER_DIR).exists() == separate
    decoded = source_tokenizer.decode(source_tokenizer(KOREAN[0])["input_ids"], skip_special_tokens=True)
    assert decoded == KOREAN[0]
    assert str(output_dir) in capsys.readouterr().out


def test_export(tmp_path, capsys, model_dir, translator):
    pytest.importorskip("onnxruntime")
    from hf_rnn_seq2seq.onnx_runtime import OnnxTranslator

    assert main(["export", str(model_dir), str(tmp_path / "onnx")]) == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "onnx" / name) for name in ("encoder.onnx", "decoder_step.onnx", "generator.onnx")
    ]
    expected = [r["translation_text"] for r in translator(KOREAN[:2])]
    assert OnnxTranslator(tmp_path / "onnx").translate(KOREAN[:2]) == expected


def test_shortlist_then_translate_with_it_and_source_relative_limits(tmp_path, capsys, test_prefix):
    model = save_tiny_translator(tmp_path / "model")
    assert main(["shortlist", str(model), str(test_prefix), "--top-k", "3", "--frequent", "5"]) == 0
    assert capsys.readouterr().out.strip() == str(model / "shortlist.npz")
    source, target = tmp_path / "in.ko", tmp_path / "out.en"
    source.write_text("".join(f"{line}\n" for line in KOREAN[:4]), encoding="utf-8")
    options = ["--shortlist", "--max-len-a", "0.1", "--max-len-b", "1", "--num-beams", "2"]
    assert main(["translate", str(model), "-i", str(source), "-o", str(target), "--no-progress", *options]) == 0
    translator = load_translator(model)
    # One batch, as translate reads them: the shortlist is the union over a batch's sources.
    expected = translator(KOREAN[:4], batch_size=4, num_beams=2, use_shortlist=True, max_len_a=0.1, max_len_b=1)
    assert target.read_text(encoding="utf-8").splitlines() == [result["translation_text"] for result in expected]
    assert expected != translator(KOREAN[:4], num_beams=2)  # the options changed the translations
    report_file = tmp_path / "report.json"
    assert main(["evaluate", str(model), str(test_prefix), *options, "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["use_shortlist"] is True and report["max_len_a"] == 0.1 and report["max_len_b"] == 1


def test_plot_attention(tmp_path, capsys, model_dir):
    assert main(["plot-attention", str(model_dir), KOREAN[0], KOREAN[1], "-o", str(tmp_path)]) == 0
    paths = [tmp_path / "attention_01.png", tmp_path / "attention_02.png"]
    assert capsys.readouterr().out.split() == [str(path) for path in paths]
    assert all(path.stat().st_size > 0 for path in paths)


def test_errors_are_one_line(tmp_path, capsys, model_dir, test_prefix):
    fails_with(capsys, ["translate", str(tmp_path / "no-model")], "no such model directory")
    fails_with(capsys, ["translate", str(model_dir), "-i", str(tmp_path / "missing.ko")], "no such file")
    source = tmp_path / "in.ko"
    source.write_text("문장\n", encoding="utf-8")
    fails_with(capsys, ["translate", str(model_dir), "-i", str(source), "-o", str(tmp_path)], "is a directory")
    fails_with(capsys, ["evaluate", str(model_dir), str(tmp_path / "missing")], "no such file")
    (tmp_path / "short.ko").write_text("하나\n둘\n", encoding="utf-8")
    (tmp_path / "short.en").write_text("one\n", encoding="utf-8")
    fails_with(capsys, ["evaluate", str(model_dir), str(tmp_path / "short")], "has 2 lines but")
    fails_with(capsys, ["tokenizer", str(test_prefix), str(tmp_path / "tok"), "--vocab-size", "5"], "vocab_size=5")
    fails_with(capsys, ["translate", str(model_dir), "-i", str(source), "--shortlist"], "has no shortlist")
    no_attention = save_tiny_translator(tmp_path / "no-attention", attention=None, input_feeding=False)
    fails_with(capsys, ["plot-attention", str(no_attention), KOREAN[0]], "no attention")
    if importlib.util.find_spec("gradio") is not None:
        fails_with(capsys, ["app", str(tmp_path / "no-model")], "no such model directory")
    fails_with(
        capsys, ["train", "--output_dir", str(tmp_path), "--train_file", str(tmp_path / "missing")], "--validation_file"
    )


@pytest.mark.parametrize(
    "option, message",
    [
        (["--batch-size", "0"], "must be at least 1"),
        (["--dtype", "int4"], "invalid choice"),
        (["--max-len-a", "-1"], "must be at least 0"),
        (["--max-len-b", "1.5"], "invalid non_negative_int value"),
    ],
)
def test_bad_option_values_are_usage_errors(capsys, model_dir, option, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", str(model_dir), *option])
    assert exit_info.value.code == EXIT_ERROR
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_runs_the_command_without_a_traceback(tmp_path):
    command = [sys.executable, "-m", "hf_rnn_seq2seq", "translate", str(tmp_path / "no-model")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_ERROR
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("no such model directory")


def test_train_then_translate(tmp_path, capsys, test_prefix):
    """`train` runs the training script end to end; what it writes, `translate` uses."""
    output_dir = tmp_path / "trained"
    argv = [
        "train", "--train_file", str(test_prefix), "--validation_file", str(test_prefix),
        "--output_dir", str(output_dir), "--vocab_size", "120", "--embedding_size", "16", "--hidden_size", "16",
        "--max_steps", "4", "--per_device_train_batch_size", "4", "--eval_strategy", "no",
        "--load_best_model_at_end", "false", "--early_stopping_patience", "0", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true", "--num_beams", "1", "--show_examples", "0",
        "--build_shortlist", "true",
    ]  # fmt: skip
    assert main(argv) == 0
    assert (output_dir / "model.safetensors").exists() and (output_dir / "README.md").exists()
    assert (output_dir / "shortlist.npz").exists()
    capsys.readouterr()
    source, output = tmp_path / "in.ko", tmp_path / "out.en"
    source.write_text(f"{KOREAN[0]}\n", encoding="utf-8")
    for options in ([], ["--shortlist"]):
        assert (
            main(["translate", str(output_dir), "-i", str(source), "-o", str(output), "--no-progress", *options]) == 0
        )
        assert len(output.read_text(encoding="utf-8").splitlines()) == 1


def test_app_serves_the_model_on_this_machine_only_by_default(monkeypatch, model_dir):
    pytest.importorskip("gradio")
    from hf_rnn_seq2seq import app

    calls = []
    monkeypatch.setattr(app, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert main(["app", str(model_dir)]) == 0
    assert calls == [((str(model_dir),), {"host": "127.0.0.1", "port": None, "share": False})]
    assert main(["app", str(model_dir), "--host", "0.0.0.0", "--port", "8000", "--share"]) == 0
    assert calls[-1][1] == {"host": "0.0.0.0", "port": 8000, "share": True}


def test_app_without_gradio_names_the_extra(monkeypatch, capsys, model_dir):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what an environment without gradio answers
    fails_with(capsys, ["app", str(model_dir)], "needs the app extra: pip install 'hf-rnn-seq2seq[app]'")


def test_app_writes_a_space(tmp_path, capsys):
    assert main(["app", "--write-space", str(tmp_path), "someone/koen-rnn"]) == 0
    assert sorted(capsys.readouterr().out.split()) == [
        str(tmp_path / name) for name in ("README.md", "app.py", "requirements.txt")
    ]
    fails_with(capsys, ["app", "--write-space", str(tmp_path), "not/a/model-id"], "not a Hub model id")


@pytest.mark.parametrize("argv", [["app"], ["app", "model", "--write-space", "space", "someone/model"]])
def test_app_takes_a_model_or_a_space_to_write(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == EXIT_ERROR
    assert "give a MODEL_DIR to serve, or --write-space DIR MODEL_ID" in capsys.readouterr().err


def test_the_commands_defaults_and_choices_are_the_packages():
    """The command states its defaults and choices itself (so that `--help` imports no torch): they must be the
    ones the package uses."""
    import hf_rnn_seq2seq_cli.options as command
    from hf_rnn_seq2seq import evaluation, loading, onnx_export, onnx_runtime, shortlist, tokenization, translate
    from hf_rnn_seq2seq.metrics.rouge import rouge
    from hf_rnn_seq2seq.modeling import penalties

    assert command.DTYPES == tuple(loading.DTYPES)
    assert command.QUANTIZED_DTYPES == loading.QUANTIZED_DTYPES
    assert command.ENGINES == loading.ENGINES
    assert command.QUANTIZATIONS == tuple(onnx_export.QUANTIZATIONS)
    assert command.ONNX_EXTRA == onnx_runtime.ONNX_EXTRA
    assert command.TOKENIZER_MODELS == tokenization.TOKENIZER_MODELS
    assert command.DEFAULT_VOCAB_SIZE == tokenization.DEFAULT_VOCAB_SIZE
    assert command.DEFAULT_BATCH_SIZE == translate.DEFAULT_BATCH_SIZE
    assert command.DEFAULT_OPSET == onnx_export.DEFAULT_OPSET
    assert command.DEFAULT_BOOTSTRAP_SAMPLES == evaluation.DEFAULT_BOOTSTRAP_SAMPLES
    assert command.LENGTH_PENALTY_TYPES == penalties.LENGTH_PENALTY_TYPES
    assert command.SCORE_DECIMALS == translate.SCORE_DECIMALS
    assert command.ROUGE_TOKENIZERS == rouge.TOKENIZERS
    assert command.DEFAULT_SHORTLIST_TOP_K == shortlist.DEFAULT_TOP_K
    assert command.DEFAULT_SHORTLIST_FREQUENT == shortlist.DEFAULT_FREQUENT
    if importlib.util.find_spec("gradio") is not None:
        from hf_rnn_seq2seq import app

        assert command.DEFAULT_HOST == app.DEFAULT_HOST
