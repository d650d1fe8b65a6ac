"""Translating with onnxruntime (`--engine onnxruntime`, and `--dtype int8`, which runs there): float32 graphs and
dynamically quantized int8 graphs of a trained tiny model, against the PyTorch model; the graphs kept in the model
directory; the command's flags; the errors for what the engine cannot do, and without onnxruntime."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util
import itertools
import json
import shutil
import sys
import threading

import numpy as np
import onnx
import pytest
import torch
from tiny_models import ENGLISH, KOREAN, one_thread, save_tiny_translator, write_test_set

from hf_rnn_seq2seq.ensemble import load_ensemble_translator
from hf_rnn_seq2seq.loading import (
    GRAPH_LAYOUT,
    MADE_FROM_FILE,
    ONNX_DIRS,
    load_model,
    load_translator,
    onnx_graphs,
)
from hf_rnn_seq2seq.onnx_runtime import (
    DECODER_STEP_FILE,
    GENERATOR_FILE,
    NO_SPINNING,
    QUANTIZATION_FILE,
    OnnxTranslator,
)
from hf_rnn_seq2seq.shortlist import build_model_shortlist
from hf_rnn_seq2seq.translate import translate_lines
from hf_rnn_seq2seq_cli import EXIT_ERROR, main

pytest.importorskip("onnxruntime")

TRAIN_STEPS = 150  # as tests/test_app.py: the tiny model then translates most of tiny_models.PAIRS
TRAINED_SIZE = {"embedding_size": 32, "hidden_size": 32}
BEAMS = 4
# int8 rounding moves each log-probability a little; a sentence whose float32 choice is a near tie can flip. On
# this model 316 of all 320 sentences were unchanged (greedy and beam 4); the bounds leave room for other CPUs.
MIN_UNCHANGED = 0.9
# On the float32 model's own (teacher-forced) steps; seen up to 0.11, the tiny model being trained anew each run.
MAX_PROBABILITY_ERROR = 0.15
SENTENCES, REFERENCES = KOREAN[::5], ENGLISH[::5]  # 64 of tiny_models.PAIRS, every word among them
N_TEST = 12
# A shortlist that leaves out most of the tiny vocabulary from each batch of 4, yet holds what the model picks.
SHORTLIST_TOP_K, SHORTLIST_FREQUENT = 10, 20
INSTALL_EXTRA = "needs the onnx extra: pip install 'hf-rnn-seq2seq[onnx]'"
BARRIER_SECONDS = 60  # how long one batch's search waits for the other to start beside it before the test fails


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A tiny model trained on tiny_models.PAIRS: an untrained one's near-uniform scores would flip at random."""
    return save_tiny_translator(tmp_path_factory.mktemp("trained"), train_steps=TRAIN_STEPS, **TRAINED_SIZE)


@pytest.fixture(scope="module")
def int8_translator(trained_dir):
    with one_thread():
        return load_translator(trained_dir, dtype="int8")


