"""The Generator: a linear layer (hidden, |V|) from each decoder output `h_dec_t` to the vocabulary.

With `copy_attention` (the pointer-generator of See et al., 2017) the output distribution is a mixture,
`P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: x_i = w} a_i`, and the Generator returns its log. generate() and
the loss apply `log_softmax` to what they are given as logits; on log-probabilities that is the identity (their
exponentials already sum to 1), so greedy and beam search rank tokens by the mixture unchanged.

A lexical shortlist (as Marian's `--shortlist`) lets decoding compute only some of its columns: for each source
token, the target tokens that occur with it most in the training data, plus the most frequent target tokens.
`Shortlist` holds them (saved as `SHORTLIST_FILE` in the model directory); `OutputVocabulary` is the union for one
batch's sources, with the Generator's rows for those tokens.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .configuration_rnn_seq2seq import RNNSeq2SeqConfig

SHORTLIST_FILE = "shortlist.npz"
# Where a source token has fewer than `top_k` candidates, its row of `Shortlist.candidates` ends with this.
NO_CANDIDATE = -1


@dataclass(frozen=True)
class OutputVocabulary:
    """The target tokens the Generator scores in one generate() call, and its weight rows for them.

    generate() receives it as a model keyword argument; a dataclass, not a bare tensor, because generate() repeats
    every tensor keyword argument once per beam (`_expand_inputs_for_generation`)."""

    ids: torch.Tensor  # (k,) target token ids, ascending
    weight: torch.Tensor  # (k, hidden)
    bias: torch.Tensor  # (k,)


class Generator(nn.Module):
    def __init__(self, config: RNNSeq2SeqConfig):
        super().__init__()
        self.proj = nn.Linear(config.hidden_size, config.decoder_vocab_size)

    def forward(self, h_dec: torch.Tensor, vocabulary: OutputVocabulary | None = None) -> torch.Tensor:
        """Raw logits (batch, tgt_len, |V|): generate() and the loss apply their own (log-)softmax. With a
        `vocabulary`, only its columns are computed and every other one is -inf, so that a (log-)softmax
        normalises over the shortlist alone and a search never picks a token outside it."""
        if vocabulary is None:
            return self.proj(h_dec)
        selected = F.linear(h_dec, vocabulary.weight, vocabulary.bias)  # (batch, tgt_len, k)
        logits = selected.new_full((*selected.shape[:-1], self.proj.out_features), float("-inf"))
        return logits.index_copy_(-1, vocabulary.ids, selected)

    def probabilities(self, h_dec: torch.Tensor) -> torch.Tensor:
        """P(y_t = w | x, y_<t) for every word w: softmax over the logits (with copy_attention, P_vocab alone)."""
        return torch.softmax(self(h_dec), dim=-1)

    def output_vocabulary(self, ids: torch.Tensor) -> OutputVocabulary:
        """The Generator restricted to the target tokens `ids` (k,), ascending and unique."""
        return OutputVocabulary(ids, self.proj.weight[ids], self.proj.bias[ids])


@dataclass(frozen=True)
class Shortlist:
    """For each source token, the target tokens decoding may produce from it; and the tokens always allowed.

    `hf_rnn_seq2seq.shortlist.build_shortlist` makes one from training data. Decoding a batch scores the union of
    `always` and the candidates of every source token in the batch (`target_ids`)."""

    candidates: torch.Tensor  # (source_vocab, top_k) target ids, best first, NO_CANDIDATE after the last
    always: torch.Tensor  # (n,) target ids: the most frequent target tokens and the special tokens

    def target_ids(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        also: int | Iterable[int] | None = None,
    ) -> torch.Tensor:
        """(k,) ascending: the target tokens a batch of sources (batch, src_len) may be translated into, and `also`
        (the end-of-sentence token id or ids, as a generation config holds them)."""
        source = input_ids if attention_mask is None else input_ids[attention_mask.bool()]
        also = torch.tensor([also] if isinstance(also, int) else list(also or ()), dtype=torch.long)
        ids = torch.cat([self.always, also, self.candidates[source.flatten().cpu()].flatten()])
        return ids[ids != NO_CANDIDATE].unique()  # unique() sorts

    def check(self, config: RNNSeq2SeqConfig, where: str) -> None:
        """Refuse a shortlist made for other vocabularies, naming what differs."""
        if self.candidates.shape[0] != config.vocab_size:
            raise ValueError(
                f"{where}: the shortlist has {self.candidates.shape[0]} source tokens but the model's source "
                f"vocabulary has {config.vocab_size}; rebuild it for this model (hf-rnn-seq2seq shortlist)"
            )
        largest = int(torch.cat([self.candidates.flatten(), self.always]).max())
        if largest >= config.decoder_vocab_size:
            raise ValueError(
                f"{where}: the shortlist names target token {largest} but the model's target vocabulary has "
                f"{config.decoder_vocab_size}; rebuild it for this model (hf-rnn-seq2seq shortlist)"
            )

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `SHORTLIST_FILE` into `directory` (numpy arrays: loading it runs no code) and return its path."""
        path = Path(directory) / SHORTLIST_FILE
        np.savez_compressed(path, candidates=self.candidates.numpy(), always=self.always.numpy())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Shortlist":
        with np.load(path, allow_pickle=False) as arrays:
            return cls(torch.from_numpy(arrays["candidates"]).long(), torch.from_numpy(arrays["always"]).long())


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
