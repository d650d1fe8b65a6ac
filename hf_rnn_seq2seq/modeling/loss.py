"""The Generator and the token cross-entropy in one pass, without keeping the logits for backward.

Computed the plain way -- `logits = generator(h_dec)`, then `F.cross_entropy(logits.float(), labels)` --
training keeps the logits and a float32 log-softmax of every target position until the backward pass,
which then builds two more (tokens, |V|) tensors: with 8,000 words and the longest Multi30k batch
(3,300 target positions), three float32 tensors of 106 MB each at the moment of the training step's
peak memory, the largest things alive. Here the forward pass takes the logits a slice of rows at a
time and works out the loss's gradients for `h_dec` and the Generator's weight and bias on the spot,
the way the backward pass would; backward only scales them by the incoming gradient. The gradients
are those of the plain way up to rounding, computed in the same dtype (the logits' dtype, bfloat16
under autocast); the loss is summed in float32 as `F.cross_entropy(logits.float(), ...)` sums it (in
float64 for a float64 model).

The logits are still returned (generate(), evaluation and users read them), and gradients that flow
into them (a loss of the user's own on top) are handled in backward. Without autograd (evaluation,
`torch.no_grad()`), nothing extra is computed.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

IGNORE_INDEX = -100  # label value the loss skips (what DataCollatorForSeq2Seq pads labels with)
SLICE_ELEMENTS = 2**21  # float32 values per slice of rows (8 MB): small next to the logits, big enough to be fast


def _row_slices(tokens: int, vocab: int):
    rows = max(1, SLICE_ELEMENTS // vocab)
    return (slice(start, start + rows) for start in range(0, tokens, rows))


def _wide(dtype: torch.dtype) -> torch.dtype:
    """The dtype sums are taken in: float32, or float64 for a float64 model."""
    return torch.promote_types(dtype, torch.float32)


def _scored_targets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels with IGNORE_INDEX replaced by a valid index (0, weighted 0), and the weights: 1 = scored."""
    scored = labels != IGNORE_INDEX
    return labels.masked_fill(~scored, 0), scored


def _slice_loss(logits: torch.Tensor, targets: torch.Tensor, scored: torch.Tensor, smoothing: float, with_grad: bool):
    """The loss of the scored rows of one slice, summed, and (with_grad) its gradient for the logits.
    Per row: cross-entropy against (1 - smoothing) one_hot(target) + smoothing / |V| everywhere, i.e.
    (1 - smoothing) (-log p_target) + smoothing * mean_w(-log p_w); gradient softmax - that distribution."""
    # log_softmax and exp_ are each one pass over the slice: half the time of logsumexp, then z - log_z, then exp
    log_p = torch.log_softmax(logits.to(_wide(logits.dtype)), dim=-1)  # (rows, |V|)
    per_row = -log_p.gather(1, targets[:, None]).squeeze(1)  # -log p_target
    if smoothing:
        per_row = (1 - smoothing) * per_row - smoothing * log_p.mean(dim=-1)
    total = (per_row * scored).sum()
    if not with_grad:
        return total, None
    grad = log_p.exp_()  # softmax
    if smoothing:
        grad.sub_(smoothing / grad.size(-1))
    grad.scatter_add_(1, targets[:, None], torch.full_like(grad[:, :1], smoothing - 1))
    grad[~scored] = 0  # usually a few padding rows: cheaper than multiplying every row by its weight
    return total, grad.to(logits.dtype)


