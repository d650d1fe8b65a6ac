"""The RNN sequence-to-sequence model as a transformers model: Encoder + Decoder (+ Generator).

    source x_{1:m} ─ Encoder ─> h_enc_{1:m}, final state ─ Bridge ─> Decoder initial state
    <BOS> ŷ_1 … ŷ_{t-1} ─ Decoder (attending over h_enc) ─> h_dec_t ─ Generator ─> logits over |V|

`save_pretrained` copies this file and the modules it imports next to the weights, so a process
without our package can load the directory with `trust_remote_code=True`: keep imports relative
and limited to this folder plus installed libraries.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.versions import require_version

from .attention import Attention
from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .decoder import Decoder, RecurrentState, ScheduledSampling
from .encoder import Encoder, EncoderOutput, check_token_ids
from .generator import Generator, pointer_mixture
from .loss import IGNORE_INDEX, coverage_loss, generator_cross_entropy, log_probability_cross_entropy
from .search import BEAM_PENALTY_OPTIONS, BeamPenalties, beam_search, check_beam_penalties, greedy_search, plain_request

# generate() and the output classes call the Decoder's state `cache` since transformers 5.24 (`past_key_values`
# before), and this file uses that name.
# Checked here, not only in pyproject.toml, because code loaded from the Hub with trust_remote_code skips pip.
require_version("transformers>=5.24", "This model's code needs it: pip install -U 'transformers>=5.24'")

# Callers written for older transformers (and most tutorials) still pass the state as `past_key_values`; ignored,
# it would restart every step from the Encoder's state. transformers' own models take it as a deprecated alias of
# `cache`, with a FutureWarning until this version.
PAST_KEY_VALUES_REMOVED_IN = "5.40.0"


def accept_past_key_values(forward: Callable) -> Callable:
    """Let `forward` take `past_key_values=` as `cache=`, warning as transformers' models do. Both names at once
    is an error (transformers' models keep `cache` and drop the other with a warning, whichever was meant)."""
    renamed = deprecate_kwarg("past_key_values", PAST_KEY_VALUES_REMOVED_IN, new_name="cache")(forward)

    @functools.wraps(forward)
    def forward_accepting_past_key_values(*args, **kwargs):
        if "past_key_values" in kwargs and "cache" in kwargs:
            raise ValueError(
                "got the Decoder's state twice, as `cache` and as `past_key_values` (its deprecated name): "
                "pass `cache` only"
            )
        return renamed(*args, **kwargs)

    return forward_accepting_past_key_values


# One auto class per model class is all `register_for_auto_class` records; a Hub repo should answer all three.
AUTO_MAP = {
    "AutoConfig": "configuration_rnn_seq2seq.RNNSeq2SeqConfig",
    "AutoModel": "modeling_rnn_seq2seq.RNNSeq2SeqModel",
    "AutoModelForSeq2SeqLM": "modeling_rnn_seq2seq.RNNSeq2SeqForConditionalGeneration",
}


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher forcing: the Decoder reads <BOS> y_1 … y_{n-1} to predict y_1 … y_n."""
    decoder_input_ids = labels.new_full(labels.shape, pad_token_id)
    decoder_input_ids[:, 1:] = labels[:, :-1]
    decoder_input_ids[:, 0] = decoder_start_token_id
    return decoder_input_ids.masked_fill(decoder_input_ids == IGNORE_INDEX, pad_token_id)


@dataclass
class RNNSeq2SeqModelOutput(Seq2SeqModelOutput):
    """Seq2SeqModelOutput, plus what the pointer-generator and the coverage loss read (None without them)."""

    attention_weights: torch.Tensor | None = None  # (batch, tgt_len, src_len): a_t, with copy or coverage
    p_gen_logit: torch.Tensor | None = None  # (batch, tgt_len, 1): with copy_attention, p_gen = sigmoid(p_gen_logit)
    source_ids: torch.Tensor | None = None  # (batch, src_len): with copy_attention, the ids copied
    coverage: torch.Tensor | None = None  # (batch, tgt_len, src_len): with coverage, the c_t each step read


class RNNSeq2SeqPreTrainedModel(PreTrainedModel):
    config_class = RNNSeq2SeqConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    # The decoder state is recurrent: it cannot be rolled back to an earlier prefix (assisted decoding).
    _is_stateful = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # Uniform(-s, s) for every weight, as in Sutskever et al. (2014) and the peer toolkits; the
        # default initialisation of transformers covers LSTMs but not GRUs.
        if isinstance(module, (nn.Linear, nn.Embedding, nn.RNNBase)):
            scale = self.config.init_scale
            for param in module.parameters(recurse=False):
                init.uniform_(param, -scale, scale)
        elif isinstance(module, Attention) and hasattr(module, "coverage_weight"):
            init.zeros_(module.coverage_weight)  # see Attention: coverage starts with no say in the scores

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Weights are read from safetensors only: a pickled pytorch_model.bin can run code while it is loaded.
        kwargs.setdefault("use_safetensors", True)
        return super().from_pretrained(*args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        self.config.auto_map = dict(AUTO_MAP)
        return super().save_pretrained(save_directory, *args, **kwargs)


class RNNSeq2SeqModel(RNNSeq2SeqPreTrainedModel):
    """Encoder + Decoder; returns the decoder outputs `h_dec` (what the Generator reads)."""

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.embed_tokens = value

    @accept_past_key_values
    def forward(
        self,
        input_ids: torch.Tensor | None = None,  # (batch, src_len)
        attention_mask: torch.Tensor | None = None,  # (batch, src_len)
        decoder_input_ids: torch.Tensor | None = None,  # (batch, tgt_len)
        decoder_attention_mask: torch.Tensor | None = None,  # (batch, tgt_len)
        encoder_outputs: EncoderOutput | tuple | None = None,
        cache: RecurrentState | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        scheduled_sampling: ScheduledSampling | None = None,  # training only (see the model's forward)
        **kwargs,
    ) -> RNNSeq2SeqModelOutput | tuple:
        use_cache = self.config.use_cache if use_cache is None else use_cache
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if decoder_input_ids is None:
            raise ValueError("RNNSeq2SeqModel needs decoder_input_ids (or labels, for the model with a Generator).")
        _check_right_padded(decoder_attention_mask)

        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("Pass input_ids (the source) or precomputed encoder_outputs.")
            encoder_outputs = self.encoder(input_ids, attention_mask)
        elif not isinstance(encoder_outputs, EncoderOutput):
            encoder_outputs = EncoderOutput(*encoder_outputs)
        h_enc = encoder_outputs.last_hidden_state  # (batch, src_len, enc_out)
        if attention_mask is None:
            attention_mask = h_enc.new_ones(h_enc.shape[:2])

        if cache is None:  # first step: the Decoder starts from the Encoder's final state
            check_token_ids(decoder_input_ids, self.config.decoder_vocab_size, "decoder_input_ids")
            cache = self.decoder.init_state(encoder_outputs)
        decoded = self.decoder(decoder_input_ids, h_enc, attention_mask.bool(), cache, scheduled_sampling)
        weights = decoded.attention

        # transformers' layout for cross-attentions: one tuple entry per layer, (batch, heads, tgt_len, src_len).
        cross_attentions = (weights.unsqueeze(1),) if output_attentions and weights is not None else None
        copy_or_coverage = self.config.copy_attention or self.config.coverage
        output = RNNSeq2SeqModelOutput(
            last_hidden_state=decoded.h_dec,
            cache=decoded.state if use_cache else None,
            cross_attentions=cross_attentions,
            encoder_last_hidden_state=h_enc,
            attention_weights=weights if copy_or_coverage else None,
            p_gen_logit=decoded.p_gen_logit,
            source_ids=decoded.state.source_ids,
            coverage=decoded.coverage,
        )
        return output if return_dict else output.to_tuple()


class RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqPreTrainedModel, GenerationMixin):
    """Encoder + Decoder + Generator: the translation model. `generate()` comes from transformers."""

    _tied_weights_keys = {"generator.proj.weight": "model.decoder.embed_tokens.weight"}

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__(config)
        self.model = RNNSeq2SeqModel(config)
        self.generator = Generator(config)
        # Scheduled sampling's probability of feeding the Decoder its own prediction, set during training (by
        # training.trainer.ScheduledSamplingCallback): an attribute, not a config field, so that it is never saved
        # and a loaded model always trains with teacher forcing unless told otherwise, and never samples in eval().
        self.scheduled_sampling_probability = 0.0
        self.post_init()

    def get_encoder(self) -> Encoder:
        return self.model.encoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.encoder.embed_tokens

    def get_output_embeddings(self) -> nn.Linear:
        return self.generator.proj

    @accept_past_key_values
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,  # (batch, tgt_len), IGNORE_INDEX where there is no target
        encoder_outputs: EncoderOutput | tuple | None = None,
        cache: RecurrentState | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,  # the Trainer passes num_items_in_batch
    ) -> Seq2SeqLMOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        scheduled_sampling = None
        # At 0 the ordinary forward runs: exactly teacher forcing, with the fused kernel where it applies.
        if self.training and labels is not None and self.scheduled_sampling_probability > 0:
            if self.config.copy_attention:  # the prediction would need the copy mixture, not the Generator alone
                raise ValueError("scheduled sampling does not support copy_attention models: train without one of them")
            scheduled_sampling = ScheduledSampling(self.scheduled_sampling_probability, self.greedy_token)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            use_cache=use_cache,
            output_attentions=output_attentions,
            return_dict=True,
            scheduled_sampling=scheduled_sampling,
        )
        loss = None
        if labels is None:
            logits = self.output_logits(outputs)  # (batch, tgt_len, |V|)
        else:
            loss, logits = self.loss(outputs, labels, kwargs.get("num_items_in_batch"))

        output = Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
        )
        return output if return_dict else output.to_tuple()

    def output_logits(self, outputs: RNNSeq2SeqModelOutput) -> torch.Tensor:
        """The Generator's logits (batch, tgt_len, |V|) for the decoder outputs; with copy_attention the log of the
        pointer-generator's mixture (generator.py), which generate() and the loss read as they read logits."""
        logits = self.generator(outputs.last_hidden_state)
        if not self.config.copy_attention:
            return logits
        return pointer_mixture(logits, outputs.p_gen_logit, outputs.attention_weights, outputs.source_ids)

    def loss(
        self, outputs: RNNSeq2SeqModelOutput, labels: torch.Tensor, num_items_in_batch=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean token cross-entropy (with the config's `label_smoothing`), plus the coverage loss with `coverage`,
        and the logits. The Trainer passes `num_items_in_batch` (target tokens over all gradient-accumulation
        steps and processes), so summing and dividing by it gives the same gradient as one big batch. Without
        copy_attention the Generator runs inside the loss so that training never keeps a whole batch of logits
        for the backward pass (loss.py)."""
        check_token_ids(labels[labels != IGNORE_INDEX], self.config.decoder_vocab_size, "labels")
        smoothing = self.config.label_smoothing
        if self.config.copy_attention:
            logits = self.output_logits(outputs)
            total = log_probability_cross_entropy(logits, labels, smoothing)
        else:
            total, logits = generator_cross_entropy(self.generator.proj, outputs.last_hidden_state, labels, smoothing)
        if self.config.coverage:
            covered = coverage_loss(outputs.attention_weights, outputs.coverage, labels)
            total = total + self.config.coverage_loss_weight * covered
        if num_items_in_batch is None:
            num_items_in_batch = (labels != IGNORE_INDEX).sum()
        return total / num_items_in_batch, logits

    def greedy_token(self, h_dec_t: torch.Tensor) -> torch.Tensor:
        """The most probable next token (batch,) after a decoder output h_dec_t (batch, hidden)."""
        return self.generator(h_dec_t).argmax(-1)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    # generate() picks its decoding loop by name; plain greedy and beam requests run loops that drop
    # sentences once they are final (search.py), the rest run transformers' own loops. Were a later transformers
    # to call its loops by other names, generate() would not call these overrides: its own loops would run.
    def _sample(
        self,
        input_ids,
        logits_processor,
        stopping_criteria,
        generation_config,
        synced_gpus=False,
        streamer=None,
        **model_kwargs,
    ):
        if plain_request(
            self, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer, model_kwargs
        ):
            return greedy_search(self, input_ids, stopping_criteria, generation_config, model_kwargs)
        return super()._sample(
            input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, streamer, **model_kwargs
        )

    def _beam_search(
        self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False, **model_kwargs
    ):
        plain = plain_request(
            self, logits_processor, stopping_criteria, generation_config, synced_gpus, None, model_kwargs
        )
        penalties = BeamPenalties.of(generation_config)
        if penalties.gnmt and not plain:  # transformers' loop knows no other penalty than its own
            raise ValueError(
                "GNMT's penalties (length_penalty_type='wu', coverage_penalty) work in plain beam search only: "
                "without logits processors (no_repeat_ngram_size, ...), scores or streaming"
            )
        if plain:
            return beam_search(self, input_ids, stopping_criteria, generation_config, model_kwargs, penalties)
        return super()._beam_search(
            input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus, **model_kwargs
        )

    def _prepare_generation_config(self, generation_config=None, **kwargs):
        # Our beam search's options beside transformers' (search.py, BeamPenalties): generate() takes as keyword
        # arguments only the fields a GenerationConfig has, so these are set on the request's config here. In a
        # generation config (or generation_config.json) they are custom entries, which transformers carries over.
        ours = {name: kwargs.pop(name) for name in BEAM_PENALTY_OPTIONS if name in kwargs}
        generation_config, model_kwargs = super()._prepare_generation_config(generation_config, **kwargs)
        for name, value in ours.items():
            setattr(generation_config, name, value)
        check_beam_penalties(generation_config, has_attention=self.config.attention is not None)
        return generation_config, model_kwargs

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The decoder state is a RecurrentState, not a key/value cache.
        return False

    @staticmethod
    def _reorder_cache(cache: RecurrentState, beam_idx: torch.Tensor) -> RecurrentState:
        return cache.reorder(beam_idx)


def _check_right_padded(decoder_attention_mask: torch.Tensor | None) -> None:
    """The Decoder is causal, so padding after the target never reaches earlier positions; padding
    before it would run through the RNN state."""
    if decoder_attention_mask is not None and (decoder_attention_mask[:, 1:] > decoder_attention_mask[:, :-1]).any():
        raise ValueError("decoder inputs must be right-padded: decoder_attention_mask has a 0 before a 1.")


RNNSeq2SeqConfig.register_for_auto_class()
RNNSeq2SeqModel.register_for_auto_class("AutoModel")
RNNSeq2SeqForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")

__all__ = ["RNNSeq2SeqForConditionalGeneration", "RNNSeq2SeqModel", "RNNSeq2SeqPreTrainedModel"]
