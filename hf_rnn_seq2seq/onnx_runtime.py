"""Translate with onnxruntime, from the graphs `onnx_export` writes: no PyTorch model needed.

`OnnxTranslator` decodes greedily, or with a beam search that follows transformers' rules step for step, so that
its output equals `generate()`'s. The graphs' inputs and outputs are described in `onnx_export`.

Given several batches, it can translate `inter_threads` of them at once, each on its share of the threads (as
CTranslate2's `inter_threads`): a decoder step's products are small, so two threads on one batch wait on each other
more than two batches on one thread each (bench/DESIGN.md). That raises sentences per second on a file; one batch
alone then runs on fewer threads.
"""

import importlib.util
import logging
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from transformers import AutoConfig, GenerationConfig, PreTrainedTokenizerBase
from transformers.utils import CONFIG_NAME, GENERATION_CONFIG_NAME

from .modeling.generator import SHORTLIST_FILE, Shortlist
from .modeling.length_limits import source_relative_max_lengths
from .modeling.modeling_rnn_seq2seq import USE_SHORTLIST, read_generate_options
from .tokenization import load_tokenizers

logger = logging.getLogger(__name__)

ENCODER_FILE = "encoder.onnx"
DECODER_STEP_FILE = "decoder_step.onnx"
GENERATOR_FILE = "generator.onnx"
# Beside the graphs of a model with a shortlist: the Generator's weight (float32 (|V|, hidden), or int8 with a scale
# per row) and bias (|V|), and a graph that multiplies the shortlisted rows the runner gathers for a batch (onnx_export)
GENERATOR_WEIGHTS_FILE = "generator.npz"
SHORTLISTED_GENERATOR_FILE = "generator_shortlist.onnx"
QUANTIZATION_FILE = "quantization.json"  # beside quantized graphs: their weight type and settings (onnx_export)
ONNX_EXTRA = "onnx"  # the extra that installs onnx and onnxruntime: pip install 'hf-rnn-seq2seq[onnx]'
PROVIDERS = ["CPUExecutionProvider"]
NO_SPINNING = ("session.intra_op.allow_spinning", "0")  # session config entry: idle threads sleep (see __init__)
# Generation settings that make generate() search differently and that the runner does not implement: a model
# whose generation config sets one gets a warning, as its ONNX translations would differ.
UNSUPPORTED_GENERATION_SETTINGS = (
    "do_sample",
    "min_length",
    "min_new_tokens",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size",
    "encoder_repetition_penalty",
    "bad_words_ids",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "exponential_decay_length_penalty",
    "num_return_sequences",
)


