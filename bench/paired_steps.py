#!/usr/bin/env python
"""A training step of the working tree's model against the same step at another commit, in one process.

    .venv/bin/python bench/paired_steps.py --against HEAD                  # float32, the benchmark's model
    .venv/bin/python bench/paired_steps.py --against HEAD~3 --dtype bfloat16 --reps 40

For a change whose effect is a few percent: separate runs on a shared 2-CPU machine differ by more than that
from one minute to the next. Here the commit's `hf_rnn_seq2seq/` is exported (`git archive`) under another
package name, both versions build the benchmark's model (precision.py) from the same seed, and their
training steps (forward + backward; the optimizer is the same code in both and left out) alternate, each
version going first every other round, so that both meet the same moments of the machine. Prints the median
and fastest step of each and their ratio; writes JSON. Random weights and token ids, the same in both.
"""

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from precision import FIRST_WORD, benchmark_model

import hf_rnn_seq2seq

REPO = Path(__file__).resolve().parent.parent
WARMUP_ROUNDS = 3  # first steps pay for first-touched memory and oneDNN's kernel choices


def import_at(commit: str, into: Path):
    """hf_rnn_seq2seq as it is at `commit`, imported as another package (its imports are relative)."""
    name = "hf_rnn_seq2seq_at_" + subprocess.check_output(
        ["git", "rev-parse", "--short", commit], cwd=REPO, text=True).strip()  # fmt: skip
    archive = subprocess.run(["git", "archive", commit, "hf_rnn_seq2seq"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    (into / "hf_rnn_seq2seq").rename(into / name)
    sys.path.insert(0, str(into))
    return importlib.import_module(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", default="HEAD", help="the commit to compare the working tree with")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--emb", type=int, default=256)
    p.add_argument("--hid", type=int, default=512)
    p.add_argument("--vocab", type=int, default=8000, help="source and target vocabulary")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--src-len", type=int, default=16)
    p.add_argument("--tgt-len", type=int, default=16)
    p.add_argument("--reps", type=int, default=30, help="steps of each version, after the warm-up")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "paired_steps.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    with tempfile.TemporaryDirectory() as tmp:
        versions = {"working tree": hf_rnn_seq2seq, a.against: import_at(a.against, Path(tmp))}
        models = {}
        for label, package in versions.items():
            torch.manual_seed(0)
            models[label] = benchmark_model(a, package).train()
        g = torch.Generator().manual_seed(0)
        batch = dict(
            input_ids=torch.randint(FIRST_WORD, a.vocab, (a.batch, a.src_len), generator=g),
            attention_mask=torch.ones(a.batch, a.src_len, dtype=torch.long),
            labels=torch.randint(FIRST_WORD, a.vocab, (a.batch, a.tgt_len), generator=g),
        )
        dtype = getattr(torch, a.dtype)

        def step(model) -> float:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                loss = model(**batch).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
            return time.perf_counter() - start

        times = {label: [] for label in models}
        order = list(models)
        for round_ in range(WARMUP_ROUNDS + a.reps):
            for label in order if round_ % 2 else order[::-1]:
                seconds = step(models[label])
                if round_ >= WARMUP_ROUNDS:
                    times[label].append(seconds)

    ours, theirs = (times[label] for label in order)
    rows = [dict(version=label, median_ms=1e3 * statistics.median(t), fastest_ms=1e3 * min(t)) for label, t in
            times.items()]  # fmt: skip
    speedup = dict(median=statistics.median(theirs) / statistics.median(ours), fastest=min(theirs) / min(ours))
    print(
        f"{a.dtype}, batch {a.batch}, {a.src_len} -> {a.tgt_len} tokens, emb {a.emb}, hid {a.hid}, vocab {a.vocab}, "
        f"{a.threads} threads, {a.reps} steps each"
    )
    print("| version | median ms | fastest ms |\n|---|---|---|")
    for r in rows:
        print(f"| {r['version']} | {r['median_ms']:.1f} | {r['fastest_ms']:.1f} |")
    print(f"working tree speed-up: {speedup['median']:.3f}x (medians), {speedup['fastest']:.3f}x (fastest steps)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(settings=vars(a), rows=rows, speedup=speedup), indent=1) + "\n")


if __name__ == "__main__":
    main()
