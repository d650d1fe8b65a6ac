"""The RNN sequence-to-sequence model as a transformers model: Encoder + Decoder (+ Generator).

    source x_{1:m} ─ Encoder ─> h_enc_{1:m}, final state ─ Bridge ─> Decoder initial state
    <BOS> ŷ_1 … ŷ_{t-1} ─ Decoder (attending over h_enc) ─> h_dec_t ─ Generator ─> logits over |V|

`save_pretrained` copies this file and the modules it imports next to the weights, so a process
without our package can load the directory with `trust_remote_code=True`: keep imports relative
and limited to this folder plus installed libraries.
"""

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.generation.stopping_criteria import StoppingCriteriaList
from transformers.modeling_outputs import Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.utils import GENERATION_CONFIG_NAME, cached_file
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.versions import require_version

from .attention import Attention
from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .decoder import Decoder, RecurrentState, ScheduledSampling
from .encoder import Encoder, EncoderOutput, check_token_ids
from .generator import SHORTLIST_FILE, Generator, OutputVocabulary, Shortlist, pointer_mixture
from .length_limits import SourceLengthCriteria, source_relative_max_lengths
from .loss import IGNORE_INDEX, coverage_loss, generator_cross_entropy, log_probability_cross_entropy
from .penalties import BEAM_PENALTY_OPTIONS, BeamPenalties, check_beam_penalties
from .search import beam_search, greedy_search, plain_request

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


# generate() options that transformers' GenerationConfig does not have: a keyword argument of generate() or an
# attribute of the generation config (generation_config.json) sets them, the call's first. See generate().
SOURCE_RELATIVE_LIMITS = ("max_len_a", "max_len_b")
USE_SHORTLIST = "use_shortlist"
GENERATE_OPTIONS = (*SOURCE_RELATIVE_LIMITS, USE_SHORTLIST)
# from_pretrained() arguments that say where and how to find a model's files; the shortlist is found the same way.
FILE_LOOKUP_ARGUMENTS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")

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
        # The lexical shortlist `generate(use_shortlist=True)` decodes with: from_pretrained() reads the model
        # directory's SHORTLIST_FILE if it has one, save_pretrained() writes it back.
        self.shortlist: Shortlist | None = None
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
        output_vocabulary: OutputVocabulary | None = None,  # a shortlist's columns (generate(use_shortlist=True))
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
            logits = self.output_logits(outputs, output_vocabulary)  # (batch, tgt_len, |V|)
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

    def output_logits(
        self, outputs: RNNSeq2SeqModelOutput, output_vocabulary: OutputVocabulary | None = None
    ) -> torch.Tensor:
        """The Generator's logits (batch, tgt_len, |V|) for the decoder outputs (over a shortlist's columns with an
        `output_vocabulary`); with copy_attention the log of the pointer-generator's mixture (generator.py), which
        generate() and the loss read as they read logits."""
        logits = self.generator(outputs.last_hidden_state, output_vocabulary)
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

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading info) when asked for
        lookup = {name: kwargs[name] for name in FILE_LOOKUP_ARGUMENTS if name in kwargs}

        def find(file_name: str) -> str | None:
            return cached_file(
                pretrained_model_name_or_path,
                file_name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **lookup,
            )

        read_generate_options(model.generation_config, find(GENERATION_CONFIG_NAME))
        path = find(SHORTLIST_FILE)
        if path is not None:
            model.shortlist = Shortlist.load(path)
            model.shortlist.check(model.config, str(pretrained_model_name_or_path))
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.shortlist is not None:
            self.shortlist.save(save_directory)

    def generate(
        self,
        inputs: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        stopping_criteria: StoppingCriteriaList | None = None,
        **kwargs,
    ):
        """transformers' generate(), with two options of its own, each a keyword argument or an attribute of the
        generation config (the call's value first, then `generation_config`'s, then `self.generation_config`'s):

        - `max_len_a`, `max_len_b` (fairseq's names; OpenNMT-py's `max_length_ratio` is `max_len_a`): each sentence
          gets at most `int(max_len_a * source_length + max_len_b)` new tokens (at least one), where
          `source_length` counts its non-pad source tokens. Either one set turns the limit on (the other counts
          as 0). `max_length` / `max_new_tokens` still apply: the smaller limit wins. A sentence at its limit is
          cut there, as at `max_new_tokens`, and leaves the batch.
        - `use_shortlist`: the Generator scores only the batch's shortlisted target tokens (`self.shortlist`, read
          from the model directory's SHORTLIST_FILE), so scores are log-probabilities over the shortlist.
        """
        settings = generation_config or self.generation_config
        options = {}
        for name in GENERATE_OPTIONS:
            value = kwargs.pop(name, None)  # popped: generate() refuses keyword arguments it does not know
            for fallback in (generation_config, self.generation_config):
                if value is None:
                    value = getattr(fallback, name, None)
            options[name] = value
        source = inputs if inputs is not None else kwargs.get("input_ids")
        attention_mask = kwargs.get("attention_mask")
        if options["max_len_a"] is not None or options["max_len_b"] is not None:
            source_lengths = self._source_lengths(source, attention_mask, "max_len_a/max_len_b")
            decoder_input_ids = kwargs.get("decoder_input_ids")
            prompt_len = 1 if decoder_input_ids is None else decoder_input_ids.shape[-1]
            max_lengths = source_relative_max_lengths(
                source_lengths, *map(options.get, SOURCE_RELATIVE_LIMITS), prompt_len
            )
            stopping_criteria = StoppingCriteriaList([*(stopping_criteria or []), SourceLengthCriteria(max_lengths)])
        if options[USE_SHORTLIST]:
            kwargs["output_vocabulary"] = self._shortlisted_vocabulary(source, attention_mask, settings)
        return super().generate(inputs, generation_config, stopping_criteria=stopping_criteria, **kwargs)

    def _source_lengths(self, source: torch.Tensor | None, attention_mask: torch.Tensor | None, option: str):
        """(batch,) non-pad source tokens per sentence."""
        if source is None:
            raise ValueError(f"{option} needs the source: pass input_ids (not only encoder_outputs) to generate()")
        if attention_mask is not None:
            return attention_mask.sum(dim=-1)
        return (source != self.config.pad_token_id).sum(dim=-1)

    def _shortlisted_vocabulary(
        self, source: torch.Tensor | None, attention_mask: torch.Tensor | None, settings: GenerationConfig
    ) -> OutputVocabulary:
        """The shortlist's target tokens for this batch's sources, with the end-of-sentence token(s)."""
        if self.shortlist is None:
            raise ValueError(
                f"{self.name_or_path or 'this model'} has no shortlist ({SHORTLIST_FILE}): build one with "
                "`hf-rnn-seq2seq shortlist MODEL_DIR TRAINING_DATA` (or train with --build_shortlist true)"
            )
        if source is None:
            raise ValueError("use_shortlist needs the source: pass input_ids (not only encoder_outputs) to generate()")
        eos = settings.eos_token_id if settings.eos_token_id is not None else self.config.eos_token_id
        mask = None if attention_mask is None else attention_mask.cpu()
        ids = self.shortlist.target_ids(source.cpu(), mask, also=eos)
        return self.generator.output_vocabulary(ids.to(self.generator.proj.weight.device))


