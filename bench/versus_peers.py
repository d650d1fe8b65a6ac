#!/usr/bin/env python
"""Our RNN encoder-decoder against OpenNMT-py, JoeyNMT and fairseq on the same files, same architecture, same
machine, in one run. See bench/README.md for what each figure means.

    .venv/bin/python bench/versus_peers.py                 # the full run (4-5 hours; a quiet machine)
    .venv/bin/python bench/versus_peers.py --phases prep,machine,train     # ... or the full run in parts
    .venv/bin/python bench/versus_peers.py --phases prep,quality,decode,flat --datasets multi30k
    .venv/bin/python bench/versus_peers.py --quick         # toy sizes, ours only, 1-2 minutes
    .venv/bin/python bench/versus_peers.py --help

Phases (all by default; --phases picks some):
  prep      segment raw train/dev/test once with a Unigram tokenizer (hf_rnn_seq2seq.tokenization.train_tokenizer)
            into space-separated pieces under OUT/data/; every toolkit then builds a word vocabulary over them
  machine   GFLOP/s of a large torch.matmul on the same threads (start and end of the run)
  train     training throughput: --tp-steps steps per run, alternating ours, peer1, ours, peer2, ... --reps times;
            steady-state target tokens/s (every log window but the first) and peak RSS of the training process;
            our achieved GFLOP/s from the counted matmul FLOPs
  quality   equal wall-clock budget: each toolkit, one after another, trains for --budget-minutes worth of steps at
            its own measured steady rate (train phase of this run), then decodes the test set greedy and beam 5;
            sacreBLEU + chrF on detokenised output against the raw references
  decode    decoding speed on the quality models: test set, batch 32, max 100 new tokens, no length penalty,
            greedy and beam 5, alternating ours/peer --reps times; decode loop (toolkit's own timer) and whole command
  flat      our per-token decode cost for 200-token vs 20-token outputs (min_new_tokens = max_new_tokens)

Toolkits: `ours` (float32, as the peers) and `ours-bf16` (the same model with bfloat16 matrix products: what
`--bf16 true` / `--dtype bfloat16` give a user whose CPU has bfloat16 units; the peers offer no bfloat16 on a
CPU), then onmt, joey, fairseq. Each figure compares every variant of ours with the best peer.
Decoding variants, for CPUs without bfloat16: `ours-shortlist` (ours's float32 model with its lexical shortlist,
built by the quality phase from the training files), `ours-onnx` (its float32 graphs in onnxruntime),
`ours-onnx-shortlist`, `ours-int8` (int8 graphs in onnxruntime) and `ours-int8-shortlist`, and the last two in
onnxruntime with two batches at once on one thread each (`-inter2`: `--inter-threads 2`) (DECODE_VARIANTS).
They train nothing; the quality and decode phases translate ours's model with them, and two more rows compare
each with ours itself: BLEU (within VARIANT_BLEU_TOLERANCE) and decoding peak RSS.

The full run (every toolkit, the benchmark's settings, no label) keeps its results per kind of CPU in
bench/results/<cpu>.json and .md, in git, and gathers every CPU's table in bench/RESULTS.md, so that a run on a
new kind of CPU keeps the others' and can be taken in parts (some phases, some datasets) across sessions: each
part merges its figures into its CPU's JSON, after checking that it measures the same package code
(FULL_RUN_CODE) and the same segmented data on the same kind of CPU (cpu_identity) as the parts before it.
A part that decodes or measures the per-token cost needs the models of the quality phase, which stay in
bench/out/: run quality, decode and flat of one dataset in one part.

The parent process only orchestrates: every measured command is a child process (like the peers' scripts).
"""

import argparse
import itertools
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = REPO.parent / "shared"
PEERS_DIR = SHARED / "peers"
DATA_ROOT = SHARED / "data"
PEERS_HOME = Path(os.environ.get("PEERS_HOME", Path.home() / ".cache" / "rnn-peers"))
PEERS = ("onmt", "joey", "fairseq")
OURS = {"ours": "float32", "ours-bf16": "bfloat16"}  # our trained variants and the --dtype bench/ours.py runs them in


class Variant(NamedTuple):
    """How a decoding variant runs bench/ours.py translate: its --dtype, --engine, --shortlist and --inter-threads."""

    dtype: str
    engine: str
    shortlist: bool
    inter_threads: int = 1


# What a user without bfloat16 units can decode with: `ours`'s float32 model translated with a lexical shortlist,
# in onnxruntime over its float32 graphs, and/or over int8 graphs. They train nothing: the quality phase builds the
# shortlist of `ours`'s model from the training files and decodes that model.
DECODE_VARIANTS = {
    "ours-shortlist": Variant("float32", "pytorch", True),
    "ours-onnx": Variant("float32", "onnxruntime", False),
    "ours-onnx-shortlist": Variant("float32", "onnxruntime", True),
    "ours-int8": Variant("int8", "onnxruntime", False),
    "ours-int8-shortlist": Variant("int8", "onnxruntime", True),
    "ours-onnx-shortlist-inter2": Variant("float32", "onnxruntime", True, inter_threads=2),
    "ours-int8-shortlist-inter2": Variant("int8", "onnxruntime", True, inter_threads=2),
}
OURS_ALL = tuple(OURS) + tuple(DECODE_VARIANTS)
ALL_TOOLKITS = OURS_ALL + PEERS
# Decode-loop speed each of ours must reach against the best peer (the default, and those with their own)
DECODE_TARGET, DECODE_TARGETS = 1.5, {"ours-int8-shortlist": 3.0, "ours-int8-shortlist-inter2": 3.0}
# A decoding variant's BLEU may differ from ours (float32, full vocabulary) by at most this much
VARIANT_BLEU_TOLERANCE = 0.3
PHASES = ("prep", "machine", "train", "quality", "decode", "flat")
# What makes a run (or a part of) the full run, besides every toolkit and the benchmark's architecture: anything
# less (fewer repetitions, a shorter budget, shorter throughput runs, a label) writes its own results.
FULL_RUN = {"budget_minutes": 12.0, "reps": 3, "tp_steps": 200}
# A full run's results, one JSON and one table per kind of CPU (`cpu_slug`), in git; RESULTS.md gathers the tables
FULL_RUN_DIR, FULL_RUN_MD = BENCH / "results", BENCH / "RESULTS.md"
FULL_RUN_CODE = ("hf_rnn_seq2seq", "bench/ours.py")  # what the parts of a full run must share (git objects)
MODES = {"greedy": 1, "beam5": 5}
# the process whose peak RSS is "the training process" (the peer scripts also run vocab/binarisation steps)
TRAIN_PROC = {"onmt": "onmt.bin.train", "joey": "joeynmt train", "fairseq": "fairseq_cli.train"} | {
    tk: "ours.py train" for tk in OURS
}
DECODE_PROC = "ours.py translate"  # the process whose peak RSS is ours's decoding (the peers' is not measured)

