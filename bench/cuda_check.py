#!/usr/bin/env python
"""Does the model train and translate on a GPU as it does on the CPU? One prepared script, about 5 minutes on a
CUDA machine with the benchmark's model; prints a PASS/FAIL table and writes JSON.

    python bench/cuda_check.py                    # CUDA, the benchmark's architecture
    python bench/cuda_check.py --device cpu --emb 16 --hid 32 --vocab 20 --batch 8 --length 4 \
        --learn-steps 60 --lr 0.01              # a smoke test of the script on the CPU (half a minute)

The model is the benchmark's (bench/precision.py: bi-LSTM encoder, LSTM decoder, general attention, input
feeding) trained first on the device for `--learn-steps` steps to reverse random token sequences, so that its
searches have clear winners (an untrained model's near-ties would make device and CPU differ by rounding alone).
Then, with TF32 off (`torch.backends.*.allow_tf32`) so that the device computes in float32 as the CPU does:

- greedy / beam: generate() on the device and on the CPU, the same weights and sources: identical tokens;
- training step: loss and every parameter's gradient of one step (dropout off) on the device against the CPU:
  relative differences within GRADIENT_TOLERANCE;
- float32 / bfloat16 / float16 training: `--learn-steps` steps from the same fresh weights under autocast
  (float16 with a GradScaler), every loss finite and the last LOSS_WINDOW steps' mean loss below
  LEARNED_FRACTION of the first LOSS_WINDOW's;
- speed (figures, no verdict): target tokens/s of a training step (float32 and bfloat16 autocast) and sentences/s
  of greedy and beam-5 generate(), each after warm-up, synchronised. On a CPU without bfloat16 units the
  bfloat16 rows are skipped.

Exit status 1 when any check fails. With `--device cpu` the device *is* the CPU: a smoke test of the script.
"""

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling.encoder import cpu_runs_bfloat16

FIRST_WORD = 4  # ids below are <pad> <s> </s> <unk>
EOS = 2
# Sources draw from this many words (the model's vocabulary stays --vocab, so the Generator is full size): few
# enough that the benchmark's model learns to reverse them within --learn-steps.
TASK_WORDS = 50
GRADIENT_TOLERANCE = 1e-3  # |g_device - g_cpu| / |g_cpu| per parameter; the loss's relative difference too
LOSS_WINDOW = 10  # steps averaged at the start and the end of a learning run
LEARNED_FRACTION = 0.9  # the end's mean loss must be below this fraction of the start's
TIMED_STEPS = 10  # per speed figure, after WARMUP_STEPS
WARMUP_STEPS = 3