@pytest.mark.parametrize("graph_file", [DECODER_STEP_FILE, GENERATOR_FILE])
def test_graphs_multiply_in_int8(trained_dir, int8_translator, graph_file):
    graphs = trained_dir / ONNX_DIRS["int8"]
    graph = onnx.load(graphs / graph_file).graph
    operators = {node.op_type for node in graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= operators
    # Every product with a weight matrix is an integer one; what float MatMuls remain multiply two activations
    # (attention scores and context).
    weights = {initializer.name for initializer in graph.initializer}
    assert not [node.name for node in graph.node if node.op_type == "MatMul" and weights & set(node.input)]
    record = json.loads((graphs / QUANTIZATION_FILE).read_text())
    assert record["dtype"] == "int8" and record["weight_type"] == "QInt8"
    matrices = {initializer.data_type for initializer in graph.initializer if len(initializer.dims) == 2}
    assert onnx.TensorProto.INT8 in matrices


@pytest.mark.parametrize("num_beams", [1, BEAMS])
def test_translations_agree_with_float32(trained_dir, int8_translator, num_beams):
    float32 = load_translator(trained_dir)
    with one_thread():
        expected = [result["translation_text"] for result in float32(SENTENCES, num_beams=num_beams)]
        translated = [result["translation_text"] for result in int8_translator(SENTENCES, num_beams=num_beams)]
    assert len(translated) == len(SENTENCES)
    unchanged = sum(a == b for a, b in zip(translated, expected)) / len(expected)
    assert unchanged >= MIN_UNCHANGED
    # Nor is the int8 model worse at the task: as many reference translations, give or take the flips.
    correct = [sum(a == b for a, b in zip(output, REFERENCES)) for output in (expected, translated)]
    assert abs(correct[0] - correct[1]) <= (1 - MIN_UNCHANGED) * len(SENTENCES)


def test_step_probabilities_are_close_to_float32(trained_dir, int8_translator):
    """On the float32 model's own greedy translations, fed back one token at a time, every probability of the
    int8 decoder step is within a bound of float32's, and it picks float32's token wherever that leads the second
    best by more than twice the bound (there, rounding cannot change the choice)."""
    model = load_model(trained_dir)
    source = int8_translator.tokenizer(SENTENCES, padding=True, return_tensors="np")
    with one_thread(), torch.no_grad():
        output_ids = model.generate(torch.from_numpy(source["input_ids"]), num_beams=1)
        runners = {"float32": load_translator(trained_dir, engine="onnxruntime"), "int8": int8_translator}
    inputs = {name: runner.encode(source["input_ids"], source["attention_mask"]) for name, runner in runners.items()}
    largest_error = 0.0
    running = np.ones(len(SENTENCES), dtype=bool)
    for tokens in output_ids[:, :-1].T.numpy():
        # Sentences that have ended are left out: their rows run on over padding, out of what the model learnt.
        running &= tokens != model.config.eos_token_id
        probabilities = {}
        for name, runner in runners.items():
            outputs, inputs[name] = runner.decode_step(tokens, inputs[name])
            probabilities[name] = torch.softmax(torch.from_numpy(outputs["logits"][running]), dim=-1).numpy()
        largest_error = max(largest_error, np.abs(probabilities["int8"] - probabilities["float32"]).max(initial=0))
        best_two = np.sort(probabilities["float32"], axis=-1)[:, -2:]
        clear = best_two[:, 1] - best_two[:, 0] > 2 * MAX_PROBABILITY_ERROR
        assert (probabilities["int8"].argmax(-1)[clear] == probabilities["float32"].argmax(-1)[clear]).all()
    assert largest_error < MAX_PROBABILITY_ERROR


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_graphs_are_kept_and_made_again_when_the_model_changes(tmp_path, trained_dir, dtype):
    model_dir = shutil.copytree(trained_dir, tmp_path / "model", ignore=shutil.ignore_patterns(*ONNX_DIRS.values()))
    with one_thread():
        graphs = onnx_graphs(model_dir, dtype)
    assert graphs == model_dir / ONNX_DIRS[dtype] and [path.name for path in model_dir.glob("onnx-*")] == [graphs.name]
    made = (graphs / DECODER_STEP_FILE).stat().st_mtime_ns
    assert onnx_graphs(model_dir, dtype) == graphs and (graphs / DECODER_STEP_FILE).stat().st_mtime_ns == made
    assert [path.name for path in model_dir.iterdir() if path.name.startswith(f".{graphs.name}")] == []

    generation_config = json.loads((model_dir / "generation_config.json").read_text())
    generation_config["max_new_tokens"] = 3
    (model_dir / "generation_config.json").write_text(json.dumps(generation_config))
    with one_thread():
        assert onnx_graphs(model_dir, dtype) == graphs
    assert OnnxTranslator(graphs).generation_config.max_new_tokens == 3  # made again from the new files

    # Graphs of an earlier layout (an older version of the package made them) are made again as well.
    record = json.loads((graphs / MADE_FROM_FILE).read_text())
    (graphs / MADE_FROM_FILE).write_text(json.dumps(record | {"layout": GRAPH_LAYOUT - 1}))
    (graphs / GENERATOR_FILE).unlink()  # as graphs made before the Generator had a graph of its own
    with one_thread():
        assert onnx_graphs(model_dir, dtype) == graphs
    assert (graphs / GENERATOR_FILE).is_file()


def test_sessions_let_idle_threads_sleep_and_keep_no_memory_arena(int8_translator):
    """Decoding alternates between sessions; a session's threads spinning after its run would take the cores, and
    an arena per session would hold the peak of each."""
    sessions = [int8_translator.encoder, int8_translator.step, int8_translator.generator]
    options = [session.get_session_options() for session in sessions]
    assert all(option.get_session_config_entry(NO_SPINNING[0]) == "0" for option in options)
    assert not any(option.enable_cpu_mem_arena for option in options)


def test_translate_lines_takes_the_int8_translator(int8_translator):
    lines = [KOREAN[0], "", KOREAN[1], KOREAN[2]]
    # One sentence per batch: the activations are quantized with one scale per batch, so a near tie can go another
    # way beside other sentences (it did on a CI machine).
    with one_thread():
        translations = list(translate_lines(int8_translator, lines, batch_size=1))
        expected = [int8_translator(text)[0]["translation_text"] for text in (KOREAN[0], KOREAN[1], KOREAN[2])]
    assert translations == [expected[0], "", expected[1], expected[2]]
    assert int8_translator(KOREAN[0]) == [{"translation_text": expected[0]}]  # one text, as the pipeline


def translate_command_agrees(tmp_path, model_dir, translator, argv: list[str]) -> tuple[str, list[str]]:
    """Write a test set, translate it with `hf-rnn-seq2seq translate MODEL_DIR ... argv` and check the output is
    `translator`'s (argv sets the same beam); return the test set's prefix and those translations."""
    test_prefix = write_test_set(tmp_path, N_TEST)
    sources = (tmp_path / "test.ko").read_text(encoding="utf-8").splitlines()
    expected = [result["translation_text"] for result in translator(sources, num_beams=BEAMS)]
    assert main(["translate", str(model_dir), "-i", f"{test_prefix}.ko", "-o", str(tmp_path / "out"), *argv]) == 0
    assert (tmp_path / "out").read_text(encoding="utf-8").splitlines() == expected
    return str(test_prefix), expected


def test_commands_translate_evaluate_and_export_in_int8(tmp_path, capsys, trained_dir, int8_translator):
    argv = ["--dtype", "int8", "--num-beams", str(BEAMS)]
    with one_thread():
        test_prefix, expected = translate_command_agrees(tmp_path, trained_dir, int8_translator, argv)
        report_file = tmp_path / "report.json"
        assert main(["evaluate", str(trained_dir), str(test_prefix), *argv, "--json", str(report_file)]) == 0
        report = json.loads(report_file.read_text())
        assert report["dtype"] == "int8" and report["num_beams"] == BEAMS and report["sentences"] == N_TEST

        exported = tmp_path / "exported"
        assert main(["export", str(trained_dir), str(exported), "--quantize", "int8"]) == 0
        assert json.loads((exported / QUANTIZATION_FILE).read_text())["dtype"] == "int8"
        # An exported int8 directory translates as the model directory's own int8 graphs do.
        assert main(["translate", str(exported), "-i", f"{test_prefix}.ko", "-o", str(tmp_path / "out2"), *argv]) == 0
        assert (tmp_path / "out2").read_text(encoding="utf-8").splitlines() == expected
        # Its graphs are int8 ones: asked for float32 graphs, it says so.
        assert main(["translate", str(exported), "-i", f"{test_prefix}.ko", "--engine", "onnxruntime"]) == EXIT_ERROR
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{exported} holds int8 graphs (hf-rnn-seq2seq export): translate it in int8")
    )


