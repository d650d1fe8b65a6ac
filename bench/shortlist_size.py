"""How large a batch's shortlist is, and what that does to decoding. For each `--top-k`, the share of the target
vocabulary the Generator scores (the union of the shortlist over one decoding batch), the decode loop's
sentences/s and BLEU, against the same model decoding without a shortlist; each decode is a `bench/ours.py
translate` process, as in `versus_peers.py`'s decode phase, and runs alternate between settings.

    python bench/shortlist_size.py --model bench/out/full/quality/multi30k/ours/model \
        --data bench/out/data/multi30k-sp8000-nall-tall --top-k 50 20 10 --dtype int8

`--data` is a folder that `versus_peers.py --phases prep` wrote (train.src/.tgt: pieces; test.src: pieces;
test.ref: raw text). The model directory is copied once per setting (each copy gets its own shortlist.npz and,
with int8 or `--engine onnxruntime`, its own graphs). Prints a table and writes OUT/shortlist_size.json.
"""

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from hf_rnn_seq2seq.loading import ENGINES, ONNX_DIRS
from hf_rnn_seq2seq.modeling.generator import SHORTLIST_FILE, Shortlist
from hf_rnn_seq2seq.tokenization import load_tokenizers

sys.path.insert(0, str(Path(__file__).parent))
from ours import EOS, decode_batches, read_lines  # noqa: E402
from versus_peers import cpu_identity, score  # noqa: E402

OURS = Path(__file__).with_name("ours.py")
NO_SHORTLIST = "none"
MADE_ON_USE = (*ONNX_DIRS.values(), SHORTLIST_FILE)  # left out of each copy: each setting makes its own


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model directory bench/ours.py trained")
    parser.add_argument("--data", required=True, help="segmented train/test files (versus_peers.py --phases prep)")
    parser.add_argument("--top-k", type=int, nargs="+", default=[50, 20, 10], help="target tokens per source token")
    parser.add_argument("--frequent", type=int, default=100, help="most frequent target tokens, always in")
    parser.add_argument("--dtype", choices=["float32", "int8"], default="int8")
    parser.add_argument("--engine", choices=ENGINES, help="default: onnxruntime for int8, else pytorch")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--tbatch", type=int, default=32, help="sentences per decoding batch")
    parser.add_argument("--reps", type=int, default=3, help="timed decodes per setting and beam (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "shortlist_size")
    return parser.parse_args()


def ours(*args) -> None:
    subprocess.run([sys.executable, str(OURS), *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def vocabulary_shares(model: Path, test_src: list[str], tbatch: int) -> list[float]:
    """Per decoding batch of `test_src`: the share of the target vocabulary its shortlist lets the Generator score."""
    source_tokenizer, target_tokenizer = load_tokenizers(model)
    shortlist = Shortlist.load(model / SHORTLIST_FILE)
    shares = []
    for batch in decode_batches(test_src, tbatch):
        encoded = source_tokenizer([test_src[i] for i in batch], padding=True, return_tensors="pt")
        ids = shortlist.target_ids(encoded["input_ids"], encoded["attention_mask"], also=EOS)
        shares.append(len(ids) / len(target_tokenizer))
    return shares


def main() -> None:
    args = parse_args()
    data, out = Path(args.data), args.out
    out.mkdir(parents=True, exist_ok=True)
    test_src = read_lines(data / "test.src")
    settings = [NO_SHORTLIST, *args.top_k]
    rows = {}
    for setting in settings:
        model = out / f"model-{setting}"
        shutil.rmtree(model, ignore_errors=True)
        shutil.copytree(args.model, model, ignore=shutil.ignore_patterns(*MADE_ON_USE))
        row = rows[setting] = {"sent_per_s": {}, "bleu": {}}
        if setting != NO_SHORTLIST:
            ours("shortlist", "--model", model, "--train-src", data / "train.src", "--train-tgt", data / "train.tgt",
                 "--top-k", setting, "--frequent", args.frequent)  # fmt: skip
            shares = vocabulary_shares(model, test_src, args.tbatch)
            row["vocabulary_share"] = dict(mean=statistics.mean(shares), min=min(shares), max=max(shares))
    for beam in args.beams:
        speeds = {setting: [] for setting in settings}
        for _ in range(args.reps):
            for setting in settings:
                hyp = out / f"test.{setting}.beam{beam}.hyp"
                options = [] if setting == NO_SHORTLIST else ["--shortlist"]
                ours("translate", "--model", out / f"model-{setting}", "--src", data / "test.src", "--out", hyp,
                     "--beam", beam, "--tbatch", args.tbatch, "--threads", args.threads, "--dtype", args.dtype,
                     *(["--engine", args.engine] if args.engine else []), *options)  # fmt: skip
                speeds[setting].append(json.loads(Path(f"{hyp}.json").read_text())["sents_per_s_reported"])
        for setting in settings:
            rows[setting]["sent_per_s"][beam] = statistics.median(speeds[setting])
            rows[setting]["bleu"][beam] = score(out / f"test.{setting}.beam{beam}.hyp", data / "test.ref")["bleu"]

    result = dict(
        cpu=cpu_identity() | {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
        python=platform.python_version(),
        torch=torch.__version__,
        args={name: str(value) for name, value in vars(args).items()},
        rows=rows,
    )
    (out / "shortlist_size.json").write_text(json.dumps(result, indent=1))
    cpu = result["cpu"]
    engine = args.engine or "default engine"
    print(f"{cpu['model']}, {cpu['cpus']} CPUs, torch {cpu['torch_cpu_capability']}; {args.dtype} ({engine}), "
          f"{args.threads} threads, batches of {args.tbatch}; median of {args.reps}\n")  # fmt: skip
    print("| top-k | vocabulary scored (mean, min-max) | beam | sent/s | x no shortlist | BLEU | vs no shortlist |")
    print("|---|---|---|---|---|---|---|")
    base = rows[NO_SHORTLIST]
    for setting, row in rows.items():
        share = row.get("vocabulary_share")
        scored = "100%" if share is None else f"{share['mean']:.0%} ({share['min']:.0%}-{share['max']:.0%})"
        for beam in args.beams:
            speed, bleu = row["sent_per_s"][beam], row["bleu"][beam]
            print(f"| {setting} | {scored} | {beam} | {speed:.0f} | {speed / base['sent_per_s'][beam]:.2f}x "
                  f"| {bleu:.2f} | {bleu - base['bleu'][beam]:+.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