DATASETS = {
    "multi30k": dict(
        title="Multi30k De-En test2016",
        src="de",
        tgt="en",
        train=[("multi30k-en-de", "train")],
        dev=("multi30k-en-de", "val"),
        test=("multi30k-en-de", "test_2016_flickr"),
    ),
    "tatoeba": dict(
        # Ko-En: the general-domain training corpora (see ../shared/data/README.md), Tatoeba dev, Tatoeba test
        title="Tatoeba Ko-En test",
        src="ko",
        tgt="en",
        train=[
            ("kornli-xnli-koen", "train"),
            ("korsts-koen", "train"),
            ("pawsx-koen", "train"),
            ("ud-pud-koen", "train"),
            ("tatoeba-kor-eng", "train"),
        ],
        dev=("tatoeba-kor-eng", "dev"),
        test=("tatoeba-kor-eng", "test"),
    ),
}

# ------------------------------------------------------------------------------------------- helpers
T0 = time.time()


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{(time.time() - T0) / 60:5.1f}m] {msg}", flush=True)


def read_lines(path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def write_lines(path, lines) -> None:
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load_snapshot() -> dict:
    load1 = os.getloadavg()[0]
    psi = None
    try:
        psi = Path("/proc/pressure/cpu").read_text().split("\n")[0]
    except OSError:
        pass
    return dict(load1=round(load1, 2), psi=psi)


# The instruction sets that decide how fast the same matrix products run. Seen on this project's 2-CPU machines:
# a 2048^3 float32 matmul at 165-197 GFLOP/s without AMX and 376 with it, bfloat16 at 380-410 against 2,660.
MATMUL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_identity() -> dict:
    """The CPU a run measures on: model name, CPU count and which of MATMUL_FLAGS it has."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name":
                model = value
            elif key == "flags":
                flags = set(value.split())
    except OSError:  # not Linux: the model name alone
        pass
    return dict(model=model, cpus=os.cpu_count(), matmul_flags=[f for f in MATMUL_FLAGS if f in flags])


def cpu_slug(cpu: dict) -> str:
    """A file name for a kind of CPU: model, CPU count and MATMUL_FLAGS, e.g. `amd-epyc-2cpu-avx2-avx512f`."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"\((r|tm)\)", "", cpu["model"].lower()))
    return "-".join([*words, f"{cpu['cpus']}cpu", *cpu["matmul_flags"]]).replace("_", "")


def full_run_json(cpu: dict) -> Path:
    return FULL_RUN_DIR / f"{cpu_slug(cpu)}.json"


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PEERS_HOME=str(PEERS_HOME),
        PYTHONUNBUFFERED="1",
    )
    return env


