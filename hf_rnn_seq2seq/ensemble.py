"""Translate with an ensemble of saved models: at every step, the members' next-token distributions combined.

    from hf_rnn_seq2seq.ensemble import load_ensemble_translator
    translator = load_ensemble_translator(["outputs/run1", "outputs/run2"], weights=[2, 1])
    translator("저는 커피를 좋아합니다.", num_beams=5)

How the members are combined: the ensemble's logits are the weighted mean of the members' logits, so its
next-token distribution is the members' weighted geometric mean, renormalised (softmax(Σ w_i z_i) ∝ Π p_i^w_i, the
members' normalisers being constant over the vocabulary): the weighted mean of their log-probabilities, as
OpenNMT-py averages them, made a distribution again, which greedy and beam search read as they read one model's.
fairseq averages probabilities (the arithmetic mean) instead; the geometric mean favours the tokens every member
finds likely, and with equal weights two copies of one model give exactly that model's logits, hence its
translations and scores bit for bit. A pointer-generator member (`copy_attention`) returns log-probabilities as its
logits, which differ from any logits of the same distribution by a constant per row: it averages with the others
unchanged. Its source ids and coverage travel in its encoder outputs and state like the rest.

`RNNSeq2SeqEnsemble` is a model for transformers' `generate()`: its Encoder runs every member's Encoder (their
outputs travel as one dict of top-level tensors, which generate() repeats for beam search as it repeats one
model's), and its recurrent state is the tuple of the members' states, reordered together when beam search picks
beams. Every decoding option of `generate()` works on it, through transformers' own loops (search.py's faster
loops read one model's Decoder). It is built from loaded models and never saved: save the members.

The members must share the target vocabulary (their distributions are averaged token id by token id) and the
source tokenizer (one encoding of the input feeds every member); anything else (size, cell, attention, training
data) may differ. Decoding settings (`max_new_tokens`, `num_beams`, ...) come from the first member's generation
config unless given.
"""

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedTokenizerBase
from transformers.modeling_outputs import Seq2SeqLMOutput

from .loading import check_engine, load_translator
from .modeling.decoder import RecurrentState
from .modeling.encoder import EncoderOutput
from .modeling.modeling_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration, RNNSeq2SeqPreTrainedModel
from .modeling.pipeline import RNNTranslationPipeline
from .onnx_runtime import OnnxTranslator
from .tokenization import same_ids

# The config fields every member must agree on: the ids generate() starts, pads and stops with.
SHARED_TOKEN_IDS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id")


class EnsembleEncoderOutput(dict):
    """The members' `EncoderOutput`s as one dict of top-level tensors, `"{member}.{field}"`: generate() repeats
    each top-level tensor of `encoder_outputs` once per beam, and would not look inside nested outputs."""

    @classmethod
    def of(cls, outputs: Sequence[EncoderOutput]) -> "EnsembleEncoderOutput":
        return cls(
            {f"{member}.{field}": value for member, output in enumerate(outputs) for field, value in output.items()}
        )

    def members(self, n_members: int) -> list[EncoderOutput]:
        """The `EncoderOutput` of each of the `n_members` members, in order."""
        fields: list[dict[str, torch.Tensor]] = [{} for _ in range(n_members)]
        for key, value in self.items():
            member, field = key.split(".", 1)
            fields[int(member)][field] = value
        return [EncoderOutput(**member_fields) for member_fields in fields]


@dataclass
class EnsembleState:
    """The members' recurrent states, in member order: what generate() carries between steps as `cache`."""

    members: tuple[RecurrentState, ...]

    # What generate() asks of any cache (see RecurrentState): not a static KV cache, cannot be rolled back.
    is_compileable = False
    is_croppable = False

    def reorder(self, beam_idx: torch.Tensor) -> "EnsembleState":
        """Follow beam search's choice of beams in every member alike."""
        return EnsembleState(tuple(state.reorder(beam_idx) for state in self.members))


class EnsembleEncoder(nn.Module):
    """Every member's Encoder on the same source."""

    def __init__(self, encoders: Sequence[nn.Module]):
        super().__init__()
        self.encoders = nn.ModuleList(encoders)

    def forward(
        self,
        input_ids: torch.Tensor,  # (batch, src_len)
        attention_mask: torch.Tensor | None = None,  # (batch, src_len)
        **kwargs,  # generate() also passes return_dict / output_attentions / output_hidden_states
    ) -> EnsembleEncoderOutput:
        return EnsembleEncoderOutput.of([encoder(input_ids, attention_mask, **kwargs) for encoder in self.encoders])