@pytest.fixture(scope="module")
def onnx_translator(trained_dir):
    """The model's float32 graphs in onnxruntime: what --engine onnxruntime translates with."""
    with one_thread():
        return load_translator(trained_dir, engine="onnxruntime")


@pytest.mark.parametrize("num_beams", [1, BEAMS])
def test_the_onnxruntime_engine_translates_as_pytorch_does(trained_dir, onnx_translator, num_beams):
    """float32 graphs compute what the PyTorch model computes, to rounding: the same translations."""
    assert isinstance(onnx_translator, OnnxTranslator)
    graph = onnx.load(trained_dir / ONNX_DIRS["float32"] / DECODER_STEP_FILE).graph
    assert "MatMulInteger" not in {node.op_type for node in graph.node}  # float32 products, not int8
    pytorch = load_translator(trained_dir, engine="pytorch")
    with one_thread():
        expected = [result["translation_text"] for result in pytorch(SENTENCES, num_beams=num_beams)]
        translated = [result["translation_text"] for result in onnx_translator(SENTENCES, num_beams=num_beams)]
    assert translated == expected


def test_commands_translate_evaluate_and_export_with_the_onnxruntime_engine(
    tmp_path, capsys, trained_dir, onnx_translator
):
    argv = ["--engine", "onnxruntime", "--num-beams", str(BEAMS)]
    with one_thread():
        test_prefix, expected = translate_command_agrees(tmp_path, trained_dir, onnx_translator, argv)
        reports = {}
        for engine_flags in (argv, ["--num-beams", str(BEAMS)]):
            report_file = tmp_path / "report.json"
            assert (
                main(["evaluate", str(trained_dir), str(test_prefix), *engine_flags, "--json", str(report_file)]) == 0
            )
            report = json.loads(report_file.read_text())
            reports[report["engine"]] = report
        assert set(reports) == {"onnxruntime", "pytorch"} and reports["onnxruntime"]["dtype"] == "float32"
        assert reports["onnxruntime"]["bleu"] == reports["pytorch"]["bleu"]

        # A directory `export` wrote (float32 graphs) translates with the engine as the model directory does.
        exported = tmp_path / "exported"
        assert main(["export", str(trained_dir), str(exported)]) == 0
        assert main(["translate", str(exported), "-i", f"{test_prefix}.ko", "-o", str(tmp_path / "out2"), *argv]) == 0
        assert (tmp_path / "out2").read_text(encoding="utf-8").splitlines() == expected
    capsys.readouterr()


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_inter_threads_search_batches_at_once_as_one_thread_does(monkeypatch, trained_dir, dtype):
    """Two batches in the search at the same time, each in its own worker thread on one onnxruntime thread: the
    translations are those of one thread taking the batches in turn."""
    graphs = onnx_graphs(trained_dir, dtype)
    in_turn = OnnxTranslator(graphs, num_threads=1)
    at_once = OnnxTranslator(graphs, num_threads=2, inter_threads=2)
    sessions = [at_once.encoder, at_once.step, at_once.generator]
    assert all(session.get_session_options().intra_op_num_threads == 1 for session in sessions)
    both_searching = threading.Barrier(2, timeout=BARRIER_SECONDS)  # broken unless both batches search at once
    search, searched_in = at_once.generate, set()

    def generate(*args, **kwargs):
        searched_in.add(threading.get_ident())
        both_searching.wait()
        return search(*args, **kwargs)

    monkeypatch.setattr(at_once, "generate", generate)
    batches = [SENTENCES[: len(SENTENCES) // 2], SENTENCES[len(SENTENCES) // 2 :]]
    expected = list(in_turn.translate_batches(batches, num_beams=BEAMS))
    assert list(at_once.translate_batches(batches, num_beams=BEAMS)) == expected
    assert len(searched_in) == 2 and threading.get_ident() not in searched_in


def test_commands_translate_and_evaluate_with_inter_threads(tmp_path, capsys, trained_dir, onnx_translator):
    argv = ["--engine", "onnxruntime", "--num-beams", str(BEAMS), "--inter-threads", "2", "--batch-size", "4"]
    with one_thread():
        test_prefix, _ = translate_command_agrees(tmp_path, trained_dir, onnx_translator, argv)
        report_file = tmp_path / "report.json"
        assert main(["evaluate", str(trained_dir), test_prefix, *argv, "--json", str(report_file)]) == 0
        pytorch_report = tmp_path / "pytorch.json"
        pytorch_argv = ["--num-beams", str(BEAMS), "--json", str(pytorch_report)]
        assert main(["evaluate", str(trained_dir), test_prefix, *pytorch_argv]) == 0
    assert json.loads(report_file.read_text())["bleu"] == json.loads(pytorch_report.read_text())["bleu"]
    capsys.readouterr()


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--inter-threads", "2"],
            "inter_threads (batches translated at once) needs engine onnxruntime: PyTorch's threads are shared by "
            "the whole process",
        ),
        (
            ["--engine", "pytorch", "--dtype", "int8"],
            "int8 translates with onnxruntime, not PyTorch: use engine onnxruntime",
        ),
        (
            ["--engine", "onnxruntime", "--dtype", "bfloat16"],
            "onnxruntime translates float32 or int8 graphs, not bfloat16",
        ),
        (
            ["--engine", "onnxruntime", "--n-best", "2", "--num-beams", "2"],
            "n-best lists and alignments need the PyTorch model: "
            "translate without --engine onnxruntime or --dtype int8",
        ),
    ],
    ids=["inter-threads-in-pytorch", "int8-in-pytorch", "bfloat16-in-onnxruntime", "n-best"],
)
def test_what_an_engine_cannot_do_is_one_line(tmp_path, capsys, trained_dir, onnx_translator, flags, message):
    source = tmp_path / "source.ko"
    source.write_text("\n".join(KOREAN[:2]) + "\n", encoding="utf-8")
    assert main(["translate", str(trained_dir), "-i", str(source), "-o", str(tmp_path / "out"), *flags]) == EXIT_ERROR
    assert capsys.readouterr().err.strip() == f"hf-rnn-seq2seq translate: error: {message}"


