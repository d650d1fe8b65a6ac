"""Greedy and beam search that drop each sentence from the batch as soon as its translation is final.

transformers' loops (`GenerationMixin._sample` and `_beam_search`) step every sentence of a batch until
the batch's last one has ended. For our Decoder every row of a step costs a full RNN step and Generator
product, and on test sets of mixed lengths many of a batch's sentence-steps come after the sentence's own
end (bench/DESIGN.md counts them). The loops here take the same steps with the
same arithmetic, but shrink the batch (Decoder state, `h_enc`, source mask) to the sentences still open,
so they return the same token ids as transformers' loops (tests/modeling/test_search.py holds them to it) -- up to
floating-point near-ties: a matrix product over fewer rows may round its last bit differently, as a
batch of one sentence may against a batch of many in either loop.

The model sends a request here only when its result is the token ids alone and every rule it asks for is
one these loops follow (`plain_request`): no logits processors, stopping on length and EOS only, no sampling,
no streamer, no scores. Everything else (repetition penalties, `min_new_tokens`, scores, streaming, ...)
runs through transformers' loops unchanged. Beam search calls transformers' own vectorised steps (top-k
continuations, finished-hypothesis update, early-stopping heuristic) on the open sentences only, so its
rules are transformers' by construction. A sentence leaves when transformers' rules would stop it or,
earlier, when no running beam can ever enter the hypotheses it returns (`returned_are_settled`): from
then on transformers' loop steps it without changing its output.

A saved model ships this file, and a Hub repository runs it with whatever transformers its user has (our pip
pin does not apply), so a later release may have renamed or changed a private name these loops use. All of
them are named in one place, `TRANSFORMERS_METHODS` (with the keyword arguments the loops pass each method)
and `GENERATION_CONFIG_TENSORS`, and the loops reach them only through it. Before a request comes here,
`runs_with_this_transformers` checks that each one exists and that each method accepts those keywords; if
not, the request runs through transformers' own loops (the same outputs, only slower) and a warning naming
what is missing is logged once per process. The loops never meet a missing name mid-search.
"""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import GenerationConfig, GenerationMixin
from transformers import __version__ as TRANSFORMERS_VERSION
from transformers.generation.logits_process import LogitsProcessorList
from transformers.generation.stopping_criteria import (
    EosTokenCriteria,
    MaxLengthCriteria,
    StoppingCriteriaList,
)
from transformers.utils import logging

from .attention import float32_for_decoding
from .encoder import EncoderOutput, check_token_ids
from .generator import pointer_mixture
from .length_limits import SourceLengthCriteria, sentence_max_lengths
from .penalties import BeamPenalties

# What generate() passes on to its decoding loop for a request with nothing but a source and its mask (and, with a
# shortlist, the Generator's columns).
PLAIN_MODEL_KWARGS = {"encoder_outputs", "attention_mask", "use_cache", "output_vocabulary"}
# transformers' "minus infinity" for beams that must not be chosen; a score below it marks no hypothesis.
NO_SCORE = -1.0e9
NO_BEAM = -1  # transformers' beam index for positions not generated

logger = logging.get_logger(__name__)


@dataclass(frozen=True)
class PrivateMethod:
    """A private method of transformers' GenerationMixin, and the keyword arguments beam_search() passes it."""

    name: str
    keywords: tuple[str, ...]


