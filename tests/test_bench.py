"""bench/ours.py, the driver the benchmark runs our model through, bench/search_loops.py,
bench/paired_steps.py and bench/startup.py still work.

Benchmarks measure and are not tests; these only make sure that a change to the package or to the driver
is caught here, in seconds, rather than an hour into `bench/versus_peers.py`. Toy sizes, one thread.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import save_tiny_translator

from hf_rnn_seq2seq.modeling.encoder import cpu_runs_bfloat16

OURS = Path(__file__).resolve().parents[1] / "bench" / "ours.py"
TOY = ["--threads", "1"]  # for the commands that take it (train, translate)
# A toy parallel corpus: 40 sources of 1 to 5 of these words, each translated as its words reversed.
TOY_WORDS = "the a cat dog sees runs big small".split()
TOY_SOURCES = [" ".join(TOY_WORDS[(i + k) % len(TOY_WORDS)] for k in range(1 + i % 5)) for i in range(40)]
TOY_TARGETS = [" ".join(reversed(line.split())) for line in TOY_SOURCES]


def bench(script: str, *args) -> str:
    command = [sys.executable, str(OURS.with_name(script)), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def ours(*args) -> str:
    return bench(OURS.name, *args)


def test_the_flop_formula_agrees_with_torchs_flop_counter():
    # `flopcheck` fails by itself beyond 2%; the ratio is printed for the benchmark's table
    assert "ratio 0.99" in ours("flopcheck")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_train_then_translate_on_a_toy_corpus(tmp_path, dtype):
    """On a CPU without bfloat16 kernels, `--dtype bfloat16` stops at once with one line saying so."""
    src, tgt = TOY_SOURCES, TOY_TARGETS
    (tmp_path / "train.src").write_text("\n".join(src) + "\n")
    (tmp_path / "train.tgt").write_text("\n".join(tgt) + "\n")
    if dtype == "bfloat16" and not cpu_runs_bfloat16():
        command = [sys.executable, str(OURS), "train", "--train-src", str(tmp_path / "train.src")]
        command += ["--train-tgt", str(tmp_path / "train.tgt"), "--out", str(tmp_path / "run"), "--dtype", dtype]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
        assert result.stderr.startswith("ours.py: bfloat16 needs a CPU with AVX512")
        return

    ours(
        "train",
        "--train-src",
        tmp_path / "train.src",
        "--train-tgt",
        tmp_path / "train.tgt",
        "--out",
        tmp_path / "run",
        "--emb",
        8,
        "--hid",
        16,
        "--batch-size",
        8,
        "--steps",
        4,
        "--log-every",
        2,
        "--dtype",
        dtype,
        "--profile-steps",
        2,
        *TOY,
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["pairs"] == len(src) and summary["final_xent"] > 0
    profile = (tmp_path / "run" / "profile.txt").read_text()
    assert profile.startswith("2 steps from step 3") and "aten::mm" in profile  # the last two

    hyp = tmp_path / "test.hyp"
    ours(
        "translate",
        "--model",
        tmp_path / "run" / "model",
        "--src",
        tmp_path / "train.src",
        "--out",
        hyp,
        "--beam",
        2,
        "--tbatch",
        16,
        "--max-out",
        6,
        "--dtype",
        dtype,
        *TOY,
    )
    assert len(hyp.read_text().splitlines()) == len(src)  # one line per source, in the source order
    assert json.loads(Path(f"{hyp}.json").read_text())["sentences"] == len(src)
    if dtype == "float32" and importlib.util.find_spec("onnxruntime") is not None:
        # The same model's int8 graphs in onnxruntime, as `translate --dtype int8` runs them.
        model_args = ["--model", tmp_path / "run" / "model", "--src", tmp_path / "train.src", "--beam", 2]
        ours("translate", *model_args, "--out", f"{hyp}.int8", "--max-out", 6, "--dtype", "int8", *TOY)
        assert len(Path(f"{hyp}.int8").read_text().splitlines()) == len(src)
        assert json.loads(Path(f"{hyp}.int8.json").read_text())["dtype"] == "int8"
        # Its float32 graphs, as `translate --engine onnxruntime` runs them: no PyTorch model in the decode loop.
        ours("translate", *model_args, "--out", f"{hyp}.onnx", "--max-out", 6, "--engine", "onnxruntime", *TOY)
        assert len(Path(f"{hyp}.onnx").read_text().splitlines()) == len(src)
        assert json.loads(Path(f"{hyp}.onnx.json").read_text())["engine"] == "onnxruntime"
        assert (tmp_path / "run" / "model" / "onnx-float32").is_dir()
        # Batches of 4 in turn, then two at a time (--inter-threads 2): the same hypotheses, in the same order.
        small_batches = [*model_args, "--max-out", 6, "--engine", "onnxruntime", "--tbatch", 4, *TOY]
        ours("translate", *small_batches, "--out", f"{hyp}.in-turn")
        ours("translate", *small_batches, "--out", f"{hyp}.inter2", "--inter-threads", 2)
        assert Path(f"{hyp}.inter2").read_text() == Path(f"{hyp}.in-turn").read_text()
        assert json.loads(Path(f"{hyp}.inter2.json").read_text())["inter_threads"] == 2

    # The shortlist from the training files, then decoding with it and with source-relative limits.
    model = tmp_path / "run" / "model"
    ours("shortlist", "--model", model, "--train-src", tmp_path / "train.src", "--train-tgt", tmp_path / "train.tgt")
    assert (model / "shortlist.npz").is_file()
    options = ["--shortlist", "--max-len-a", "0.5", "--max-len-b", "1", "--beam", 2, "--max-out", 6, *TOY]
    ours("translate", "--model", model, "--src", tmp_path / "train.src", "--out", hyp, "--dtype", dtype, *options)
    record = json.loads(Path(f"{hyp}.json").read_text())
    assert record["use_shortlist"] and record["max_len_a"] == 0.5
    # words + </s>: at most int(0.5 * (words + 1) + 1) pieces, less the </s>
    assert all(len(h.split()) <= int(0.5 * (len(s.split()) + 1) + 1) for h, s in zip(hyp.read_text().splitlines(), src))

    report = bench(
        "search_loops.py",
        "--model",
        tmp_path / "run" / "model",
        "--src",
        tmp_path / "train.src",
        "--beams",
        1,
        2,
        "--reps",
        1,
        "--max-out",
        6,
        "--dtype",
        dtype,
        "--json",
        tmp_path / "loops.json",
        *TOY,
    )
    assert "| beam2 |" in report and "| NO |" not in report  # search.py's loops gave transformers' outputs


def test_paired_steps_times_the_working_tree_against_a_commit(tmp_path):
    """bench/paired_steps.py imports hf_rnn_seq2seq at another commit beside the working tree's and times both."""
    out = tmp_path / "paired.json"
    report = bench(
        "paired_steps.py",
        "--against",
        "HEAD",
        "--emb",
        8,
        "--hid",
        16,
        "--vocab",
        30,
        "--batch",
        4,
        "--src-len",
        5,
        "--tgt-len",
        4,
        "--reps",
        2,
        "--threads",
        1,
        "--out",
        out,
    )
    assert "| working tree |" in report and "| HEAD |" in report
    result = json.loads(out.read_text())
    assert [row["version"] for row in result["rows"]] == ["working tree", "HEAD"] and result["speedup"]["median"] > 0