def read_generate_options(generation_config: GenerationConfig, path: str | os.PathLike | None) -> None:
    """Set GENERATE_OPTIONS and the beam search's BEAM_PENALTY_OPTIONS that the generation_config.json at `path`
    holds (None: no file) on `generation_config`.

    transformers drops the keys it does not know from a file marked `_from_model_config` (as a generation config
    derived from the model's config is saved), so a `max_len_a` set on `model.generation_config` and saved would
    be lost on loading without this."""
    if path is None:
        return
    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    for name in (*GENERATE_OPTIONS, *BEAM_PENALTY_OPTIONS):
        if saved.get(name) is not None and getattr(generation_config, name, None) is None:
            setattr(generation_config, name, saved[name])


def _check_right_padded(decoder_attention_mask: torch.Tensor | None) -> None:
    """The Decoder is causal, so padding after the target never reaches earlier positions; padding
    before it would run through the RNN state."""
    if decoder_attention_mask is not None and (decoder_attention_mask[:, 1:] > decoder_attention_mask[:, :-1]).any():
        raise ValueError("decoder inputs must be right-padded: decoder_attention_mask has a 0 before a 1.")


RNNSeq2SeqConfig.register_for_auto_class()
RNNSeq2SeqModel.register_for_auto_class("AutoModel")
RNNSeq2SeqForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")

__all__ = ["RNNSeq2SeqForConditionalGeneration", "RNNSeq2SeqModel", "RNNSeq2SeqPreTrainedModel"]
