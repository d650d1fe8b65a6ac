"""The Encoder: embedding + RNN over the source `x_{1:m}`, giving `h_enc_{1:m}` and a final state."""

import functools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers.utils import ModelOutput

from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .dropout import Dropout

RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


@functools.cache
def cpu_runs_bfloat16() -> bool:
    """Whether this CPU has oneDNN's bfloat16 kernels: x86 with AVX512 (native with AVX512-BF16 or AMX), or Arm
    with BF16. Without them the Encoder's fused LSTM fails deep inside torch ("could not create a primitive
    descriptor for the LSTM forward propagation primitive") and bfloat16 matrix products run slower than float32."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_bfloat16(device: torch.device | str, fix: str) -> None:
    """Refuse bfloat16 on a device that cannot run it, in one line naming what is missing and `fix` (what to use
    instead); do nothing where it runs."""
    device = torch.device(device)
    if device.type == "cpu" and not cpu_runs_bfloat16():
        isa = torch.backends.cpu.get_cpu_capability()
        raise ValueError(
            f"bfloat16 needs a CPU with AVX512 (best with AVX512-BF16 or AMX) or Arm BF16, and this one has {isa} "
            f"(no bfloat16 LSTM in oneDNN, and slower than float32 elsewhere): {fix}"
        )
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"bfloat16 needs a GPU that supports it, and {torch.cuda.get_device_name(device)} does not: {fix}"
        )


def check_token_ids(ids: torch.Tensor, vocab_size: int, name: str) -> None:
    """An id outside the embedding fails deep inside torch; say instead which input and vocabulary disagree."""
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"{name} holds token ids in [{int(ids.min())}, {int(ids.max())}] but the model's vocabulary has "
            f"{vocab_size} entries: the tokenizer does not match this model (check the vocabulary sizes)."
        )


@dataclass
class EncoderOutput(ModelOutput):
    """What the Encoder hands to the Decoder.

    Every tensor is batch-first and top-level: `generate()` repeats exactly those along dim 0 for
    beam search, so keeping the final state here (not in torch's `(layers, batch, ...)` layout)
    is what lets beams see the right sentence.
    """

    last_hidden_state: torch.Tensor | None = None  # h_enc: (batch, src_len, num_directions * enc_hidden)
    final_hidden: torch.Tensor | None = None  # (batch, encoder_layers, num_directions * enc_hidden)
    final_cell: torch.Tensor | None = None  # LSTM only, same shape as final_hidden
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    source_ids: torch.Tensor | None = None  # with copy_attention: input_ids (batch, src_len), what the Decoder copies


def _runs_in_bfloat16(x: torch.Tensor) -> bool:
    """Whether the RNN will run on `x` in bfloat16: bfloat16 weights, or bfloat16 autocast on its device."""
    device = x.device.type
    autocast = torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)
    return x.dtype == torch.bfloat16 or (autocast and torch.get_autocast_dtype(device) == torch.bfloat16)


class Encoder(nn.Module):
    main_input_name = "input_ids"

    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = Dropout(config.dropout)
        self.rnn = RNN_CLASSES[config.cell_type](
            config.embedding_size,
            config.encoder_hidden_size,
            num_layers=config.encoder_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.encoder_layers > 1 else 0.0,
            batch_first=True,
        )

    def forward(
        self,
        input_ids: torch.Tensor,  # (batch, src_len)
        attention_mask: torch.Tensor | None = None,  # (batch, src_len), 1 on real tokens
        **kwargs,  # generate() also passes return_dict / output_attentions / output_hidden_states
    ) -> EncoderOutput:
        if not torch.jit.is_tracing():  # generate() calls the Encoder directly; an ONNX graph cannot raise
            check_token_ids(input_ids, self.embed_tokens.num_embeddings, "input_ids")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()
        batch, src_len = input_ids.shape
        # Packing needs the real tokens first in each row; left-padded (or any) layouts are gathered
        # into that order and the outputs scattered back, so h_enc_s still lines up with input_ids[:, s].
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (batch, src_len)
        packed_ids = input_ids.gather(1, order)
        # An empty row (all padding) still runs one step so packing accepts it; the mask keeps
        # attention off it and its state is that of a single padding token.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()

        x = self.dropout(self.embed_tokens(packed_ids))  # (batch, src_len, emb)
        if _runs_in_bfloat16(x):
            check_bfloat16(x.device, "use float32 weights and no bfloat16 autocast on this machine")
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        packed_out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src_len)
        h_enc = torch.zeros_like(out).scatter(1, order.unsqueeze(-1).expand_as(out), out)
        h_enc = h_enc * mask.unsqueeze(-1).to(h_enc.dtype)  # padding rows of h_enc are exactly zero

        final_hidden, final_cell = final if isinstance(final, tuple) else (final, None)
        return EncoderOutput(
            last_hidden_state=h_enc,
            final_hidden=self._batch_first(final_hidden, batch),
            final_cell=None if final_cell is None else self._batch_first(final_cell, batch),
            source_ids=input_ids if self.config.copy_attention else None,
        )

    def _batch_first(self, state: torch.Tensor, batch: int) -> torch.Tensor:
        """(layers * directions, batch, hidden) -> (batch, layers, directions * hidden)."""
        layers, directions = self.config.encoder_layers, self.config.num_directions
        state = state.view(layers, directions, batch, -1).permute(2, 0, 1, 3)
        return state.reshape(batch, layers, -1)
