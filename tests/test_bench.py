"""bench/ours.py, the driver the benchmark runs our model through, and bench/search_loops.py still work.

Benchmarks measure and are not tests; these only make sure that a change to the package or to the driver
is caught here, in seconds, rather than an hour into `bench/versus_peers.py`. Toy sizes, one thread.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

OURS = Path(__file__).resolve().parents[1] / "bench" / "ours.py"
TOY = ["--threads", "1"]  # for the commands that take it (train, translate)


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
    words = "the a cat dog sees runs big small".split()
    src = [" ".join(words[(i + k) % len(words)] for k in range(1 + i % 5)) for i in range(40)]
    tgt = [" ".join(reversed(line.split())) for line in src]
    (tmp_path / "train.src").write_text("\n".join(src) + "\n")
    (tmp_path / "train.tgt").write_text("\n".join(tgt) + "\n")

    ours("train", "--train-src", tmp_path / "train.src", "--train-tgt", tmp_path / "train.tgt",
         "--out", tmp_path / "run", "--emb", 8, "--hid", 16, "--batch-size", 8, "--steps", 4, "--log-every", 2,
         "--dtype", dtype, *TOY)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["pairs"] == len(src) and summary["final_xent"] > 0

    hyp = tmp_path / "test.hyp"
    ours("translate", "--model", tmp_path / "run" / "model", "--src", tmp_path / "train.src", "--out", hyp,
         "--beam", 2, "--tbatch", 16, "--max-out", 6, "--dtype", dtype, *TOY)
    assert len(hyp.read_text().splitlines()) == len(src)  # one line per source, in the source order
    assert json.loads(Path(f"{hyp}.json").read_text())["sentences"] == len(src)

    report = bench("search_loops.py", "--model", tmp_path / "run" / "model", "--src", tmp_path / "train.src",
                   "--beams", 1, 2, "--reps", 1, "--max-out", 6, "--dtype", dtype, "--json", tmp_path / "loops.json",
                   *TOY)
    assert "| beam2 |" in report and "| NO |" not in report  # search.py's loops gave transformers' outputs


@pytest.mark.parametrize(
    "argv, full",
    [([], True), (["--phases", "prep,train"], True), (["--reps", "2"], False), (["--tp-steps", "100"], False),
     (["--budget-minutes", "4"], False), (["--label", "mine"], False), (["--ours-dtype", "bfloat16"], False)],
)  # fmt: skip
def test_only_the_full_run_writes_bench_results(argv, full):
    """A run with less than the full run's settings writes its own RESULTS.md, never bench/RESULTS.md."""
    sys.path.insert(0, str(OURS.parent))
    try:
        import versus_peers
    finally:
        sys.path.remove(str(OURS.parent))
    assert versus_peers.parse_args(argv).full == full