def require_onnxruntime(needed_by: str) -> None:
    """Refuse to go on without onnxruntime, in one line that names the extra to install."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise ModuleNotFoundError(
            f"onnxruntime is not installed: {needed_by} needs the {ONNX_EXTRA} extra: "
            f"pip install 'hf-rnn-seq2seq[{ONNX_EXTRA}]'"
        )


def state_names(config) -> list[str]:
    """The recurrent state tensors the decoder step reads and returns, in graph order."""
    names = ["hidden"]
    if config.cell_type == "lstm":
        names.append("cell")
    if config.input_feeding:
        names.append("input_feed")
    return names


class ShortlistedGenerator(NamedTuple):
    """The Generator restricted to one batch's shortlisted target tokens: their ids, and the weights the
    shortlisted generator graph multiplies for them."""

    ids: np.ndarray  # (shortlisted,) target ids, ascending
    # weight (shortlisted, hidden) float32, or with int8 graphs (hidden, shortlisted) int8 and its scale
    # (shortlisted,); bias (shortlisted,)
    weights: dict[str, np.ndarray]


@dataclass
class SentenceBeams:
    """Beam search bookkeeping of one sentence, as in transformers: its finished hypotheses (best first, at most
    num_beams) as (length-normalised score, tokens), whether a running beam can still beat them, and whether
    the sentence is done."""

    finished: list[tuple[float, list[int]]] = field(default_factory=list)
    can_improve: bool = True
    done: bool = False


class OnnxTranslator:
    """Translate with the graphs `export_model_dir` wrote, in onnxruntime (no PyTorch model needed).

    `generate()` takes and returns token ids like `model.generate()`: `(batch, 1 + generated)` with the start
    token first and the same padding after each sentence's end. `translate()` works on text.
    """

    output_key = "translation_text"  # as the translation pipeline names each result's text

    def __init__(self, onnx_dir: str | os.PathLike, num_threads: int | None = None, inter_threads: int = 1):
        """`num_threads`: the threads to use in all (None: onnxruntime's default, every core); `inter_threads`: the
        batches `translate_batches` (and a call over several batches) translates at once, each on
        `num_threads // inter_threads` of them (at least one)."""
        onnx_dir = Path(onnx_dir)
        if inter_threads < 1:
            raise ValueError(f"inter_threads must be at least 1, got {inter_threads}")
        for file_name in (ENCODER_FILE, DECODER_STEP_FILE, GENERATOR_FILE, CONFIG_NAME, GENERATION_CONFIG_NAME):
            if not (onnx_dir / file_name).is_file():
                raise OSError(f"{onnx_dir}: no {file_name}; export the model first (hf-rnn-seq2seq export)")
        # Imported here, not with the module: the exporter reads this module's file names and state layout and
        # needs no runtime, so `hf-rnn-seq2seq export` starts without it.
        require_onnxruntime("translating with ONNX graphs")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if inter_threads > 1:
            # A session runs from several Python threads at once; each run gets its share of the threads.
            options.intra_op_num_threads = max(1, (num_threads or os.cpu_count() or 1) // inter_threads)
        elif num_threads is not None:
            options.intra_op_num_threads = num_threads
        self.inter_threads = inter_threads
        # Each session has its own intra-op threads, and decoding alternates between sessions (a decoder step, then
        # the Generator) with numpy in between. Threads that spin waiting for their session's next run would hold
        # the cores the next session and numpy need: decoding ran several times slower (bench/DESIGN.md).
        options.add_session_config_entry(*NO_SPINNING)
        # Each session's memory arena keeps the peak of every tensor size it has seen; decoding's tensors are small,
        # and without the arenas peak memory was lower at the same speed (bench/DESIGN.md).
        options.enable_cpu_mem_arena = False
        self.encoder = onnxruntime.InferenceSession(onnx_dir / ENCODER_FILE, options, providers=PROVIDERS)
        self.step = onnxruntime.InferenceSession(onnx_dir / DECODER_STEP_FILE, options, providers=PROVIDERS)
        self.generator = onnxruntime.InferenceSession(onnx_dir / GENERATOR_FILE, options, providers=PROVIDERS)
        self.shortlist, self.generator_weights, self.shortlisted_generator = None, {}, None
        shortlist_files = (SHORTLIST_FILE, GENERATOR_WEIGHTS_FILE, SHORTLISTED_GENERATOR_FILE)
        if all((onnx_dir / file_name).is_file() for file_name in shortlist_files):
            self.shortlist = Shortlist.load(onnx_dir / SHORTLIST_FILE)
            with np.load(onnx_dir / GENERATOR_WEIGHTS_FILE, allow_pickle=False) as arrays:
                self.generator_weights = dict(arrays)  # bias, and weight or (int8 graphs) weight_int8, scale
            path = onnx_dir / SHORTLISTED_GENERATOR_FILE
            self.shortlisted_generator = onnxruntime.InferenceSession(path, options, providers=PROVIDERS)
        self.config = AutoConfig.from_pretrained(onnx_dir)
        self.generation_config = GenerationConfig.from_pretrained(onnx_dir)
        read_generate_options(self.generation_config, onnx_dir / GENERATION_CONFIG_NAME)  # max_len_a, ...
        # What generate() uses for a setting that neither the call nor the model's generation config sets.
        self.generation_defaults = GenerationConfig._get_default_generation_params()
        ignored = [
            name
            for name in UNSUPPORTED_GENERATION_SETTINGS
            if getattr(self.generation_config, name, None) not in (None, self.generation_defaults.get(name))
        ]
        if ignored:
            logger.warning("the ONNX runner ignores these generation settings: %s", ", ".join(ignored))
        self.state_names = state_names(self.config)
        # The exporter drops graph inputs a model does not read (the source, without attention).
        self.step_inputs = {node.name for node in self.step.get_inputs()}
        self._tokenizers: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase] | None = None
        self._onnx_dir = onnx_dir

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        """Run the encoder graph: the source side and the initial state, by input/output name."""
        names = [node.name for node in self.encoder.get_outputs()]
        outputs = self.encoder.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return dict(zip(names, outputs)) | {"attention_mask": attention_mask}

    def decode_step(
        self,
        tokens: np.ndarray,
        inputs: dict[str, np.ndarray],
        k: int = 1,
        vocabulary: ShortlistedGenerator | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One decoder step for `tokens` (batch,). Returns the step's outputs by name (`h_dec`, the `k` best
        `top_log_probs` and `top_tokens`, `attention_weights`, ...) and the inputs of the next step. The Generator
        scores the whole vocabulary (`logits` (batch, |V|) among the outputs), or only a shortlist's tokens
        (`vocabulary`), its log-softmax normalised over them, as generate(use_shortlist=True) does."""
        feeds = {name: value for name, value in inputs.items() if name in self.step_inputs}
        feeds["input_ids"] = tokens[:, None]
        names = [node.name for node in self.step.get_outputs()]
        outputs = dict(zip(names, self.step.run(None, feeds)))
        if vocabulary is None:
            names = [node.name for node in self.generator.get_outputs()]
            feeds = {"h_dec": outputs["h_dec"], "k": np.array([k], dtype=np.int64)}
            outputs |= dict(zip(names, self.generator.run(None, feeds)))
        else:
            feeds = {"h_dec": outputs["h_dec"], **vocabulary.weights, "k": np.array([k], dtype=np.int64)}
            top_log_probs, top_positions = self.shortlisted_generator.run(None, feeds)
            outputs |= {"top_log_probs": top_log_probs, "top_tokens": vocabulary.ids[top_positions]}
        next_inputs = inputs | {name: outputs[f"next_{name}"] for name in self.state_names}
        return outputs, next_inputs

    def _shortlisted_vocabulary(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> ShortlistedGenerator:
        """The batch's shortlisted target ids with the end-of-sentence token, and the Generator's rows for them."""
        if self.shortlist is None:
            raise ValueError(
                f"{self._onnx_dir}: these graphs were exported from a model without a shortlist (or before this "
                f"version wrote {SHORTLISTED_GENERATOR_FILE}): build one if needed (hf-rnn-seq2seq shortlist "
                "MODEL_DIR TRAINING_DATA), then export again (or translate MODEL_DIR with --engine onnxruntime)"
            )
        eos = self.generation_config.eos_token_id
        eos = self.config.eos_token_id if eos is None else eos
        source, mask = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        ids = self.shortlist.target_ids(source, mask, also=eos).numpy()
        weights = self.generator_weights
        if "weight" in weights:  # float32 graphs: the rows
            return ShortlistedGenerator(ids, {"weight": weights["weight"][ids], "bias": weights["bias"][ids]})
        # int8 graphs: the columns of the transposed int8 weight, and their scales
        weight_int8 = np.ascontiguousarray(weights["weight_int8"][:, ids])
        return ShortlistedGenerator(
            ids, {"weight": weight_int8, "scale": weights["scale"][ids], "bias": weights["bias"][ids]}
        )

    def generate(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        early_stopping: bool | str | None = None,
        max_len_a: float | None = None,
        max_len_b: int | None = None,
        use_shortlist: bool | None = None,
    ) -> np.ndarray:
        """Greedy (`num_beams=1`) or beam search; unset options come from the saved generation config.
        `max_len_a` / `max_len_b` limit each sentence to `int(a * source_length + b)` new tokens as the model's
        generate() does (source_length: its tokens in `attention_mask`); `max_new_tokens` still applies.
        `use_shortlist` scores only the batch's shortlisted tokens, as the model's generate() does (from the
        shortlist the graphs were exported with)."""
        num_beams = num_beams or self._setting("num_beams")
        if max_new_tokens is None:
            # max_length counts the decoder start token, as generate() counts it for encoder-decoder models.
            max_new_tokens = self.generation_config.max_new_tokens or self._setting("max_length") - 1
        length_penalty = self._setting("length_penalty") if length_penalty is None else length_penalty
        early_stopping = self._setting("early_stopping") if early_stopping is None else early_stopping
        input_ids = np.asarray(input_ids, dtype=np.int64)
        if attention_mask is None:
            attention_mask = np.ones_like(input_ids)
        attention_mask = np.asarray(attention_mask, dtype=np.int64)
        max_len_a = getattr(self.generation_config, "max_len_a", None) if max_len_a is None else max_len_a
        max_len_b = getattr(self.generation_config, "max_len_b", None) if max_len_b is None else max_len_b
        limits = np.full(len(input_ids), max_new_tokens)  # (batch,) new tokens each sentence may have
        if max_len_a is not None or max_len_b is not None:
            source_lengths = torch.from_numpy(attention_mask.sum(axis=-1))
            limits = np.minimum(limits, source_relative_max_lengths(source_lengths, max_len_a, max_len_b, 0).numpy())
        if use_shortlist is None:
            use_shortlist = getattr(self.generation_config, USE_SHORTLIST, None)
        vocabulary = self._shortlisted_vocabulary(input_ids, attention_mask) if use_shortlist else None
        inputs = self.encode(input_ids, attention_mask)
        if num_beams == 1:
            return self._greedy(inputs, limits, vocabulary)
        return self._beam_search(inputs, num_beams, limits, length_penalty, early_stopping, vocabulary)

    def _setting(self, name: str):
        value = getattr(self.generation_config, name)
        return self.generation_defaults[name] if value is None else value

    def _greedy(
        self, inputs: dict[str, np.ndarray], limits: np.ndarray, vocabulary: ShortlistedGenerator | None
    ) -> np.ndarray:
        """`limits` (batch,): the new tokens each sentence may have; `vocabulary`: a shortlist (`decode_step`).
        A sentence that ends (EOS or its limit) leaves the rows the next steps compute."""
        config = self.config
        sequences = np.full((len(limits), limits.max() + 1), config.pad_token_id, dtype=np.int64)
        sequences[:, 0] = config.decoder_start_token_id
        active = np.arange(len(limits))  # the sentences still decoding, one row of `inputs` each
        for generated in range(1, limits.max() + 1):
            outputs, inputs = self.decode_step(sequences[active, generated - 1], inputs, vocabulary=vocabulary)
            tokens = outputs["top_tokens"][:, 0]
            sequences[active, generated] = tokens
            running = (tokens != config.eos_token_id) & (generated < limits[active])
            if not running.any():
                break
            if not running.all():
                active, inputs = active[running], self._take_rows(inputs, np.flatnonzero(running))
        return sequences[:, : generated + 1]

    def _beam_search(
        self,
        inputs: dict[str, np.ndarray],
        num_beams: int,
        limits: np.ndarray,
        length_penalty: float,
        early_stopping: bool | str,
        vocabulary: ShortlistedGenerator | None,
    ) -> np.ndarray:
        """transformers' beam search: each step keeps the best `2 * num_beams` continuations of a sentence's
        beams; those among the first `num_beams` that end (EOS, or the sentence's length limit: `limits` (batch,) new
        tokens) become hypotheses scored `sum log p / length ** length_penalty`, the others (up to `num_beams`) run
        on. A sentence stops when no running beam can beat its worst kept hypothesis (or, with `early_stopping=True`,
        when it has `num_beams`)."""
        config = self.config
        batch = len(limits)
        n_candidates = 2 * num_beams  # continuations kept per sentence and step, as in transformers
        if n_candidates > (config.decoder_vocab_size if vocabulary is None else len(vocabulary.ids)):
            vocabulary_kind = "vocabulary" if vocabulary is None else "shortlist (for this batch)"
            raise ValueError(f"num_beams={num_beams} needs a {vocabulary_kind} of at least {n_candidates} tokens")
        sentences = [SentenceBeams() for _ in range(batch)]
        # Before the first step each sentence has one beam (its start token); afterwards num_beams, in rows
        # b * num_beams ... (b + 1) * num_beams - 1.
        # A sentence that is done leaves the rows the next steps compute: `alive` holds those still searching.
        alive = np.arange(batch)
        sequences = np.full((batch, 1), config.decoder_start_token_id, dtype=np.int64)
        scores = np.zeros((batch, 1), dtype=np.float32)
        for generated in range(1, limits.max() + 1):
            outputs, inputs = self.decode_step(sequences[:, -1], inputs, k=n_candidates, vocabulary=vocabulary)
            n, beams_per_sentence = scores.shape
            # Each beam's best continuations, scored by the whole beam; then the sentence's best, best first.
            candidates = scores[:, :, None] + outputs["top_log_probs"].reshape(n, beams_per_sentence, -1)
            candidates = candidates.reshape(n, -1)  # (alive sentences, beams * n_candidates)
            top = np.argsort(-candidates, axis=1, kind="stable")[:, :n_candidates]
            top_scores = np.take_along_axis(candidates, top, axis=1)
            top_rows = np.arange(n)[:, None] * beams_per_sentence + top // n_candidates  # the beam each extends
            top_tokens = np.take_along_axis(outputs["top_tokens"].reshape(n, -1), top, axis=1)
            ends = (top_tokens == config.eos_token_id) | (generated >= limits[alive])[:, None]
            # The first num_beams candidates that do not end run on; a stable sort puts them first, in order. Each
            # beam has one EOS candidate at most, so there are num_beams of them until the length limit.
            running = np.argsort(ends, axis=1, kind="stable")[:, :num_beams]
            rows = np.take_along_axis(top_rows, running, axis=1).ravel()
            tokens = np.take_along_axis(top_tokens, running, axis=1).ravel()
            scores = np.take_along_axis(top_scores, running, axis=1)

            ending_beams = ends[:, :num_beams].any(axis=1)
            for row, b in enumerate(alive):
                sentence = sentences[b]
                full = len(sentence.finished) == num_beams
                if ending_beams[row] and sentence.can_improve and not (early_stopping is True and full):
                    for i in np.flatnonzero(ends[row, :num_beams]):
                        hypothesis = [*sequences[top_rows[row, i]].tolist(), int(top_tokens[row, i])]
                        score = float(top_scores[row, i]) / generated**length_penalty
                        sentence.finished.append((score, hypothesis))
                    sentence.finished = sorted(sentence.finished, key=lambda h: -h[0])[:num_beams]
                best_running = None if generated >= limits[b] else float(scores[row, 0])
                self._update_done(
                    sentence, best_running, generated, num_beams, int(limits[b]), length_penalty, early_stopping
                )
            searching = np.array([not sentences[b].done for b in alive])
            if not searching.any():
                break
            sequences = np.concatenate([sequences[rows], tokens[:, None]], axis=1)
            inputs = self._select_rows(inputs, rows, expand=beams_per_sentence == 1, num_beams=num_beams)
            if not searching.all():
                kept_rows = np.flatnonzero(np.repeat(searching, num_beams))
                alive, scores, sequences = alive[searching], scores[searching], sequences[kept_rows]
                inputs = self._take_rows(inputs, kept_rows)
        # generate() fills beam-search output with `pad_token_id or eos_token_id`: EOS when the pad id is 0.
        fill = config.pad_token_id or config.eos_token_id
        return self._pad([sentence.finished[0][1] for sentence in sentences], fill)

    @staticmethod
    def _update_done(
        sentence: SentenceBeams,
        best_running: float | None,
        generated: int,
        num_beams: int,
        max_new_tokens: int,
        length_penalty: float,
        early_stopping: bool | str,
    ) -> None:
        full = len(sentence.finished) == num_beams
        if full and best_running is not None:
            # The best a running beam could still score: now (the default heuristic), or at the length limit.
            best_length = max_new_tokens if early_stopping == "never" and length_penalty > 0 else generated
            sentence.can_improve &= best_running / best_length**length_penalty > sentence.finished[-1][0]
        sentence.done = not sentence.can_improve or best_running is None or (early_stopping is True and full)

    def _select_rows(self, inputs: dict[str, np.ndarray], rows: np.ndarray, expand: bool, num_beams: int) -> dict:
        """The step inputs of the chosen beams: the state follows `rows`; the source side is the same for all beams
        of a sentence, so it only grows from one row per sentence to `num_beams`, once."""
        selected = dict(inputs)
        for name in self.state_names:
            selected[name] = inputs[name].take(rows, axis=1 if name in ("hidden", "cell") else 0)
        if expand:
            for name in ("encoder_hidden_states", "attention_mask", "attention_keys"):
                if name in inputs:
                    selected[name] = inputs[name].repeat(num_beams, axis=0)
        return selected

    def _take_rows(self, inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        """Every step input (state and source side) of the batch rows `rows` only."""
        return {name: value.take(rows, axis=1 if name in ("hidden", "cell") else 0) for name, value in inputs.items()}

    @staticmethod
    def _pad(sequences: list[list[int]], fill: int) -> np.ndarray:
        padded = np.full((len(sequences), max(map(len, sequences))), fill, dtype=np.int64)
        for i, sequence in enumerate(sequences):
            padded[i, : len(sequence)] = sequence
        return padded

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The source tokenizer (saved next to the graphs by `export_model_dir`), as the pipeline names it."""
        return self._load_tokenizers()[0]

    @property
    def target_tokenizer(self) -> PreTrainedTokenizerBase:
        return self._load_tokenizers()[1]

    def _load_tokenizers(self) -> tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
        if self._tokenizers is None:
            self._tokenizers = load_tokenizers(self._onnx_dir)
        return self._tokenizers

    def translate(self, texts: list[str], **generate_kwargs) -> list[str]:
        """Translate a batch of texts (tokenizers saved next to the graphs by `export_model_dir`)."""
        return next(self.translate_batches([texts], **generate_kwargs))

    def translate_batches(self, batches: list[list[str]], **generate_kwargs) -> Iterator[list[str]]:
        """Translate each batch of texts, in order, `inter_threads` batches at a time. Only the search runs in the
        worker threads: the tokenizers stay in the caller's (a fast tokenizer sets its padding on each call)."""
        source_tokenizer, target_tokenizer = self._load_tokenizers()
        encoded = [source_tokenizer(texts, padding=True, return_tensors="np") for texts in batches]
        for output_ids in self.generate_batches(encoded, **generate_kwargs):
            yield target_tokenizer.batch_decode(output_ids, skip_special_tokens=True)

    def generate_batches(self, batches: list[Mapping[str, np.ndarray]], **generate_kwargs) -> Iterator[np.ndarray]:
        """`generate` over batches of `input_ids` and `attention_mask` (as a tokenizer returns them with
        `return_tensors="np"`), in order, `inter_threads` batches at a time, each in a worker thread."""

        def search(batch: Mapping[str, np.ndarray]) -> np.ndarray:
            return self.generate(batch["input_ids"], batch["attention_mask"], **generate_kwargs)

        if self.inter_threads == 1:
            yield from map(search, batches)
        else:
            with ThreadPoolExecutor(self.inter_threads) as pool:
                yield from pool.map(search, batches)

    def __call__(
        self, texts: str | list[str], batch_size: int | None = None, **generate_kwargs
    ) -> list[dict[str, str]]:
        """Translate as `RNNTranslationPipeline` is called (so `translate.translate_lines` takes either): one
        `{"translation_text": ...}` per text, `batch_size` texts per `generate` call (None: all at once)."""
        texts = [texts] if isinstance(texts, str) else texts
        batch_size = batch_size or max(len(texts), 1)
        batches = [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        translations = self.translate_batches(batches, **generate_kwargs)
        return [{self.output_key: translation} for batch in translations for translation in batch]


__all__ = [
    "DECODER_STEP_FILE",
    "ENCODER_FILE",
    "GENERATOR_FILE",
    "GENERATOR_WEIGHTS_FILE",
    "NO_SPINNING",
    "ONNX_EXTRA",
    "QUANTIZATION_FILE",
    "SHORTLISTED_GENERATOR_FILE",
    "OnnxTranslator",
    "require_onnxruntime",
    "state_names",
]