def run(cmd: list[str], log: Path, env: dict, rss_match: str | None = None, cwd=None) -> dict:
    """Run `cmd` to completion, output to `log`. Returns wall seconds, return code and peak RSS (MB):
    `peak_rss_mb` of the descendant whose command line contains `rss_match` (psutil, polled every 0.1 s),
    `tree_maxrss_mb` the kernel's max RSS over the child and its descendants (wait4)."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    snap = load_snapshot()
    with open(log, "w") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        peaks: dict[int, tuple[int, str]] = {}
        stop = threading.Event()

        def poll():
            try:
                root = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not stop.is_set():
                try:
                    procs = [root] + root.children(recursive=True)
                except psutil.Error:
                    procs = []
                for p in procs:
                    try:
                        rss = p.memory_info().rss
                        if p.pid not in peaks or rss > peaks[p.pid][0] or not peaks[p.pid][1]:
                            cmdline = peaks.get(p.pid, (0, ""))[1] or " ".join(p.cmdline())
                            peaks[p.pid] = (max(rss, peaks.get(p.pid, (0, ""))[0]), cmdline)
                    except psutil.Error:
                        pass
                stop.wait(0.1)

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stop.set()
        th.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    matched = [rss for rss, c in peaks.values() if rss_match and rss_match in c]
    return dict(
        wall_s=wall,
        rc=proc.returncode,
        peak_rss_mb=max(matched) / 2**20 if matched else None,
        tree_maxrss_mb=rusage.ru_maxrss / 1024,
        load_before=snap,
        log=str(log),
    )


def tail(path, n=25) -> str:
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return ""


def detok(line: str) -> str:
    """Space-separated Unigram pieces back to text: join, ▁ -> space."""
    return "".join(line.split()).replace("\u2581", " ").strip()


def score(hyp_file, ref_file) -> dict:
    import sacrebleu

    hyps = [detok(h) for h in read_lines(hyp_file)]
    refs = read_lines(ref_file)
    if len(hyps) != len(refs):
        return dict(error=f"{len(hyps)} hypotheses for {len(refs)} references")
    return dict(bleu=sacrebleu.corpus_bleu(hyps, [refs]).score, chrf=sacrebleu.corpus_chrf(hyps, [refs]).score)


def output_lengths(hyp_file, max_out: int) -> dict:
    """How many outputs ran to the length cap.

    Why: generate() steps a whole batch until its longest output ends, so one runaway output costs ours a
    batch of steps where a peer that drops finished sentences pays for one sentence; sentences/s then
    depends on the model as much as on the toolkit. At the cap: `max_out - 1` pieces or more, since
    fairseq's cap counts the </s> it does not print.
    """
    pieces = [len(h.split()) for h in read_lines(hyp_file)]
    return dict(out_at_cap=sum(n >= max_out - 1 for n in pieces))


# ------------------------------------------------------------------------------------------- prep
def prepare(name: str, a, out_root: Path) -> dict:
    spec = DATASETS[name]
    d = out_root / "data" / f"{name}-sp{a.sp_vocab}-n{a.train_limit or 'all'}-t{a.test_limit or 'all'}"
    stats_file = d / "stats.json"
    if stats_file.exists():
        stats = json.loads(stats_file.read_text())
        say(f"prep {name}: cached in {d}")
        return stats
    from hf_rnn_seq2seq.tokenization import train_tokenizer

    d.mkdir(parents=True, exist_ok=True)
    raw = lambda corpus, split, lang: read_lines(DATA_ROOT / corpus / f"{split}.{lang}")  # noqa: E731
    src = [s for c, sp in spec["train"] for s in raw(c, sp, spec["src"])]
    tgt = [t for c, sp in spec["train"] for t in raw(c, sp, spec["tgt"])]
    assert len(src) == len(tgt)
    if a.train_limit and a.train_limit < len(src):
        keep = sorted(random.Random(0).sample(range(len(src)), a.train_limit))
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
    t0 = time.time()
    tok = train_tokenizer(src, tgt, vocab_size=a.sp_vocab, model="unigram")
    tok.save_pretrained(d / "unigram")
    backend = tok.backend_tokenizer

    def seg(lines):
        return [" ".join(e.tokens) for e in backend.encode_batch(lines, add_special_tokens=False)]

    s_src, s_tgt = seg(src), seg(tgt)
    # Every toolkit gets the same pairs: none empty, none over the 100-token filter (98 leaves room for
    # the EOS/BOS each toolkit adds), so no toolkit filters anything itself.
    keep = [
        i
        for i in range(len(src))
        if 0 < len(s_src[i].split()) <= a.max_len - 2 and 0 < len(s_tgt[i].split()) <= a.max_len - 2
    ]
    write_lines(d / "train.src", [s_src[i] for i in keep])
    write_lines(d / "train.tgt", [s_tgt[i] for i in keep])
    dev_src, dev_tgt = raw(*spec["dev"], spec["src"]), raw(*spec["dev"], spec["tgt"])
    n_dev = min(len(dev_src), a.dev_lines)  # validation only runs once, at the end; it does not steer training
    write_lines(d / "dev.src", seg(dev_src[:n_dev]))
    write_lines(d / "dev.tgt", seg(dev_tgt[:n_dev]))
    test_src, test_ref = raw(*spec["test"], spec["src"]), raw(*spec["test"], spec["tgt"])
    if a.test_limit:
        test_src, test_ref = test_src[: a.test_limit], test_ref[: a.test_limit]
    write_lines(d / "test.src", seg(test_src))
    write_lines(d / "test.tgt", seg(test_ref))
    write_lines(d / "test.ref", test_ref)
    tgt_lens = [len(s_tgt[i].split()) + 1 for i in keep]  # + </s>, as counted in training throughput
    stats = dict(
        name=name,
        title=spec["title"],
        dir=str(d),
        train_pairs=len(keep),
        train_dropped=len(src) - len(keep),
        dev_pairs=n_dev,
        test_sentences=len(test_src),
        unigram_vocab=len(tok),
        src_piece_types=len({p for i in keep for p in s_src[i].split()}),
        tgt_piece_types=len({p for i in keep for p in s_tgt[i].split()}),
        mean_tgt_tokens=sum(tgt_lens) / len(tgt_lens),
        mean_src_pieces=sum(len(s_src[i].split()) for i in keep) / len(keep),
        prep_s=time.time() - t0,
    )
    stats_file.write_text(json.dumps(stats, indent=1))
    say(
        f"prep {name}: {stats['train_pairs']} train pairs ({stats['train_dropped']} dropped), {len(tok)} unigram "
        f"pieces, {stats['mean_tgt_tokens']:.1f} tgt tokens/sentence, {len(test_src)} test sentences -> {d}"
    )
    return stats


# ------------------------------------------------------------------------------------------- train / decode runs
def train_cmd(tk: str, data: dict, out: Path, steps: int, a) -> list[str]:
    d = Path(data["dir"])
    common = [
        "--emb",
        str(a.emb),
        "--hid",
        str(a.hid),
        "--layers",
        str(a.layers),
        "--dropout",
        str(a.dropout),
        "--lr",
        str(a.lr),
        "--batch-size",
        str(a.batch_size),
        "--steps",
        str(steps),
        "--threads",
        str(a.threads),
        "--log-every",
        str(a.log_every),
        "--seed",
        str(a.seed),
        "--max-len",
        str(a.max_len),
    ]
    if tk in OURS:
        return [
            sys.executable,
            str(BENCH / "ours.py"),
            "train",
            "--train-src",
            str(d / "train.src"),
            "--train-tgt",
            str(d / "train.tgt"),
            "--out",
            str(out),
            "--dtype",
            OURS[tk],
        ] + common
    cmd = [
        str(PEERS_DIR / f"{tk}_train.sh"),
        "--train-src",
        str(d / "train.src"),
        "--train-tgt",
        str(d / "train.tgt"),
        "--dev-src",
        str(d / "dev.src"),
        "--dev-tgt",
        str(d / "dev.tgt"),
        "--out",
        str(out),
        "--max-out",
        str(a.max_out),
    ] + common
    if tk == "onmt":  # its default bucket (262144 examples) re-reads a small corpus many times before step 1
        cmd += ["--bucket-size", str(data["train_pairs"])]
    if tk == "fairseq":
        # fairseq caps decoding at max_target_positions - 1 (the training --max-len): one more gives the same
        # 100-token cap as the others; the training files are already filtered to <= max_len - 2 pieces
        cmd[cmd.index("--max-len") + 1] = str(max(a.max_len, a.max_out + 1))
    return cmd


def parse_train(tk: str, out: Path) -> dict:
    if tk in OURS:
        s = json.loads((out / "summary.json").read_text())
        return dict(
            tok_per_s=s["tok_per_s_steady"],
            tok_per_s_median_window=s["tok_per_s_median"],
            steps=s["steps"],
            gflops_exec=s["gflops_exec_steady"],
            gflops_useful=s["gflops_useful_steady"],
            train_loop_s=s["loop_s"],
            n_params=s["n_params"],
            final_xent=s["final_xent"],
        )
    txt = (out / "time_train.txt").read_text()
    m = re.search(r"steady=([\d.]+).*?median=([\d.]+)", txt)
    w = re.search(r"train_wall_s ([\d.]+)", txt)
    return dict(
        tok_per_s=float(m.group(1)) if m else None,
        tok_per_s_median_window=float(m.group(2)) if m else None,
        script_train_wall_s=float(w.group(1)) if w else None,
    )


def peer_model(tk: str, out: Path) -> str:
    if tk in OURS:
        return str(out / "model")
    if tk == "onmt":
        ckpts = sorted(out.glob("model_step_*.pt"), key=lambda p: int(re.search(r"_(\d+)\.pt$", p.name).group(1)))
        return str(ckpts[-1])
    if tk == "joey":
        return str(out)
    return str(out / "ckpt" / "checkpoint_last.pt")


def do_train(tk, data, out, steps, a, env) -> dict:
    r = run(train_cmd(tk, data, out, steps, a), out.with_suffix(".log"), env, rss_match=TRAIN_PROC[tk])
    if r["rc"] != 0:
        raise RuntimeError(f"{tk} training failed (rc {r['rc']}), see {r['log']}:\n{tail(r['log'])}")
    r.update(parse_train(tk, out))
    r["steps_requested"] = steps
    return r


def decode_cmd(tk, model, src, hyp, beam, a) -> list[str]:
    options = dict(model=model, src=src, out=hyp, beam=beam, tbatch=a.tbatch, threads=a.threads) | {
        "max-out": a.max_out
    }
    common = [arg for name, value in options.items() for arg in (f"--{name}", str(value))]  # every script's flags
    if tk in OURS_ALL:
        variant = DECODE_VARIANTS.get(tk, Variant(OURS.get(tk), "pytorch", False))
        return [
            *(sys.executable, str(BENCH / "ours.py"), "translate", *common),
            *("--dtype", variant.dtype, "--engine", variant.engine),
            *(["--shortlist"] if variant.shortlist else []),
            *("--inter-threads", str(variant.inter_threads)),
        ]
    return [str(PEERS_DIR / f"{tk}_translate.sh"), *common, "--alpha", "0"]  # no length penalty


def do_decode(tk, model, data, hyp: Path, beam, a, env) -> dict:
    d = Path(data["dir"])
    rss_match = DECODE_PROC if tk in OURS_ALL else None
    r = run(decode_cmd(tk, model, d / "test.src", hyp, beam, a), hyp.with_suffix(".log"), env, rss_match=rss_match)
    if r["rc"] != 0:
        raise RuntimeError(f"{tk} decoding failed (rc {r['rc']}), see {r['log']}:\n{tail(r['log'])}")
    n = data["test_sentences"]
    if tk in OURS_ALL:
        j = json.loads(Path(str(hyp) + ".json").read_text())
        loop = j["sents_per_s_reported"]
    else:
        t = dict(line.split(None, 1) for line in Path(str(hyp) + ".time").read_text().splitlines() if " " in line)
        loop = float(t["sents_per_s_reported"]) if "sents_per_s_reported" in t else None
        if loop is None and tk == "onmt":  # no output words -> no tokens/s: fall back to its rounded total time
            m = re.findall(r"Total translation time \(s\): ([\d.]+)", Path(str(hyp) + ".log").read_text())
            loop = n / float(m[-1]) if m and float(m[-1]) > 0 else None
        r["script_sents_per_s_wall"] = float(t["sents_per_s_wall"])  # the peer script's own wall (after binarisation)
    r.update(sents_per_s_loop=loop, sents_per_s_wall=n / r["wall_s"])
    r.update(score(hyp, d / "test.ref"))
    r.update(output_lengths(hyp, a.max_out))
    return r


def build_shortlist(model: str, data: dict, log: Path, env: dict) -> None:
    """Build the lexical shortlist of our model from the segmented training files (bench/ours.py shortlist)."""
    d = Path(data["dir"])
    cmd = [sys.executable, str(BENCH / "ours.py"), "shortlist", "--model", model]
    r = run(cmd + ["--train-src", str(d / "train.src"), "--train-tgt", str(d / "train.tgt")], log, env)
    if r["rc"] != 0:
        raise RuntimeError(f"building the shortlist failed (rc {r['rc']}), see {log}:\n{tail(log)}")


def interleave(toolkits: list[str]) -> list[str]:
    """The order of one repetition: our variants before each peer (ours, ours-bf16, p1, ours, ours-bf16, p2, ...),
    so that every peer's run sits between runs of ours."""
    ours, peers = [t for t in toolkits if t in OURS_ALL], [t for t in toolkits if t not in OURS_ALL]
    return [x for p in peers for x in ours + [p]] or ours


