"""Translate lines of text with a saved model directory: a Python iterable, a file, or stdin to stdout.

    from hf_rnn_seq2seq.loading import load_translator
    from hf_rnn_seq2seq.translate import translate_lines
    translator = load_translator("outputs/koen")
    for english in translate_lines(translator, open("news.ko"), batch_size=32, num_beams=5):
        print(english)

Several model directories translate as an ensemble: `translate_file(["run1", "run2"], ...)`, or
`hf_rnn_seq2seq.ensemble.load_ensemble_translator` for a pipeline to give `translate_lines`.

Output line N always translates input line N: an empty (or blank) input line gives an empty output line
without going through the model. Input is read and output written a window of lines at a time, so memory stays
flat however long the file; within a window, lines are batched by length, which saves an RNN most of the
padding it would otherwise step through.
"""

import io
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from itertools import islice
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from .ensemble import load_ensemble_translator
from .modeling.pipeline import RNNTranslationPipeline
from .onnx_runtime import OnnxTranslator
from .text_files import count_lines

DEFAULT_BATCH_SIZE = 32
# Lines sorted together by length: more batches per window means less padding, but more lines held in memory
# and a longer wait before the first output line.
BATCHES_PER_WINDOW = 16
# Translations are written under this suffix until the last line is done.
PARTIAL_SUFFIX = ".partial"


def translate_lines(
    translator: RNNTranslationPipeline | OnnxTranslator,
    lines: Iterable[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    **generate_kwargs,
) -> Iterator[str]:
    """Yield one translation per line of `lines`, in order, reading `batch_size * BATCHES_PER_WINDOW` lines at a
    time. `generate_kwargs` (`num_beams`, `max_new_tokens`, ...) go to `generate()`; unset ones come from the
    model's generation config. Line endings are stripped; the translations have none. `translator` is what
    `load_translator` returns: the pipeline, or with `dtype="int8"` the ONNX runner over int8 graphs."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lines = iter(lines)
    while window := [line.rstrip("\r\n") for line in islice(lines, batch_size * BATCHES_PER_WINDOW)]:
        yield from _translate_window(translator, window, batch_size, generate_kwargs)


def _translate_window(
    translator: RNNTranslationPipeline | OnnxTranslator, window: list[str], batch_size: int, generate_kwargs: dict
) -> list[str]:
    translations = [""] * len(window)
    texts = [i for i, line in enumerate(window) if line.strip()]
    lengths = [len(ids) for ids in translator.tokenizer([window[i] for i in texts])["input_ids"]]
    by_length = [i for _, i in sorted(zip(lengths, texts))]
    for start in range(0, len(by_length), batch_size):
        batch = by_length[start : start + batch_size]
        results = translator([window[i] for i in batch], batch_size=len(batch), **generate_kwargs)
        for i, result in zip(batch, results):
            translations[i] = result[translator.output_key]
    return translations


def translate_file(
    model_dir: str | os.PathLike | Sequence[str | os.PathLike],
    input_path: str | os.PathLike | None = None,
    output_path: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    dtype: str = "float32",
    weights: Sequence[float] | None = None,
    **generate_kwargs,
) -> int:
    """Translate `input_path` (None: stdin) line by line into `output_path` (None: stdout); return the number of
    lines. `progress` shows a progress bar on stderr (None: when stderr is a terminal); `dtype` is the weights'
    type (see `load_translator`: "int8" translates with onnxruntime). Several model directories translate as their
    ensemble, weighted by `weights` (`hf_rnn_seq2seq.ensemble`).

    The translations go to `<output_path>.partial`, renamed to `output_path` once every line is done: a run that
    stops early never leaves a file that looks complete (nor overwrites an earlier complete one)."""
    if input_path is not None and not Path(input_path).is_file():
        what = "is a directory" if Path(input_path).is_dir() else "no such file"
        raise OSError(f"{input_path}: {what}")
    if output_path is not None and Path(output_path).is_dir():
        raise OSError(f"{output_path}: is a directory; give a file name to write the translations to")
    translator = load_ensemble_translator(model_dirs(model_dir), weights, dtype=dtype)
    total = count_lines(input_path) if input_path is not None else None
    with ExitStack() as stack:
        source = stack.enter_context(_open_lines(input_path))
        partial = None if output_path is None else Path(f"{output_path}{PARTIAL_SUFFIX}")
        target = sys.stdout if partial is None else stack.enter_context(open(partial, "w", encoding="utf-8"))
        bar = stack.enter_context(
            tqdm(total=total, unit="line", file=sys.stderr, disable=None if progress is None else not progress)
        )
        translations = translate_lines(translator, source, batch_size, **generate_kwargs)
        n_lines = 0
        try:
            for translation in translations:
                target.write(f"{translation}\n")
                n_lines += 1
                bar.update()
        except UnicodeDecodeError as err:
            kept = f"; the {n_lines} lines before it are translated in {partial}" if partial is not None else ""
            raise ValueError(
                f"{input_path or 'stdin'}: not UTF-8 text (byte 0x{err.object[err.start]:02x} after line {n_lines}); "
                f"re-encode it as UTF-8{kept}"
            ) from None
        target.flush()
    if partial is not None:
        os.replace(partial, output_path)
    return n_lines


def model_dirs(model_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    """One model directory, or several (an ensemble), as a list."""
    return [model_dir] if isinstance(model_dir, (str, os.PathLike)) else list(model_dir)


@contextmanager
def _open_lines(path: str | os.PathLike | None) -> Iterator[TextIO]:
    """`path` (None: stdin) as UTF-8 text in which only a line feed ends a line: a stray carriage return inside a
    sentence must not split it and shift every later line."""
    if path is not None:
        with open(path, encoding="utf-8", newline="\n") as handle:
            yield handle
        return
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="\n")
    try:
        yield stdin
    finally:
        stdin.detach()  # closing the wrapper would close sys.stdin too


__all__ = ["model_dirs", "translate_file", "translate_lines"]
