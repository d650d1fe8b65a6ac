"""int8 decoding: onnxruntime's dynamic quantization of the exported graphs, in several settings, against the
float32 graphs on the same model and inputs: seconds per run and how many translations are unchanged.

    python bench/int8.py                          # a random "small" model (the demo's size)
    python bench/int8.py --model-dir outputs/koen --threads 2

The settings are onnxruntime.quantization.quantize_dynamic's: int8 or uint8 weights (`weight_type`), one scale per
matrix or per output column (`per_channel`), 7-bit weights (`reduce_range`). Runs alternate between settings, and
the median is reported. A random model's agreement says little about a trained one's: give `--model-dir` for that.
Writes JSON to bench/out/int8_<size>.json. What the figures decided is in bench/DESIGN.md.
"""

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoModelForSeq2SeqLM

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.onnx_export import export_onnx
from hf_rnn_seq2seq.onnx_runtime import DECODER_STEP_FILE, ENCODER_FILE, GENERATOR_FILE, OnnxTranslator

OUT_DIR = Path(__file__).parent / "out"
SIZES = {
    "tiny": dict(vocab_size=1000, embedding_size=32, hidden_size=64),
    "small": dict(vocab_size=8000, embedding_size=256, hidden_size=512),
}
SETTINGS = {
    "int8": dict(weight_type=QuantType.QInt8),
    "int8-per-channel": dict(weight_type=QuantType.QInt8, per_channel=True),
    "int8-reduce-range": dict(weight_type=QuantType.QInt8, reduce_range=True),
    "uint8": dict(weight_type=QuantType.QUInt8),
    "uint8-per-channel": dict(weight_type=QuantType.QUInt8, per_channel=True),
}
FIRST_WORD = 4  # ids below are <pad>, <s>, </s>, <unk>


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="small", help="random model to build (default: small)")
    parser.add_argument("--model-dir", help="benchmark this saved model instead of a random one")
    parser.add_argument("--sources", help="with --model-dir: a file of source sentences (default: random ids)")
    parser.add_argument("--sentences", type=int, default=32, help="sentences per run (default: 32)")
    parser.add_argument("--source-length", type=int, default=20, help="tokens per random source (default: 20)")
    parser.add_argument("--max-new-tokens", type=int, default=30, help="decoding steps (default: 30)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5], help="beam sizes to run (default: 1 5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting and beam size (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default: 1)")
    return parser.parse_args()


def load_inputs(args: argparse.Namespace) -> tuple[RNNSeq2SeqForConditionalGeneration, np.ndarray, np.ndarray]:
    """The model, and a batch of sources with their attention mask."""
    if args.model_dir is not None:
        model = AutoModelForSeq2SeqLM.from_pretrained(args.model_dir).eval()
    else:
        torch.manual_seed(0)
        config = RNNSeq2SeqConfig(cell_type="lstm", attention="general", input_feeding=True, **SIZES[args.size])
        model = RNNSeq2SeqForConditionalGeneration(config).eval()
    if args.sources is not None:
        from hf_rnn_seq2seq.tokenization import load_tokenizers

        lines = Path(args.sources).read_text(encoding="utf-8").splitlines()[: args.sentences]
        encoded = load_tokenizers(args.model_dir)[0](lines, padding=True, return_tensors="np")
        return model, encoded["input_ids"], encoded["attention_mask"]
    generator = np.random.default_rng(0)
    source = generator.integers(FIRST_WORD, model.config.vocab_size, (args.sentences, args.source_length))
    source[:, -1] = model.config.eos_token_id
    return model, source, np.ones_like(source)


def until_eos(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos) + 1] if eos in row else row


def decoder_bytes(directory: Path) -> int:
    """What runs once per token: the decoder step's graph and the Generator's."""
    return sum((directory / name).stat().st_size for name in (DECODER_STEP_FILE, GENERATOR_FILE))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model, source, mask = load_inputs(args)
    eos = model.config.eos_token_id
    with tempfile.TemporaryDirectory(prefix="int8_bench_") as work:
        float_dir = Path(work) / "float32"
        export_onnx(model, float_dir)
        runners = {"float32": OnnxTranslator(float_dir, num_threads=args.threads)}
        sizes = {"float32": decoder_bytes(float_dir)}
        for name, options in SETTINGS.items():
            directory = Path(work) / name
            shutil.copytree(float_dir, directory)
            for file_name in (ENCODER_FILE, DECODER_STEP_FILE, GENERATOR_FILE):
                quantize_dynamic(float_dir / file_name, directory / file_name, **options)
            runners[name] = OnnxTranslator(directory, num_threads=args.threads)
            sizes[name] = decoder_bytes(directory)
        results = []
        for num_beams in args.beams:
            options = dict(num_beams=num_beams, max_new_tokens=args.max_new_tokens)
            outputs, times = {}, {name: [] for name in runners}
            for runner in runners.values():
                runner.generate(source, mask, **options)  # warm-up: first-call allocations
            for repeat in range(args.repeats):
                order = list(runners.items())
                for name, runner in order if repeat % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    outputs[name] = runner.generate(source, mask, **options).tolist()
                    times[name].append(time.perf_counter() - start)
            reference = [until_eos(row, eos) for row in outputs["float32"]]
            for name in runners:
                rows = [until_eos(row, eos) for row in outputs[name]]
                results.append(
                    {
                        "setting": name,
                        "num_beams": num_beams,
                        "seconds": statistics.median(times[name]),
                        "speedup": statistics.median(times["float32"]) / statistics.median(times[name]),
                        "same_translations": sum(a == b for a, b in zip(rows, reference)) / len(rows),
                        "decoder_bytes": sizes[name],
                        "runs": times[name],
                    }
                )

    print(
        f"model: {args.model_dir or args.size} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters), "
        f"{len(source)} sentences, {args.max_new_tokens} new tokens at most, {args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    print(f"{'setting':<18} {'beams':>5}  {'seconds':>8}  {'speed-up':>8}  {'unchanged':>9}  {'decoder MB':>10}")
    for r in results:
        print(
            f"{r['setting']:<18} {r['num_beams']:>5}  {r['seconds']:>8.3f}  {r['speedup']:>7.2f}x  "
            f"{r['same_translations']:>9.0%}  {r['decoder_bytes'] / 1e6:>10.1f}"
        )
    OUT_DIR.mkdir(exist_ok=True)
    report = {
        "command": " ".join(sys.argv),
        "settings": vars(args),
        "versions": {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__},
        "results": results,
    }
    name = "model_dir" if args.model_dir else args.size
    (OUT_DIR / f"int8_{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