def test_startup_times_each_command_against_the_reference(tmp_path):
    out = tmp_path / "startup.json"
    model_dir = save_tiny_translator(tmp_path / "tiny")
    report = bench("startup.py", "--reps", 1, "--warmup", 0, "--model", model_dir, "--json", out)
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert rows[0]["command"] == result["reference"] and rows[0]["ratio"] == 1.0
    assert any("train --help" in row["command"] for row in rows) and str(model_dir) in rows[-1]["argv"]
    for row in rows:
        assert len(row["seconds"]) == 1 and row["min"] == row["median"] == row["max"] > 0
        assert f"| {row['command']} | {row['median']:.2f} |" in report


def versus_peers():
    sys.path.insert(0, str(OURS.parent))
    try:
        import versus_peers
    finally:
        sys.path.remove(str(OURS.parent))
    return versus_peers


@pytest.mark.parametrize(
    "argv, full",
    [([], True), (["--phases", "prep,train"], True), (["--datasets", "tatoeba"], True), (["--reps", "2"], False),
     (["--tp-steps", "100"], False), (["--budget-minutes", "4"], False), (["--label", "mine"], False),
     (["--toolkits", "ours,onmt,joey,fairseq"], False), (["--batch-size", "32"], False), (["--quick"], False)],
)  # fmt: skip
def test_only_the_full_run_writes_bench_results(argv, full):
    """A run with less than the full run's settings writes its own RESULTS.md, never bench/RESULTS.md; a part
    of the full run (some phases, some datasets) is still the full run."""
    assert versus_peers().parse_args(argv).full == full


