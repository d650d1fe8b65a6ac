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

`translate_lines_n_best` gives, per line, the `n_best` best translations with their scores and, with `alignment=True`,
word alignments read from the attention (see `scoring.py`): what `translate --n-best N --print-alignment` prints,
fairseq- and OpenNMT-style. A score is what the search ranked by: the sum of the tokens' log-probabilities for greedy
search and sampling; for beam search that sum divided by the length penalty (plus GNMT's coverage penalty, see
`modeling/search.py`). Both are computed from one teacher-forced pass over the translations found, so they equal the
search's own up to the last bits of floating point.
"""

import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TextIO, TypeVar

import torch
from tqdm import tqdm
from transformers import GenerationConfig

from .ensemble import load_ensemble_translator
from .modeling.penalties import BEAM_PENALTY_OPTIONS, BeamPenalties
from .modeling.pipeline import RNNTranslationPipeline
from .onnx_runtime import OnnxTranslator
from .scoring import (
    DEFAULT_BATCH_SIZE,
    check_attention,
    format_alignment,
    hard_alignment,
    length_through_eos,
    pieces,
    score_targets,
)
from .text_files import count_lines

# Lines sorted together by length: more batches per window means less padding, but more lines held in memory
# and a longer wait before the first output line.
BATCHES_PER_WINDOW = 16
# Translations are written under this suffix until the last line is done.
PARTIAL_SUFFIX = ".partial"
SCORE_DECIMALS = 4  # of the scores in n-best lists, as fairseq prints them


def translate_lines(
    translator: RNNTranslationPipeline | OnnxTranslator,
    lines: Iterable[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    **generate_kwargs,
) -> Iterator[str]:
    """Yield one translation per line of `lines`, in order, reading `batch_size * BATCHES_PER_WINDOW` lines at a
    time. `generate_kwargs` (`num_beams`, `max_new_tokens`, ...) go to `generate()`; unset ones come from the
    model's generation config. Line endings are stripped; the translations have none. `translator` is what
    `load_translator` returns: the pipeline, or with `engine="onnxruntime"` the ONNX runner over the model's graphs."""

    def translate_batches(batches: list[list[str]]) -> Iterable[list[str]]:
        if isinstance(translator, OnnxTranslator):  # its `inter_threads` batches at a time
            return translator.translate_batches(batches, **generate_kwargs)
        return (
            [result[translator.output_key] for result in translator(texts, batch_size=len(texts), **generate_kwargs)]
            for texts in batches
        )

    yield from _by_windows(translator, lines, batch_size, translate_batches, "")


Result = TypeVar("Result")  # what one line translates to: its translation, or its n-best list


