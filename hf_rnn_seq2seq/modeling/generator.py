"""The Generator: a linear layer (hidden, |V|) from each decoder output `h_dec_t` to the vocabulary."""

import torch
from torch import nn

from .configuration_rnn_seq2seq import RNNSeq2SeqConfig


class Generator(nn.Module):
    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.proj = nn.Linear(config.hidden_size, config.decoder_vocab_size)

    def forward(self, h_dec: torch.Tensor) -> torch.Tensor:
        """Raw logits (batch, tgt_len, |V|): generate() and the loss apply their own (log-)softmax."""
        return self.proj(h_dec)

    def probabilities(self, h_dec: torch.Tensor) -> torch.Tensor:
        """P(y_t = w | x, y_<t) for every word w of the vocabulary: softmax over the logits."""
        return torch.softmax(self(h_dec), dim=-1)