def reverse_batch(a, generator: torch.Generator) -> dict:
    """Random sources of 1..--length of TASK_WORDS words and their reversals (+ </s>): a task the model learns in a
    few hundred steps. Padded with 0 (sources) and -100 (labels)."""
    lengths = torch.randint(1, a.length + 1, (a.batch,), generator=generator)
    source = torch.zeros(a.batch, a.length + 1, dtype=torch.long)
    labels = torch.full((a.batch, a.length + 1), -100, dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        words = torch.randint(FIRST_WORD, min(a.vocab, FIRST_WORD + TASK_WORDS), (n,), generator=generator)
        source[row, :n], source[row, n] = words, EOS
        labels[row, :n], labels[row, n] = words.flip(0), EOS
    return dict(input_ids=source, attention_mask=(source != 0).long(), labels=labels)


def to(batch: dict, device: str) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


def new_model(a, dropout: float = 0.3) -> RNNSeq2SeqForConditionalGeneration:
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(
        vocab_size=a.vocab, decoder_vocab_size=a.vocab, embedding_size=a.emb, hidden_size=a.hid, num_layers=1,
        cell_type="lstm", bidirectional=True, attention="general", input_feeding=True, bridge="copy", dropout=dropout,
    )  # fmt: skip
    return RNNSeq2SeqForConditionalGeneration(config)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def learn(a, dtype: torch.dtype) -> tuple[RNNSeq2SeqForConditionalGeneration, list[float]]:
    """The model after `--learn-steps` steps from fresh weights on the device, the forward under autocast to
    `dtype`, and the loss of each step."""
    model = new_model(a).to(a.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    device_type = torch.device(a.device).type
    scaler = torch.amp.GradScaler(device_type, enabled=dtype == torch.float16)
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(a.learn_steps):
        batch = to(reverse_batch(a, generator), a.device)
        with torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return model, losses


def learned(losses: list[float]) -> tuple[bool, str]:
    start, end = (sum(part) / len(part) for part in (losses[:LOSS_WINDOW], losses[-LOSS_WINDOW:]))
    ok = all(math.isfinite(x) for x in losses) and end < LEARNED_FRACTION * start
    return ok, f"loss {start:.3f} -> {end:.3f} over {len(losses)} steps"


def compare_generate(a, model, sources: dict, beams: int) -> tuple[bool, str]:
    options = dict(num_beams=beams, do_sample=False, max_new_tokens=a.length + 2)
    with torch.inference_mode():
        on_device = model.generate(**to(sources, a.device), **options).cpu()
        on_cpu = copy.deepcopy(model).cpu().generate(**sources, **options)
    same = sum(torch.equal(x, y) for x, y in zip(on_device, on_cpu)) if on_device.shape == on_cpu.shape else 0
    return same == len(on_cpu), f"{same}/{len(on_cpu)} sentences identical"


def compare_step(a, model, batch: dict) -> tuple[bool, str]:
    """One training step's loss and gradients (dropout off, the trained weights) on the device against the CPU."""
    results = {}
    for device in (a.device, "cpu"):
        twin = new_model(a, dropout=0.0)
        twin.load_state_dict(model.state_dict())
        twin.to(device).train()
        loss = twin(**to(batch, device)).loss
        loss.backward()
        results[device] = (loss.item(), {name: p.grad.cpu() for name, p in twin.named_parameters()})
    (loss_device, grads_device), (loss_cpu, grads_cpu) = results[a.device], results["cpu"]
    loss_error = abs(loss_device - loss_cpu) / abs(loss_cpu)
    worst, worst_name = 0.0, ""
    for name, grad in grads_cpu.items():
        error = ((grads_device[name] - grad).norm() / grad.norm().clamp_min(1e-12)).item()
        if error > worst:
            worst, worst_name = error, name
    ok = loss_error <= GRADIENT_TOLERANCE and worst <= GRADIENT_TOLERANCE
    return ok, f"loss rel. diff {loss_error:.1e}, worst gradient rel. diff {worst:.1e} ({worst_name or '-'})"


def timed(a, run) -> float:
    """Seconds a call of `run`: the mean of TIMED_STEPS calls after WARMUP_STEPS, the device synchronised."""
    for _ in range(WARMUP_STEPS):
        run()
    synchronize(a.device)
    start = time.perf_counter()
    for _ in range(TIMED_STEPS):
        run()
    synchronize(a.device)
    return (time.perf_counter() - start) / TIMED_STEPS


def training_speed(a, dtype: torch.dtype) -> str:
    model = new_model(a).to(a.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    device_type = torch.device(a.device).type
    batch = to(reverse_batch(a, torch.Generator().manual_seed(2)), a.device)
    tokens = int((batch["labels"] != -100).sum())

    def step():
        with torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = timed(a, step)
    return f"{tokens / seconds:,.0f} tgt tok/s ({1e3 * seconds:.1f} ms a step of {a.batch} x <= {a.length + 1})"


def decoding_speed(a, model, sources: dict, beams: int) -> str:
    sources = to(sources, a.device)
    options = dict(num_beams=beams, do_sample=False, max_new_tokens=a.length + 2)

    def run():
        with torch.inference_mode():
            model.generate(**sources, **options)

    seconds = timed(a, run)
    return f"{len(sources['input_ids']) / seconds:,.0f} sent/s ({1e3 * seconds:.1f} ms a batch of {a.batch})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (a smoke test of the script)")
    p.add_argument("--emb", type=int, default=256)
    p.add_argument("--hid", type=int, default=512)
    p.add_argument("--vocab", type=int, default=8000, help="source and target vocabulary")
    p.add_argument("--batch", type=int, default=64, help="sentences per batch (training, decoding, comparisons)")
    p.add_argument("--length", type=int, default=16, help="longest source (words; the target reverses it)")
    p.add_argument("--learn-steps", type=int, default=400, help="training steps of each learning run")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", default=str(Path(__file__).parent / "out" / "cuda_check.json"))
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("cuda_check.py: no CUDA device here; run it on a GPU machine, or with --device cpu")
    if a.learn_steps < 2 * LOSS_WINDOW:
        raise SystemExit(f"cuda_check.py: --learn-steps must be at least {2 * LOSS_WINDOW}")
    # float32 on the device as on the CPU: TF32 products would differ from the CPU's by ~1e-3 relative
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else "CPU"
    print(f"device {a.device} ({name}), torch {torch.__version__}, emb {a.emb}, hid {a.hid}, vocab {a.vocab}, "
          f"batch {a.batch}, length <= {a.length}", flush=True)  # fmt: skip

    rows: list[dict] = []

    def check(what: str, measure) -> None:
        start = time.perf_counter()
        try:
            ok, detail = measure()
            verdict = "PASS" if ok is True else "FAIL" if ok is False else ok
        except Exception as err:  # a check that crashes is a failed check; the others still run
            verdict, detail = "FAIL", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        rows.append(dict(check=what, result=verdict, detail=detail, seconds=round(time.perf_counter() - start, 1)))
        print(f"  {verdict:4} {what}: {detail}", flush=True)

    bfloat16 = a.device != "cpu" or cpu_runs_bfloat16()
    skip = ("SKIP", "this CPU has no bfloat16 units (AVX512-BF16 or AMX)")
    trained: dict[torch.dtype, RNNSeq2SeqForConditionalGeneration] = {}

    def learns(dtype: torch.dtype) -> tuple[bool, str]:
        trained[dtype], losses = learn(a, dtype)
        return learned(losses)

    check("float32 training learns", lambda: learns(torch.float32))
    # the comparisons use the float32 run's model (untrained if that run crashed: they still run)
    model = trained.get(torch.float32, new_model(a).to(a.device)).eval()
    sources = reverse_batch(a, torch.Generator().manual_seed(3))
    sources.pop("labels")
    check("greedy: device = CPU", lambda: compare_generate(a, model, sources, 1))
    check("beam 5: device = CPU", lambda: compare_generate(a, model, sources, 5))
    batch = reverse_batch(a, torch.Generator().manual_seed(4))
    check("training step: loss and gradients ~ CPU", lambda: compare_step(a, model, batch))
    check("bfloat16 autocast training learns", lambda: learns(torch.bfloat16) if bfloat16 else skip)
    check("float16 autocast training learns", lambda: learns(torch.float16))
    check("speed: float32 training step", lambda: ("INFO", training_speed(a, torch.float32)))
    check(
        "speed: bfloat16 autocast training step",
        lambda: ("INFO", training_speed(a, torch.bfloat16)) if bfloat16 else skip,
    )
    check("speed: greedy generate()", lambda: ("INFO", decoding_speed(a, model, sources, 1)))
    check("speed: beam-5 generate()", lambda: ("INFO", decoding_speed(a, model, sources, 5)))

    print("\n| check | result | detail |\n|---|---|---|")
    for r in rows:
        print(f"| {r['check']} | {r['result']} | {r['detail']} |")
    failed = [r["check"] for r in rows if r["result"] == "FAIL"]
    print(f"\n{'FAIL: ' + ', '.join(failed) if failed else 'PASS: every check'}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(device=a.device, name=name, settings=vars(a), rows=rows), indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