# Every private transformers method these loops call, by what it does for them: the steps of transformers'
# own beam search, run on the open sentences only.
TRANSFORMERS_METHODS = {
    "top_k_continuations": PrivateMethod(
        "_get_top_k_continuations",
        ("accumulated_log_probs", "running_sequences", "running_beam_indices", "cur_len", "decoder_prompt_len",
         "do_sample", "beams_to_keep", "num_beams", "batch_size"),
    ),
    "running_beams": PrivateMethod(
        "_get_running_beams_for_next_iteration",
        ("topk_log_probs", "topk_running_sequences", "topk_running_beam_indices",
         "next_token_hits_stopping_criteria", "num_beams"),
    ),
    "finished_beams": PrivateMethod(
        "_update_finished_beams",
        ("sequences", "topk_running_sequences", "beam_scores", "topk_log_probs", "beam_indices",
         "topk_running_beam_indices", "is_early_stop_heuristic_unsatisfied", "is_sent_finished",
         "next_token_hits_stopping_criteria", "top_num_beam_mask", "num_beams", "cur_len", "decoder_prompt_len",
         "length_penalty", "early_stopping"),
    ),
    "early_stop_heuristic": PrivateMethod(
        "_check_early_stop_heuristic",
        ("is_early_stop_heuristic_unsatisfied", "running_beam_scores", "beam_scores", "is_sent_finished", "cur_len",
         "max_length", "decoder_prompt_len", "early_stopping", "length_penalty"),
    ),
}  # fmt: skip
# The private attributes these loops read on the generation config: the special tokens as tensors, which
# generate() sets on its own copy of the config for each request.
GENERATION_CONFIG_TENSORS = {"pad": "_pad_token_tensor", "eos": "_eos_token_tensor"}


def transformers_method(model: GenerationMixin, role: str) -> Callable:
    """The private transformers method that does `role` (a key of TRANSFORMERS_METHODS), bound to `model`."""
    return getattr(model, TRANSFORMERS_METHODS[role].name)


def generation_config_tensor(generation_config: GenerationConfig, token: str) -> torch.Tensor | None:
    """The request's `token` ids ("pad" or "eos") as generate() prepared them, or None if it has none."""
    return getattr(generation_config, GENERATION_CONFIG_TENSORS[token])


def runs_with_this_transformers(model: GenerationMixin, generation_config: GenerationConfig) -> bool:
    """Whether this transformers has every private name these loops use, as they use it. If not, warn once
    per process (a long run would repeat it for every batch): the request runs through transformers' loops."""
    attributes = GENERATION_CONFIG_TENSORS.values()
    missing = [
        *unusable_methods(type(model)),
        *(f"GenerationConfig.{name}" for name in attributes if not hasattr(generation_config, name)),
    ]
    if missing:
        logger.warning_once(
            f"transformers {TRANSFORMERS_VERSION} lacks, or has changed, private names that this model's greedy "
            f"and beam search loops use: {', '.join(missing)}. generate() runs transformers' own loops instead: "
            "the same outputs, only slower (they step every sentence of a batch until its last one has ended)."
        )
    return not missing


@functools.cache  # a class's methods stay the same while the process runs; a request's config is new each time
def unusable_methods(model_class: type[GenerationMixin]) -> tuple[str, ...]:
    """The TRANSFORMERS_METHODS that `model_class` lacks or that refuse the keyword arguments the loops pass."""
    return tuple(f"{method.name}()" for method in TRANSFORMERS_METHODS.values() if not accepts(model_class, method))


def accepts(model_class: type[GenerationMixin], method: PrivateMethod) -> bool:
    """Whether `model_class` has `method.name`, and a call with exactly `method.keywords` binds to it."""
    found = inspect.getattr_static(model_class, method.name, None)
    if isinstance(found, staticmethod):  # as transformers' `_check_early_stop_heuristic` is
        function, instance = found.__func__, ()
    elif inspect.isfunction(found):
        function, instance = found, (None,)  # stands for `self`
    else:
        return False
    try:
        inspect.signature(function).bind(*instance, **dict.fromkeys(method.keywords))
    except TypeError:  # a keyword it no longer takes, or a parameter it now requires
        return False
    return True


# The stopping criteria search.py's loops follow: length (the request's and each sentence's) and EOS.
PLAIN_CRITERIA = (MaxLengthCriteria, EosTokenCriteria, SourceLengthCriteria)


