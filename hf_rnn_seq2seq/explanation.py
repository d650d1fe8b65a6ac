"""What the app shows of one translation, computed without a page: the n-best list of a beam search with its
scores, each decoding step (the token the Decoder read and the Generator's most probable next tokens) and the
attention. `app` lays these out on a Gradio page; these functions need no Gradio.
"""

from dataclasses import dataclass

import torch

from .modeling.pipeline import RNNTranslationPipeline, unknown_characters
from .plotting import Alignment, align_translation, length_through_eos

# Longer input is refused with a message: an RNN steps through every token, and one request should not hold a
# shared server for long. A sentence is far shorter.
MAX_SOURCE_TOKENS = 128
DEFAULT_BEAMS = 5
DEFAULT_TOP_K = 5
# What generate() divides a beam's log-probability by the length to the power of, where the model's generation
# config sets no `length_penalty` (transformers' GenerationConfig default).
GENERATE_LENGTH_PENALTY = 1.0


class InputError(ValueError):
    """Input the page cannot translate; the message says why, and is shown on the page."""


@dataclass
class Hypothesis:
    """One translation of the n-best list: its text, token ids (the start token, then through EOS) and score."""

    text: str
    ids: list[int]
    score: float  # the beam search's ranking score: sum of the tokens' log-probabilities / length ** length_penalty


@dataclass
class Step:
    """Decoding step t: the Decoder read `decoder_input` (ŷ_{t-1}) and the Generator's softmax gave `output` (ŷ_t,
    the token the search kept) the probability `probability`; `top` are its `top_k` most probable tokens."""

    decoder_input: str
    output: str
    probability: float
    top: list[tuple[str, float]]  # (token, P(token)), most probable first


@dataclass
class Explanation:
    """Everything the page shows for one sentence."""

    n_best: list[Hypothesis]  # best first
    steps: list[Step]  # of the best hypothesis, one per generated token
    alignment: Alignment | None  # None for a model without attention
    unknown: list[str]  # pieces of the input read as the unknown token

    @property
    def translation(self) -> str:
        return self.n_best[0].text


def encode_source(
    translator: RNNTranslationPipeline, text: str, max_source_tokens: int = MAX_SOURCE_TOKENS
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model's input for `text` (input_ids and attention_mask, each (1, src_len)) and the pieces of `text` the
    vocabulary lacks; InputError for text that is empty or longer than `max_source_tokens` tokens."""
    if not text.strip():
        raise InputError("Type a sentence to translate.")
    tokenizer = translator.tokenizer
    encoded = tokenizer(text, return_tensors="pt", return_offsets_mapping=tokenizer.is_fast)
    n_tokens = encoded["input_ids"].shape[1]
    if n_tokens > max_source_tokens:
        raise InputError(
            f"The sentence is {n_tokens} tokens long; this page translates at most {max_source_tokens}. "
            "Split it into shorter sentences."
        )
    unknown = unknown_characters(tokenizer, text, encoded)
    model_inputs = {name: encoded[name].to(translator.model.device) for name in ("input_ids", "attention_mask")}
    return model_inputs, unknown


@torch.no_grad()
def n_best(
    translator: RNNTranslationPipeline, model_inputs: dict[str, torch.Tensor], num_beams: int
) -> list[Hypothesis]:
    """The `num_beams` best translations of a beam search of that width (one, the greedy one, for 1), best first,
    with the scores the search ranked them by."""
    model = translator.model
    # The pipeline's own generate() arguments (its default length limit among them), with these on top.
    generate_kwargs = translator._prepare_generate_kwargs(
        {
            "num_beams": num_beams,
            "num_return_sequences": num_beams,
            "do_sample": False,
            "output_scores": True,
            "return_dict_in_generate": True,
        }
    )
    output = model.generate(**model_inputs, **generate_kwargs)
    eos_token_id = model.config.eos_token_id
    rows = [row[: length_through_eos(row, eos_token_id)] for row in output.sequences.tolist()]
    if num_beams > 1:
        scores = output.sequences_scores.tolist()
    else:
        # Greedy search keeps no score: the same formula from its steps' log-probabilities.
        log_probabilities = model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        n_generated = len(rows[0]) - 1
        length_penalty = model.generation_config.length_penalty
        if length_penalty is None:
            length_penalty = GENERATE_LENGTH_PENALTY
        scores = [log_probabilities[0, :n_generated].sum().item() / n_generated**length_penalty]
    decode = translator.target_tokenizer.decode
    return [Hypothesis(decode(ids, skip_special_tokens=True), ids, score) for ids, score in zip(rows, scores)]


@torch.no_grad()
def decoding_steps(
    translator: RNNTranslationPipeline, model_inputs: dict[str, torch.Tensor], ids: list[int], top_k: int
) -> list[Step]:
    """The steps that produced the translation `ids` (the start token, then the output): at step t the Decoder reads
    ids[t - 1] and the Generator's softmax gives P(ids[t]) and the `top_k` most probable next tokens. One
    teacher-forced pass over `ids`, which gives the distributions the search saw."""
    model = translator.model
    decoder_input_ids = torch.tensor([ids[:-1]], device=model.device)  # (1, n): <s>, ŷ_1 .. ŷ_{n-1}
    # The model's logits, not the Generator's alone: with copy_attention they are the pointer-generator's mixture.
    logits = model(**model_inputs, decoder_input_ids=decoder_input_ids).logits  # (1, n, |V|)
    probabilities = torch.softmax(logits[0].float(), dim=-1).cpu()  # (n, |V|)
    top = probabilities.topk(top_k, dim=-1)  # values and indices (n, top_k)
    outputs = ids[1:]
    chosen = probabilities[torch.arange(len(outputs)), outputs].tolist()  # (n,)
    tokens = translator.target_tokenizer.convert_ids_to_tokens
    return [
        Step(
            decoder_input=decoder_input,
            output=output,
            probability=probability,
            top=list(zip(tokens(top_ids), top_probabilities)),
        )
        for decoder_input, output, probability, top_ids, top_probabilities in zip(
            tokens(ids[:-1]), tokens(outputs), chosen, top.indices.tolist(), top.values.tolist()
        )
    ]


def explain(
    translator: RNNTranslationPipeline,
    text: str,
    num_beams: int = DEFAULT_BEAMS,
    top_k: int = DEFAULT_TOP_K,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
) -> Explanation:
    """Translate `text` with a beam of `num_beams` and gather what the page shows; InputError for text it refuses."""
    model_inputs, unknown = encode_source(translator, text, max_source_tokens)
    hypotheses = n_best(translator, model_inputs, num_beams)
    best = hypotheses[0].ids
    alignment = None
    if translator.model.config.attention is not None:
        alignment = align_translation(
            translator.model, translator.tokenizer, translator.target_tokenizer, text, torch.tensor([best])
        )
    return Explanation(hypotheses, decoding_steps(translator, model_inputs, best, top_k), alignment, unknown)


__all__ = ["Explanation", "Hypothesis", "InputError", "Step", "decoding_steps", "encode_source", "explain", "n_best"]
