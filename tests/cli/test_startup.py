"""Fast start: what `import hf_rnn_seq2seq` and each subcommand of the command import.

Every check runs in a fresh interpreter and reads its sys.modules at the end: in this process, whatever another
test imported is already there. A tool (datasets, evaluate, matplotlib, ONNX, the Trainer) costs seconds of
start-up, so the package and each subcommand import only the ones they use; `--help` imports no torch at all,
except `train --help`, whose flags are transformers' Seq2SeqTrainingArguments fields printed by its parser.
"""

import argparse
import json
import shutil
import subprocess
import sys

import pytest
from tiny_models import KOREAN, subprocess_environment, write_test_set

from hf_rnn_seq2seq_cli import build_parser

DATASETS = {"datasets", "pandas", "pyarrow"}  # datasets imports pandas and pyarrow
TOOLS = DATASETS | {"evaluate", "matplotlib", "onnx", "onnxruntime", "transformers.trainer"}
WATCHED = TOOLS | {"torch", "transformers"}
# The tools each subcommand uses: it may import these and no other.
USES = {
    "translate": set(),
    "score": set(),
    "evaluate": DATASETS | {"evaluate"},
    "tokenizer": DATASETS,
    "average": DATASETS | {"transformers.trainer"},  # it reads the Trainer's checkpoints; the Trainer imports datasets
    "export": {"onnx"},
    "shortlist": DATASETS,  # reads the training data as evaluate and tokenizer do
    "plot-attention": {"matplotlib"},
    "app": set(),  # run as --write-space: serving the page itself would not return (tests/test_app.py serves it)
}
N_LINES = 2  # of the test set that evaluate and tokenizer read
VOCAB_SIZE = 60  # fits the characters of N_LINES pairs and the special tokens
# Snippets for a fresh interpreter. The last line each prints: an exit status and which watched modules are imported.
REPORT = f'print(json.dumps({{"status": status, "imported": sorted(set(sys.modules) & {WATCHED!r})}}))'
IMPORT_PACKAGE = f"import json, sys\nimport hf_rnn_seq2seq\nstatus = 0\n{REPORT}"
RUN_MAIN = f"""import json, sys
from hf_rnn_seq2seq_cli import main
try:
    status = main(sys.argv[1:])  # the arguments given to the interpreter after the snippet
except SystemExit as stop:
    status = stop.code
{REPORT}"""


def fresh_interpreter(code: str, *argv: str, stdin: str = "") -> tuple[str, int, set[str]]:
    """What snippet `code`, run with arguments `argv`, printed before its last line; the exit status and the
    watched modules imported that its last line reports."""
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=subprocess_environment(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    *output, last = result.stdout.splitlines()
    report = json.loads(last)
    return "\n".join(output), report["status"], set(report["imported"])


def subcommands() -> list[str]:
    """The subcommands the parser has, so that a new one is checked too; an alias (generate = translate) runs the
    same parser and is left out."""
    (action,) = (action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    first_names = {}
    for name, parser in action.choices.items():
        first_names.setdefault(id(parser), name)
    return list(first_names.values())


@pytest.fixture(scope="module")
def test_prefix(tmp_path_factory):
    """A parallel text of N_LINES pairs: test.ko + test.en."""
    return write_test_set(tmp_path_factory.mktemp("data"), N_LINES)


def test_importing_the_package_imports_none_of_the_tools():
    _, _, imported = fresh_interpreter(IMPORT_PACKAGE)
    assert imported & TOOLS == set()


def test_every_subcommand_is_checked_below():
    assert set(subcommands()) == set(USES) | {"train"}


# Every help but train's, the exception (below).
HELP = [["--help"]] + [[command, "--help"] for command in subcommands() if command != "train"]


@pytest.mark.parametrize("argv", HELP)
def test_help_imports_neither_torch_nor_transformers(argv):
    output, status, imported = fresh_interpreter(RUN_MAIN, *argv)
    assert status == 0 and "usage: hf-rnn-seq2seq" in output
    assert imported == set()


def test_train_help_prints_the_training_flags():
    """The exception: HfArgumentParser prints them from transformers' dataclasses, so this imports transformers."""
    output, status, _ = fresh_interpreter(RUN_MAIN, "train", "--help")
    assert status == 0 and all(flag in output for flag in ("--output_dir", "--train_file", "--num_train_epochs"))


def subcommand_arguments(command: str, model_dir, test_prefix, tmp_path) -> list[str]:
    """`command`'s arguments for a run on the tiny model and test set, as small as the command allows."""
    if command == "average":  # two checkpoints: the model and a copy of it
        shutil.copytree(model_dir, tmp_path / "copy")
        return [model_dir, tmp_path / "copy", "-o", tmp_path / "averaged"]
    return {
        "translate": [model_dir, "--no-progress"],
        "evaluate": [model_dir, test_prefix],
        "score": [model_dir, "--source", f"{test_prefix}.ko", "--reference", f"{test_prefix}.en"],
        "tokenizer": [test_prefix, tmp_path / "tokenizer", "--vocab-size", VOCAB_SIZE],
        "export": [model_dir, tmp_path / "onnx"],
        "shortlist": [tmp_path / "model", test_prefix],  # a copy: the command writes into the model directory
        "plot-attention": [model_dir, KOREAN[0], "-o", tmp_path],
        "app": ["--write-space", tmp_path / "space", "someone/tiny-koen"],
    }[command]


@pytest.mark.parametrize("command", sorted(USES))
def test_each_subcommand_imports_only_the_tools_it_uses(command, model_dir, test_prefix, tmp_path):
    shutil.copytree(model_dir, tmp_path / "model")
    arguments = map(str, subcommand_arguments(command, model_dir, test_prefix, tmp_path))
    _, status, imported = fresh_interpreter(RUN_MAIN, command, *arguments, stdin=f"{KOREAN[0]}\n")
    assert status == 0
    assert imported & TOOLS <= USES[command]