def _by_windows(
    translator: RNNTranslationPipeline | OnnxTranslator,
    lines: Iterable[str],
    batch_size: int,
    translate_batches: Callable[[list[list[str]]], Iterable[list[Result]]],
    empty: Result,
) -> Iterator[Result]:
    """`translate_batches` (batches of texts -> one result per text, batch by batch) over `lines`, a window at a
    time, batched by length within it; an empty (or blank) line gives `empty`. Yields one result per line, in
    order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lines = iter(lines)
    while window := [line.rstrip("\r\n") for line in islice(lines, batch_size * BATCHES_PER_WINDOW)]:
        yield from _translate_window(translator, window, batch_size, translate_batches, empty)


def _translate_window(
    translator: RNNTranslationPipeline | OnnxTranslator,
    window: list[str],
    batch_size: int,
    translate_batches: Callable[[list[list[str]]], Iterable[list[Result]]],
    empty: Result,
) -> list[Result]:
    translations = [empty] * len(window)
    texts = [i for i, line in enumerate(window) if line.strip()]
    lengths = [len(ids) for ids in translator.tokenizer([window[i] for i in texts])["input_ids"]]
    by_length = [i for _, i in sorted(zip(lengths, texts))]
    batches = [by_length[start : start + batch_size] for start in range(0, len(by_length), batch_size)]
    for batch, results in zip(batches, translate_batches([[window[i] for i in batch] for batch in batches])):
        for i, result in zip(batch, results):
            translations[i] = result
    return translations


@dataclass
class ScoredTranslation:
    """One entry of an n-best list."""

    text: str
    score: float  # what the search ranked by (see the module docstring)
    alignment: list[tuple[int, int]] | None  # (source piece, target piece) pairs; None unless asked for
    # The target tokens the search produced, through end-of-sentence (what `score` scored): tokenizing `text` again
    # may segment it otherwise.
    ids: list[int] = field(default_factory=list)


def request_config(translator: RNNTranslationPipeline, generate_kwargs: dict) -> GenerationConfig:
    """The generation settings a call of `translator` with `generate_kwargs` decodes with (the model's, the
    pipeline's defaults, the call's)."""
    params = translator._get_set_generation_params(translator._prepare_generate_kwargs(generate_kwargs))
    params.pop("generation_config", None)
    config = GenerationConfig()  # GenerationConfig(**params) would drop our custom entries with `_from_model_config`
    config.update(**params, allow_custom_entries=True)
    # What generate() fills in where neither the model nor the call sets a value (num_beams 1, length_penalty 1.0).
    config.update(**config._get_default_generation_params(), defaults_only=True)
    return config


def translate_lines_n_best(
    translator: RNNTranslationPipeline,
    lines: Iterable[str],
    n_best: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    alignment: bool = False,
    **generate_kwargs,
) -> Iterator[list[ScoredTranslation]]:
    """Yield, per line of `lines`, its `n_best` best translations, best first, with their scores and (with
    `alignment`) their alignments to the line; an empty line gets an empty list. `n_best` needs a beam at least as
    wide, or sampling (then they are `n_best` samples, ranked by score)."""
    if n_best < 1:
        raise ValueError(f"n_best must be at least 1, got {n_best}")
    if not isinstance(translator, RNNTranslationPipeline):
        raise ValueError(
            "n-best lists and alignments need the PyTorch model: translate without --engine onnxruntime or --dtype int8"
        )
    if alignment:
        check_attention(translator.model)
    config = request_config(translator, generate_kwargs)
    if not config.do_sample and n_best > config.num_beams:
        raise ValueError(
            f"{n_best} best translations need a beam at least that wide (num_beams={n_best}, --num-beams "
            f"{n_best}), or sampling; the beam is {config.num_beams} wide"
        )
    penalties = BeamPenalties.of(config) if config.num_beams > 1 and not config.do_sample else None

    def translate_batch(texts: list[str]) -> list[list[ScoredTranslation]]:
        return _n_best_batch(translator, texts, n_best, alignment, penalties, generate_kwargs)

    yield from _by_windows(translator, lines, batch_size, lambda batches: map(translate_batch, batches), [])


def _n_best_batch(
    translator: RNNTranslationPipeline,
    texts: list[str],
    n_best: int,
    alignment: bool,
    penalties: BeamPenalties | None,  # None: not a beam search, a score is the sum of log-probabilities
    generate_kwargs: dict,
) -> list[list[ScoredTranslation]]:
    model, eos_token_id = translator.model, translator.model.config.eos_token_id
    encoded = translator.tokenizer(texts, padding=True, return_tensors="pt").to(model.device)
    source = {name: encoded[name] for name in ("input_ids", "attention_mask")}
    kwargs = translator._prepare_generate_kwargs({**generate_kwargs, "num_return_sequences": n_best})
    generated = model.generate(**source, **kwargs)  # (texts * n_best, 1 + len): the start token first
    # The pipeline's own decoding, which also warns of translations cut short by the length limit.
    translations = [
        result[translator.output_key]
        for per_text in generated.view(len(texts), n_best, -1).split(1)
        for result in translator.postprocess({"output_ids": per_text})
    ]
    targets = [row[1 : length_through_eos(row, eos_token_id)] for row in generated.tolist()]
    repeated = {name: tensor.repeat_interleave(n_best, dim=0) for name, tensor in source.items()}
    scored = score_targets(model, repeated, targets, output_attentions=alignment or bool(penalties and penalties.beta))
    entries = []
    for row, target in enumerate(scored):
        score = target.total
        if penalties is not None:
            coverage = None if target.attention is None else torch.from_numpy(target.attention.sum(axis=0))
            score = float(penalties.score(torch.tensor(score), len(target.ids), coverage))
        pairs = None
        if alignment:
            n_source = pieces(repeated["input_ids"][row][repeated["attention_mask"][row].bool()].tolist(), eos_token_id)
            pairs = hard_alignment(target.attention, n_source, pieces(target.ids, eos_token_id))
        entries.append(ScoredTranslation(translations[row], score, pairs, target.ids))
    return [sorted(entries[i : i + n_best], key=lambda entry: -entry.score) for i in range(0, len(entries), n_best)]


def translate_file(
    model_dir: str | os.PathLike | Sequence[str | os.PathLike],
    input_path: str | os.PathLike | None = None,
    output_path: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    dtype: str = "float32",
    weights: Sequence[float] | None = None,
    n_best: int | None = None,
    alignment: bool = False,
    engine: str | None = None,
    inter_threads: int = 1,
    **generate_kwargs,
) -> int:
    """Translate `input_path` (None: stdin) line by line into `output_path` (None: stdout); return the number of
    lines. `progress` shows a progress bar on stderr (None: when stderr is a terminal); `dtype` is the weights'
    type and `engine` what runs the search (see `load_translator`: "onnxruntime" translates over the model's ONNX
    graphs, and is the default for "int8"; there `inter_threads` batches translate at once). Several model
    directories translate as their
    ensemble, weighted by `weights` (`hf_rnn_seq2seq.ensemble`).

    With `n_best`, each input line N gives `n_best` output lines `N<tab>score<tab>translation` (N from 0, best
    first; none for an empty line). With `alignment`, each translation is followed by a tab and its alignment,
    `0-0 1-2 ...` (`format_alignment`).

    The translations go to `<output_path>.partial`, renamed to `output_path` once every line is done: a run that
    stops early never leaves a file that looks complete (nor overwrites an earlier complete one)."""
    if input_path is not None and not Path(input_path).is_file():
        what = "is a directory" if Path(input_path).is_dir() else "no such file"
        raise OSError(f"{input_path}: {what}")
    if output_path is not None and Path(output_path).is_dir():
        raise OSError(f"{output_path}: is a directory; give a file name to write the translations to")
    if len(model_dirs(model_dir)) > 1:
        if alignment:
            raise ValueError("alignments come from one model's attention: give one model directory, not an ensemble")
        if set(generate_kwargs) & set(BEAM_PENALTY_OPTIONS):
            raise ValueError("GNMT's penalties are options of one model's beam search, not of an ensemble's")
    translator = load_ensemble_translator(
        model_dirs(model_dir), weights, dtype=dtype, engine=engine, inter_threads=inter_threads
    )
    total = count_lines(input_path) if input_path is not None else None
    with ExitStack() as stack:
        source = stack.enter_context(_open_lines(input_path))
        partial = None if output_path is None else Path(f"{output_path}{PARTIAL_SUFFIX}")
        target = sys.stdout if partial is None else stack.enter_context(open(partial, "w", encoding="utf-8"))
        bar = stack.enter_context(
            tqdm(total=total, unit="line", file=sys.stderr, disable=None if progress is None else not progress)
        )
        if n_best is None and not alignment:
            translations = (f"{text}\n" for text in translate_lines(translator, source, batch_size, **generate_kwargs))
        else:
            n_best_lists = translate_lines_n_best(
                translator, source, n_best or 1, batch_size, alignment, **generate_kwargs
            )
            translations = (
                format_entries(index, entries, n_best is not None, alignment)
                for index, entries in enumerate(n_best_lists)
            )
        n_lines = 0
        try:
            for translation in translations:
                target.write(translation)
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


def format_entries(index: int, entries: list[ScoredTranslation], n_best: bool, alignment: bool) -> str:
    """The output lines of input line `index`: with `n_best`, `index<tab>score<tab>translation` per entry, else the
    best translation; then, with `alignment`, a tab and the alignment."""
    if not n_best:
        entries = entries[:1] or [ScoredTranslation("", 0.0, [])]  # an empty line stays an empty translation
    lines = []
    for entry in entries:
        fields = [str(index), f"{entry.score:.{SCORE_DECIMALS}f}", entry.text] if n_best else [entry.text]
        if alignment:
            fields.append(format_alignment(entry.alignment))
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


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


__all__ = [
    "ScoredTranslation",
    "format_entries",
    "model_dirs",
    "request_config",
    "translate_file",
    "translate_lines",
    "translate_lines_n_best",
]