def test_every_peer_run_sits_between_runs_of_ours():
    interleave = versus_peers().interleave
    assert interleave(["ours", "ours-bf16", "onmt", "joey"]) == [
        "ours",
        "ours-bf16",
        "onmt",
        "ours",
        "ours-bf16",
        "joey",
    ]
    assert interleave(["ours"]) == ["ours"] and interleave(["onmt", "joey"]) == ["onmt", "joey"]


def test_parts_of_a_full_run_measure_the_same_code_on_the_same_cpu():
    vp = versus_peers()
    code, cpu = vp.code_revision(), vp.cpu_identity()
    assert set(code["objects"]) == set(vp.FULL_RUN_CODE) and all(len(h) == 40 for h in code["objects"].values())
    assert cpu["cpus"] >= 1 and set(cpu["matmul_flags"]) <= set(vp.MATMUL_FLAGS)
    clean = dict(code, changed="")
    started = {"parts": [{}], "code": clean, "cpu": cpu}
    assert vp.same_run({}, clean, cpu) is None and vp.same_run(started, clean, cpu) is None
    older = dict(clean, objects=dict(clean["objects"], **{"bench/ours.py": "0" * 40}), commit="abc1234")
    assert "abc1234" in vp.same_run(dict(started, code=older), clean, cpu)
    assert "commit them first" in vp.same_run({}, dict(clean, changed=" M hf_rnn_seq2seq/search.py"), cpu)
    # the train phase's rates set the quality phase's steps: a part on another kind of CPU starts a new run
    amx = dict(cpu, matmul_flags=list(vp.MATMUL_FLAGS))
    no_amx = dict(cpu, matmul_flags=["avx2", "avx512f"])
    assert "or delete bench/results/" in vp.same_run(dict(started, cpu=no_amx), clean, amx)
    assert "did not record" in vp.same_run({"parts": [{}], "code": clean}, clean, cpu)


def test_each_variant_of_ours_is_compared_with_the_best_peer():
    vp = versus_peers()
    tok_per_s = {"ours": 1000, "ours-bf16": 1700, "onmt": 1200, "joey": 600, "fairseq": 1100}
    bleu = {"ours": 30.0, "ours-bf16": 31.5, "onmt": 29.0, "joey": 25.0, "fairseq": 30.2}
    R = {
        "train_throughput": {"m": {tk: {"median_tok_per_s": v} for tk, v in tok_per_s.items()}},
        "quality": {"m": {tk: {"greedy": {"bleu": v}} for tk, v in bleu.items()}},
    }
    rows = {r["key"]: r for r in vp.figure_rows(R, list(vp.ALL_TOOLKITS))}
    speed, quality = rows["train_tok_per_s"], rows["bleu_greedy"]
    assert speed["best_peer"] == "onmt" and quality["best_peer"] == "fairseq"
    assert speed["vs_best"]["ours"]["ratio"] == pytest.approx(1000 / 1200) and not speed["vs_best"]["ours"]["met"]
    assert speed["vs_best"]["ours-bf16"]["ratio"] == pytest.approx(1700 / 1200) and speed["vs_best"]["ours-bf16"]["met"]
    assert quality["vs_best"]["ours"]["diff"] == pytest.approx(-0.2) and not quality["vs_best"]["ours"]["met"]
    assert quality["vs_best"]["ours-bf16"]["diff"] == pytest.approx(1.3) and quality["vs_best"]["ours-bf16"]["met"]
    assert vp.versus_best(speed, "ours-bf16") == "1.42x (onmt): yes"


