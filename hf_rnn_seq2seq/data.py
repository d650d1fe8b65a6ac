"""Loading parallel corpora -- any source/target text pairs -- into the Hugging Face translation format, and
tokenising them.

Every loader returns a `datasets.Dataset` with a single column `translation`, each row a dict
`{source_lang: "...", target_lang: "..."}` -- the format of the Hub's translation datasets (wmt16, opus...).
The two names need not be languages: they name the sides of any text-to-text task (a file suffix such as `src` /
`tgt`, or a column such as `document` / `summary`, as `--text_column` / `--summary_column` of transformers'
run_summarization.py), and must differ.

Supported inputs (see `load_translation_data`, which picks one from its argument):

* parallel text: `prefix.ko` + `prefix.en` (any two suffixes: `prefix.src` + `prefix.tgt`), one segment per line,
  line N of one file pairing with line N of the other;
* JSON lines: one `{"translation": {"ko": "...", "en": "..."}}` object per line, or one object with a column per
  side, `{"document": "...", "summary": "..."}`;
* a dataset saved with `save_to_disk` (a folder), with a `translation` column or a column per side;
* a dataset on the Hugging Face Hub (needs the network, or the dataset in the local cache), likewise.

Bad data raises `DataError` naming the file and line to fix. Nothing is skipped silently: an empty sentence is
an error (it would shift or drop a pair), and pairs dropped by `filter_by_length` are counted and logged.
"""

import json
import logging
import os
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import NoReturn

import datasets
from datasets import Dataset, Features, Translation, concatenate_datasets
from datasets.exceptions import DatasetNotFoundError
from transformers import BatchEncoding, PreTrainedTokenizerBase

from .errors import DataError
from .text_files import count_lines

logger = logging.getLogger(__name__)

# Pairs are turned into Arrow tables this many at a time, so a large corpus is never held twice
# (as Python strings and as Arrow) in full.
PAIRS_PER_CHUNK = 10_000
# Sentences tokenised per call when measuring lengths.
LENGTH_BATCH_SIZE = 1_000
JSON_SUFFIXES = (".jsonl", ".json")
# What `save_to_disk` writes into a dataset folder (a Dataset's state, a DatasetDict's split list).
SAVED_DATASET_FILES = ("state.json", "dataset_dict.json")
UTF8_BOM = b"\xef\xbb\xbf"

PathLike = str | os.PathLike


def translation_features(source_lang: str, target_lang: str) -> Features:
    return Features({"translation": Translation(languages=[source_lang, target_lang])})