def test_an_ensemble_refuses_the_onnxruntime_engine(trained_dir):
    with pytest.raises(ValueError, match="an ensemble decodes with PyTorch: --engine onnxruntime"):
        load_ensemble_translator([trained_dir, trained_dir], engine="onnxruntime")


def test_int8_with_a_shortlist_agrees_with_float32_with_it(tmp_path, capsys, trained_dir):
    """int8 graphs with the model's shortlist: the Generator scores the shortlisted tokens only; translations agree
    with the float32 model's own shortlist translations as the full ones do, from Python and from the command."""
    model_dir = shutil.copytree(trained_dir, tmp_path / "model", ignore=shutil.ignore_patterns(*ONNX_DIRS.values()))
    pairs = tmp_path / "pairs"
    for lang, lines in (("ko", KOREAN), ("en", ENGLISH)):
        (pairs.parent / f"pairs.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_model_shortlist(model_dir, str(pairs), top_k=SHORTLIST_TOP_K, frequent=SHORTLIST_FREQUENT)
    float32 = load_translator(model_dir)
    with one_thread():
        int8 = load_translator(model_dir, dtype="int8")
        assert int8.shortlist is not None  # the int8 graphs were made again, with the new shortlist
        assert int8.shortlisted_generator is not None  # whose rows are multiplied in int8 too
        assert set(int8.generator_weights) == {"weight_int8", "scale", "bias"}  # not the float32 rows as well
        source = int8.tokenizer(SENTENCES[:4], padding=True, return_tensors="np")
        shortlisted = int8._shortlisted_vocabulary(source["input_ids"], source["attention_mask"]).ids
        assert len(shortlisted) < int8.config.decoder_vocab_size / 2
        for num_beams in (1, BEAMS):
            options = dict(num_beams=num_beams, use_shortlist=True, batch_size=4)
            expected = [result["translation_text"] for result in float32(SENTENCES, **options)]
            translated = [result["translation_text"] for result in int8(SENTENCES, **options)]
            unchanged = sum(a == b for a, b in zip(translated, expected)) / len(expected)
            assert unchanged >= MIN_UNCHANGED, num_beams
        # The command batches sentences of like length together; given them in that order, it batches them as the
        # call below does (a batch's shortlist and activation scale can move a near tie).
        texts = sorted(SENTENCES[:8], key=lambda text: len(int8.tokenizer(text)["input_ids"]))
        source = tmp_path / "source.ko"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        argv = ["translate", str(model_dir), "-i", str(source), "-o", str(tmp_path / "out"), "--dtype", "int8"]
        assert main([*argv, "--shortlist", "--batch-size", "4"]) == 0
        expected = [result["translation_text"] for result in int8(texts, use_shortlist=True, batch_size=4)]
    assert (tmp_path / "out").read_text(encoding="utf-8").splitlines() == expected
    capsys.readouterr()


def test_plot_attention_refuses_int8(capsys, trained_dir):
    with pytest.raises(SystemExit) as exit_info:
        main(["plot-attention", str(trained_dir), KOREAN[0], "--dtype", "int8"])
    assert exit_info.value.code == EXIT_ERROR
    assert "invalid choice" in capsys.readouterr().err


@pytest.fixture
def without_onnxruntime(monkeypatch):
    """This process as if onnxruntime were not installed: it is not found, and importing it fails."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a)
    )
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def test_onnxruntime_missing_is_one_line_naming_the_extra(tmp_path, capsys, trained_dir, without_onnxruntime):
    for command, flags in itertools.product(
        (["translate", str(trained_dir)], ["evaluate", str(trained_dir), str(tmp_path / "test")]),
        (["--dtype", "int8"], ["--engine", "onnxruntime"]),
    ):
        assert main(command + flags) == EXIT_ERROR
        err = capsys.readouterr().err.strip()
        assert (
            err
            == f"hf-rnn-seq2seq {command[0]}: error: onnxruntime is not installed: {' '.join(flags)} {INSTALL_EXTRA}"
        )
    assert main(["export", str(trained_dir), str(tmp_path / "out"), "--quantize", "int8"]) == EXIT_ERROR
    assert "pip install 'hf-rnn-seq2seq[onnx]'" in capsys.readouterr().err
    with pytest.raises(
        ModuleNotFoundError, match=r"float32 translation with onnxruntime needs the onnx extra: pip install"
    ):
        load_translator(trained_dir, engine="onnxruntime")