def test_a_full_run_lists_what_its_parts_have_not_measured_yet():
    vp = versus_peers()
    per_dataset = ("train_throughput", "quality", "decode", "flat")
    multi30k_part = {key: {"multi30k": {}} for key in per_dataset} | {"machine": [{}]}
    assert vp.missing_parts(multi30k_part) == [f"{ph} tatoeba" for ph in ("train", "quality", "decode", "flat")]
    both = {key: {ds: {} for ds in vp.DATASETS} for key in per_dataset}
    assert vp.missing_parts(both) == ["machine"] and vp.missing_parts(both | {"machine": [{}]}) == []


def test_report_writes_the_table_again_from_the_json_alone(tmp_path):
    """`--report` measures nothing: it summarises the JSON of an earlier run into its RESULTS.md."""
    vp = versus_peers()
    a = vp.parse_args(["--label", "mine", "--out", str(tmp_path), "--toolkits", "ours,onmt", "--datasets", "multi30k"])
    runs = {"ours": [1100, 1000, 1200], "onmt": [900, 1000, 950]}
    R = {
        "parts": [
            {
                "started": "t0",
                "finished": "t1",
                "elapsed_min": 1,
                "phases": ["train"],
                "datasets": ["multi30k"],
                "command": "the command",
                "host": {"load_at_start": {"load1": 0.1}},
                "load_at_end": {"load1": 0.2},
            }
        ],
        "code": {"commit": "abc1234"},
        "cpu": {"cpus": 2, "model": "a CPU", "matmul_flags": []},
        "settings": {k: v for k, v in vars(a).items() if k not in ("out", "phases", "datasets", "report")},
        "train_throughput": {
            "multi30k": {
                tk: {"runs": [{"tok_per_s": v, "peak_rss_mb": 500, "gflops_exec": 1, "gflops_useful": 1} for v in vs]}
                for tk, vs in runs.items()
            }
        },
    }
    (tmp_path / "versus_peers.mine.json").write_text(json.dumps(R))
    vp.main(["--report", "--label", "mine", "--out", str(tmp_path)])
    md = (tmp_path / "mine" / "RESULTS.md").read_text()
    assert "Package code: abc1234" in md and "the command" in md
    assert "| multi30k | train tgt tok/s (steady, median) | 1,100 | 950 | >= 1.3x | 1.16x (onmt): NO |" in md


def test_trainer_path_times_the_training_command_against_ours(tmp_path):
    """bench/trainer_path.py runs `hf-rnn-seq2seq train`'s Trainer and ours.py's loop on the same toy files and
    reports both, their ratio and the CPU."""
    (tmp_path / "train.src").write_text("\n".join(TOY_SOURCES) + "\n")
    (tmp_path / "train.tgt").write_text("\n".join(TOY_TARGETS) + "\n")
    out = tmp_path / "out"
    report = bench(
        "trainer_path.py", "--data", tmp_path, "--emb", 8, "--hid", 16, "--batch-size", 8, "--steps", 20,
        "--reps", 1, "--threads", 1, "--out", out, "--", "--report_to", "none", "--disable_tqdm", "true",
    )  # fmt: skip
    result = json.loads((out / "trainer_path.json").read_text())
    assert set(result["rows"]) == {"ours", "trainer"} and result["ratios"]["trainer / ours"]["tok_per_s"] > 0
    for row in result["rows"].values():
        assert row["s_per_step"] > 0 and 0 < row["tokens_per_step"] <= 8 * 6  # 8 pairs of at most 5 words + </s>
    assert result["cpu"]["torch_cpu_capability"] in report and "| trainer |" in report
    assert set(result["epoch_padding"]) == {"ours", "trainer", "trainer-by-source"}


