"""Attention of the Decoder over the Encoder's states `h_enc`.

Three score functions between a decoder output `h_dec_t` (the query) and each `h_enc_s`:
- "dot"      (Luong et al., 2015):    score = h_dec_t · h_enc_s
- "general"  (Luong et al., 2015):    score = h_dec_t · (W_a h_enc_s)
- "additive" (Bahdanau et al., 2015): score = v · tanh(W_q h_dec_t + W_k h_enc_s)
  and with coverage (See et al., 2017):  score = v · tanh(W_q h_dec_t + W_k h_enc_s + w_c c_s), where the
  coverage c_s is the attention h_enc_s received at the earlier steps

The part of each score that depends only on the source (`W_a h_enc`, `W_k h_enc`) is computed once
per sentence by `project_keys` and then reused at every decoding step.
"""

import contextlib

import torch
from torch import nn

LOW_PRECISION = (torch.bfloat16, torch.float16)


def _decoding_on_cpu(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and not torch.is_grad_enabled()


def source_side_bmm(per_step: torch.Tensor, source_side: torch.Tensor) -> torch.Tensor:
    """torch.bmm(per_step, source_side) in the dtype of `source_side`, casting only `per_step`.

    Why: under autocast (mixed-precision training) bmm casts both operands to the lower precision, and the
    source side (keys or h_enc: batch x src_len x size, the same at every decoding step) is float32 when the
    Encoder ran on packed sequences. That made a new low-precision copy of it at every target token, each kept
    for the backward pass: 3.5 MB a token on a batch of 64 sentences of 56 pieces (hidden 512), 180 MB for
    52 target tokens. The per-step side is one row per sentence; casting it costs nothing.
    """
    device = source_side.device.type
    low = next((t.dtype for t in (source_side, per_step) if t.dtype in LOW_PRECISION), None)
    autocasting = torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)
    with torch.autocast(device, enabled=False) if autocasting else contextlib.nullcontext():
        if low is not None and _decoding_on_cpu(source_side):
            # Decoding on CPUs: oneDNN's bfloat16 bmm for these thin products (rows x 1 x src_len) is slower than
            # float32 and compiles a kernel for every new (rows, src_len), and a batch that shrinks as its
            # sentences end meets hundreds of them (bench/DESIGN.md). Casting costs less; the source
            # side may be float32 already (`float32_for_decoding`), the product is returned in the low precision.
            # (Not with autograd on: the backward pass would keep the float32 copy of every step.)
            return torch.bmm(per_step.float(), source_side.float()).to(low)
        return torch.bmm(per_step.to(source_side.dtype), source_side)


def float32_for_decoding(source_side: torch.Tensor) -> torch.Tensor:
    """The source side (keys or h_enc) as source_side_bmm multiplies it when decoding a low-precision model on a
    CPU: in float32. Cast once per batch here rather than at every step there (a copy of batch x src_len x size
    each time, a noticeable share of a bfloat16 beam-5 decode loop: bench/DESIGN.md)."""
    if source_side.dtype in LOW_PRECISION and _decoding_on_cpu(source_side):
        return source_side.float()
    return source_side


class Attention(nn.Module):
    def __init__(self, score: str, query_size: int, key_size: int, coverage: bool = False):
        super().__init__()
        self.score = score
        if score == "general":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)
        elif score == "additive":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)
            self.query_proj = nn.Linear(query_size, query_size, bias=True)
            self.energy = nn.Linear(query_size, 1, bias=False)
            if coverage:
                # w_c: one weight per score dimension for the scalar coverage c_s. Zeros at first (the model's
                # _init_weights), so coverage turned on for a model trained without it starts out scoring as before.
                self.coverage_weight = nn.Parameter(torch.zeros(query_size))

    def project_keys(self, h_enc: torch.Tensor) -> torch.Tensor:
        """(batch, src_len, key_size) -> the keys the scores read: (batch, src_len, query_size)."""
        return h_enc if self.score == "dot" else self.key_proj(h_enc)

    def forward(
        self,
        query: torch.Tensor,  # (batch, tgt_len, query_size): h_dec
        keys: torch.Tensor,  # (batch, src_len, query_size): from project_keys
        values: torch.Tensor,  # (batch, src_len, key_size): h_enc
        mask: torch.Tensor,  # (batch, src_len), True on real tokens
        coverage: torch.Tensor | None = None,  # (batch, tgt_len, src_len): with coverage, c_s at each step
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.score == "additive":
            # (batch, tgt_len, 1, q) + (batch, 1, src_len, q) -> (batch, tgt_len, src_len, q)
            hidden = self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1)
            if coverage is not None:
                hidden = hidden + coverage.unsqueeze(-1) * self.coverage_weight  # (batch, tgt_len, src_len, q)
            hidden = torch.tanh(hidden)
            scores = self.energy(hidden).squeeze(-1)
        else:
            scores = source_side_bmm(query, keys.transpose(1, 2))  # (batch, tgt_len, src_len)
        # The lowest finite value rather than -inf: a row with no real token (an empty source)
        # then gets uniform weights instead of NaN.
        scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        context = source_side_bmm(weights, values)  # (batch, tgt_len, key_size)
        return context, weights
