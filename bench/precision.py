#!/usr/bin/env python
"""float32 against bfloat16 on the same model, in one process: a training step and generate().

    .venv/bin/python bench/precision.py                 # the benchmark's architecture, 2 threads
    .venv/bin/python bench/precision.py --vocab 16000 --batch 32 --out bench/out/precision.json

Training: the same weights and batches, one step = forward + backward + clip + Adam, the forward in float32 or
under `torch.autocast(bfloat16)` (what `--bf16 true` does in hf_rnn_seq2seq.training). Decoding: `generate()` on
the same sources with the weights in float32 or cast to bfloat16 (what `--dtype bfloat16` does), every output
`--new-tokens` long (no EOS) so both precisions do the same work. Random weights and token ids: this measures
speed only; `tests/test_optimised_paths.py` and `tests/test_training.py` check that bfloat16 keeps the outputs.

Prints a table (median milliseconds and the float32/bfloat16 speed-up) and writes JSON. On a CPU without
bfloat16 instructions (AVX512-BF16, AMX) expect a slow-down, not a speed-up; so for small models, whose matrix
products are too small for the casts to pay off (emb 32 / hid 64 / vocab 200 here: 0.8-0.95x).
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

import hf_rnn_seq2seq

FIRST_WORD = 4  # ids below are <pad> <s> </s> <unk>


def benchmark_model(a, package=hf_rnn_seq2seq) -> "hf_rnn_seq2seq.RNNSeq2SeqForConditionalGeneration":
    """The benchmark's architecture (bench/README.md): bi-LSTM encoder, LSTM decoder, general attention and
    input feeding; `package`: hf_rnn_seq2seq or another version of it (paired_steps.py)."""
    config = package.RNNSeq2SeqConfig(
        vocab_size=a.vocab, decoder_vocab_size=a.vocab, embedding_size=a.emb, hidden_size=a.hid, num_layers=1,
        cell_type="lstm", bidirectional=True, attention="general", input_feeding=True, bridge="copy", dropout=0.3,
    )  # fmt: skip
    return package.RNNSeq2SeqForConditionalGeneration(config)


def median_ms(run, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def training_step_ms(model, batch: dict, dtype: torch.dtype, reps: int) -> float:
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return median_ms(step, reps)


def generate_ms(model, sources: dict, dtype: torch.dtype, beams: int, new_tokens: int, reps: int) -> float:
    model = copy.deepcopy(model).to(dtype).eval()
    options = dict(num_beams=beams, do_sample=False, max_new_tokens=new_tokens, eos_token_id=None)

    def run():
        with torch.inference_mode():
            model.generate(**sources, **options)

    return median_ms(run, reps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emb", type=int, default=256)
    p.add_argument("--hid", type=int, default=512)
    p.add_argument("--vocab", type=int, default=8000, help="source and target vocabulary")
    p.add_argument("--batch", type=int, default=64, help="training batch (sentences)")
    p.add_argument("--length", type=int, default=16, help="source and target length in training (tokens)")
    p.add_argument("--tbatch", type=int, default=32, help="decoding batch (sentences)")
    p.add_argument("--new-tokens", type=int, default=30, help="tokens generated per sentence")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "out" / "precision.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = benchmark_model(a)
    ids = lambda rows: torch.randint(FIRST_WORD, a.vocab, (rows, a.length))  # noqa: E731
    full = lambda rows: torch.ones(rows, a.length, dtype=torch.long)  # noqa: E731
    batch = dict(input_ids=ids(a.batch), attention_mask=full(a.batch), labels=ids(a.batch))
    sources = dict(input_ids=ids(a.tbatch), attention_mask=full(a.tbatch))
    decoded = f"{a.tbatch} sentences x {a.new_tokens} tokens"

    figures = {
        f"training step (batch {a.batch} x {a.length} tokens)": lambda dtype: training_step_ms(
            model, batch, dtype, a.reps),
        f"greedy, {decoded}": lambda dtype: generate_ms(model, sources, dtype, 1, a.new_tokens, a.reps),
        f"beam 5, {decoded}": lambda dtype: generate_ms(model, sources, dtype, 5, a.new_tokens, a.reps),
    }  # fmt: skip
    rows = []
    for figure, measure in figures.items():
        float32, bfloat16 = measure(torch.float32), measure(torch.bfloat16)
        rows.append(dict(figure=figure, float32_ms=float32, bfloat16_ms=bfloat16, speedup=float32 / bfloat16))

    print(
        f"emb {a.emb}, hid {a.hid}, vocab {a.vocab}, {a.threads} threads, median of {a.reps}, torch {torch.__version__}"
    )
    print("| figure | float32 ms | bfloat16 ms | speed-up |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['figure']} | {r['float32_ms']:.0f} | {r['bfloat16_ms']:.0f} | {r['speedup']:.2f}x |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(settings=vars(a), rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
