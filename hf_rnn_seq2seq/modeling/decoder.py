"""The Decoder: embedding of the previous output `ŷ_{t-1}` + a unidirectional RNN started from the
Encoder's final state, optionally attending over `h_enc` at every step.

Its recurrent state travels between `generate()` steps as `cache` (a `RecurrentState`),
so each new token costs one RNN step whatever the length of the prefix.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

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

    # generate() asks every cache whether it can be compiled as a static KV cache (this is not one)
    # and, on MPS, whether it can be rolled back a step to decide on stopping a step late (it cannot).
    is_compileable = False
    is_croppable = False

    def reorder(self, beam_idx: torch.Tensor) -> "RecurrentState":
        """Follow beam search's choice of which beam each new beam continues.

        `attention_keys` stay as they are: beam search only moves beams within one sentence,
        and all beams of a sentence share the same keys.
        """
        return RecurrentState(
            hidden=self.hidden.index_select(1, beam_idx),
            cell=None if self.cell is None else self.cell.index_select(1, beam_idx),
            input_feed=None if self.input_feed is None else self.input_feed.index_select(0, beam_idx),
            attention_keys=self.attention_keys,
        )

    def select(self, rows: torch.Tensor) -> "RecurrentState":
        """Keep only the batch rows `rows` (whole sentences, with their `attention_keys`): decoding drops
        sentences that have ended."""
        keys = None if self.attention_keys is None else self.attention_keys.index_select(0, rows)
        return replace(self.reorder(rows), attention_keys=keys)


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
            self.attention = Attention(config.attention, config.hidden_size, config.encoder_output_size)
            # Luong's W_c: the attentional vector tanh(W_c [context; h_dec_t]).
            attentional_in = config.encoder_output_size + config.hidden_size  # [context; h_dec_t]
            self.attention_out = nn.Linear(attentional_in, config.hidden_size, bias=False)

    def init_state(self, encoder_outputs: EncoderOutput) -> RecurrentState:
        hidden, cell = self.bridge.init_state(encoder_outputs)
        h_enc = encoder_outputs.last_hidden_state
        attention_keys = None if self.config.attention is None else self.attention.project_keys(h_enc)
        if self.config.attention in ("dot", "general"):  # keys used only in bmm (additive adds them to the query)
            attention_keys = float32_for_decoding(attention_keys)
        input_feed = h_enc.new_zeros(h_enc.size(0), self.config.hidden_size) if self.config.input_feeding else None
        return RecurrentState(hidden, cell, input_feed, attention_keys)

    def forward(
        self,
        input_ids: torch.Tensor,  # (batch, tgt_len): ŷ_{t-1}, starting with decoder_start_token_id
        h_enc: torch.Tensor,  # (batch, src_len, enc_out)
        source_mask: torch.Tensor,  # (batch, src_len), True on real tokens
        state: RecurrentState,
        scheduled_sampling: ScheduledSampling | None = None,  # training only; None is teacher forcing
    ) -> tuple[torch.Tensor, torch.Tensor | None, RecurrentState]:
        """Returns h_dec (batch, tgt_len, hidden), attention weights (batch, tgt_len, src_len) or None, new state."""
        x = self.dropout(self.embed_tokens(input_ids))  # (batch, tgt_len, emb)
        project = getattr(self, "attention_out", None)  # W_c, with attention

        if not self.config.input_feeding and x.size(1) > 1 and scheduled_sampling is None:
            # Teacher forcing without input feeding: nothing of step t feeds step t+1 but the RNN
            # state, so the whole sequence goes through one call of the fused sequence kernel.
            rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
            rnn_out, rnn_state = self.rnn(x, rnn_state)
            h_dec, weights = self._attend(rnn_out, h_enc, source_mask, state.attention_keys, project)
            hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
            return h_dec, weights, RecurrentState(hidden, cell, None, state.attention_keys)

        # Step by step: generation, input feeding (step t+1 reads step t's attentional vector) and scheduled
        # sampling (step t+1 may read step t's prediction).
        hidden, cell, input_feed = state.hidden, state.cell, state.input_feed
        # Training (autograd on) takes the steps of step_rnn.py: the same arithmetic, a faster backward pass.
        rnn_step = self._rnn_step
        if torch.is_grad_enabled():
            rnn_step = StepRNN(self.rnn, self.config.cell_type, self.dropout).step
            project = None if project is None else StepWeight(project.weight)
        steps, step_weights = [], []
        for x_t in x.unbind(1):
            if scheduled_sampling is not None and steps:
                x_t = self._scheduled_input(x_t, steps[-1].squeeze(1), scheduled_sampling)
            step_input = x_t if input_feed is None else torch.cat([x_t, input_feed], dim=-1)
            hidden, cell = rnn_step(step_input, hidden, cell)
            step_out, w = self._attend(hidden[-1].unsqueeze(1), h_enc, source_mask, state.attention_keys, project)
            if input_feed is not None:
                input_feed = step_out.squeeze(1)
            steps.append(step_out)
            step_weights.append(w)
        weights = None if self.config.attention is None else torch.cat(step_weights, dim=1)
        return torch.cat(steps, dim=1), weights, RecurrentState(hidden, cell, input_feed, state.attention_keys)

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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RNN outputs (batch, t, hidden) -> what the Generator reads (batch, t, hidden), attention weights.
        `project` applies W_c (`attention_out`)."""
        if self.config.attention is None:
            return self.dropout(rnn_out), None
        context, weights = self.attention(rnn_out, keys, h_enc, source_mask)
        attentional = torch.tanh(project(torch.cat([context, rnn_out], dim=-1)))
        return self.dropout(attentional), weights