def test_shortlist_size_reports_the_vocabulary_scored_speed_and_bleu(tmp_path):
    """bench/shortlist_size.py on a toy model: for each top-k, the share of the target vocabulary a batch's
    shortlist scores, sentences/s and BLEU, beside decoding without a shortlist."""
    src, tgt = TOY_SOURCES, TOY_TARGETS
    for name, lines in (("train.src", src), ("train.tgt", tgt), ("test.src", src[:8]), ("test.ref", tgt[:8])):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    ours("train", "--train-src", tmp_path / "train.src", "--train-tgt", tmp_path / "train.tgt", "--out", run,
         "--emb", 8, "--hid", 16, "--batch-size", 8, "--steps", 4, *TOY)  # fmt: skip
    out = tmp_path / "out"
    table = bench(
        "shortlist_size.py", "--model", run / "model", "--data", tmp_path, "--top-k", 1, "--frequent", 2,
        "--dtype", "float32", "--beams", 1, "--reps", 1, "--tbatch", 4, "--threads", 1, "--out", out,
    )  # fmt: skip
    rows = json.loads((out / "shortlist_size.json").read_text())["rows"]
    assert set(rows) == {"none", "1"}
    share = rows["1"]["vocabulary_share"]
    # 1 candidate a word and 2 frequent ones: a batch of the shortest sentences leaves words out
    assert 0 < share["min"] < 1 and share["min"] <= share["mean"] <= share["max"] <= 1
    assert all(row["sent_per_s"]["1"] > 0 and "1" in row["bleu"] for row in rows.values())
    assert "| none | 100% | 1 |" in table and "| 1 | " in table


CUDA_CHECK_ON_A_CPU = ["--device", "cpu", "--emb", 8, "--hid", 16, "--vocab", 12, "--batch", 8, "--length", 3]


def test_cuda_check_passes_with_the_cpu_as_its_device(tmp_path):
    """The GPU script's smoke test: every check runs, the device (here the CPU) agrees with the CPU."""
    out = tmp_path / "check.json"
    report = bench("cuda_check.py", *CUDA_CHECK_ON_A_CPU, "--learn-steps", 60, "--lr", 0.03, "--out", out)
    assert report.rstrip().endswith("PASS: every check")
    rows = {row["check"]: row["result"] for row in json.loads(out.read_text())["rows"]}
    assert rows["greedy: device = CPU"] == rows["beam 5: device = CPU"] == "PASS"
    assert rows["training step: loss and gradients ~ CPU"] == rows["float16 autocast training learns"] == "PASS"
    assert rows["bfloat16 autocast training learns"] == ("PASS" if cpu_runs_bfloat16() else "SKIP")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script would run in full")
