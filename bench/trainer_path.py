#!/usr/bin/env python
"""What users run against what the benchmark runs: `hf-rnn-seq2seq train` (the Seq2SeqTrainer pipeline of
hf_rnn_seq2seq.training) and `bench/ours.py train` (the benchmark's own minimal loop) on the same files, the same
vocabularies and the same architecture, in one run.

    .venv/bin/python bench/trainer_path.py                        # Multi30k, 60 steps a run, 2 runs of each
    .venv/bin/python bench/trainer_path.py --steps 40 --reps 1 --threads 1
    .venv/bin/python bench/trainer_path.py --paths trainer --steps 30 --profile-steps 10   # + where the time goes

Data: versus_peers.py's prep (Unigram pieces, cached under bench/out/data/); both paths get the word-level
vocabularies `ours.py` builds over those pieces (saved for the Trainer as a tokenizer directory), so that the
models are identical in size. Architecture: the benchmark's (bench/README.md), batch `--batch-size` sentences,
Adam at 1e-3, gradient norm clipped at 5, seed 1234. The Trainer path then runs as `hf-rnn-seq2seq train` does
with its defaults (label smoothing 0.1, length-grouped batches, linear learning-rate decay, logging every 50
steps, TensorBoard), except that it neither evaluates nor saves checkpoints during the run (`--max_steps`).

Each run is a child process, the two paths alternating, `--reps` times. Both count seconds per step and target
tokens (non-pad labels, </s> included) per window of LOG_EVERY steps, from the end of one step to the end of the
step LOG_EVERY later: everything the loop does in between (batching, collating, logging, callbacks) counts.
The first window is warm-up and left out. Prints a table (medians over the runs) with the Trainer / ours ratio
and writes JSON with the CPU (model name, instruction sets, torch's CPU capability).

`--profile-steps N` (Trainer path): cProfile over the run's last N steps, the functions by cumulative and by own
time in OUT/<run>/profile.txt (all of them in profile.pstats). Those steps run slower and their windows still
count: profile in a run of its own.
"""

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]  # ours.py, versus_peers.py, and this checkout's hf_rnn_seq2seq

import ours  # noqa: E402
import versus_peers  # noqa: E402

LOG_EVERY = 10  # steps per timing window, as ours.py logs
# trainer-by-source: the Trainer path grouping batches by source length alone, as transformers does (and as the
# training command did before it grouped by target length first): the before/after of that change in one run
PATHS = ("ours", "trainer", "trainer-by-source")
SEED = 1234
PROFILE_ROWS = 80  # functions listed in profile.txt, by cumulative and by own time (all in profile.pstats)


