"""Where beam-search (or, with --beam 1, greedy) decoding time goes, for issue 4's decoding figures.

Splits the decode loop of `generate()` into our model's share (the Encoder once per batch, then one
Decoder + Generator step per output position) and the rest (beam bookkeeping: log-softmax, top-k,
finished-hypothesis updates). Then counts decoder work in sentence-steps (one sentence's beams through
one step): generate()'s plain requests run search.py's loops, which drop each sentence once its result
is final; `--loop transformers` runs transformers' loops instead (they step every sentence until the
batch's last one has ended). Either is set against the sum of the translations' lengths, the work of
a decoder that drops each sentence when its best hypothesis has ended. Same settings as bench/ours.py
translate: length-sorted batches of 32, beam 5, at most 100 new tokens, no length penalty.

    .venv/bin/python bench/beam_cost.py --model bench/out/<label>/quality/multi30k/ours/model \
        --src bench/out/data/multi30k-sp8000-nall-tall/test.src --dtype bfloat16
"""

import argparse
import json
import time
from pathlib import Path

from ours import EOS, LOOPS, add_test_set_arguments, generate_ids, load_test_set


def add_timer(module, clock: dict, name: str) -> None:
    """Accumulate the wall-clock seconds `module`'s forward takes into clock[name]."""
    clock[name] = 0.0
    started = []
    module.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
    module.register_forward_hook(lambda *_: clock.__setitem__(name, clock[name] + time.perf_counter() - started.pop()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_test_set_arguments(p)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument(
        "--loop",
        choices=list(LOOPS),
        default="search.py",
        help="search.py's loops (generate()'s default for these settings) or transformers' own",
    )
    p.add_argument("--json", default=str(Path(__file__).parent / "out" / "beam_cost.json"))
    a = p.parse_args()

    torch, model, lines, batches = load_test_set(a)
    clock = {}
    add_timer(model.get_encoder(), clock, "encoder")
    add_timer(model.model.decoder, clock, "decoder step")
    add_timer(model.generator, clock, "generator")
    decoder_rows = []  # rows (sentences x beams) through each Decoder step
    model.model.decoder.register_forward_pre_hook(lambda _, args: decoder_rows.append(args[0].shape[0]))
    steps_needed = 0  # sentence-steps
    with torch.inference_mode():
        generate_ids(model, batches[0], a.beam, a.max_out, a.loop)  # warm-up: lazy initialisation
        clock.update(dict.fromkeys(clock, 0.0))
        decoder_rows.clear()
        started = time.perf_counter()
        for enc in batches:
            out = generate_ids(model, enc, a.beam, a.max_out, a.loop)[:, 1:].tolist()
            steps_needed += sum(row.index(EOS) + 1 if EOS in row else len(row) for row in out)
        total = time.perf_counter() - started
    steps_run = sum(decoder_rows) // a.beam

    rest = total - sum(clock.values())
    rec = dict(
        model=a.model,
        src=a.src,
        dtype=a.dtype,
        beam=a.beam,
        loop=a.loop,
        tbatch=a.tbatch,
        sentences=len(lines),
        decode_loop_s=total,
        seconds=dict(clock, **{"search bookkeeping (the rest)": rest}),
        sentence_steps_run=steps_run,
        sentence_steps_if_dropped_when_ended=steps_needed,
    )
    print(
        f"beam {a.beam}, {a.loop} loop, {len(lines)} sentences in batches of {a.tbatch}, {a.dtype}: "
        f"decode loop {total:.2f} s ({len(lines) / total:.1f} sent/s)"
    )
    print("| part | seconds | share |\n|---|---|---|")
    for name, seconds in rec["seconds"].items():
        print(f"| {name} | {seconds:.2f} | {seconds / total:.0%} |")
    print(
        f"sentence-steps run: {steps_run:,}; if each sentence left the batch when its best hypothesis ended: "
        f"{steps_needed:,} ({steps_run / steps_needed:.2f}x as many run)"
    )
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