class RNNSeq2SeqEnsemble(RNNSeq2SeqPreTrainedModel, GenerationMixin):
    """Models of the same target vocabulary decoding together: at each step, the weighted mean of their logits
    (module docstring). `weights` (default: equal) need not sum to 1; they are normalised."""

    def __init__(self, models: Sequence[RNNSeq2SeqForConditionalGeneration], weights: Sequence[float] | None = None):
        if not models:
            raise ValueError("an ensemble needs at least one model")
        weights = [1.0] * len(models) if weights is None else [float(weight) for weight in weights]
        if len(weights) != len(models):
            raise ValueError(f"got {len(weights)} weights for {len(models)} models: give one weight per model")
        if any(not weight > 0 for weight in weights):  # `not >` also refuses NaN
            raise ValueError(f"ensemble weights must be positive numbers, got {', '.join(map(str, weights))}")
        first = models[0].config
        for number, model in enumerate(models[1:], 2):
            for name in ("decoder_vocab_size", *SHARED_TOKEN_IDS):
                if getattr(model.config, name) != getattr(first, name):
                    raise ValueError(
                        f"model {number} of the ensemble has {name}={getattr(model.config, name)} where model 1 has "
                        f"{getattr(first, name)}: ensemble models that share their target vocabulary"
                    )
        super().__init__(copy.deepcopy(first))
        self.members = nn.ModuleList(models)
        total = sum(weights)
        self.weights = [weight / total for weight in weights]
        self.generation_config = copy.deepcopy(models[0].generation_config)
        self.post_init()

    def get_encoder(self) -> EnsembleEncoder:
        return EnsembleEncoder([member.get_encoder() for member in self.members])

    def forward(
        self,
        input_ids: torch.Tensor | None = None,  # (batch, src_len)
        attention_mask: torch.Tensor | None = None,  # (batch, src_len)
        decoder_input_ids: torch.Tensor | None = None,  # (batch, tgt_len)
        decoder_attention_mask: torch.Tensor | None = None,  # (batch, tgt_len)
        encoder_outputs: EnsembleEncoderOutput | None = None,
        cache: EnsembleState | None = None,
        use_cache: bool | None = None,
        **kwargs,  # generate() also passes return_dict, output_attentions, ...: the output is a ModelOutput
    ) -> Seq2SeqLMOutput:
        """The weighted mean of the members' logits (batch, tgt_len, |V|), in float32, and their states."""
        if kwargs.get("labels") is not None:
            raise ValueError("an ensemble only translates: train (and compute the loss of) each model on its own")
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("Pass input_ids (the source) or precomputed encoder_outputs.")
            encoder_outputs = self.get_encoder()(input_ids, attention_mask)
        member_outputs = encoder_outputs.members(len(self.members))
        member_states = (None,) * len(self.members) if cache is None else cache.members
        logits, states = None, []
        for member, weight, member_encoder_outputs, state in zip(
            self.members, self.weights, member_outputs, member_states
        ):
            output = member(
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
                encoder_outputs=member_encoder_outputs,
                cache=state,
                use_cache=use_cache,
                return_dict=True,
            )
            weighted = weight * output.logits.float()  # (batch, tgt_len, |V|)
            logits = weighted if logits is None else logits + weighted
            states.append(output.cache)
        return Seq2SeqLMOutput(logits=logits, cache=None if states[0] is None else EnsembleState(tuple(states)))

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the state is the members' recurrent states, not a key/value cache

    @staticmethod
    def _reorder_cache(cache: EnsembleState, beam_idx: torch.Tensor) -> EnsembleState:
        return cache.reorder(beam_idx)


def check_same_tokenizer(
    first: PreTrainedTokenizerBase, other: PreTrainedTokenizerBase, side: str, first_dir: str, other_dir: str
) -> None:
    """Refuse members whose `side` ("source" or "target") tokenizers differ: the same text must give the same ids."""
    if not same_ids(first, other, side):
        raise ValueError(
            f"{other_dir} has another {side} tokenizer than {first_dir}: an ensemble needs models trained with the "
            f"same {side} tokenizer (pass --tokenizer_name to train them with one)"
        )


def load_ensemble_translator(
    model_dirs: Sequence[str | os.PathLike],
    weights: Sequence[float] | None = None,
    device: str | int | None = None,
    dtype: str = "float32",
    engine: str | None = None,
    inter_threads: int = 1,
) -> RNNTranslationPipeline | OnnxTranslator:
    """A pipeline (of the first model's kind) over the models saved in `model_dirs` (each loaded as
    `load_translator` loads it): the ensemble of them, weighted by `weights` (default: equal), with the first
    model's tokenizers. One directory without weights gives that model's own pipeline (or, with `engine`
    onnxruntime, its ONNX runner, translating `inter_threads` batches at once)."""
    model_dirs = list(model_dirs)
    if weights is not None and len(weights) != len(model_dirs):
        raise ValueError(f"got {len(weights)} weights for {len(model_dirs)} models: give one weight per model")
    if len(model_dirs) > 1 and check_engine(engine, dtype) != "pytorch":
        raise ValueError("an ensemble decodes with PyTorch: --engine onnxruntime (and --dtype int8) takes one model")
    translators = [load_translator(model_dir, device, dtype, engine, inter_threads) for model_dir in model_dirs]
    if len(translators) == 1 and weights is None:
        return translators[0]
    first = translators[0]
    for model_dir, translator in zip(model_dirs[1:], translators[1:]):
        check_same_tokenizer(first.tokenizer, translator.tokenizer, "source", str(model_dirs[0]), str(model_dir))
        check_same_tokenizer(
            first.target_tokenizer, translator.target_tokenizer, "target", str(model_dirs[0]), str(model_dir)
        )
    ensemble = RNNSeq2SeqEnsemble([translator.model for translator in translators], weights).eval()
    # The first model's pipeline class: a text2text model's ensemble returns generated_text too.
    return type(first)(
        model=ensemble, tokenizer=first.tokenizer, target_tokenizer=first.target_tokenizer, device=device
    )


__all__ = ["RNNSeq2SeqEnsemble", "load_ensemble_translator"]