# ------------------------------------------------------------------------------------------- summary
HIGHER, LOWER = "higher", "lower"


def figure_rows(R: dict, toolkits: list[str]) -> list[dict]:
    """One row per figure: values per toolkit (medians), which is better, the best peer, and for each variant of
    ours its ratio (or difference) to that peer and whether it meets the target."""
    rows = []

    def add(ds, key, label, per_tk, better, target=None, diff=False, compare=True, targets=None):
        """`targets`: the variants of ours with a target of their own (same kind as `target`)."""
        targets = targets or {}
        row = dict(dataset=ds, key=key, figure=label, better=better, values={tk: per_tk.get(tk) for tk in toolkits})
        peers = {tk: v for tk, v in per_tk.items() if tk not in OURS_ALL and v is not None}
        if compare and peers:
            best_tk = (max if better == HIGHER else min)(peers, key=peers.get)
            best = peers[best_tk]
            row.update(best_peer=best_tk, vs_best={})
            if target is not None:
                kind, default = target
                text = {"ratio>=": ">= {}x", "ratio<=": "<= {}x", "diff>=": ">= best +{}"}[kind]
                row["target"] = text.format(default) + "".join(
                    f" ({tk}: {text.format(v)})" for tk, v in targets.items() if tk in toolkits
                )
            for tk in OURS_ALL:
                ours = per_tk.get(tk)
                if ours is None:
                    continue
                c = row["vs_best"][tk] = dict(
                    ratio=ours / best if best else None, ratios={p: (ours / v if v else None) for p, v in peers.items()}
                )
                if diff:
                    c["diff"] = ours - best
                if target is not None:
                    x, val = c["diff"] if kind == "diff>=" else c["ratio"], targets.get(tk, default)
                    c["met"] = x is not None and (x <= val if kind == "ratio<=" else x >= val)
        rows.append(row)

    def add_versus_ours(ds, key, label, per_tk, kind, val):
        """A row comparing each decoding variant with ours (float32, full vocabulary), not with the peers."""
        base = per_tk.get("ours")
        row = dict(dataset=ds, key=key, figure=label, values={tk: per_tk.get(tk) for tk in toolkits})
        variants = {tk: per_tk[tk] for tk in DECODE_VARIANTS if per_tk.get(tk) is not None}
        if base is None or not variants:
            return
        row.update(best_peer="ours", target=f"|diff| <= {val}" if kind == "diff" else f"<= {val}x", vs_best={})
        for tk, v in variants.items():
            if kind == "diff":
                row["vs_best"][tk] = dict(diff=v - base, met=abs(v - base) <= val)
            else:
                row["vs_best"][tk] = dict(ratio=v / base if base else None, met=bool(base) and v / base <= val)
        rows.append(row)

    for ds, per in R.get("train_throughput", {}).items():
        add(
            ds,
            "train_tok_per_s",
            "train tgt tok/s (steady, median)",
            {tk: v.get("median_tok_per_s") for tk, v in per.items()},
            HIGHER,
            ("ratio>=", 1.3),
        )
        add(
            ds,
            "train_peak_rss_mb",
            "train peak RSS MB (median)",
            {tk: v.get("median_peak_rss_mb") for tk, v in per.items()},
            LOWER,
            ("ratio<=", 1.0),
        )
    for ds, per in R.get("decode", {}).items():
        for mode in MODES:
            add(
                ds,
                f"{mode}_loop",
                f"{mode} sent/s, decode loop",
                {tk: v.get(mode, {}).get("median_loop") for tk, v in per.items()},
                HIGHER,
                ("ratio>=", DECODE_TARGET),
                targets=DECODE_TARGETS,
            )
            add(
                ds,
                f"{mode}_wall",
                f"{mode} sent/s, whole command",
                {tk: v.get(mode, {}).get("median_wall") for tk, v in per.items()},
                HIGHER,
            )
            add(
                ds,
                f"{mode}_at_cap",
                f"{mode} outputs at the {R['settings']['max_out']}-token cap",
                {tk: v.get(mode, {}).get("out_at_cap") for tk, v in per.items()},
                LOWER,
                compare=False,
            )
            add_versus_ours(
                ds,
                f"{mode}_decode_rss",
                f"{mode} decode peak RSS MB (median) vs ours",
                {tk: v.get(mode, {}).get("median_peak_rss_mb") for tk, v in per.items()},
                "ratio",
                1.0,
            )
    for ds, per in R.get("quality", {}).items():
        for mode in MODES:
            add(
                ds,
                f"bleu_{mode}",
                f"BLEU {mode} (equal budget)",
                {tk: v.get(mode, {}).get("bleu") for tk, v in per.items()},
                HIGHER,
                ("diff>=", 1.0),
                diff=True,
            )
            add(
                ds,
                f"chrf_{mode}",
                f"chrF {mode} (equal budget)",
                {tk: v.get(mode, {}).get("chrf") for tk, v in per.items()},
                HIGHER,
                diff=True,
            )
            add_versus_ours(
                ds,
                f"bleu_{mode}_vs_ours",
                f"BLEU {mode}: decoding variant vs ours",
                {tk: v.get(mode, {}).get("bleu") for tk, v in per.items()},
                "diff",
                VARIANT_BLEU_TOLERANCE,
            )
    return rows