def plain_request(
    model: GenerationMixin,
    logits_processor: LogitsProcessorList,
    stopping_criteria: StoppingCriteriaList,
    generation_config: GenerationConfig,
    synced_gpus: bool,
    streamer,
    model_kwargs: dict,
) -> bool:
    """Whether the request asks for nothing but what these loops do, and this transformers has what they use
    from it (otherwise transformers' loops run)."""
    plain = (
        not model.training  # dropout masks would differ with the batch's shape
        and len(logits_processor) == 0
        and all(type(criterion) in PLAIN_CRITERIA for criterion in stopping_criteria)
        and streamer is None
        and not synced_gpus
        and not generation_config.do_sample
        and not generation_config.return_dict_in_generate
        and generation_config.prefill_chunk_size is None
        and not generation_config.low_memory  # transformers' beam search refuses it
        and bool(model_kwargs.get("use_cache"))
        and set(model_kwargs) <= PLAIN_MODEL_KWARGS
        and isinstance(model_kwargs.get("encoder_outputs"), EncoderOutput)
    )
    return (
        plain  # checked first: a request that is not plain runs transformers' loops anyway, with nothing to warn
        and runs_with_this_transformers(model, generation_config)
        and generation_config_tensor(generation_config, "pad") is not None  # what ended rows are filled with
    )


