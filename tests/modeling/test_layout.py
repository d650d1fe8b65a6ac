"""The model folder is what a Hub repository holds: its files import only what such a repository can count on, a
saved directory holds exactly them, and directories saved before the folder existed still load."""

import ast
import json
import sys
from pathlib import Path

from tiny_models import save_tiny_translator
from transformers import AutoModelForSeq2SeqLM

from hf_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.loading import load_translator

MODELING = Path(__file__).parents[2] / "hf_rnn_seq2seq" / "modeling"
# What a process that loads a saved directory with trust_remote_code has, besides the standard library.
INSTALLED_WITH_TRANSFORMERS = {"torch", "transformers", "numpy"}
SAVED_BEFORE = Path(__file__).parent / "fixtures" / "saved-at-42bd398"


def model_files() -> list[Path]:
    return sorted(path for path in MODELING.glob("*.py") if path.name != "__init__.py")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a file, and `.name` for its relative ones."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or "").split(".")[0])
    return names


def test_model_files_import_only_the_standard_library_torch_transformers_and_each_other():
    siblings = {f".{path.stem}" for path in model_files()}
    for path in model_files():
        foreign = {
            name
            for name in imported_modules(path) - siblings - INSTALLED_WITH_TRANSFORMERS
            if name.startswith(".") or name not in sys.stdlib_module_names
        }
        assert not foreign, f"{path.name} imports {sorted(foreign)}: a saved model directory would not have them"


def test_a_saved_directory_holds_exactly_the_model_files(tmp_path):
    save_tiny_translator(tmp_path / "model")
    translator = load_translator(tmp_path / "model")
    translator.save_pretrained(tmp_path / "saved")  # as training saves: the model and the pipeline's code
    assert sorted(path.name for path in (tmp_path / "saved").glob("*.py")) == [path.name for path in model_files()]


def test_a_directory_saved_before_the_model_folder_loads_and_translates_as_it_did():
    """A model directory saved by the flat package of commit 42bd398 (weights, config with its `auto_map` and
    `custom_pipelines`, tokenizer; the translations that code gave) loads with this package's classes."""
    config = json.loads((SAVED_BEFORE / "config.json").read_text(encoding="utf-8"))
    assert config["auto_map"]["AutoModelForSeq2SeqLM"] == "modeling_rnn_seq2seq.RNNSeq2SeqForConditionalGeneration"
    assert isinstance(AutoModelForSeq2SeqLM.from_pretrained(SAVED_BEFORE), RNNSeq2SeqForConditionalGeneration)
    expected = json.loads((SAVED_BEFORE / "expected_translations.json").read_text(encoding="utf-8"))
    translator = load_translator(SAVED_BEFORE)
    for name, num_beams in (("greedy", 1), ("beam3", 3)):
        translations = [result["translation_text"] for result in translator(expected["sentences"], num_beams=num_beams)]
        assert translations == expected[name]
