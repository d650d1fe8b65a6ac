"""How long the command and the package take to start, against `import torch, transformers` on the same machine.

Wall time of whole commands, each in a new process as a user runs them: `hf-rnn-seq2seq --help`, `translate
--help`, `train --help` (the one help that imports transformers: its flags are Seq2SeqTrainingArguments
fields), `import hf_rnn_seq2seq` (registers the model with transformers, so it imports torch and transformers'
modelling code) and translating one sentence read from stdin. The reference is `python -c "import torch,
transformers"`, the least a command that runs a model pays. Every repetition runs each command once, the
reference first, so that the machine's load, which drifts on a shared machine, weighs on all of them alike;
the table has the median, min and max over the repetitions and the ratio of each median to the reference's.

    .venv/bin/python bench/startup.py [--reps 5] [--warmup 1] [--model MODEL_DIR]

Without --model, it times an untrained model of the demo's size (`hf_rnn_seq2seq.demo`) with a tokenizer trained
on the demo corpus, saved in a temporary directory: loading it costs what loading the trained demo model does.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers
from versus_peers import cpu_identity

import hf_rnn_seq2seq

# The installed command beside the interpreter running this script (the venv's).
COMMAND = Path(sys.executable).with_name("hf-rnn-seq2seq")
REFERENCE = 'python -c "import torch, transformers"'
# hf_rnn_seq2seq.demo.CORPUS, without importing the demo, which imports the training tools (seconds).
DEMO_CORPUS = Path(hf_rnn_seq2seq.__file__).parent / "corpus" / "everyday-koen"
# An untrained model seldom ends a translation by itself: stop it after the median length of the demo test set's
# English side in the demo tokenizer's tokens, so that it decodes about what a trained one does.
MAX_NEW_TOKENS = 16


def save_demo_sized_model(directory: Path) -> Path:
    """An untrained model with the demo's sizes and a tokenizer trained on the demo's training pairs."""
    from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
    from hf_rnn_seq2seq.demo import DEMO_SETTINGS
    from hf_rnn_seq2seq.tokenization import save_tokenizers, train_tokenizer

    def lines(language: str) -> list[str]:
        return (DEMO_CORPUS / f"train.{language}").read_text(encoding="utf-8").splitlines()

    transformers.utils.logging.disable_progress_bar()  # save_pretrained's bar would trail the table on stderr
    tokenizer = train_tokenizer(lines("ko"), lines("en"), vocab_size=DEMO_SETTINGS["vocab_size"])
    sizes = {name: DEMO_SETTINGS[name] for name in ("embedding_size", "hidden_size")}
    model = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(vocab_size=len(tokenizer), **sizes))
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    model.save_pretrained(directory)
    save_tokenizers(tokenizer, tokenizer, directory)
    return directory


def commands(model_dir: Path, sentence: str) -> dict[str, tuple[list[str], str]]:
    """What is timed, the reference first: label -> (command line, standard input)."""
    python, command = sys.executable, str(COMMAND)
    return {
        REFERENCE: ([python, "-c", "import torch, transformers"], ""),
        "hf-rnn-seq2seq --help": ([command, "--help"], ""),
        "hf-rnn-seq2seq translate --help": ([command, "translate", "--help"], ""),
        "hf-rnn-seq2seq train --help": ([command, "train", "--help"], ""),
        'python -c "import hf_rnn_seq2seq"': ([python, "-c", "import hf_rnn_seq2seq"], ""),
        "hf-rnn-seq2seq translate MODEL, one line on stdin": ([command, "translate", str(model_dir)], f"{sentence}\n"),
    }


def wall_seconds(command: list[str], stdin: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="timed runs of each command (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each first: disk cache (default: 1)")
    p.add_argument("--model", type=Path, help="model directory to translate with (default: a demo-sized one)")
    p.add_argument(
        "--sentence",
        default=(DEMO_CORPUS / "test.ko").read_text(encoding="utf-8").splitlines()[0],
        help="the sentence to translate (default: the demo test set's first, %(default)s)",
    )
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "out" / "startup.json")
    a = p.parse_args()
    if not COMMAND.is_file():
        sys.exit(f"no {COMMAND}: run this with the interpreter of the environment the package is installed in")

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = a.model or save_demo_sized_model(Path(tmp))
        to_time = commands(model_dir, a.sentence)
        load_at_start = os.getloadavg()
        for _ in range(a.warmup):
            for command, stdin in to_time.values():
                wall_seconds(command, stdin)
        seconds = {label: [] for label in to_time}
        for _ in range(a.reps):
            for label, (command, stdin) in to_time.items():
                seconds[label].append(wall_seconds(command, stdin))
        load_at_end = os.getloadavg()

    reference = statistics.median(seconds[REFERENCE])
    rows = [
        dict(
            command=label,
            argv=to_time[label][0],
            seconds=runs,
            median=statistics.median(runs),
            min=min(runs),
            max=max(runs),
            ratio=statistics.median(runs) / reference,
        )
        for label, runs in seconds.items()
    ]
    cpu = cpu_identity() | {"capability": torch.backends.cpu.get_cpu_capability()}
    rec = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cpu=cpu,
        torch=torch.__version__,
        transformers=transformers.__version__,
        python=sys.version.split()[0],
        reps=a.reps,
        warmup=a.warmup,
        model=str(a.model or "untrained, demo-sized"),
        sentence=a.sentence,
        load_at_start=load_at_start,
        load_at_end=load_at_end,
        reference=REFERENCE,
        rows=rows,
    )
    print(
        f"{cpu['model']} ({cpu['cpus']} CPUs, torch CPU capability {cpu['capability']}), torch {torch.__version__}, "
        f"transformers {transformers.__version__}; {a.reps} repetitions after {a.warmup} warm-up; "
        f"load average {load_at_start[0]:.2f} at start, {load_at_end[0]:.2f} at end"
    )
    print("| command | median s | min s | max s | median / reference |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['command']} | {row['median']:.2f} | {row['min']:.2f} | {row['max']:.2f} | {row['ratio']:.2f} |")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
