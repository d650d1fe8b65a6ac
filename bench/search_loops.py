"""search.py's decoding loops against transformers' own, on one model and test set, in one process.

generate() runs plain greedy and beam requests through search.py, which drops each sentence once its
result is final; asking for a dict output (`return_dict_in_generate=True`) runs transformers' loops on
the same request. This alternates the two (after a warm-up pass), reports sentences/s of each and their
ratio, and checks that every batch came out identical. Same settings as bench/ours.py translate:
length-sorted batches of 32, at most 100 new tokens, beam 5 without length penalty.

    .venv/bin/python bench/search_loops.py --model bench/out/<label>/quality/tatoeba/ours/model \\
        --src bench/out/data/tatoeba-sp8000-nall-tall/test.src --dtype bfloat16
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from ours import LOOPS, add_test_set_arguments, generate_ids, load_test_set


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_test_set_arguments(p)
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--json", default=str(Path(__file__).parent / "out" / "search_loops.json"))
    a = p.parse_args()
    torch, model, lines, batches = load_test_set(a)

    def decode(beam: int, loop: str) -> list:
        return [generate_ids(model, enc, beam, a.max_out, loop) for enc in batches]

    results = {}
    with torch.inference_mode():
        for beam in a.beams:
            decode(beam, "search.py")  # warm-up: lazy initialisation, kernels for the batch shapes
            seconds, outputs = {loop: [] for loop in LOOPS}, {}
            for _ in range(a.reps):
                for loop in LOOPS:
                    started = time.perf_counter()
                    outputs[loop] = decode(beam, loop)
                    seconds[loop].append(time.perf_counter() - started)
            rate = {loop: len(lines) / statistics.median(s) for loop, s in seconds.items()}
            identical = all(torch.equal(x, y) for x, y in zip(outputs["search.py"], outputs["transformers"]))
            results[f"beam{beam}"] = dict(
                sents_per_s=rate, ratio=rate["search.py"] / rate["transformers"], identical_outputs=identical
            )
    print(f"{len(lines)} sentences in batches of {a.tbatch}, {a.dtype}, median of {a.reps}")
    print("| search | search.py sent/s | transformers sent/s | ratio | same outputs |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['sents_per_s']['search.py']:.0f} | {r['sents_per_s']['transformers']:.0f} | "
            f"{r['ratio']:.2f}x | {'yes' if r['identical_outputs'] else 'NO'} |"
        )
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(dict(model=a.model, src=a.src, dtype=a.dtype, results=results), indent=1))


if __name__ == "__main__":
    main()
