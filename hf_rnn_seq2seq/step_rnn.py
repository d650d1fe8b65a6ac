"""The Decoder's RNN one time step at a time under autograd (training, with input feeding).

Input feeding makes step t+1 read step t's attentional vector, so training runs the RNN step by step,
as decoding does. With torch's single-step cells (`torch.lstm_cell` & co., which decoding keeps: there
a call is one step), every step multiplies the part of its input known before the loop (the embedding of
ŷ_{t-1}) on its own, and the backward pass computes every weight's gradient once per step and adds the
steps' gradients up one pass over the weight at a time. Here instead:
- the known part of layer 0's input goes through one product for all steps, before the loop;
- each weight used at every step (`StepWeight`) records what its gradient needs, and the backward pass
  computes that gradient in one product over all steps.
On the benchmark's model (batch 64, 16 source and 16 target tokens), a training step runs 3-4% faster in
float32 and 4-6% faster under bfloat16 autocast (bench/paired_steps.py, 2-CPU Xeon). The cell arithmetic is
that of torch's cells; tests/test_optimised_paths.py checks outputs and gradients against torch's kernels.
"""

import torch
import torch.nn.functional as F
from torch import nn


class _RecordedWeight(torch.autograd.Function):
    """The identity on a weight; its backward computes the weight's gradient from what `_StepProduct`
    recorded at every step. Autograd runs it after the backward of every step that used the weight."""

    @staticmethod
    def forward(ctx, weight, record):
        ctx.record = record
        ctx.set_materialize_grads(False)  # the steps pass no gradient here: no zero tensor to make
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, _):
        inputs, grads = ctx.record
        grad_weight = torch.cat(grads).T @ torch.cat(inputs)  # (out, rows of all steps) @ (rows, in)
        inputs.clear(), grads.clear()
        return grad_weight, None


class _StepProduct(torch.autograd.Function):
    """x @ weight.T for one step (x: (..., in)); backward returns the gradient for x and records (x, gradient of the
    output) for the weight's gradient instead of computing it."""

    @staticmethod
    def forward(ctx, x, weight, record):
        out = F.linear(x, weight)  # under autocast, in its dtype
        ctx.save_for_backward(x.to(out.dtype), weight.to(out.dtype))
        ctx.record, ctx.x_dtype = record, x.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.to(x.dtype)
        inputs, grads = ctx.record
        inputs.append(x.flatten(0, -2)), grads.append(grad_out.flatten(0, -2))  # (rows, in), (rows, out)
        return (grad_out @ weight).to(ctx.x_dtype), None, None


class StepWeight:
    """A weight applied once per time step (`x @ weight.T`), whose gradient is one product over all steps."""

    def __init__(self, weight: torch.Tensor):
        device = weight.device.type
        if torch.is_autocast_enabled(device):
            weight = weight.to(torch.get_autocast_dtype(device))  # cast once, not at every step
        self.record = ([], [])  # per step: input, gradient of the output
        self.weight = _RecordedWeight.apply(weight, self.record)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _StepProduct.apply(x, self.weight, self.record)


# The cells on precomputed products, as torch's cells compute them:
# x_gates = W_ih x + b_ih, h_gates = W_hh h + b_hh (PyTorch's nn.LSTM / nn.GRU / nn.RNN documentation).


def lstm_cell(x_gates, h_gates, h, c):
    i, f, g, o = (x_gates + h_gates).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_cell(x_gates, h_gates, h, c):
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = h_gates.chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h, None


def rnn_cell(x_gates, h_gates, h, c):
    return torch.tanh(x_gates + h_gates), None


CELLS = {"lstm": lstm_cell, "gru": gru_cell, "rnn": rnn_cell}


class StepRNN:
    """One pass of `rnn` (an nn.LSTM, nn.GRU or nn.RNN of any depth, batch-first) over a sequence whose
    layer-0 input at step t is [known_inputs[:, t]; fed_t], fed_t being computed during the loop."""

    def __init__(self, rnn: nn.RNNBase, cell_type: str, known_inputs: torch.Tensor, dropout: nn.Module):
        # known_inputs: (batch, steps, known); rnn.all_weights: per layer [W_ih, W_hh, b_ih, b_hh]
        self.cell, self.dropout = CELLS[cell_type], dropout
        (w_ih, w_hh, b_ih, b_hh), *upper = rnn.all_weights
        known = known_inputs.size(-1)
        self.known_gates = F.linear(known_inputs, w_ih[:, :known], b_ih).unbind(1)  # steps x (batch, gates)
        self.fed = StepWeight(w_ih[:, known:]) if w_ih.size(1) > known else None
        self.upper_ih = [(StepWeight(w), b) for w, _, b, _ in upper]  # layers above 0: input from the layer below
        self.hh = [(StepWeight(w), b) for _, w, _, b in rnn.all_weights]

    def step(
        self, t: int, fed: torch.Tensor | None, hidden: torch.Tensor, cell: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Step t: fed (batch, fed_size) or None, hidden/cell (layers, batch, hidden) -> the new hidden/cell."""
        x_gates = self.known_gates[t] if self.fed is None else self.known_gates[t] + self.fed(fed)
        cells = [None] * len(self.hh) if cell is None else cell.unbind(0)
        new_hidden, new_cell = [], []
        for layer, (h, c, (w_hh, b_hh)) in enumerate(zip(hidden.unbind(0), cells, self.hh)):
            if layer > 0:
                w_ih, b_ih = self.upper_ih[layer - 1]
                x_gates = w_ih(self.dropout(new_hidden[-1])) + b_ih  # dropout between layers, as nn.RNN does
            h, c = self.cell(x_gates, w_hh(h) + b_hh, h, c)
            new_hidden.append(h)
            new_cell.append(c)
        return torch.stack(new_hidden), None if cell is None else torch.stack(new_cell)