def test_cuda_check_without_a_gpu_says_so_in_one_line(tmp_path):
    command = [sys.executable, str(OURS.with_name("cuda_check.py")), "--device", "cuda", "--out", tmp_path / "x"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip() == "cuda_check.py: no CUDA device here; run it on a GPU machine, or with --device cpu"


def test_decoding_variants_are_compared_with_the_best_peer_and_with_ours():
    """int8 and shortlist decoding of ours's model: decode speed against the best peer (int8 + shortlist with its
    own, higher target), BLEU and decoding peak RSS against ours itself; they train nothing."""
    vp = versus_peers()
    loop = {"ours": 300, "ours-shortlist": 460, "ours-int8": 500, "ours-int8-shortlist": 700, "onmt": 250, "joey": 100}
    bleu = {"ours": 30.0, "ours-shortlist": 29.8, "ours-int8": 29.5, "ours-int8-shortlist": 29.9, "onmt": 29.0}
    rss = {"ours": 500, "ours-shortlist": 480, "ours-int8": 520, "ours-int8-shortlist": 400}
    R = {
        "settings": {"max_out": 100},
        "decode": {
            "m": {tk: {"beam5": {"median_loop": v, "median_peak_rss_mb": rss.get(tk)}} for tk, v in loop.items()}
        },
        "quality": {"m": {tk: {"beam5": {"bleu": v}} for tk, v in bleu.items()}},
    }
    rows = {r["key"]: r for r in vp.figure_rows(R, list(vp.ALL_TOOLKITS))}
    speed = rows["beam5_loop"]
    assert speed["best_peer"] == "onmt" and "(ours-int8-shortlist: >= 3.0x)" in speed["target"]
    assert (
        speed["vs_best"]["ours-shortlist"]["met"] and not speed["vs_best"]["ours-int8-shortlist"]["met"]
    )  # 1.84x >= 1.5x; 2.8x < 3x
    assert speed["vs_best"]["ours-int8-shortlist"]["ratio"] == pytest.approx(700 / 250)
    quality = rows["bleu_beam5_vs_ours"]["vs_best"]
    assert quality["ours-shortlist"]["met"] and not quality["ours-int8"]["met"]  # -0.2, -0.5
    memory = rows["beam5_decode_rss"]["vs_best"]
    assert memory["ours-int8-shortlist"]["met"] and not memory["ours-int8"]["met"]
    assert vp.interleave(["ours", "ours-int8", "onmt"]) == ["ours", "ours-int8", "onmt"]
    with pytest.raises(SystemExit):
        vp.parse_args(["--toolkits", "ours-int8,onmt"])  # the variants need ours's model


def test_keep_models_decodes_new_variants_of_a_run_without_training_again(tmp_path, monkeypatch):
    """`--keep-models`: the quality phase keeps the models a run already trained (and their scores), trains only
    the missing ones, and decodes every variant asked for."""
    vp = versus_peers()
    trained, decoded = [], []
    monkeypatch.setattr(vp, "prepare", lambda name, a, out_root: {"dir": str(tmp_path / name), "test_sentences": 1})
    monkeypatch.setattr(vp, "build_shortlist", lambda *args: None)

    def train(tk, data, out, steps, a, env):
        out.mkdir(parents=True, exist_ok=True)
        trained.append(tk)
        return {"wall_s": 1.0}

    monkeypatch.setattr(vp, "do_train", train)
    monkeypatch.setattr(vp, "peer_model", lambda tk, out: str(out))
    monkeypatch.setattr(vp, "do_decode", lambda tk, *args: decoded.append(tk) or {"bleu": 1.0})
    run = ["--quick", "--label", "keep", "--out", str(tmp_path), "--phases", "prep,quality", "--quality-steps", "10"]
    vp.main([*run, "--toolkits", "ours,ours-int8"])
    assert trained == ["ours"] and decoded == ["ours"] * 2 + ["ours-int8"] * 2  # greedy and beam 5 each
    trained.clear(), decoded.clear()
    vp.main([*run, "--toolkits", "ours,ours-onnx,ours-onnx-shortlist", "--keep-models"])
    assert trained == [] and decoded == ["ours-onnx"] * 2 + ["ours-onnx-shortlist"] * 2
    quality = json.loads((tmp_path / "versus_peers.keep.json").read_text())["quality"]["multi30k"]
    assert set(quality) == {"ours", "ours-onnx", "ours-onnx-shortlist"}  # ours's scores kept, not decoded again


def test_full_runs_on_each_kind_of_cpu_keep_their_own_results(tmp_path, monkeypatch):
    """One JSON and table per kind of CPU (a run on a new machine keeps the others'), gathered in RESULTS.md."""
    vp = versus_peers()
    xeon = {"model": "Intel(R) Xeon(R) Processor", "cpus": 2, "matmul_flags": ["avx2", "avx512f", "amx_bf16"]}
    epyc = {"model": "AMD EPYC", "cpus": 2, "matmul_flags": ["avx2"]}
    assert vp.cpu_slug(xeon) == "intel-xeon-processor-2cpu-avx2-avx512f-amxbf16"
    assert vp.full_run_json(epyc).name == "amd-epyc-2cpu-avx2.json"
    monkeypatch.setattr(vp, "FULL_RUN_DIR", tmp_path / "results")
    monkeypatch.setattr(vp, "FULL_RUN_MD", tmp_path / "RESULTS.md")
    vp.FULL_RUN_DIR.mkdir()
    for cpu in (xeon, epyc):
        vp.full_run_json(cpu).with_suffix(".md").write_text(f"# a table on {cpu['model']}\n\n| figure |\n")
    vp.write_index()
    index = vp.FULL_RUN_MD.read_text()
    assert "## a table on AMD EPYC" in index and "## a table on Intel(R) Xeon(R) Processor" in index


def test_a_part_that_only_segments_writes_no_results(tmp_path, monkeypatch):
    """`--phases prep` measures nothing: it leaves the results (and RESULTS.md) as they were."""
    vp = versus_peers()
    monkeypatch.setattr(vp, "prepare", lambda name, a, out_root: {"dir": str(out_root / "data" / name)})
    vp.main(["--quick", "--phases", "prep", "--out", str(tmp_path)])
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("RESULTS.md"))