def fmt(v, key=""):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if "bleu" in key or "chrf" in key:
        return f"{v:.2f}"
    if key.endswith("_at_cap"):
        return f"{v:g}"  # a count (a median of two runs may end in .5)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def versus_best(row: dict, tk: str) -> str:
    """One table cell: our variant against the best peer, e.g. `1.66x (onmt): yes`."""
    c = row.get("vs_best", {}).get(tk)
    if c is None:
        return ""
    if "diff" in c:
        cell = f"{c['diff']:+.2f} ({row['best_peer']})"
    else:
        cell = "-" if c["ratio"] is None else f"{c['ratio']:.2f}x ({row['best_peer']})"
    return cell + (f": {fmt(c['met'])}" if "met" in c else "")


def render_table(R: dict, toolkits: list[str]) -> str:
    rows = figure_rows(R, toolkits)
    R["figures"] = rows
    ours = [t for t in toolkits if t in OURS_ALL]
    compared = ours if len(ours) < len(toolkits) else []  # no peer, no comparison columns
    head = (
        ["dataset", "figure"] + toolkits + (["target"] + [f"{tk} / best peer" for tk in compared] if compared else [])
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["dataset"], r["figure"]] + [fmt(r["values"][t], r["key"]) for t in toolkits]
        if compared:
            cells += [r.get("target", "")] + [versus_best(r, tk) for tk in compared]
        lines.append("| " + " | ".join(cells) + " |")
    extra = []
    for ds, tk, g in ((ds, tk, g) for ds, per in R.get("ours_gflops", {}).items() for tk, g in per.items()):
        extra.append(
            f"- training step of {tk} on {ds}: {g['exec']:.1f} GFLOP/s executed ({g['useful']:.1f} useful, non-pad) vs "
            f"{g['matmul_big']:.1f} GFLOP/s for a {g['matmul_size']}^3 {g['dtype']} torch.matmul on "
            f"{R['settings']['threads']} threads = {100 * g['fraction_of_matmul']:.0f}% of that (decoder-step GEMM "
            f"{g['matmul_decoder_step']:.1f}, generator GEMM {g['matmul_generator']:.1f} GFLOP/s); FLOP formula / "
            f"torch flop_counter = {R.get('flopcheck_ratio') or float('nan'):.3f}"
        )
    for ds, tk, f in ((ds, tk, f) for ds, per in R.get("flat", {}).items() for tk, f in per.items()):
        for beam in ("beam1", "beam5"):
            if beam in f:
                x = f[beam]
                per = x["per_length"]
                ks = sorted(per, key=int)
                extra.append(
                    f"- per-token decode cost of {tk}, {ds}, {'greedy' if beam == 'beam1' else 'beam 5'}, batch "
                    f"{f['batch']}: "
                    + ", ".join(f"{k} tokens {per[k]['ms_per_token']:.2f} ms/token-step" for k in ks)
                    + f"; ratio {x['ratio_long_over_short']:.2f} (target <= 1.2: "
                    f"{'yes' if x['ratio_long_over_short'] <= 1.2 else 'NO'})"
                    + (
                        f"; cost of one more step, without fixed costs: {x['marginal_ms_per_step_early']:.2f} ms "
                        "over steps "
                        f"{ks[0]}-{ks[-2]}, {x['marginal_ms_per_step_late']:.2f} ms over {ks[-2]}-{ks[-1]} "
                        f"(ratio {x['marginal_ratio']:.2f})"
                        if "marginal_ratio" in x
                        else ""
                    )
                )
    q = R.get("quality_budget")
    if q:
        extra.append(
            "- quality runs (steps at each toolkit's measured rate for the budget; training seconds measured): "
            + "; ".join(
                f"{ds}/{tk}: {v['steps']} steps, {v['wall_s']:.0f}s process"
                for ds, per in q.items()
                for tk, v in per.items()
            )
        )
    return "\n".join(lines + [""] + extra)


def summarise(R: dict) -> None:
    for per in R.get("train_throughput", {}).values():
        for tk, v in per.items():
            v["median_tok_per_s"] = median(r.get("tok_per_s") for r in v["runs"])
            v["median_peak_rss_mb"] = median(r.get("peak_rss_mb") for r in v["runs"])
            if tk in OURS:
                v["median_gflops_exec"] = median(r.get("gflops_exec") for r in v["runs"])
                v["median_gflops_useful"] = median(r.get("gflops_useful") for r in v["runs"])
    for per in R.get("decode", {}).values():
        for v in per.values():
            for mode in MODES:
                if mode in v:
                    v[mode]["median_loop"] = median(r.get("sents_per_s_loop") for r in v[mode]["runs"])
                    v[mode]["median_wall"] = median(r.get("sents_per_s_wall") for r in v[mode]["runs"])
                    v[mode]["out_at_cap"] = median(r.get("out_at_cap") for r in v[mode]["runs"])
                    v[mode]["median_peak_rss_mb"] = median(r.get("peak_rss_mb") for r in v[mode]["runs"])
    # our GFLOP/s on each dataset against the best matmul rate the run measured in the same precision
    R["ours_gflops"] = {}
    for (ds, per), (tk, dtype) in itertools.product(R.get("train_throughput", {}).items(), OURS.items()):
        o = per.get(tk, {})
        m = [x for x in R.get("machine", []) if x.get("dtype") == dtype]
        if m and o.get("median_gflops_exec"):
            g = R["ours_gflops"].setdefault(ds, {})[tk] = dict(
                dtype=dtype,
                exec=o["median_gflops_exec"],
                useful=o["median_gflops_useful"],
                matmul_big=max(x["matmul_big"]["gflops"] for x in m),
                matmul_size=m[0]["matmul_big"]["shape"][0],
                matmul_decoder_step=max(x["matmul_decoder_step"]["gflops"] for x in m),
                matmul_generator=max(x["matmul_generator"]["gflops"] for x in m),
            )
            g["fraction_of_matmul"] = g["exec"] / g["matmul_big"]


