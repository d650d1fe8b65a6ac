"""Translating a long file streams: peak memory stays flat and throughput holds from the first lines to the last.

    python bench/translate_stream.py                          # 100,000 lines, a random tiny model
    python bench/translate_stream.py --lines 20000 --model-dir outputs/demo-koen

Writes an input file of `--lines` lines (the Korean side of the embedded everyday corpus, cycled), then
translates it with `translate_lines` from and to files, as `hf-rnn-seq2seq translate` does. Every `--every`
lines written it records the process's peak RSS and the lines/s since the previous record. The claim holds when
the peak RSS at the end is within 10% of the peak after the first record, and the last slice's lines/s is
within 10% of the first slice's (other processes on the machine make the latter noisy).

A random model never emits EOS, so every line decodes exactly `--max-new-tokens` steps: the same work per line.
Prints a table; writes JSON to bench/out/translate_stream.json.
"""

import argparse
import itertools
import json
import logging
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.demo import CORPUS
from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.tokenization import save_tokenizers, train_tokenizer
from hf_rnn_seq2seq.translate import translate_lines

OUT_DIR = Path(__file__).parent / "out"
TOLERANCE = 0.10  # the bar for "flat"
# ru_maxrss is in kilobytes on Linux, in bytes on macOS.
RSS_UNIT = 1 if sys.platform == "darwin" else 1024
TINY_MODEL = dict(embedding_size=32, hidden_size=64, cell_type="lstm", attention="general")
TINY_VOCAB = 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines to translate (default: 100000)")
    parser.add_argument("--every", type=int, default=10_000, help="record every N lines (default: 10000)")
    parser.add_argument("--model-dir", help="translate with this saved model instead of a random tiny one")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    parser.add_argument("--max-new-tokens", type=int, default=12, help="decoding steps per line (default: 12)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    return parser.parse_args()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * RSS_UNIT / 1e6


def save_random_model(directory: Path) -> Path:
    torch.manual_seed(0)
    korean = (CORPUS / "train.ko").read_text(encoding="utf-8").splitlines()
    english = (CORPUS / "train.en").read_text(encoding="utf-8").splitlines()
    tokenizer = train_tokenizer(korean, english, vocab_size=TINY_VOCAB)
    config = RNNSeq2SeqConfig(vocab_size=len(tokenizer), **TINY_MODEL)
    RNNSeq2SeqForConditionalGeneration(config).save_pretrained(directory)
    save_tokenizers(tokenizer, tokenizer, directory)
    return directory


def write_input(path: Path, n_lines: int) -> Path:
    sentences = (CORPUS / "train.ko").read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as file:
        for sentence in itertools.islice(itertools.cycle(sentences), n_lines):
            file.write(sentence + "\n")
    return path


def recording(lines: Iterator[str], every: int, records: list[dict]) -> Iterator[str]:
    """Pass `lines` through, recording peak RSS and throughput every `every` lines."""
    start = last = time.perf_counter()
    for n, line in enumerate(lines, 1):
        if n % every == 0:
            now = time.perf_counter()
            records.append(
                {"lines": n, "peak_rss_mb": round(peak_rss_mb(), 1), "lines_per_s": round(every / (now - last), 1)}
            )
            last = now
        yield line
    records.append({"total_seconds": round(time.perf_counter() - start, 1)})


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    # The random model's translations are all cut by the length limit: not worth a warning here.
    logging.getLogger("hf_rnn_seq2seq").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="translate_stream_") as tmp:
        tmp = Path(tmp)
        model_dir = args.model_dir or save_random_model(tmp / "model")
        source = write_input(tmp / "input.ko", args.lines)
        translator = load_translator(model_dir)
        records: list[dict] = []
        rss_before = peak_rss_mb()
        with source.open(encoding="utf-8") as lines, (tmp / "output.en").open("w", encoding="utf-8") as output:
            translations = translate_lines(
                translator, lines, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens
            )
            for translation in recording(translations, args.every, records):
                output.write(translation + "\n")

    slices, total = records[:-1], records[-1]["total_seconds"]
    first, last = slices[0], slices[-1]
    rss_growth = last["peak_rss_mb"] / first["peak_rss_mb"] - 1
    speed_change = last["lines_per_s"] / first["lines_per_s"] - 1
    print(f"{'lines done':>12} {'peak RSS MB':>12} {'lines/s':>10}")
    for record in slices:
        print(f"{record['lines']:>12} {record['peak_rss_mb']:>12} {record['lines_per_s']:>10}")
    print(f"\npeak RSS before translating: {rss_before:.1f} MB; whole run: {total} s")
    print(f"peak RSS, {last['lines']} vs {first['lines']} lines: {rss_growth:+.1%} (flat if within {TOLERANCE:.0%})")
    print(f"lines/s, last vs first slice: {speed_change:+.1%} (flat if within {TOLERANCE:.0%})")

    report = {
        "command": " ".join(sys.argv),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "model": args.model_dir or f"random {TINY_MODEL}, vocabulary {TINY_VOCAB}",
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "peak_rss_before_mb": round(rss_before, 1),
        "records": slices,
        "total_seconds": total,
        "peak_rss_growth": round(rss_growth, 4),
        "throughput_change": round(speed_change, 4),
        "flat": abs(rss_growth) <= TOLERANCE and speed_change >= -TOLERANCE,
    }
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / "translate_stream.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
