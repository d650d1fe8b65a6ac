"""The Decoder: embedding of the previous output `ŷ_{t-1}` + a unidirectional RNN started from the
Encoder's final state, optionally attending over `h_enc` at every step.

Its recurrent state travels between `generate()` steps as `cache` (a `RecurrentState`),
so each new token costs one RNN step whatever the length of the prefix. With `coverage` that state also
carries the coverage vector (See et al., 2017), and with `copy_attention` the source ids the Generator copies.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import nn

from .attention import Attention, float32_for_decoding
from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .dropout import Dropout
from .encoder import RNN_CLASSES, EncoderOutput
from .step_rnn import StepRNN, StepWeight, through_layers

STEP_CELLS = {"gru": torch.gru_cell, "rnn": torch.rnn_tanh_cell}  # the LSTM's also carries a cell state


@dataclass
class RecurrentState:
    """Everything the Decoder needs to take its next step."""

    hidden: torch.Tensor  # (decoder_layers, batch, hidden)
    cell: torch.Tensor | None  # LSTM cell, same shape as hidden
    input_feed: torch.Tensor | None  # (batch, hidden): previous attentional vector, with input feeding
    attention_keys: torch.Tensor | None  # (batch, src_len, hidden): the source side of the scores, computed once
    coverage: torch.Tensor | None = None  # (batch, src_len): with coverage, the attention summed over earlier steps
    source_ids: torch.Tensor | None = None  # (batch, src_len): with copy_attention, the ids a step can copy

    # generate() asks every cache whether it can be compiled as a static KV cache (this is not one)
    # and, on MPS, whether it can be rolled back a step to decide on stopping a step late (it cannot).
    is_compileable = False
    is_croppable = False

    def reorder(self, beam_idx: torch.Tensor) -> "RecurrentState":
        """Follow beam search's choice of which beam each new beam continues.

        `attention_keys` and `source_ids` stay as they are: beam search only moves beams within one sentence,
        and all beams of a sentence share the same source. The coverage, like the RNN state, is the beam's own.
        """
        return RecurrentState(
            hidden=self.hidden.index_select(1, beam_idx),
            cell=None if self.cell is None else self.cell.index_select(1, beam_idx),
            input_feed=None if self.input_feed is None else self.input_feed.index_select(0, beam_idx),
            attention_keys=self.attention_keys,
            coverage=None if self.coverage is None else self.coverage.index_select(0, beam_idx),
            source_ids=self.source_ids,
        )

    def select(self, rows: torch.Tensor) -> "RecurrentState":
        """Keep only the batch rows `rows` (whole sentences, with their `attention_keys` and `source_ids`):
        decoding drops sentences that have ended."""
        keys, source_ids = (
            None if t is None else t.index_select(0, rows) for t in (self.attention_keys, self.source_ids)
        )
        return replace(self.reorder(rows), attention_keys=keys, source_ids=source_ids)


class DecoderOutput(NamedTuple):
    """What the Decoder returns for the target positions it read."""

    h_dec: torch.Tensor  # (batch, tgt_len, hidden): what the Generator reads
    attention: torch.Tensor | None  # (batch, tgt_len, src_len): the weights a_t, with attention
    state: RecurrentState  # after the last position
    p_gen_logit: torch.Tensor | None = None  # (batch, tgt_len, 1): with copy_attention, p_gen = sigmoid(p_gen_logit)
    coverage: torch.Tensor | None = None  # (batch, tgt_len, src_len): the c_t each step's attention read


class Attended(NamedTuple):
    """What attention gives for a run of steps (see Decoder._attend)."""

    h_dec: torch.Tensor  # (batch, t, hidden)
    weights: torch.Tensor | None  # (batch, t, src_len)
    context: torch.Tensor | None  # (batch, t, enc_out)
    coverage_read: torch.Tensor | None  # (batch, t, src_len): c_t at each step
    coverage: torch.Tensor | None  # (batch, src_len): after the last step


@dataclass
class ScheduledSampling:
    """Scheduled sampling (Bengio et al., 2015), a training-time option of the Decoder: at every step after the
    first, each sentence reads the model's own greedy prediction from the step before instead of the gold token,
    with probability `probability`."""

    probability: float
    predict: Callable[[torch.Tensor], torch.Tensor]  # h_dec_t (batch, hidden) -> greedy token ids (batch,)


class Bridge(nn.Module):
    """Maps the Encoder's final state to the Decoder's initial state (see `RNNSeq2SeqConfig.bridge`)."""

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.kind = config.bridge
        self.layers = config.decoder_layers
        self.hidden_size = config.hidden_size
        if self.kind == "linear":
            in_size = config.encoder_layers * config.encoder_output_size
            out_size = config.decoder_layers * config.hidden_size
            self.hidden_proj = nn.Linear(in_size, out_size)
            self.cell_proj = nn.Linear(in_size, out_size) if config.cell_type == "lstm" else None

    def forward(self, final: torch.Tensor, proj: nn.Linear | None) -> torch.Tensor:
        """(batch, encoder_layers, enc_out) -> (decoder_layers, batch, hidden)."""
        batch = final.size(0)
        if self.kind == "zeros":
            return final.new_zeros(self.layers, batch, self.hidden_size)
        if self.kind == "linear":
            final = torch.tanh(proj(final.reshape(batch, -1))).view(batch, self.layers, self.hidden_size)
        return final.transpose(0, 1).contiguous()

    def init_state(self, encoder_outputs: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self(encoder_outputs.final_hidden, getattr(self, "hidden_proj", None))
        if encoder_outputs.final_cell is None:
            return hidden, None
        return hidden, self(encoder_outputs.final_cell, self.cell_proj if self.kind == "linear" else None)


class Decoder(nn.Module):
    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.decoder_vocab_size, config.embedding_size)
        self.dropout = Dropout(config.dropout)
        self.bridge = Bridge(config)
        rnn_input_size = config.embedding_size + (config.hidden_size if config.input_feeding else 0)
        self.rnn = RNN_CLASSES[config.cell_type](
            rnn_input_size,
            config.hidden_size,
            num_layers=config.decoder_layers,
            dropout=config.dropout if config.decoder_layers > 1 else 0.0,
            batch_first=True,
        )
        if config.attention is not None:
            self.attention = Attention(
                config.attention, config.hidden_size, config.encoder_output_size, coverage=config.coverage
            )
            # Luong's W_c: the attentional vector tanh(W_c [context; h_dec_t]).
            attentional_in = config.encoder_output_size + config.hidden_size  # [context; h_dec_t]
            self.attention_out = nn.Linear(attentional_in, config.hidden_size, bias=False)
        if config.copy_attention:
            # p_gen = sigmoid(w_c c_t + w_s s_t + w_x x_t + b), one linear layer over [context; RNN output; input]
            gate_in = config.encoder_output_size + config.hidden_size + config.embedding_size
            self.copy_gate = nn.Linear(gate_in, 1)

    def init_state(self, encoder_outputs: EncoderOutput) -> RecurrentState:
        hidden, cell = self.bridge.init_state(encoder_outputs)
        h_enc = encoder_outputs.last_hidden_state
        attention_keys = None if self.config.attention is None else self.attention.project_keys(h_enc)
        if self.config.attention in ("dot", "general"):  # keys used only in bmm (additive adds them to the query)
            attention_keys = float32_for_decoding(attention_keys)
        input_feed = h_enc.new_zeros(h_enc.size(0), self.config.hidden_size) if self.config.input_feeding else None
        coverage = h_enc.new_zeros(h_enc.shape[:2]) if self.config.coverage else None
        source_ids = None
        if self.config.copy_attention:
            source_ids = encoder_outputs.source_ids
            if source_ids is None:
                raise ValueError(
                    "copy_attention needs the source ids in encoder_outputs.source_ids: pass encoder outputs that "
                    "this model's Encoder made (model.get_encoder()(input_ids, attention_mask))."
                )
        return RecurrentState(hidden, cell, input_feed, attention_keys, coverage, source_ids)

    def forward(
        self,
        input_ids: torch.Tensor,  # (batch, tgt_len): ŷ_{t-1}, starting with decoder_start_token_id
        h_enc: torch.Tensor,  # (batch, src_len, enc_out)
        source_mask: torch.Tensor,  # (batch, src_len), True on real tokens
        state: RecurrentState,
        scheduled_sampling: ScheduledSampling | None = None,  # training only; None is teacher forcing
    ) -> DecoderOutput:
        x = self.dropout(self.embed_tokens(input_ids))  # (batch, tgt_len, emb)
        project = getattr(self, "attention_out", None)  # W_c, with attention

        if not self.config.input_feeding and x.size(1) > 1 and scheduled_sampling is None:
            # Teacher forcing without input feeding: nothing of step t feeds step t+1 but the RNN
            # state (and the coverage, which only attention reads), so the whole sequence goes through one
            # call of the fused sequence kernel.
            rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
            rnn_out, rnn_state = self.rnn(x, rnn_state)
            attended = self._attend(rnn_out, h_enc, source_mask, state.attention_keys, project, state.coverage)
            hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
            new_state = replace(state, hidden=hidden, cell=cell, input_feed=None, coverage=attended.coverage)
            return self._output(attended, rnn_out, x, new_state)

        # Step by step: generation, input feeding (step t+1 reads step t's attentional vector) and scheduled
        # sampling (step t+1 may read step t's prediction).
        hidden, cell, input_feed, coverage = state.hidden, state.cell, state.input_feed, state.coverage
        # Training (autograd on) takes the steps of step_rnn.py: the same arithmetic, a faster backward pass.
        rnn_step = self._rnn_step
        if torch.is_grad_enabled():
            rnn_step = StepRNN(self.rnn, self.config.cell_type, self.dropout).step
            project = None if project is None else StepWeight(project.weight)
        steps, rnn_outs = [], []
        for x_t in x.unbind(1):
            if scheduled_sampling is not None and steps:
                x_t = self._scheduled_input(x_t, steps[-1].h_dec.squeeze(1), scheduled_sampling)
            step_input = x_t if input_feed is None else torch.cat([x_t, input_feed], dim=-1)
            hidden, cell = rnn_step(step_input, hidden, cell)
            rnn_outs.append(hidden[-1].unsqueeze(1))
            step = self._attend(rnn_outs[-1], h_enc, source_mask, state.attention_keys, project, coverage)
            if input_feed is not None:
                input_feed = step.h_dec.squeeze(1)
            coverage = step.coverage
            steps.append(step)
        copying = self.config.copy_attention  # only p_gen reads the contexts and RNN outputs of all steps
        attended = Attended(
            _joined([step.h_dec for step in steps]),
            _joined([step.weights for step in steps]),
            _joined([step.context for step in steps]) if copying else None,
            _joined([step.coverage_read for step in steps]),
            coverage,
        )
        new_state = replace(state, hidden=hidden, cell=cell, input_feed=input_feed, coverage=coverage)
        return self._output(attended, torch.cat(rnn_outs, dim=1) if copying else None, x, new_state)

    def _output(
        self, attended: Attended, rnn_out: torch.Tensor | None, x: torch.Tensor, state: RecurrentState
    ) -> DecoderOutput:
        """The DecoderOutput of a run of steps, with p_gen from the context, RNN output and input (with copy)."""
        p_gen_logit = None
        if self.config.copy_attention:
            p_gen_logit = self.copy_gate(torch.cat([attended.context, rnn_out, x], dim=-1))
        return DecoderOutput(attended.h_dec, attended.weights, state, p_gen_logit, attended.coverage_read)

    def _scheduled_input(
        self, gold: torch.Tensor, h_dec_previous: torch.Tensor, scheduled_sampling: ScheduledSampling
    ) -> torch.Tensor:
        """The embedded input of one step (batch, emb): the gold token's `gold`, or in each row with probability
        `scheduled_sampling.probability` the embedding of the greedy prediction from `h_dec_previous` (batch,
        hidden). The choice is detached, as in Bengio et al.: no gradient flows through the argmax."""
        with torch.no_grad():
            predicted = scheduled_sampling.predict(h_dec_previous)  # (batch,)
        use_prediction = torch.rand(gold.size(0), device=gold.device) < scheduled_sampling.probability  # (batch,)
        return torch.where(use_prediction.unsqueeze(1), self.dropout(self.embed_tokens(predicted)), gold)

    def _rnn_step(
        self, x: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One time step through every layer: x (batch, in), hidden/cell (layers, batch, hidden).

        Uses the fused single-step cell kernels on the nn.RNN's own weights: calling the sequence
        kernel for one step costs about twice as much, mostly in the backward pass.
        """
        return through_layers(x, hidden, cell, self._kernel_layer_step, self.dropout)

    def _kernel_layer_step(self, layer: int, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
        weights = self.rnn.all_weights[layer]
        if c is None:
            return STEP_CELLS[self.config.cell_type](x, h, *weights), None
        return torch.lstm_cell(x, (h, c), *weights)

    def _attend(
        self,
        rnn_out: torch.Tensor,
        h_enc: torch.Tensor,
        source_mask: torch.Tensor,
        keys: torch.Tensor | None,
        project: nn.Linear | StepWeight | None,
        coverage: torch.Tensor | None,
    ) -> Attended:
        """RNN outputs (batch, t, hidden) -> what the Generator reads (batch, t, hidden), attention weights and
        context. `project` applies W_c (`attention_out`). With coverage (batch, src_len), each step's scores read
        the coverage of the steps before it, so the steps attend one after another."""
        if self.config.attention is None:
            return Attended(self.dropout(rnn_out), None, None, None, None)
        if coverage is None:
            context, weights = self.attention(rnn_out, keys, h_enc, source_mask)
            coverage_read = None
        else:
            contexts, step_weights, reads = [], [], []
            for query in rnn_out.split(1, dim=1):  # (batch, 1, hidden)
                reads.append(coverage.unsqueeze(1))
                context, weights = self.attention(query, keys, h_enc, source_mask, reads[-1])
                coverage = coverage + weights.squeeze(1)
                contexts.append(context), step_weights.append(weights)
            context, weights, coverage_read = (torch.cat(parts, dim=1) for parts in (contexts, step_weights, reads))
        attentional = torch.tanh(project(torch.cat([context, rnn_out], dim=-1)))
        return Attended(self.dropout(attentional), weights, context, coverage_read, coverage)


def _joined(steps: list[torch.Tensor | None]) -> torch.Tensor | None:
    """The steps' (batch, 1, ...) tensors joined along the target (None where a step has none)."""
    return None if steps[0] is None else torch.cat(steps, dim=1)