# ------------------------------------------------------------------------------------------- main
# settings a full run keeps at their defaults (besides FULL_RUN's and the sizes --quick changes)
FIXED = (
    "layers",
    "dropout",
    "lr",
    "batch_size",
    "log_every",
    "seed",
    "max_len",
    "threads",
    "tbatch",
    "max_out",
    "dev_lines",
    "quality_steps",
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick",
        action="store_true",
        help="toy sizes (emb 64, hid 128, 500 training pairs, 100 test sentences, Multi30k only, ours only "
        "unless --toolkits says otherwise): 1-2 minutes, for before/after a change",
    )
    p.add_argument(
        "--toolkits", default=None, help=f"comma list of {','.join(ALL_TOOLKITS)} (default: all; quick: ours)"
    )
    p.add_argument("--datasets", default=None, help="comma list of multi30k,tatoeba (default: both; quick: multi30k)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {','.join(PHASES)}")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="training budget per toolkit and dataset (default 12; quick 0.25)",
    )
    p.add_argument(
        "--quality-steps", type=int, default=0, help="equal steps instead of equal time (skips the calibration)"
    )
    p.add_argument(
        "--keep-models",
        action="store_true",
        help="quality phase: keep the models this run's results already hold (a labelled run's JSON) instead of "
        "training them again; train only the missing ones, and decode every variant",
    )
    p.add_argument(
        "--reps", type=int, default=None, help="repetitions of the alternating train/decode runs (default 3; quick 1)"
    )
    p.add_argument("--tp-steps", type=int, default=None, help="steps per throughput run (default 200; quick 40)")
    p.add_argument(
        "--train-limit", type=int, default=None, help="use this many training pairs (default all; quick 500)"
    )
    p.add_argument(
        "--test-limit", type=int, default=None, help="use the first N test sentences (default all; quick 100)"
    )
    p.add_argument("--dev-lines", type=int, default=100, help="dev pairs the peers validate on (once, at the end)")
    p.add_argument("--sp-vocab", type=int, default=None, help="Unigram vocabulary (default 8000; quick 1000)")
    p.add_argument("--emb", type=int, default=None)
    p.add_argument("--hid", type=int, default=None)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch-size", type=int, default=64, help="sentences per training batch")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--max-len", type=int, default=100, help="training length filter (pieces)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tbatch", type=int, default=32, help="decoding batch (sentences)")
    p.add_argument("--max-out", type=int, default=100, help="max new tokens when decoding")
    p.add_argument(
        "--flat-lengths",
        type=int,
        nargs="+",
        default=[1, 20, 200],
        help="output lengths for the per-token cost; the last two give the ratio, a third (shorter) one the "
        "marginal step cost",
    )
    p.add_argument("--label", default=None, help="run name: outputs in bench/out/<label>/ (default full / quick)")
    p.add_argument("--out", default=str(BENCH / "out"))
    p.add_argument(
        "--results-md",
        default=None,
        help="where to write the results table (default: bench/RESULTS.md for a full run, else OUT/<label>/RESULTS.md)",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="measure nothing: write the table and RESULTS.md again from the run's JSON (after a change to the report)",
    )
    a = p.parse_args(argv)
    q = a.quick
    dflt = lambda v, full, quick: v if v is not None else (quick if q else full)  # noqa: E731
    a.toolkits = [t for t in dflt(a.toolkits, ",".join(ALL_TOOLKITS), "ours").split(",") if t]
    a.datasets = [d for d in dflt(a.datasets, "multi30k,tatoeba", "multi30k").split(",") if d]
    a.phases = [x for x in a.phases.split(",") if x]
    a.budget_minutes = dflt(a.budget_minutes, FULL_RUN["budget_minutes"], 0.25)
    a.reps = dflt(a.reps, FULL_RUN["reps"], 1)
    a.tp_steps = dflt(a.tp_steps, FULL_RUN["tp_steps"], 40)
    a.train_limit = dflt(a.train_limit, 0, 500)
    a.test_limit = dflt(a.test_limit, 0, 100)
    a.sp_vocab = dflt(a.sp_vocab, 8000, 1000)
    a.emb = dflt(a.emb, 256, 64)
    a.hid = dflt(a.hid, 512, 128)
    a.tp_steps = max(2, -(-a.tp_steps // a.log_every)) * a.log_every  # whole log windows (see the quality phase)
    bad = (
        [t for t in a.toolkits if t not in ALL_TOOLKITS]
        + [d for d in a.datasets if d not in DATASETS]
        + [x for x in a.phases if x not in PHASES]
    )
    if bad:
        p.error(f"unknown toolkit/dataset/phase: {bad}")
    if set(a.toolkits) & set(DECODE_VARIANTS) and "ours" not in a.toolkits:
        p.error(f"{', '.join(DECODE_VARIANTS)} decode the model of ours: add ours to --toolkits")
    # any phases and datasets: a part of the full run merges into bench/results/<cpu>.json, refreshes bench/RESULTS.md
    a.full = (
        not q
        and not a.train_limit
        and not a.test_limit
        and a.emb == 256
        and a.hid == 512
        and a.sp_vocab == 8000
        and set(a.toolkits) == set(ALL_TOOLKITS)
        and all(getattr(a, n) == p.get_default(n) for n in FIXED)
        and all(getattr(a, name) == value for name, value in FULL_RUN.items())
        and a.label in (None, "full")
    )
    a.label = a.label or ("quick" if q else "full" if a.full else "custom")
    return a


def code_revision() -> dict:
    """The git objects of what a full run measures (FULL_RUN_CODE) and whether the checkout changes them."""
    git = lambda *args: subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return dict(
        objects={path: git("rev-parse", f"HEAD:{path}") for path in FULL_RUN_CODE},
        commit=git("rev-parse", "--short", "HEAD"),
        changed=git("status", "--porcelain", *FULL_RUN_CODE),
    )


def same_run(R: dict, code: dict, cpu: dict) -> str | None:
    """Why a part cannot join the full run in R (None if it can): every part measures the same package code on
    the same kind of CPU (the quality phase trains for the steps the train phase's rates buy in the budget)."""
    path = os.path.relpath(full_run_json(cpu), REPO)

    def restart(where: str) -> str:
        return f"Finish that run {where}, or delete {path} (and its .md) to start a new one here"

    if R.get("parts") and R.get("cpu") != cpu:
        return (
            f"{path} holds a full run measured on "
            f"{R.get('cpu', 'a CPU it did not record')}; this machine is {cpu}. {restart('there')}"
        )
    if code["changed"]:
        return f"uncommitted changes to {', '.join(FULL_RUN_CODE)}:\n{code['changed']}\ncommit them first"
    if R.get("code") and R["code"]["objects"] != code["objects"]:
        return (
            f"{path} holds a full run of the package code at {R['code']['commit']}; "
            f"this checkout's differs ({code['commit']}). {restart('on its commit')}"
        )
    return None


def missing_parts(R: dict) -> list[str]:
    """What the full run in R has not measured yet."""
    phases = {"train": "train_throughput", "quality": "quality", "decode": "decode", "flat": "flat"}
    return [f"{ph} {ds}" for ds in DATASETS for ph, key in phases.items() if ds not in R.get(key, {})] + (
        ["machine"] if not R.get("machine") else []
    )


def main(argv=None) -> None:
    a = parse_args(argv)
    command = (
        "cd "
        + shlex.quote(str(REPO))
        + " && "
        + shlex.join(
            [
                os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable,
                os.path.relpath(__file__, REPO),
            ]
            + (sys.argv[1:] if argv is None else list(argv))
        )
    )
    out_root = Path(a.out)
    run_dir = out_root / a.label
    run_dir.mkdir(parents=True, exist_ok=True)
    code, cpu = code_revision(), cpu_identity()
    json_path = full_run_json(cpu) if a.full else out_root / f"versus_peers.{a.label}.json"
    if a.report:  # a full run's: every CPU's
        paths = sorted(FULL_RUN_DIR.glob("*.json")) if a.full else [json_path]
        if not paths or not paths[0].exists():
            sys.exit(f"--report: no results at {json_path}: run the benchmark with the same options first")
        for path in paths:
            R = json.loads(path.read_text())
            report(R, argparse.Namespace(**R["settings"]), path, run_dir)
        return
    peers = [t for t in a.toolkits if t not in OURS_ALL]
    missing = [t for t in peers if not (PEERS_HOME / t / "bin" / "python").exists()]
    if missing:
        sys.exit(
            f"peer toolkit(s) {missing} not installed in {PEERS_HOME}: run {PEERS_DIR}/setup.sh {' '.join(missing)}"
        )
    env = child_env(a.threads)
    ours = [t for t in a.toolkits if t in OURS]  # what trains (our decoding variants only decode)
    trained = [t for t in a.toolkits if t not in DECODE_VARIANTS]

    # A run of some phases (or, in a full run, some datasets) merges into the results of the runs before it.
    fresh = set(a.phases) == set(PHASES) and (not a.full or set(a.datasets) == set(DATASETS))
    R = json.loads(json_path.read_text()) if json_path.exists() and not fresh else {}
    if a.full and (why := same_run(R, code, cpu)):
        sys.exit(f"this part cannot join the full run: {why}")
    part = dict(
        command=command,
        phases=a.phases,
        datasets=a.datasets,
        code=code["commit"],
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        host=dict(nproc=os.cpu_count(), load_at_start=load_snapshot(), python=sys.version.split()[0]),
    )
    R.setdefault("parts", []).append(part)
    if not (a.full and R.get("code")):  # a full run names the commit of its first part (same_run checked the rest)
        R["code"] = code
    R.update(
        label=a.label,
        cpu=cpu,
        settings={k: v for k, v in vars(a).items() if k not in ("out", "phases", "datasets", "report")},
    )

    def save():
        write_json(R, json_path)

    say(
        f"run '{a.label}': toolkits {a.toolkits}, datasets {a.datasets}, phases {a.phases}, reps {a.reps}, "
        f"budget {a.budget_minutes} min -> {run_dir}, {json_path}"
    )
    if load_snapshot()["load1"] > 0.5:
        say(f"WARNING: load average {os.getloadavg()[0]:.2f}: other processes share the CPUs; figures will be noisy")

    # ---- prep (every part segments its data again; a full run's parts must get the same files)
    data = R.setdefault("datasets", {})
    for ds in a.datasets:
        stats = prepare(ds, a, out_root)
        same = lambda s: {k: v for k, v in s.items() if k not in ("dir", "prep_s")}  # noqa: E731
        if a.full and ds in data and same(data[ds]) != same(stats):
            sys.exit(
                f"the segmented {ds} data differ from the earlier parts' ({data[ds]} vs {stats}): "
                "the full run's parts must train and decode the same files"
            )
        data[ds] = stats
    if set(a.phases) == {"prep"}:  # segmenting measures nothing: the results stay as they were
        say(f"prep only: the segmented files are under {out_root / 'data'}; no results written")
        return
    save()

    # ---- machine: the matmul rate in each precision ours runs in
    def machine(tag):
        for dtype in sorted({OURS[t] for t in ours}):
            f = run_dir / f"machine_{tag}_{dtype}.json"
            r = run(
                [
                    sys.executable,
                    str(BENCH / "ours.py"),
                    "machine",
                    "--out",
                    str(f),
                    "--threads",
                    str(a.threads),
                    "--dtype",
                    dtype,
                    "--emb",
                    str(a.emb),
                    "--hid",
                    str(a.hid),
                    "--seconds",
                    "2" if a.quick else "4",
                ],
                f.with_suffix(".log"),
                env,
            )
            if r["rc"] == 0:
                R.setdefault("machine", []).append(
                    json.loads(f.read_text()) | dict(when=f"{tag} of part {len(R['parts'])}")
                )
                save()

    if "machine" in a.phases:
        machine("start")
        if ours:  # the FLOP formula behind our GFLOP/s, against torch's FLOP counter
            log = run_dir / "flopcheck.log"
            r = run([sys.executable, str(BENCH / "ours.py"), "flopcheck"], log, env)
            m = re.search(r"ratio ([\d.]+)", log.read_text())
            R["flopcheck_ratio"] = float(m.group(1)) if m else None
            if r["rc"] != 0:
                say(f"WARNING: {tail(log, 3)}")

    # ---- training throughput
    if "train" in a.phases:
        for ds in a.datasets:
            per = R.setdefault("train_throughput", {})[ds] = {tk: {"runs": []} for tk in trained}
            for rep in range(a.reps):
                for i, tk in enumerate(interleave(trained)):
                    out = run_dir / "train" / ds / f"{tk}-r{rep}-{i}"
                    r = do_train(tk, data[ds], out, a.tp_steps, a, env)
                    per[tk]["runs"].append(r)
                    say(
                        f"train {ds} {tk} rep {rep}: {fmt(r['tok_per_s'])} tgt tok/s, peak RSS "
                        f"{fmt(r['peak_rss_mb'])} MB"
                        + (f", {r['gflops_exec']:.1f} GFLOP/s" if tk in OURS else "")
                        + f", {r['wall_s']:.0f}s"
                    )
                    save()

    # ---- quality at equal budget
    if "quality" in a.phases:
        for ds in a.datasets:
            before = (R.get("quality", {}).get(ds, {}), R.get("quality_budget", {}).get(ds, {}))
            quality = R.setdefault("quality", {})[ds] = {}
            budget = R.setdefault("quality_budget", {})[ds] = {}
            for tk in a.toolkits:
                if tk in DECODE_VARIANTS:
                    continue  # after ours's model is trained, below
                if a.keep_models and tk in before[0] and Path(before[0][tk]["model"]).exists():
                    quality[tk], budget[tk] = before[0][tk], before[1].get(tk)
                    say(f"quality {ds} {tk}: keeping its model {quality[tk]['model']}")
                    continue
                if a.quality_steps:
                    steps = a.quality_steps
                else:
                    rate = median(
                        r.get("tok_per_s")
                        for r in R.get("train_throughput", {}).get(ds, {}).get(tk, {}).get("runs", [])
                    )
                    if not rate:
                        sys.exit(
                            f"no measured training rate for {tk} on {ds}: run the train phase or pass --quality-steps"
                        )
                    steps = round(a.budget_minutes * 60 * rate / (a.batch_size * data[ds]["mean_tgt_tokens"]))
                # whole log windows: Joey refuses a validation step (= the last step) that is not a multiple of its
                # logging step, and the peer scripts' throughput grep fails without a log line
                steps = max(2, round(steps / a.log_every)) * a.log_every
                out = run_dir / "quality" / ds / tk
                say(f"quality {ds} {tk}: training {steps} steps (~{a.budget_minutes} min at its measured rate)")
                r = do_train(tk, data[ds], out, steps, a, env)
                q = quality[tk] = dict(model=peer_model(tk, out), train=r)
                budget[tk] = dict(steps=steps, wall_s=r["wall_s"], train_loop_s=r.get("train_loop_s"))
                for mode, beam in MODES.items():
                    hyp = run_dir / "quality" / ds / f"{tk}.{mode}.hyp"
                    d = do_decode(tk, q["model"], data[ds], hyp, beam, a, env)
                    q[mode] = dict(bleu=d.get("bleu"), chrf=d.get("chrf"), hyp=str(hyp), decode=d)
                    say(
                        f"quality {ds} {tk} {mode}: BLEU {d.get('bleu', float('nan')):.2f} chrF "
                        f"{d.get('chrf', float('nan')):.2f}"
                    )
                save()
            variants = [tk for tk in a.toolkits if tk in DECODE_VARIANTS]
            if any(DECODE_VARIANTS[tk].shortlist for tk in variants):
                log = run_dir / "quality" / ds / "ours-shortlist.log"
                build_shortlist(quality["ours"]["model"], data[ds], log, env)
            for tk in variants:
                q = quality[tk] = dict(model=quality["ours"]["model"])
                for mode, beam in MODES.items():
                    hyp = run_dir / "quality" / ds / f"{tk}.{mode}.hyp"
                    d = do_decode(tk, q["model"], data[ds], hyp, beam, a, env)
                    q[mode] = dict(bleu=d.get("bleu"), chrf=d.get("chrf"), hyp=str(hyp), decode=d)
                    say(f"quality {ds} {tk} {mode}: BLEU {d.get('bleu', float('nan')):.2f}")
                save()

    def models(ds: str) -> dict:
        """The quality phase's models of ds, which the decode and flat phases time (they are not in git)."""
        found = {tk: v["model"] for tk, v in R.get("quality", {}).get(ds, {}).items() if Path(v["model"]).exists()}
        if set(a.toolkits) - set(found):
            sys.exit(
                f"no quality-phase model of {sorted(set(a.toolkits) - set(found))} for {ds} in this checkout: "
                "run the quality phase of that dataset in the same part (or keep its bench/out/)"
            )
        return found

    # ---- decoding speed
    if "decode" in a.phases:
        for ds in a.datasets:
            model = models(ds)
            per = R.setdefault("decode", {})[ds] = {tk: {m: {"runs": []} for m in MODES} for tk in a.toolkits}
            for rep in range(a.reps):
                for mode, beam in MODES.items():
                    for i, tk in enumerate(interleave(a.toolkits)):
                        hyp = run_dir / "decode" / ds / f"{tk}.{mode}.r{rep}-{i}.hyp"
                        r = do_decode(tk, model[tk], data[ds], hyp, beam, a, env)
                        per[tk][mode]["runs"].append(r)
                        say(
                            f"decode {ds} {tk} {mode} rep {rep}: loop {fmt(r['sents_per_s_loop'])} sent/s, "
                            f"whole command {fmt(r['sents_per_s_wall'])} sent/s, BLEU {r.get('bleu', float('nan')):.2f}"
                        )
                        save()

    # ---- per-token decode cost vs output length (our variants)
    for ds in a.datasets if "flat" in a.phases and ours else []:
        model = models(ds)
        for tk in ours:
            f = run_dir / f"flat_{ds}_{tk}.json"
            r = run(
                [
                    sys.executable,
                    str(BENCH / "ours.py"),
                    "flat",
                    "--model",
                    model[tk],
                    "--src",
                    str(Path(data[ds]["dir"]) / "test.src"),
                    "--out",
                    str(f),
                    "--tbatch",
                    str(a.tbatch),
                    "--lengths",
                    *map(str, a.flat_lengths),
                    "--reps",
                    "2" if a.quick else "3",
                    "--threads",
                    str(a.threads),
                    "--dtype",
                    OURS[tk],
                ],
                f.with_suffix(".log"),
                env,
            )
            if r["rc"] == 0:
                R.setdefault("flat", {}).setdefault(ds, {})[tk] = json.loads(f.read_text())
            else:
                say(f"flat failed: {tail(r['log'])}")
            save()

    if "machine" in a.phases:
        machine("end")

    part.update(
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        elapsed_min=(time.time() - T0) / 60,
        load_at_end=load_snapshot(),
    )
    report(R, a, json_path, run_dir)


def write_json(R: dict, json_path: Path) -> None:
    json_path.write_text(json.dumps(R, indent=1, default=str))


def report(R: dict, a, json_path: Path, run_dir: Path) -> None:
    """Summarise the runs in R, save them to json_path, print the table and write it with the run's settings and
    parts as RESULTS.md."""
    summarise(R)
    table = render_table(R, a.toolkits)
    write_json(R, json_path)
    print("\n" + table + "\n")
    md_path = (
        Path(a.results_md) if a.results_md else (json_path.with_suffix(".md") if a.full else run_dir / "RESULTS.md")
    )
    todo = missing_parts(R) if a.full else []
    kind = (
        ("full run" + (f", in parts; not measured yet: {', '.join(todo)}" if todo else ""))
        if a.full
        else f"NOT a full run ({a.label}): settings differ from the benchmark's"
    )
    md = [
        f"# RNN seq2seq vs OpenNMT-py / JoeyNMT / fairseq on {R['cpu']['model']} ({R['cpu']['cpus']} CPUs): {kind}",
        "",
        f"Package code: {R['code']['commit']} ({', '.join(FULL_RUN_CODE)}: the same git objects in every part). "
        f"Parts ({R['cpu']['cpus']} CPUs: {R['cpu']['model']}, "
        f"{', '.join(R['cpu']['matmul_flags']) or 'none of ' + ', '.join(MATMUL_FLAGS)}; {a.threads} threads per run; "
        "load average at start and end):",
        "",
    ]
    md += [
        f"- {p['started']} to {p.get('finished', '(interrupted)')} ({p.get('elapsed_min', 0):.0f} min), "
        f"load {p['host']['load_at_start']['load1']} / {p.get('load_at_end', {}).get('load1', '-')}: "
        f"{' '.join(p['phases'])} on {' '.join(p['datasets'])}\n\n      {p['command']}\n"
        for p in R["parts"]
    ]
    md += [
        f"Settings: `ours` in float32 like the peers, `ours-bf16` with bfloat16 matrix products (`--bf16 true` "
        f"in training, `--dtype bfloat16` in translation; the peers have no bfloat16 on a CPU); emb {a.emb}, hid "
        f"{a.hid}, "
        f"{a.layers} layer(s), bi-LSTM encoder (hid/2 per direction), LSTM decoder, "
        f"Luong general attention, input feeding, dropout {a.dropout}, Adam {a.lr} constant, batch {a.batch_size} "
        "sentences, "
        f"Unigram {a.sp_vocab} pieces + word vocabularies over them; decode batch {a.tbatch}, max {a.max_out} new "
        "tokens, "
        f"no length penalty; {a.reps} repetition(s), medians; training budget {a.budget_minutes} min per toolkit"
        + (f" (equal steps: {a.quality_steps})" if a.quality_steps else "")
        + ".",
        "Ratios are ours / best peer on each figure (for RSS lower is better: <= 1.0 means we use no more); "
        "BLEU/chrF show ours minus the best peer. JSON with every run: " + os.path.relpath(json_path, REPO) + ". "
        "Earlier partial runs, one precision at a time: bench/PARTIAL_RUNS.md.",
        "",
        table,
        "",
    ]
    md_path.write_text("\n".join(md))
    say(f"wrote {json_path} and {md_path}")
    if a.full and not a.results_md:
        write_index()


def write_index() -> None:
    """RESULTS.md: the full run's table on every kind of CPU it was taken on, one section each."""
    sections = ["#" + path.read_text() for path in sorted(FULL_RUN_DIR.glob("*.md"))]  # each title one level down
    FULL_RUN_MD.write_text(
        "# RNN seq2seq vs OpenNMT-py / JoeyNMT / fairseq, by CPU\n\n"
        f"One full run per kind of CPU, each kept in {os.path.relpath(FULL_RUN_DIR, REPO)}/ (its JSON and this table); "
        "written by bench/versus_peers.py.\n\n" + "\n".join("\n" + section.lstrip("\n") for section in sections)
    )


if __name__ == "__main__":
    main()
