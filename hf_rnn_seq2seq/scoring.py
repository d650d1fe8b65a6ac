"""Score given translations with a model, and read word alignments from its attention.

    hf-rnn-seq2seq score outputs/koen --source test.ko --reference test.en

`score_targets` runs the model once over given target tokens (teacher forcing) and returns, per target, the
log-probability of each token given the source and the tokens before it, end-of-sentence included, and the attention
the Decoder paid while reading it: the gold score of OpenNMT-py, fairseq's `--score-reference`. `translate` scores its
n-best lists and reads its `--print-alignment` alignments from the same pass over the translations it found, which
gives the distributions the search saw.

Alignments are between subword pieces, not words: `srcidx-tgtidx` pairs of 0-based indices into the source
tokenizer's pieces of the input (`tokenizer.tokenize(text)`) and the target tokenizer's pieces of the translation,
the end-of-sentence token left out on both sides. Each target piece is aligned to the source piece it attended to
most (the argmax of its row of attention weights), as fairseq's `--print-alignment` and Marian's hard alignments do.
"""

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice, zip_longest

import numpy as np
import torch
from transformers import PreTrainedModel

from .loading import load_translator
from .modeling.loss import IGNORE_INDEX
from .modeling.modeling_rnn_seq2seq import shift_tokens_right
from .modeling.pipeline import RNNTranslationPipeline
from .text_files import count_lines

DEFAULT_BATCH_SIZE = 32  # sentences per batch, when translating too


@dataclass
class ScoredTarget:
    """One target scored against its source: `log_probs[t]` is log P(ids[t] | source, ids[:t]), natural log."""

    ids: list[int]  # the target's tokens through end-of-sentence, without the start token
    log_probs: list[float]
    attention: np.ndarray | None  # (len(ids), source tokens): what each target token attended to; None without

    @property
    def total(self) -> float:
        """log P(target | source): the sum over its tokens."""
        return math.fsum(self.log_probs)

    @property
    def per_token(self) -> float:
        return self.total / len(self.ids)


def check_attention(model: PreTrainedModel) -> None:
    if model.config.attention is None:
        raise ValueError("this model has no attention (config.attention=None): there are no alignments to print")


@torch.no_grad()
def score_targets(
    model: PreTrainedModel,
    source: dict[str, torch.Tensor],  # input_ids and attention_mask, (batch, src_len), right-padded
    targets: list[list[int]],  # one per source row: tokens through end-of-sentence, no start token
    output_attentions: bool = False,
) -> list[ScoredTarget]:
    """Each target's token log-probabilities given its source row (one teacher-forced pass), and with
    `output_attentions` the attention weights over the row's real source tokens. `model` may be an ensemble
    (`RNNSeq2SeqEnsemble`, without attention weights): its averaged log-probabilities are renormalised, as its beam
    search does."""
    if any(not target for target in targets):
        raise ValueError("a target to score has no tokens; it needs at least the end-of-sentence token")
    if output_attentions:
        check_attention(model)
    longest = max(map(len, targets))
    labels = torch.tensor([target + [IGNORE_INDEX] * (longest - len(target)) for target in targets])  # (batch, n)
    labels = labels.to(model.device)
    output = model(
        **source,
        decoder_input_ids=shift_tokens_right(labels, model.config.pad_token_id, model.config.decoder_start_token_id),
        output_attentions=output_attentions,
    )
    log_probs = torch.log_softmax(output.logits.float(), dim=-1)  # (batch, n, |V|)
    token_log_probs = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1).cpu()  # (batch, n)
    attention = output.cross_attentions[0][:, 0].float().cpu().numpy() if output_attentions else None
    source_lengths = source["attention_mask"].sum(dim=1).tolist()
    return [
        ScoredTarget(
            ids=target,
            log_probs=token_log_probs[row, : len(target)].tolist(),
            attention=None if attention is None else attention[row, : len(target), : source_lengths[row]],
        )
        for row, target in enumerate(targets)
    ]


def hard_alignment(attention: np.ndarray, n_source: int, n_target: int) -> list[tuple[int, int]]:
    """(source index, target index) for each of the first `n_target` target pieces: the one of the first `n_source`
    source pieces its attention weights (target pieces x source pieces) are highest on."""
    return [(int(source), target) for target, source in enumerate(attention[:n_target, :n_source].argmax(axis=1))]


def format_alignment(pairs: list[tuple[int, int]]) -> str:
    """`0-0 1-2 ...`: source-target index pairs, as fairseq, OpenNMT-py and Marian print them."""
    return " ".join(f"{source}-{target}" for source, target in pairs)


def length_through_eos(tokens: list[int], eos_token_id: int) -> int:
    """Length of `tokens` up to and including the first EOS after the start token (padding dropped)."""
    return tokens.index(eos_token_id, 1) + 1 if eos_token_id in tokens[1:] else len(tokens)


def pieces(ids: list[int], eos_token_id: int) -> int:
    """How many of `ids` are pieces of text: all but a final end-of-sentence token."""
    return len(ids) - 1 if ids and ids[-1] == eos_token_id else len(ids)


def score_lines(
    translator: RNNTranslationPipeline,
    sources: Iterable[str],
    references: Iterable[str],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[ScoredTarget]:
    """Score each reference against its source, in order, `batch_size` pairs at a time; line endings are stripped.
    The reference's tokens are the target tokenizer's, with its end-of-sentence token."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    pairs = zip_longest(sources, references)
    while batch := list(islice(pairs, batch_size)):
        if any(source is None or reference is None for source, reference in batch):
            raise ValueError("there are more sources than references, or more references than sources")
        source = translator.tokenizer(
            [source.rstrip("\r\n") for source, _ in batch], padding=True, return_tensors="pt"
        ).to(translator.model.device)
        targets = translator.target_tokenizer([reference.rstrip("\r\n") for _, reference in batch])["input_ids"]
        yield from score_targets(
            translator.model, {name: source[name] for name in ("input_ids", "attention_mask")}, targets
        )


def score_files(
    model_dir: str | os.PathLike,
    source_path: str | os.PathLike,
    reference_path: str | os.PathLike,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: str = "float32",
) -> Iterator[ScoredTarget]:
    """Score line N of `reference_path` as a translation of line N of `source_path` (UTF-8, one sentence a line)."""
    n_sources, n_references = count_lines(source_path), count_lines(reference_path)
    if n_sources != n_references:
        raise ValueError(
            f"{source_path} has {n_sources} lines but {reference_path} has {n_references}: give one reference a source"
        )
    translator = load_translator(model_dir, dtype=dtype)
    with ExitStack() as stack:
        sources, references = (
            stack.enter_context(open(path, encoding="utf-8", newline="\n")) for path in (source_path, reference_path)
        )
        yield from score_lines(translator, sources, references, batch_size)


__all__ = [
    "ScoredTarget",
    "check_attention",
    "format_alignment",
    "hard_alignment",
    "length_through_eos",
    "pieces",
    "score_files",
    "score_lines",
    "score_targets",
]
