"""The Generator: a linear layer (hidden, |V|) from each decoder output `h_dec_t` to the vocabulary.

With `copy_attention` (the pointer-generator of See et al., 2017) the output distribution is a mixture,
`P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: x_i = w} a_i`, and the Generator returns its log. generate() and
the loss apply `log_softmax` to what they are given as logits; on log-probabilities that is the identity (their
exponentials already sum to 1), so greedy and beam search rank tokens by the mixture unchanged.
"""

import torch
import torch.nn.functional as F
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
        """P(y_t = w | x, y_<t) for every word w: softmax over the logits (with copy_attention, P_vocab alone)."""
        return torch.softmax(self(h_dec), dim=-1)


def pointer_mixture(
    logits: torch.Tensor,  # (batch, tgt_len, |V|): the Generator's
    p_gen_logit: torch.Tensor,  # (batch, tgt_len, 1): p_gen = sigmoid(p_gen_logit)
    attention: torch.Tensor,  # (batch, tgt_len, src_len): a_t
    source_ids: torch.Tensor,  # (batch, src_len): x_i, as target ids
) -> torch.Tensor:
    """log P(w) of the pointer-generator's mixture (batch, tgt_len, |V|), computed in float32 (float64 for a float64
    model) and returned in the logits' dtype. The copy part is 0 for words not in the source; its log is taken at
    the smallest normal float instead, which adds ~1e-38 to their probability and keeps gradients finite."""
    wide = torch.promote_types(logits.dtype, torch.float32)
    attention = attention.to(wide)
    # sum_{i: x_i = w} a_i: every source position adds its weight to its token's entry
    index = source_ids.unsqueeze(1).expand_as(attention)
    copied = attention.new_zeros(logits.shape).scatter_add_(-1, index, attention)
    gate = p_gen_logit.to(wide)  # log p_gen and log(1 - p_gen) from the logit: finite where p_gen rounds to 0 or 1
    generated = torch.log_softmax(logits.to(wide), dim=-1) + F.logsigmoid(gate)
    copied = torch.log(copied.clamp_min(torch.finfo(wide).tiny)) + F.logsigmoid(-gate)
    return torch.logaddexp(generated, copied).to(logits.dtype)