class OpenRows:
    """The Decoder's side of the rows still being decoded: `h_enc`, source mask and recurrent state.

    Steps call the Decoder and Generator directly: the model's forward() would build two ModelOutputs and
    a boolean mask at every step, for the same arithmetic.
    """

    def __init__(
        self, model: GenerationMixin, input_ids: torch.Tensor, model_kwargs: dict, track_coverage: bool = False
    ):
        self.decoder, self.generator = model.model.decoder, model.generator
        check_token_ids(input_ids, model.config.decoder_vocab_size, "decoder_input_ids")  # as forward() does
        encoder_outputs, attention_mask = model_kwargs["encoder_outputs"], model_kwargs.get("attention_mask")
        self.h_enc = float32_for_decoding(encoder_outputs.last_hidden_state)  # (rows, src_len, enc_out)
        if attention_mask is None:
            attention_mask = self.h_enc.new_ones(self.h_enc.shape[:2])
        self.source_mask = attention_mask.bool()  # (rows, src_len)
        self.state = self.decoder.init_state(encoder_outputs)  # from the Encoder's final state
        self.output_vocabulary = model_kwargs.get("output_vocabulary")  # a shortlist's columns, or None: all
        self.device = input_ids.device  # where the search keeps its tensors (the Generator may sit elsewhere)
        # With `track_coverage`, the attention each row has paid each source token so far, for GNMT's coverage
        # penalty: (rows, src_len), following the rows through reorder() and keep() as their state does.
        self.coverage = self.h_enc.new_zeros(self.source_mask.shape, dtype=torch.float32) if track_coverage else None

    def next_logits(self, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Feed (rows, tokens) and return the next token's logits (rows, |V|) in float32, as transformers reads them."""
        decoded = self.decoder(decoder_input_ids, self.h_enc, self.source_mask, self.state)
        self.state = decoded.state
        if self.coverage is not None:
            self.coverage = self.coverage + decoded.attention.float().sum(dim=1)  # attention: (rows, tokens, src_len)
        logits = self.generator(decoded.h_dec, self.output_vocabulary)  # (rows, tokens, |V|)
        if decoded.p_gen_logit is not None:  # copy_attention: the pointer-generator's log-probabilities
            logits = pointer_mixture(logits, decoded.p_gen_logit, decoded.attention, self.state.source_ids)
        return logits[:, -1].to(dtype=torch.float32, device=self.device)

    def reorder(self, beam_idx: torch.Tensor) -> None:
        self.state = self.state.reorder(beam_idx)
        if self.coverage is not None:
            self.coverage = self.coverage[beam_idx]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every row not in `rows`."""
        self.state = self.state.select(rows)
        self.h_enc, self.source_mask = self.h_enc[rows], self.source_mask[rows]
        if self.coverage is not None:
            self.coverage = self.coverage[rows]


def max_length_and_eos(stopping_criteria: StoppingCriteriaList, device: torch.device) -> tuple[int, torch.Tensor]:
    """The length at which every row stops, and the token ids that end a row (possibly none)."""
    max_length = min(c.max_length for c in stopping_criteria if isinstance(c, MaxLengthCriteria))
    eos = [c.eos_token_id.to(device) for c in stopping_criteria if isinstance(c, EosTokenCriteria)]
    return max_length, torch.cat(eos) if eos else torch.empty(0, dtype=torch.long, device=device)


def greedy_search(
    model: GenerationMixin,
    input_ids: torch.Tensor,  # (batch, prompt_len): the decoder start token
    stopping_criteria: StoppingCriteriaList,
    generation_config: GenerationConfig,
    model_kwargs: dict,
) -> torch.Tensor:
    """transformers' greedy search (rows that ended get `pad_token_id`), stepping only the open rows."""
    max_length, eos = max_length_and_eos(stopping_criteria, input_ids.device)
    pad = generation_config_tensor(generation_config, "pad")
    batch, cur_len = input_ids.shape
    _, limits = sentence_max_lengths(stopping_criteria, max_length, batch, input_ids.device)
    sequences = input_ids.new_full((batch, max(max_length, cur_len + 1)), int(pad))
    sequences[:, :cur_len] = input_ids
    open_rows = torch.arange(batch, device=input_ids.device)  # rows of `sequences` still being decoded
    decoder = OpenRows(model, input_ids, model_kwargs)
    step_input = input_ids
    while True:
        next_tokens = decoder.next_logits(step_input).argmax(dim=-1)  # (open,)
        sequences[open_rows, cur_len] = next_tokens
        cur_len += 1
        going = ~torch.isin(next_tokens, eos)
        if limits is not None:  # a sentence at its own length limit leaves the batch
            going &= cur_len < limits[open_rows]
        if cur_len >= max_length or not going.any():
            return sequences[:, :cur_len]
        if not going.all():
            kept = going.nonzero().squeeze(1)
            open_rows, next_tokens = open_rows[kept], next_tokens[kept]
            decoder.keep(kept)
        step_input = next_tokens.unsqueeze(1)


def returned_are_settled(
    running_scores: torch.Tensor,  # (sentences, num_beams): summed log-probabilities, best first
    scores: torch.Tensor,  # (sentences, num_beams): finished hypotheses' scores, best first
    is_sent_finished: torch.Tensor,  # (sentences, num_beams)
    generation_config: GenerationConfig,
    cur_len: int,
    prompt_len: int,
) -> torch.Tensor:
    """(sentences,) True where no running beam can ever enter the `num_return_sequences` best finished
    hypotheses, so those are the ones transformers' loop returns however long it steps the sentence on.

    An exact bound, not transformers' early-stopping heuristic: log-probabilities are <= 0, so a beam's
    summed score only falls as it grows, and a hypothesis finished later scores at most the best running
    beam's sum divided by its length penalty at the length most favourable to it (the longest possible with
    a positive penalty, the next step's otherwise). Without a length penalty this ends a sentence once its
    best hypothesis has ended and outscores every running beam, where transformers' rule waits for
    `num_beams` finished hypotheses. The bound holds for GNMT's penalties too: lp(Y) grows with |Y| as |Y|^α does,
    and the coverage penalty is never above 0.
    """
    gc = generation_config
    returned = gc.num_return_sequences
    best_length = (gc.max_length if gc.length_penalty > 0 else cur_len + 1) - prompt_len
    best_later = running_scores.amax(dim=1) / BeamPenalties.of(gc).length_divisor(best_length)
    return is_sent_finished[:, returned - 1] & (best_later < scores[:, returned - 1])


def beam_search(
    model: GenerationMixin,
    input_ids: torch.Tensor,  # (batch * num_beams, prompt_len)
    stopping_criteria: StoppingCriteriaList,
    generation_config: GenerationConfig,
    model_kwargs: dict,
    penalties: BeamPenalties | None = None,
) -> torch.Tensor:
    """transformers' beam search, stepping only the sentences whose returned hypotheses can still change.

    With GNMT's `penalties` (`BeamPenalties.gnmt`), finished hypotheses score by them instead of transformers'
    `length ** length_penalty` (`gnmt_finished_scores`), and a sentence is final only when its returned hypotheses
    are settled: transformers' early-stopping heuristic assumes its own length penalty.

    A sentence is final when transformers' early-stopping heuristic says no running beam can beat its
    finished hypotheses, with `early_stopping=True` when it has `num_beams` of them, or when its returned
    hypotheses are settled (`returned_are_settled`): from then on transformers' loop still steps it but
    never changes what it returns, so here it leaves the batch.
    """
    gc = generation_config
    num_beams, max_length = gc.num_beams, gc.max_length
    device = input_ids.device
    flat_batch, prompt_len = input_ids.shape
    batch = flat_batch // num_beams
    stopping_criteria, max_lengths = sentence_max_lengths(stopping_criteria, max_length, batch, device)
    eos = generation_config_tensor(gc, "eos")
    beams_to_keep = max(2, 1 + (0 if eos is None else eos.shape[0])) * num_beams  # as transformers keeps
    top_num_beam_mask = torch.arange(beams_to_keep, device=device) < num_beams
    # transformers fills unused positions with `pad_token_id or eos_token_id[0]`: a pad id of 0 yields EOS.
    fill = (int(generation_config_tensor(gc, "pad")) or int(eos[0])) if eos is not None else -1

    # Per open sentence, as in transformers: running beams and finished hypotheses, with their scores. The
    # token and beam-index histories grow a column a step (transformers allocates them at max_length, and
    # the copies it makes of them every step then cost that much however short the sentences).
    running_sequences = input_ids.view(batch, num_beams, prompt_len)
    sequences = running_sequences.clone()
    running_scores = torch.zeros((batch, num_beams), dtype=torch.float32, device=device)
    running_scores[:, 1:] = NO_SCORE  # the first step expands beam 0 only: all beams start alike
    scores = torch.full((batch, num_beams), NO_SCORE, dtype=torch.float32, device=device)
    is_sent_finished = torch.zeros((batch, num_beams), dtype=torch.bool, device=device)
    improvable = torch.ones((batch, 1), dtype=torch.bool, device=device)
    running_beam_indices = torch.full((batch, num_beams, 0), NO_BEAM, dtype=torch.int32, device=device)
    beam_indices = running_beam_indices.clone()
    # The whole batch, filled in as sentences become final.
    final_sequences = torch.full((batch, num_beams, max_length), fill, dtype=torch.long, device=device)
    final_beam_indices = torch.full(
        (batch, num_beams, max_length - prompt_len), NO_BEAM, dtype=torch.int32, device=device
    )

    open_items = torch.arange(batch, device=device)  # sentences still being decoded
    beam_offsets = torch.arange(num_beams, device=device)
    gnmt = penalties is not None and penalties.gnmt
    decoder = OpenRows(model, input_ids, model_kwargs, track_coverage=gnmt and penalties.beta != 0.0)
    top_k_continuations = transformers_method(model, "top_k_continuations")
    running_beams = transformers_method(model, "running_beams")
    finished_beams = transformers_method(model, "finished_beams")
    early_stop_heuristic = transformers_method(model, "early_stop_heuristic")
    step_input, cur_len = input_ids, prompt_len
    while True:
        n = open_items.numel()
        running_sequences, sequences = (F.pad(t, (0, 1), value=fill) for t in (running_sequences, sequences))
        running_beam_indices, beam_indices = (
            F.pad(t, (0, 1), value=NO_BEAM) for t in (running_beam_indices, beam_indices)
        )
        log_probs = torch.log_softmax(decoder.next_logits(step_input), dim=-1)  # (n * num_beams, |V|)
        log_probs = (log_probs.view(n, num_beams, -1) + running_scores[:, :, None]).view(n, -1)
        topk_log_probs, topk_sequences, topk_beam_indices = top_k_continuations(
            accumulated_log_probs=log_probs,
            running_sequences=running_sequences,
            running_beam_indices=running_beam_indices,
            cur_len=cur_len,
            decoder_prompt_len=prompt_len,
            do_sample=False,
            beams_to_keep=beams_to_keep,
            num_beams=num_beams,
            batch_size=n,
        )
        ends = stopping_criteria(topk_sequences[:, :, : cur_len + 1].flatten(0, 1), None).view(n, beams_to_keep)
        if max_lengths is not None:  # every candidate of a sentence at its own length limit ends
            ends |= (cur_len + 1 >= max_lengths[open_items])[:, None]
        running_sequences, running_scores, running_beam_indices = running_beams(
            topk_log_probs=topk_log_probs,
            topk_running_sequences=topk_sequences,
            topk_running_beam_indices=topk_beam_indices,
            next_token_hits_stopping_criteria=ends,
            num_beams=num_beams,
        )
        finished_log_probs, length_penalty = topk_log_probs, gc.length_penalty
        if gnmt:  # scored here; transformers then divides by length ** 0
            finished_log_probs = gnmt_finished_scores(
                penalties, topk_log_probs, topk_beam_indices[:, :, cur_len - prompt_len], decoder, cur_len - prompt_len
            )
            length_penalty = 0.0
        sequences, scores, beam_indices, is_sent_finished = finished_beams(
            sequences=sequences,
            topk_running_sequences=topk_sequences,
            beam_scores=scores,
            topk_log_probs=finished_log_probs,
            beam_indices=beam_indices,
            topk_running_beam_indices=topk_beam_indices,
            is_early_stop_heuristic_unsatisfied=improvable,
            is_sent_finished=is_sent_finished,
            next_token_hits_stopping_criteria=ends,
            top_num_beam_mask=top_num_beam_mask,
            num_beams=num_beams,
            cur_len=cur_len,
            decoder_prompt_len=prompt_len,
            length_penalty=length_penalty,
            early_stopping=gc.early_stopping,
        )
        decoder.reorder(running_beam_indices[:, :, cur_len - prompt_len].flatten())
        cur_len += 1
        if not gnmt:
            improvable = early_stop_heuristic(
                is_early_stop_heuristic_unsatisfied=improvable,
                running_beam_scores=running_scores,
                beam_scores=scores,
                is_sent_finished=is_sent_finished,
                cur_len=cur_len,
                # transformers' heuristic reads the length limit (early_stopping="never"): each sentence's own
                max_length=max_length if max_lengths is None else max_lengths[open_items, None],
                decoder_prompt_len=prompt_len,
                early_stopping=gc.early_stopping,
                length_penalty=gc.length_penalty,
            )
        final = ~improvable[:, 0] | (is_sent_finished.all(dim=1) & (gc.early_stopping is True))
        final |= returned_are_settled(running_scores, scores, is_sent_finished, gc, cur_len, prompt_len)
        final |= ends.all(dim=1)  # the length limit (EOS ends num_beams candidates at most): every candidate ended
        if final.any():
            final_sequences[open_items[final], :, :cur_len] = sequences[final]
            final_beam_indices[open_items[final], :, : cur_len - prompt_len] = beam_indices[final]
            if final.all():
                break
            kept = (~final).nonzero().squeeze(1)
            open_items, running_sequences, running_scores, running_beam_indices = (
                t[kept] for t in (open_items, running_sequences, running_scores, running_beam_indices)
            )
            sequences, scores, beam_indices, is_sent_finished, improvable = (
                t[kept] for t in (sequences, scores, beam_indices, is_sent_finished, improvable)
            )
            decoder.keep((kept[:, None] * num_beams + beam_offsets).flatten())
        step_input = running_sequences[:, :, cur_len - 1].reshape(-1, 1)

    # As transformers returns them: the best `num_return_sequences` per sentence, cut to the longest.
    returned = gc.num_return_sequences
    final_sequences = final_sequences[:, :returned].flatten(0, 1)
    generated = (final_beam_indices[:, :returned].flatten(0, 1) >= 0).sum(dim=1).max()
    return final_sequences[:, : prompt_len + generated]


def gnmt_finished_scores(
    penalties: BeamPenalties,
    topk_log_probs: torch.Tensor,  # (sentences, candidates): summed log-probabilities
    parent_rows: torch.Tensor,  # (sentences, candidates): the decoder row each candidate continues
    decoder: OpenRows,
    length: int,  # of the candidates before this step's token
) -> torch.Tensor:
    """The candidates' scores were they to end now, by GNMT's penalties: their coverage is their parent row's, which
    holds the attention of this step too."""
    coverage = mask = None
    if penalties.beta != 0.0:
        coverage, mask = decoder.coverage[parent_rows], decoder.source_mask[parent_rows]  # (sentences, candidates, src)
    return penalties.score(topk_log_probs, length + 1, coverage, mask)