def _read_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, text)` for each line of a UTF-8 file, without the line ending.

    Reads bytes and decodes line by line, so that invalid UTF-8 is reported with its line and byte offset
    instead of a bare `UnicodeDecodeError` for the whole file. Only `\\n` ends a line: a stray `\\r` or a
    Unicode line separator inside a sentence must not split it and misalign a parallel corpus.
    """
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise DataError(f"{path}: cannot open: {err.strerror}") from None
    with handle:
        offset = 0  # byte offset of the current line in the file
        for line_number, raw in enumerate(handle, start=1):
            start = len(UTF8_BOM) if line_number == 1 and raw.startswith(UTF8_BOM) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as err:
                bad_byte = raw[start + err.start]
                raise DataError(
                    f"{path}:{line_number}: invalid UTF-8 (byte 0x{bad_byte:02x} at byte offset "
                    f"{offset + start + err.start} of the file); re-encode the file as UTF-8"
                ) from None
            offset += len(raw)
            yield line_number, text.rstrip("\r\n")


def _parallel_pairs(
    source_path: PathLike, target_path: PathLike, source_lang: str, target_lang: str
) -> Iterator[dict[str, str]]:
    source_lines, target_lines = _read_lines(source_path), _read_lines(target_path)
    line_number = 0
    for line_number, source in source_lines:
        target_line = next(target_lines, None)
        if target_line is None:
            _raise_length_mismatch(source_path, target_path, line_number - 1)
        _, target = target_line
        for path, text, other_path in ((source_path, source, target_path), (target_path, target, source_path)):
            if not text.strip():
                raise DataError(
                    f"{path}:{line_number}: empty line (its pair is {other_path}:{line_number}); every line must "
                    f"hold one sentence -- delete the pair from both files or fill in the missing side"
                )
        yield {source_lang: source, target_lang: target}
    if next(target_lines, None) is not None:
        _raise_length_mismatch(source_path, target_path, line_number)


def _raise_length_mismatch(source_path: PathLike, target_path: PathLike, lines_read: int) -> NoReturn:
    """Raise for parallel files that end at different lines (`lines_read` lines were paired)."""
    source_count, target_count = count_lines(source_path), count_lines(target_path)
    for path, count in ((source_path, source_count), (target_path, target_count)):
        if count == 0:
            raise DataError(f"{path}: file is empty")
    raise DataError(
        f"{source_path} has {source_count} lines but {target_path} has {target_count}; parallel files need one "
        f"sentence per line with line N of one translating line N of the other (the first unpaired line is "
        f"line {lines_read + 1})"
    )


def _dataset_from_pairs(pairs: Iterator[dict[str, str]], source_lang: str, target_lang: str) -> Dataset:
    features = translation_features(source_lang, target_lang)
    chunks = []
    while chunk := list(islice(pairs, PAIRS_PER_CHUNK)):
        chunks.append(Dataset.from_dict({"translation": chunk}, features=features))
    if not chunks:
        return Dataset.from_dict({"translation": []}, features=features)
    return concatenate_datasets(chunks)


def load_parallel_text(
    source_path: PathLike, target_path: PathLike, source_lang: str = "ko", target_lang: str = "en"
) -> Dataset:
    """Load two line-aligned text files (line N of `target_path` translates line N of `source_path`)."""
    dataset = _dataset_from_pairs(
        _parallel_pairs(source_path, target_path, source_lang, target_lang), source_lang, target_lang
    )
    if len(dataset) == 0:
        raise DataError(f"{source_path}: file is empty")
    return dataset


def _jsonl_pairs(path: PathLike, source_lang: str, target_lang: str) -> Iterator[dict[str, str]]:
    for line_number, line in _read_lines(path):
        if not line.strip():  # a blank line holds no pair, so skipping it loses nothing
            continue
        where = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{where}: invalid JSON ({err.msg} at column {err.colno}); expected one object per line like "
                f'{{"translation": {{"{source_lang}": "...", "{target_lang}": "..."}}}}'
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got: {line[:80]}")
        # Nested `{"translation": {...}}` (the Hub's translation datasets), else one column per side.
        if isinstance(record.get("translation"), dict):
            fields, name = record["translation"], '"translation" has no key'
        else:
            fields, name = record, "no column"
        pair = {}
        for side in (source_lang, target_lang):
            if side not in fields:
                raise DataError(
                    f'{where}: {name} "{side}" (its keys: {", ".join(map(str, fields))}); name the source and '
                    "target columns with --text_column and --summary_column (or --source_lang and --target_lang)"
                )
            text = fields[side]
            if not isinstance(text, str) or not text.strip():
                raise DataError(f'{where}: "{side}" must be a non-empty string, got {text!r}')
            pair[side] = text
        yield pair


def load_translation_jsonl(path: PathLike, source_lang: str = "ko", target_lang: str = "en") -> Dataset:
    """Load JSON lines of `{"translation": {source_lang: ..., target_lang: ...}}` or of
    `{source_lang: ..., target_lang: ...}` (other keys are ignored)."""
    dataset = _dataset_from_pairs(_jsonl_pairs(path, source_lang, target_lang), source_lang, target_lang)
    if len(dataset) == 0:
        raise DataError(f"{path}: file is empty")
    return dataset


def load_hub_dataset(
    name: str,
    config: str | None = None,
    split: str = "train",
    source_lang: str = "ko",
    target_lang: str = "en",
    **load_dataset_kwargs,
) -> Dataset:
    """Load a split of a Hub dataset with `datasets.load_dataset` (uses the local cache when offline).

    The dataset must have a `translation` column holding both languages, or one column per language code;
    either way the result has only the `translation` column.
    """
    try:
        dataset = datasets.load_dataset(name, config, split=split, **load_dataset_kwargs)
    except ConnectionError:
        raise DataError(
            f"cannot load dataset '{name}': the Hugging Face Hub is unreachable (offline, or HF_HUB_OFFLINE=1) and "
            f"the dataset is not in the local cache; use local files instead (prefix.{source_lang} + "
            f"prefix.{target_lang}, or a .jsonl file)"
        ) from None
    except (DatasetNotFoundError, FileNotFoundError) as err:
        raise DataError(f"cannot load dataset '{name}': {err}") from None
    return _pairs_dataset(dataset, f"dataset '{name}'", source_lang, target_lang)


def _pairs_dataset(dataset: Dataset, what: str, source_lang: str, target_lang: str) -> Dataset:
    """The pairs of a loaded dataset with a `translation` column holding both sides, or one column per side."""
    if "translation" in dataset.column_names:
        feature = dataset.features["translation"]  # a Translation, or a plain struct from a JSON file
        languages = feature.languages if isinstance(feature, Translation) else list(feature)
        if not {source_lang, target_lang} <= set(languages):
            raise DataError(
                f"{what}: its translation column has languages {languages}, not '{source_lang}' and '{target_lang}'"
            )
        pairs = ({source_lang: row[source_lang], target_lang: row[target_lang]} for row in dataset["translation"])
    elif {source_lang, target_lang} <= set(dataset.column_names):
        pairs = (
            {source_lang: source, target_lang: target}
            for source, target in zip(dataset[source_lang], dataset[target_lang])
        )
    else:
        raise DataError(
            f"{what} has columns {dataset.column_names}; expected 'translation' or '{source_lang}' and "
            f"'{target_lang}' (name them with --text_column and --summary_column)"
        )
    dataset = _dataset_from_pairs(pairs, source_lang, target_lang)
    if len(dataset) == 0:
        raise DataError(f"{what} is empty")
    return dataset


def load_saved_dataset(
    path: PathLike, split: str = "train", source_lang: str = "ko", target_lang: str = "en"
) -> Dataset:
    """Load a dataset folder written by `Dataset.save_to_disk` (or a `DatasetDict`'s, taking `split`)."""
    try:
        dataset = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(f"{path}: cannot load the saved dataset: {err}") from None
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise DataError(f"{path}: no split '{split}' in the saved dataset (its splits: {', '.join(dataset)})")
        dataset = dataset[split]
    return _pairs_dataset(dataset, str(path), source_lang, target_lang)


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in SAVED_DATASET_FILES)


def _load_one(path_or_name: str, source_lang: str, target_lang: str, config: str | None, split: str) -> Dataset:
    path = Path(path_or_name)
    if _is_saved_dataset(path):
        return load_saved_dataset(path, split, source_lang, target_lang)
    if path.suffix in JSON_SUFFIXES:
        return load_translation_jsonl(path, source_lang, target_lang)
    # A path to either side of a parallel corpus stands for its prefix: data/train.ko -> data/train.
    prefix = path.with_suffix("") if path.suffix in (f".{source_lang}", f".{target_lang}") else path
    source_path, target_path = Path(f"{prefix}.{source_lang}"), Path(f"{prefix}.{target_lang}")
    if source_path.is_file() and target_path.is_file():
        return load_parallel_text(source_path, target_path, source_lang, target_lang)
    if source_path.is_file() or target_path.is_file():
        found, missing = (source_path, target_path) if source_path.is_file() else (target_path, source_path)
        raise DataError(f"found {found} but not its parallel file {missing}")
    if path.exists():
        raise DataError(
            f"{path}: unknown data format; give a .jsonl file, a parallel-text prefix "
            f"(prefix.{source_lang} + prefix.{target_lang}) or a folder written by Dataset.save_to_disk"
        )
    if path.is_absolute() or path_or_name.startswith("."):  # a local path, never a Hub name
        raise DataError(f"no such file {path_or_name} nor {source_path} + {target_path}")
    try:
        return load_hub_dataset(path_or_name, config, split, source_lang, target_lang)
    except DataError as err:
        raise DataError(f"no local file {path_or_name} nor {source_path} + {target_path}, and {err}") from None


def load_translation_data(
    path_or_name: str,
    source_lang: str = "ko",
    target_lang: str = "en",
    config: str | None = None,
    split: str = "train",
) -> Dataset:
    """Load translation pairs from local files or the Hub, picking the loader from `path_or_name`.

    * a folder written by `save_to_disk` -> `load_saved_dataset(path_or_name, split)`
    * `*.jsonl` / `*.json` -> `load_translation_jsonl`
    * `prefix` or `prefix.{source_lang}` (or `.{target_lang}`) where `prefix.{source_lang}` and
      `prefix.{target_lang}` both exist -> `load_parallel_text`
    * anything else -> `load_hub_dataset(path_or_name, config, split)`

    A comma-separated list (`data/a,data/b.jsonl`) loads each entry and concatenates them in order.
    """
    if source_lang == target_lang:
        raise DataError(
            f"the source and target sides are both named '{source_lang}'; give them different names (file suffixes "
            "or columns, e.g. --source_lang src --target_lang tgt)"
        )
    entries = [entry.strip() for entry in path_or_name.split(",") if entry.strip()]
    if not entries:
        raise DataError(f"no data given (got {path_or_name!r})")
    return concatenate_datasets([_load_one(entry, source_lang, target_lang, config, split) for entry in entries])


def filter_by_length(
    dataset: Dataset,
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    max_source_length: int | None,
    max_target_length: int,
    source_lang: str = "ko",
    target_lang: str = "en",
) -> tuple[Dataset, int]:
    """Drop pairs whose tokenised source or target is longer than the limits; return `(kept, n_dropped)`.

    Lengths count the tokens the model sees, including the `</s>` the tokenizers append. Long pairs are
    dropped rather than truncated: a truncated target teaches the model to stop mid-sentence. The number
    dropped is logged as a warning, and dropping every pair is a `DataError`. `max_source_length=None` limits
    only targets (for sources cut by `truncate_sources` instead).
    """
    keep = []
    for start in range(0, len(dataset), LENGTH_BATCH_SIZE):
        batch = dataset[start : start + LENGTH_BATCH_SIZE]["translation"]
        source_ids = source_tokenizer([pair[source_lang] for pair in batch])["input_ids"]
        target_ids = target_tokenizer([pair[target_lang] for pair in batch])["input_ids"]
        keep.extend(
            start + i
            for i, (source, target) in enumerate(zip(source_ids, target_ids))
            if (max_source_length is None or len(source) <= max_source_length) and len(target) <= max_target_length
        )
    n_dropped = len(dataset) - len(keep)
    limits = f"max_target_length={max_target_length} tokens"
    if max_source_length is not None:
        limits = f"max_source_length={max_source_length}, {limits}"
    if len(dataset) > 0 and not keep:
        raise DataError(f"all {len(dataset)} pairs are longer than {limits}; raise the limits")
    if n_dropped:
        logger.warning("dropped %d of %d pairs longer than %s", n_dropped, len(dataset), limits)
    return dataset.select(keep), n_dropped


def truncate_sources(tokenized: Dataset, max_source_length: int) -> tuple[Dataset, int]:
    """Cut the tokenised sources (`input_ids`, `attention_mask`) longer than `max_source_length` to their first
    `max_source_length - 1` tokens and their last one (`</s>`); return `(dataset, n_cut)`, the number cut logged
    as a warning. What summarizers do with long documents (See et al. 2017 keep an article's first 400 tokens):
    the summary is usually in the beginning, and dropping long documents would leave the model unused to them."""
    if max_source_length < 2:
        raise ValueError(f"max_source_length must leave room for a token and </s>, got {max_source_length}")
    n_cut = sum(len(ids) > max_source_length for ids in tokenized["input_ids"])
    if not n_cut:
        return tokenized, 0

    def cut(batch: dict[str, list]) -> dict[str, list]:
        return {
            "input_ids": [
                ids if len(ids) <= max_source_length else ids[: max_source_length - 1] + ids[-1:]
                for ids in batch["input_ids"]
            ],
            "attention_mask": [mask[:max_source_length] for mask in batch["attention_mask"]],
        }

    logger.warning("cut %d of %d sources to their first %d tokens", n_cut, len(tokenized), max_source_length)
    return tokenized.map(cut, batched=True, desc="cutting long sources"), n_cut


def make_preprocess_function(
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    source_lang: str = "ko",
    target_lang: str = "en",
) -> Callable[[dict[str, list]], BatchEncoding]:
    """Return a function for `dataset.map(..., batched=True)` that tokenises a `translation` batch.

    It gives `input_ids` and `attention_mask` from the source tokenizer and `labels` from the target
    tokenizer, each sequence ending with `</s>`. Pass the same tokenizer twice for a joint vocabulary: the
    result then equals `tokenizer(sources, text_target=targets)`. Nothing is truncated; drop long pairs first
    with `filter_by_length`.
    """

    def preprocess(batch: dict[str, list]) -> BatchEncoding:
        model_inputs = source_tokenizer([pair[source_lang] for pair in batch["translation"]])
        model_inputs["labels"] = target_tokenizer([pair[target_lang] for pair in batch["translation"]])["input_ids"]
        return model_inputs

    return preprocess
