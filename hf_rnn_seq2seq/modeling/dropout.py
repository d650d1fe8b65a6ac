"""Dropout whose mask is drawn with `torch.rand_like` on CPUs.

torch's CPU dropout draws its mask with `bernoulli_`, one random number at a time, which takes about twice as
long as `rand_like(x) >= p` for the Decoder's masks (bench/DESIGN.md). Same distribution and scaling; other
devices keep torch's fused kernel.
"""

import torch
from torch import nn


class Dropout(nn.Dropout):
    """nn.Dropout for p in [0, 1) (RNNSeq2SeqConfig.dropout), not in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)  # each element kept with probability 1 - p
        return x * keep.mul_(1 / (1 - self.p))
