"""Length limits relative to the source (fairseq's `max_len_a`/`max_len_b`, OpenNMT-py's `max_length_ratio`): each
sentence gets at most `int(max_len_a * source_length + max_len_b)` new tokens. generate() turns them into a
stopping criterion for transformers' loops; search.py's loops read each open sentence's limit instead."""

import torch
from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList


class SourceLengthCriteria(StoppingCriteria):
    """Stops each sentence at its own length `max_lengths[i]` (the decoder prompt included, as MaxLengthCriteria
    counts): generate()'s `max_len_a * source_length + max_len_b` new tokens.

    transformers' loops call it with the rows of every sentence, `rows // sentences` consecutive rows each (beams,
    candidates, returned sequences: generate() expands a batch with `repeat_interleave`). search.py's loops drop
    sentences, so they read `max_lengths` for the sentences still open (`sentence_max_lengths`) instead of calling it.
    """

    def __init__(self, max_lengths: torch.Tensor):  # (sentences,)
        self.max_lengths = max_lengths

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor | None, **kwargs) -> torch.Tensor:
        rows_per_sentence = input_ids.shape[0] // self.max_lengths.shape[0]
        limits = self.max_lengths.to(input_ids.device).repeat_interleave(rows_per_sentence)  # (rows,)
        return input_ids.shape[-1] >= limits


# A sentence gets at least this many new tokens whatever its source-relative limit: the step that may end it.
MIN_SOURCE_RELATIVE_TOKENS = 1


def source_relative_max_lengths(
    source_lengths: torch.Tensor,  # (sentences,): non-pad source tokens
    max_len_a: float | None,
    max_len_b: int | None,
    prompt_len: int,
) -> torch.Tensor:
    """(sentences,) each sentence's length limit, prompt included: `prompt_len + int(a * source_length + b)` (at
    least MIN_SOURCE_RELATIVE_TOKENS new tokens), rounded down as fairseq's `max_len_a`/`max_len_b` are; an unset
    `a` or `b` counts as 0."""
    a, b = (0 if value is None else value for value in (max_len_a, max_len_b))
    if not (isinstance(a, (int, float)) and a >= 0 and isinstance(b, int) and b >= 0):
        raise ValueError(f"max_len_a must be a number >= 0 and max_len_b an integer >= 0, got {a!r} and {b!r}")
    new_tokens = (a * source_lengths.double() + b).floor().long()
    return prompt_len + new_tokens.clamp(min=MIN_SOURCE_RELATIVE_TOKENS)


def sentence_max_lengths(
    stopping_criteria: StoppingCriteriaList, max_length: int, batch: int, device: torch.device
) -> tuple[StoppingCriteriaList, torch.Tensor | None]:
    """The criteria other than SourceLengthCriteria, and (batch,) each sentence's length limit: the request's
    `max_length` or, where smaller, the sentence's own (None when the request sets no source-relative limit)."""
    others = StoppingCriteriaList(c for c in stopping_criteria if not isinstance(c, SourceLengthCriteria))
    if len(others) == len(stopping_criteria):
        return others, None
    limits = torch.full((batch,), max_length, dtype=torch.long, device=device)
    for criterion in stopping_criteria:
        if isinstance(criterion, SourceLengthCriteria):
            limits = torch.minimum(limits, criterion.max_lengths.to(device))
    return others, limits
