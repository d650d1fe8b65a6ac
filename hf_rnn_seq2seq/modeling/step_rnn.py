"""The Decoder's RNN one time step at a time under autograd (training, with input feeding).

Input feeding makes step t+1 read step t's attentional vector, so training runs the RNN step by step, as
decoding does. With torch's single-step cells (`torch.lstm_cell` & co., which decoding keeps), the backward
pass computes every weight's gradient at every step, a product of one step's 64 rows, and autograd then adds
the steps' gradients up one pass over the weight at a time. Here each weight used at every step
(`StepWeight`: W_ih and W_hh of every layer, and the attention's W_c) keeps the inputs and output gradients of
STEPS_PER_PRODUCT steps and takes their gradient in one product; under autocast the weights and biases are
cast once per forward, not at every step. The cell arithmetic is that of torch's cells, and
tests/modeling/test_optimised_paths.py checks outputs and gradients against torch's own sequence kernels. The
speed-up is measured in bench/DESIGN.md.
"""

import torch
import torch.nn.functional as F
from torch import nn

STEPS_PER_PRODUCT = 8  # steps whose weight gradients go into one product: 512 rows at batch 64, a few MB held


class _WeightGradient:
    """The gradient of a StepWeight's weight, taken from the steps' inputs and output gradients in one product per
    STEPS_PER_PRODUCT steps (not one per step, nor one over all steps: that would hold every step's gradient)."""

    def __init__(self):
        self.inputs, self.grads = [], []  # (rows, in), (rows, out) per step, since the last product
        self.sum: torch.Tensor | None = None  # float32 (float64 for a float64 model)

    def add(self, grad_out: torch.Tensor, x: torch.Tensor) -> None:
        self.inputs.append(x.flatten(0, -2)), self.grads.append(grad_out.flatten(0, -2))
        if len(self.grads) == STEPS_PER_PRODUCT:
            self._product()

    def _product(self) -> None:
        part = torch.cat(self.grads).T @ torch.cat(self.inputs)  # (out, rows) @ (rows, in)
        self.inputs.clear(), self.grads.clear()
        self.sum = part.to(torch.promote_types(part.dtype, torch.float32)) if self.sum is None else self.sum.add_(part)

    def take(self) -> torch.Tensor | None:
        if self.grads:
            self._product()
        total, self.sum = self.sum, None
        return total


class _SharedWeight(torch.autograd.Function):
    """The identity on a weight, handing autograd the gradient `_WeightGradient` took over the steps.
    Autograd runs its backward after the backward of every step that used the weight."""

    @staticmethod
    def forward(ctx, weight, gradient):
        ctx.gradient = gradient
        ctx.set_materialize_grads(False)  # the steps pass no gradient here: no zero tensor to make
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, _):
        return ctx.gradient.take(), None


class _StepProduct(torch.autograd.Function):
    """x @ weight.T for one step (x: (..., in)); backward returns the gradient for x and hands (x, gradient of the
    output) to the weight's `_WeightGradient` instead of computing the weight's gradient for this step alone."""

    @staticmethod
    def forward(ctx, x, weight, gradient):
        x_cast = x.to(weight.dtype)  # under autocast, the weight is in autocast's dtype (autocast_once)
        ctx.save_for_backward(x_cast, weight)
        ctx.gradient, ctx.x_dtype = gradient, x.dtype
        return F.linear(x_cast, weight)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.to(x.dtype)
        if ctx.needs_input_grad[1]:  # not for a frozen weight
            ctx.gradient.add(grad_out, x)
        return (grad_out @ weight).to(ctx.x_dtype), None, None


def autocast_once(parameter: torch.Tensor) -> torch.Tensor:
    """Under autocast, `parameter` in autocast's dtype, cast once for all steps; as it is otherwise.

    What autocast gives F.linear, and more: a bias added outside the product would otherwise stay float32
    and make the whole cell float32 from there on."""
    device = parameter.device.type
    return parameter.to(torch.get_autocast_dtype(device)) if torch.is_autocast_enabled(device) else parameter


class StepWeight:
    """A weight applied once per time step (`x @ weight.T`), whose gradient is taken over several steps at once."""

    def __init__(self, weight: torch.Tensor):
        self.gradient = _WeightGradient()
        self.weight = _SharedWeight.apply(autocast_once(weight), self.gradient)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _StepProduct.apply(x, self.weight, self.gradient)


# The cells on precomputed products, as torch's cells compute them:
# x_gates = W_ih x + b_ih, h_gates = W_hh h + b_hh (PyTorch's nn.LSTM / nn.GRU / nn.RNN documentation).
# The LSTM and the Elman cell add h_gates to x_gates in place (x_gates is a temporary of StepRNN.step).


def lstm_cell(x_gates, h_gates, h, c):
    i, f, g, o = x_gates.add_(h_gates).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_cell(x_gates, h_gates, h, c):
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = h_gates.chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h, None


def rnn_cell(x_gates, h_gates, h, c):
    return torch.tanh(x_gates.add_(h_gates)), None


CELLS = {"lstm": lstm_cell, "gru": gru_cell, "rnn": rnn_cell}


def through_layers(
    x: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor | None, layer_step, dropout: nn.Module
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One time step through every layer: x (batch, in), hidden/cell (layers, batch, hidden) -> the new hidden/cell.

    `layer_step(layer, x, h, c)` -> (h, c), c None without a cell state; dropout between layers, as nn.RNN does.
    Shared by StepRNN (training) and the Decoder's decoding steps on torch's cells."""
    cells = [None] * hidden.size(0) if cell is None else cell.unbind(0)
    new_hidden, new_cell = [], []
    for layer, (h, c) in enumerate(zip(hidden.unbind(0), cells)):
        if layer > 0:
            x = dropout(x)
        x, c = layer_step(layer, x, h, c)
        new_hidden.append(x)
        new_cell.append(c)
    return torch.stack(new_hidden), None if cell is None else torch.stack(new_cell)


class StepRNN:
    """`rnn` (an nn.LSTM, nn.GRU or nn.RNN of any depth) one time step per call, on its own weights."""

    def __init__(self, rnn: nn.RNNBase, cell_type: str, dropout: nn.Module):
        self.cell, self.dropout = CELLS[cell_type], dropout
        # per layer: (W_ih, b_ih), (W_hh, b_hh)
        self.layers = [
            ((StepWeight(w_ih), autocast_once(b_ih)), (StepWeight(w_hh), autocast_once(b_hh)))
            for w_ih, w_hh, b_ih, b_hh in rnn.all_weights
        ]

    def step(
        self, x: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (batch, in), hidden/cell (layers, batch, hidden) -> the new hidden/cell."""
        return through_layers(x, hidden, cell, self._layer_step, self.dropout)

    def _layer_step(self, layer: int, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
        (w_ih, b_ih), (w_hh, b_hh) = self.layers[layer]
        # in place: fewer (batch, gates) temporaries at every step (the products' outputs are not saved)
        return self.cell(w_ih(x).add_(b_ih), w_hh(h).add_(b_hh), h, c)