class _GeneratorCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h_dec, weight, bias, labels, smoothing):
        # h_dec (tokens, hidden), weight (|V|, hidden), bias (|V|,), labels (tokens,)
        logits = F.linear(h_dec, weight, bias)  # (tokens, |V|); bfloat16 under bfloat16 autocast
        h, w = h_dec.to(logits.dtype), weight.to(logits.dtype)  # what autocast gave F.linear
        targets, scored = _scored_targets(labels)
        wide = _wide(logits.dtype)
        total = torch.zeros((), dtype=wide, device=logits.device)
        grad_h = torch.empty_like(h)  # (tokens, hidden)
        grad_w = torch.zeros(weight.shape, dtype=wide, device=weight.device)  # (|V|, hidden)
        grad_b = torch.zeros(weight.size(0), dtype=wide, device=weight.device)  # (|V|,)
        for rows in _row_slices(*logits.shape):
            part, grad_logits = _slice_loss(logits[rows], targets[rows], scored[rows], smoothing, with_grad=True)
            total += part
            grad_h[rows] = grad_logits @ w
            grad_w += grad_logits.T @ h[rows]
            grad_b += grad_logits.sum(0, dtype=wide)
        ctx.save_for_backward(grad_h, grad_w, grad_b, h_dec, weight)
        ctx.set_materialize_grads(False)
        return total, logits

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total, grad_logits):
        grad_h, grad_w, grad_b, h_dec, weight = ctx.saved_tensors
        scale = 0.0 if grad_total is None else grad_total  # None: only the logits were used
        wide = grad_w.dtype
        grad_h, grad_w, grad_b = grad_h.to(wide) * scale, grad_w * scale, grad_b * scale
        if grad_logits is not None:  # gradients of something computed from the returned logits
            g = grad_logits.to(wide)
            grad_h += g @ weight.to(wide)
            grad_w += g.T @ h_dec.to(wide)
            grad_b += g.sum(0)
        return grad_h.to(h_dec.dtype), grad_w.to(weight.dtype), grad_b.to(weight.dtype), None, None


def generator_cross_entropy(
    generator: nn.Linear, h_dec: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits = generator(h_dec), and the token cross-entropy summed over the scored positions (float32+),
    with `label_smoothing` as `F.cross_entropy(..., label_smoothing=...)` has it.
    h_dec (..., hidden), labels (...) with IGNORE_INDEX where nothing is scored; logits (..., |V|)."""
    flat_h, flat_labels = h_dec.flatten(0, -2), labels.flatten()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (h_dec, generator.weight, generator.bias)):
        total, logits = _GeneratorCrossEntropy.apply(
            flat_h, generator.weight, generator.bias, flat_labels, label_smoothing
        )
    else:
        logits = generator(flat_h)
        targets, scored = _scored_targets(flat_labels)
        total = torch.zeros((), dtype=_wide(logits.dtype), device=logits.device)
        for rows in _row_slices(*logits.shape):
            total += _slice_loss(logits[rows], targets[rows], scored[rows], label_smoothing, with_grad=False)[0]
    return total, logits.unflatten(0, h_dec.shape[:-1])


def log_probability_cross_entropy(
    log_probs: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The token cross-entropy of a distribution given as log-probabilities (the pointer-generator's mixture,
    generator.pointer_mixture), summed over the scored positions in float32+. F.cross_entropy's log_softmax is the
    identity on log-probabilities, so this is the mixture's loss with the same label smoothing as above. The
    mixture is not a linear layer's output, so the sliced loss above does not apply: this keeps its (tokens, |V|)
    tensors for the backward pass. log_probs (..., |V|), labels (...)."""
    return F.cross_entropy(
        log_probs.flatten(0, -2).to(_wide(log_probs.dtype)),
        labels.flatten(),
        ignore_index=IGNORE_INDEX,
        label_smoothing=label_smoothing,
        reduction="sum",
    )


def coverage_loss(attention: torch.Tensor, coverage: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """See et al.'s (2017) coverage loss, sum_i min(a_i^t, c_i^t), summed over the scored target positions t in
    float32+: attending again to source tokens already covered costs, attending elsewhere does not.
    attention and coverage (batch, tgt_len, src_len): the weights and the coverage each step read; labels
    (batch, tgt_len) with IGNORE_INDEX where nothing is scored."""
    per_position = torch.minimum(attention, coverage).sum(dim=-1).to(_wide(attention.dtype))  # (batch, tgt_len)
    return (per_position * (labels != IGNORE_INDEX)).sum()
