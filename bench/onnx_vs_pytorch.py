"""Decoding speed: the ONNX runner (onnxruntime) against PyTorch `generate()`, on the same model and inputs.

    python bench/onnx_vs_pytorch.py                      # a random "small" model (the demo's size)
    python bench/onnx_vs_pytorch.py --size tiny
    python bench/onnx_vs_pytorch.py --model-dir outputs/koen --threads 2

Runs alternate between the two (so that load from other processes hits both alike) and the median is reported.
A random model rarely emits EOS, so every run decodes the full `--max-new-tokens` steps: a fixed amount of work.
Both outputs are compared token for token. Prints a table; writes JSON to bench/out/onnx_vs_pytorch_<size>.json.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import transformers
from transformers import AutoModelForSeq2SeqLM

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.onnx_export import export_onnx
from hf_rnn_seq2seq.onnx_runtime import OnnxTranslator

OUT_DIR = Path(__file__).parent / "out"
SIZES = {
    "tiny": dict(vocab_size=1000, embedding_size=32, hidden_size=64),
    # What training/configs and the RNN toolkits use for a small translation model.
    "small": dict(vocab_size=8000, embedding_size=256, hidden_size=512),
}
FIRST_WORD = 4  # ids below are <pad>, <s>, </s>, <unk>


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="small", help="random model to build (default: small)")
    parser.add_argument("--model-dir", help="benchmark this saved model instead of a random one")
    parser.add_argument("--sentences", type=int, default=32, help="sentences per run (default: 32)")
    parser.add_argument("--source-length", type=int, default=20, help="tokens per source sentence (default: 20)")
    parser.add_argument("--max-new-tokens", type=int, default=30, help="decoding steps (default: 30)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5], help="beam sizes to run (default: 1 5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per engine and beam size (default: 5)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both engines (default: 1)")
    return parser.parse_args()


def load_model(args: argparse.Namespace) -> RNNSeq2SeqForConditionalGeneration:
    if args.model_dir is not None:
        return AutoModelForSeq2SeqLM.from_pretrained(args.model_dir).eval()
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(cell_type="lstm", attention="general", input_feeding=True, **SIZES[args.size])
    return RNNSeq2SeqForConditionalGeneration(config).eval()


def timed(run) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    output = run()
    return time.perf_counter() - start, output


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args)
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(
        FIRST_WORD, model.config.vocab_size, (args.sentences, args.source_length), generator=generator
    )
    source[:, -1] = model.config.eos_token_id
    mask = torch.ones_like(source)

    with tempfile.TemporaryDirectory(prefix="onnx_bench_") as onnx_dir:
        export_onnx(model, onnx_dir)
        runner = OnnxTranslator(onnx_dir, num_threads=args.threads)
        results = []
        for num_beams in args.beams:
            options = dict(num_beams=num_beams, max_new_tokens=args.max_new_tokens)

            def pytorch(options=options):
                with torch.inference_mode():
                    return model.generate(source, attention_mask=mask, **options).numpy()

            def onnx(options=options):
                return runner.generate(source.numpy(), mask.numpy(), **options)

            pytorch(), onnx()  # warm-up: first-call allocations and graph optimisation
            times, outputs = {"pytorch": [], "onnx": []}, {}
            for repeat in range(args.repeats):
                engines = [("pytorch", pytorch), ("onnx", onnx)]
                for name, run in engines if repeat % 2 == 0 else engines[::-1]:
                    seconds, outputs[name] = timed(run)
                    times[name].append(seconds)
            same = outputs["pytorch"].shape == outputs["onnx"].shape and (outputs["pytorch"] == outputs["onnx"]).all()
            medians = {name: statistics.median(values) for name, values in times.items()}
            results.append(
                {
                    "num_beams": num_beams,
                    "pytorch_seconds": medians["pytorch"],
                    "onnx_seconds": medians["onnx"],
                    "speedup": medians["pytorch"] / medians["onnx"],
                    "same_output": bool(same),
                    "pytorch_runs": times["pytorch"],
                    "onnx_runs": times["onnx"],
                }
            )

    print(
        f"model: {args.model_dir or args.size} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters), "
        f"{args.sentences} sentences x {args.source_length} tokens, {args.max_new_tokens} new tokens, "
        f"{args.threads} thread(s), median of {args.repeats}"
    )
    print(f"{'beams':>5}  {'PyTorch s':>9}  {'ONNX s':>9}  {'speed-up':>8}  same output")
    for r in results:
        print(
            f"{r['num_beams']:>5}  {r['pytorch_seconds']:>9.3f}  {r['onnx_seconds']:>9.3f}  "
            f"{r['speedup']:>7.2f}x  {r['same_output']}"
        )

    OUT_DIR.mkdir(exist_ok=True)
    name = "model_dir" if args.model_dir else args.size
    report = {
        "command": " ".join(sys.argv),
        "model": args.model_dir or args.size,
        "config": model.config.to_diff_dict(),
        "settings": vars(args),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__,
        },
        "results": results,
    }
    path = OUT_DIR / f"onnx_vs_pytorch_{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