def cpu_description() -> dict:
    import torch

    return versus_peers.cpu_identity() | {
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


def steady(windows: list[dict]) -> dict:
    """Seconds per step and target tokens/s over every window but the first (warm-up)."""
    kept = windows[1:] or windows
    secs, steps, tokens = (sum(w[key] for w in kept) for key in ("secs", "steps", "tgt_tokens"))
    padded = sum(w.get("tgt_positions", math.nan) for w in kept)  # the Trainer's collator counts them
    return dict(
        s_per_step=secs / steps,
        tok_per_s=tokens / secs,
        tokens_per_step=tokens / steps,
        tgt_padding=1 - tokens / padded,
        windows=len(kept),
    )


# ------------------------------------------------------------------------------------------- the Trainer child
def trainer_child(a) -> None:
    """`hf-rnn-seq2seq train` (hf_rnn_seq2seq.training.main) with a timing callback; windows to OUT/windows.json."""
    import cProfile
    import io
    import pstats

    from transformers import TrainerCallback

    from hf_rnn_seq2seq.training import run
    from hf_rnn_seq2seq.training import trainer as trainer_module

    out = Path(a.out)
    tokens: list[tuple[int, int]] = []  # (target tokens, padded target positions) of each batch, in collator order

    def counting(make_collator):
        def make(*args, **kwargs):
            collator = make_collator(*args, **kwargs)

            def collate(features):
                batch = collator(features)
                tokens.append((int((batch["labels"] != ours.IGNORE).sum()), batch["labels"].numel()))
                return batch

            return collate

        return make

    class StepClock(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []
            self.profiler = cProfile.Profile() if a.profile_steps else None

        def on_train_begin(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())
            if self.profiler is None:
                return
            if state.global_step == a.steps - a.profile_steps:
                self.profiler.enable()
            elif state.global_step == a.steps:
                self.profiler.disable()
                text = io.StringIO()
                for order in ("cumulative", "tottime"):
                    pstats.Stats(self.profiler, stream=text).sort_stats(order).print_stats(PROFILE_ROWS)
                self.profiler.dump_stats(out / "profile.pstats")
                (out / "profile.txt").write_text(
                    f"cProfile over steps {a.steps - a.profile_steps + 1}-{a.steps}\n{text.getvalue()}"
                )

    clock = StepClock()

    class TimedTrainer(run.TranslationTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(clock)

    run.TranslationTrainer, run.make_collator = TimedTrainer, counting(run.make_collator)
    if a.group_by_source:
        trainer_module.target_first_lengths = lambda dataset: [len(ids) for ids in dataset["input_ids"]]
    arguments = [
        f"--train_file={a.data}/train",
        "--source_lang=src",
        "--target_lang=tgt",
        f"--tokenizer_name={a.tokenizer}",
        f"--output_dir={out}",
        f"--max_steps={a.steps}",
        f"--per_device_train_batch_size={a.batch_size}",
        f"--max_source_length={a.max_len}",
        f"--max_target_length={a.max_len}",
        f"--seed={SEED}",
        "--eval_strategy=no",
        "--save_strategy=no",
        "--load_best_model_at_end=false",
        "--early_stopping_patience=0",
        "--show_examples=0",
        *a.trainer_args,
    ]
    run.main(arguments)
    ends = clock.ends
    windows = [
        dict(
            steps=LOG_EVERY,
            secs=ends[w + LOG_EVERY] - ends[w],
            tgt_tokens=sum(real for real, _ in tokens[w : w + LOG_EVERY]),
            tgt_positions=sum(padded for _, padded in tokens[w : w + LOG_EVERY]),
        )
        for w in range(0, len(ends) - LOG_EVERY, LOG_EVERY)
    ]
    (out / "windows.json").write_text(json.dumps(windows, indent=1))


# ------------------------------------------------------------------------------------------- the parent
def child_command(path: str, a, data: Path, tokenizer: Path, out: Path) -> list[str]:
    if path == "ours":
        return [
            sys.executable, str(BENCH / "ours.py"), "train",
            "--train-src", str(data / "train.src"), "--train-tgt", str(data / "train.tgt"), "--out", str(out),
            "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--log-every", str(LOG_EVERY),
            "--threads", str(a.threads), "--seed", str(SEED), "--max-len", str(a.max_len - 1),
            "--emb", str(a.emb), "--hid", str(a.hid),
        ]  # fmt: skip
    return [
        sys.executable, __file__, "_trainer", "--data", str(data), "--tokenizer", str(tokenizer), "--out", str(out),
        "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--max-len", str(a.max_len),
        "--profile-steps", str(a.profile_steps), *(["--group-by-source"] if path == "trainer-by-source" else []), "--",
        f"--embedding_size={a.emb}", f"--hidden_size={a.hid}", *a.trainer_args,
    ]  # fmt: skip


def read_windows(path: str, out: Path) -> list[dict]:
    if path != "ours":
        return json.loads((out / "windows.json").read_text())
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    previous = 0
    windows = []
    for r in records:
        windows.append(dict(steps=r["step"] - previous, secs=r["secs"], tgt_tokens=r["tgt_tokens"]))
        previous = r["step"]
    return windows


def epoch_padding(data: Path, a) -> dict[str, dict[str, float]]:
    """The share of padding among the source and target positions of one epoch's batches, as each path forms
    them: ours.py's sort of the whole corpus, the Trainer's length-grouped sampler with the training command's
    keys (target length first) and with transformers' (source length); and the epoch's matmul TFLOPs as the
    kernels run them (`ours.step_flops`, padded shapes). Counts, the same on every machine."""
    from datasets import Dataset

    from hf_rnn_seq2seq.training.trainer import EpochSeededLengthGroupedSampler, target_first_lengths

    lines = {side: ours.read_lines(data / f"train.{side}") for side in ("src", "tgt")}
    src, tgt = ([len(line.split()) + 1 for line in lines[side]] for side in ("src", "tgt"))
    shape = dict(emb=a.emb, hid=a.hid, tgt_vocab=len(ours.build_vocab(lines["tgt"])), layers=1)
    batch_size = a.batch_size
    positions = Dataset.from_dict({"input_ids": [[0] * n for n in src], "labels": [[0] * n for n in tgt]})
    grouped = {"trainer": target_first_lengths(positions), "trainer-by-source": src}
    batches = {"ours": ours.make_batches(len(src), [range(n) for n in src], [range(n) for n in tgt], batch_size, 0,
                                         random.Random(SEED))}  # fmt: skip
    for path, keys in grouped.items():
        order = list(EpochSeededLengthGroupedSampler(batch_size, keys, SEED))
        batches[path] = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def padding(lengths: list[int], path: str) -> float:
        return 1 - sum(lengths) / sum(len(b) * max(lengths[i] for i in b) for b in batches[path])

    def tflops(path: str) -> float:
        return sum(
            ours.step_flops(shape, len(b), max(src[i] for i in b), max(tgt[i] for i in b), [src[i] for i in b],
                            [tgt[i] for i in b])[0]
            for b in batches[path]
        ) / 1e12  # fmt: skip

    return {
        path: dict(src_padding=padding(src, path), tgt_padding=padding(tgt, path), tflops_executed=tflops(path))
        for path in batches
    }


def save_word_level_tokenizers(data: Path, into: Path) -> None:
    """The vocabularies ours.py builds over the pieces, saved as the Trainer path's --tokenizer_name."""
    from hf_rnn_seq2seq.tokenization import save_tokenizers

    src, tgt = (ours.read_lines(data / f"train.{side}") for side in ("src", "tgt"))
    save_tokenizers(*(ours.word_level_tokenizer(ours.build_vocab(lines)) for lines in (src, tgt)), into)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(versus_peers.DATASETS), default="multi30k")
    p.add_argument("--paths", default="ours,trainer", help=f"comma-separated, of {', '.join(PATHS)}")
    p.add_argument("--steps", type=int, default=60, help="training steps a run (a multiple of 10)")
    p.add_argument("--reps", type=int, default=2, help="runs of each path, alternating")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--emb", type=int, default=256)
    p.add_argument("--hid", type=int, default=512)
    p.add_argument("--train-limit", type=int, default=0, help="first N training pairs (0: all; for smoke runs)")
    p.add_argument(
        "--data", help="a folder with train.src and train.tgt of space-separated pieces, instead of --dataset's"
    )
    p.add_argument("--profile-steps", type=int, default=0, help="cProfile the Trainer path's last N steps")
    p.add_argument("--out", default=str(BENCH / "out" / "trainer_path"))
    p.add_argument("trainer_args", nargs="*", help="after --: more flags for the Trainer path")
    a = p.parse_args(argv)
    paths = a.paths.split(",")
    if unknown := set(paths) - set(PATHS):
        sys.exit(f"trainer_path.py: unknown --paths {', '.join(sorted(unknown))}; choose from {', '.join(PATHS)}")
    if a.steps < 2 * LOG_EVERY or a.steps % LOG_EVERY:
        sys.exit(f"trainer_path.py: --steps must be a multiple of {LOG_EVERY}, at least {2 * LOG_EVERY}")
    if a.profile_steps >= a.steps:
        sys.exit("trainer_path.py: --profile-steps must be fewer than --steps")
    out = Path(a.out)
    # versus_peers' prep with the benchmark's settings: 8,000 Unigram pieces, pairs of at most 98 pieces
    prep = argparse.Namespace(sp_vocab=8000, train_limit=a.train_limit, test_limit=0, max_len=100, dev_lines=100)
    a.max_len = prep.max_len  # pieces + </s>: the prepared pairs all fit, so neither path drops any
    data = Path(a.data or versus_peers.prepare(a.dataset, prep, BENCH / "out")["dir"])
    tokenizer = out / "tokenizer"
    if not tokenizer.exists():
        save_word_level_tokenizers(data, tokenizer)
    env = versus_peers.child_env(a.threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH.parent), env.get("PYTHONPATH")]))  # this checkout's

    runs = []
    for rep in range(a.reps):
        for path in paths:
            run_out = out / f"{path}-{rep}"
            cmd = child_command(path, a, data, tokenizer, run_out)
            versus_peers.say(f"{path} run {rep + 1}/{a.reps}: {a.steps} steps")
            result = versus_peers.run(cmd, out / f"{path}-{rep}.log", env)
            if result["rc"]:
                sys.exit(
                    f"trainer_path.py: the {path} run failed; see {result['log']}:\n{versus_peers.tail(result['log'])}"
                )
            runs.append(dict(path=path, rep=rep, **steady(read_windows(path, run_out)), **result))

    rows = {}
    for path in paths:
        mine = [r for r in runs if r["path"] == path]
        keys = ("s_per_step", "tok_per_s", "tokens_per_step", "tgt_padding")
        rows[path] = {key: statistics.median(r[key] for r in mine) for key in keys}
    ratios = {
        f"{path} / ours": dict(
            s_per_step=rows[path]["s_per_step"] / rows["ours"]["s_per_step"],
            tok_per_s=rows[path]["tok_per_s"] / rows["ours"]["tok_per_s"],
        )
        for path in rows
        if path != "ours" and "ours" in rows
    }
    cpu = cpu_description()
    padding = epoch_padding(data, a)
    report = dict(
        epoch_padding=padding,
        settings=vars(a) | {"data": str(data)},
        cpu=cpu,
        load_end=versus_peers.load_snapshot(),
        rows=rows,
        ratios=ratios,
        runs=runs,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "trainer_path.json").write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"\n{a.data or a.dataset}, emb {a.emb}, hid {a.hid}, batch {a.batch_size}, {a.steps} steps a run "
        f"(first window of {LOG_EVERY} left out), "
        f"{a.reps} run(s) of each, {a.threads} thread(s); CPU {cpu['model']} ({cpu['cpus']} CPUs, "
        f"{' '.join(cpu['matmul_flags']) or 'no AVX2'}), torch CPU capability {cpu['torch_cpu_capability']}"
    )
    print("| path | s/step | tgt tokens/step | tgt padding | tgt tok/s |\n|---|---|---|---|---|")
    for path, r in rows.items():
        padded = "-" if math.isnan(r["tgt_padding"]) else f"{100 * r['tgt_padding']:.0f}%"
        print(f"| {path} | {r['s_per_step']:.3f} | {r['tokens_per_step']:.0f} | {padded} | {r['tok_per_s']:.0f} |")
    print(
        "one epoch's batches, padding of target / source positions and executed matmul TFLOPs: "
        + ", ".join(
            f"{p} {100 * r['tgt_padding']:.1f}% / {100 * r['src_padding']:.1f}% {r['tflops_executed']:.1f}"
            for p, r in padding.items()
        )
    )
    for pair, ratio in ratios.items():
        print(f"{pair}: {ratio['s_per_step']:.2f}x the seconds per step, {ratio['tok_per_s']:.2f}x the tokens/s")
    print(f"-> {out / 'trainer_path.json'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_trainer"]:
        child = argparse.ArgumentParser(prog="trainer_path.py _trainer")
        for flag in ("--data", "--tokenizer", "--out"):
            child.add_argument(flag, required=True)
        for flag in ("--steps", "--batch-size", "--max-len", "--profile-steps"):
            child.add_argument(flag, type=int, required=True)
        child.add_argument("--group-by-source", action="store_true")
        child.add_argument("trainer_args", nargs="*")
        trainer_child(child.parse_args(sys.argv[2:]))
    else:
        main()
