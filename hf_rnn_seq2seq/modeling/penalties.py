"""How beam search scores a finished hypothesis: transformers' `length ** length_penalty`, or GNMT's length and
coverage penalties (Wu et al. 2016, section 7; OpenNMT-py's `-length_penalty wu -coverage_penalty wu`).

With GNMT's, a hypothesis Y of a source X scores  log P(Y|X) / lp(Y) + cp(X; Y)  with
lp(Y) = (5 + |Y|)^α / (5 + 1)^α  and  cp(X; Y) = β Σ_i log(min(Σ_j a_ij, 1)),  a_ij the attention target token j
paid source token i, over the real source tokens and every target token (end-of-sentence included). α is
`length_penalty`; β `coverage_penalty`. search.py's beam search applies them (transformers' cannot).
"""

from dataclasses import dataclass

import torch
from transformers import GenerationConfig

LENGTH_PENALTY_TYPES = ("power", "wu")  # transformers' `|Y| ** α`, GNMT's
# The generate() options that choose them, which transformers' GenerationConfig does not have.
BEAM_PENALTY_OPTIONS = ("length_penalty_type", "coverage_penalty")
GNMT_LENGTH_OFFSET = 5.0  # the 5 of lp(Y)
# A source token whose attention weights all underflowed to 0 would make log(coverage) minus infinity, and every
# hypothesis of the sentence tie there; floored at the smallest float32, they still rank by the rest of the score.
MIN_COVERAGE = torch.finfo(torch.float32).tiny


@dataclass(frozen=True)
class BeamPenalties:
    """How a beam search scores a finished hypothesis: transformers' `length ** alpha` (`length_penalty_type`
    "power", no coverage penalty: transformers' own rule), or GNMT's penalties (the module's docstring)."""

    length_penalty_type: str
    alpha: float
    beta: float

    @classmethod
    def of(cls, generation_config: GenerationConfig) -> "BeamPenalties":
        """The request's penalties: generate()'s `length_penalty`, and our `length_penalty_type` and
        `coverage_penalty` (checked in `check_beam_penalties`), unset in configs saved before them."""
        length_penalty_type = getattr(generation_config, "length_penalty_type", None) or LENGTH_PENALTY_TYPES[0]
        beta = getattr(generation_config, "coverage_penalty", None) or 0.0
        return cls(length_penalty_type, generation_config.length_penalty, float(beta))

    @property
    def gnmt(self) -> bool:
        """Whether scoring differs from transformers' (which its beam search cannot do)."""
        return self.length_penalty_type != LENGTH_PENALTY_TYPES[0] or self.beta != 0.0

    def length_divisor(self, length: int) -> float:
        """lp(Y) of a hypothesis of `length` tokens (end-of-sentence included)."""
        if self.length_penalty_type == "wu":
            return ((GNMT_LENGTH_OFFSET + length) / (GNMT_LENGTH_OFFSET + 1)) ** self.alpha
        return length**self.alpha

    def coverage_penalty(self, coverage: torch.Tensor, source_mask: torch.Tensor | None = None) -> torch.Tensor:
        """cp over (..., src_len) attention sums per source token (`source_mask` True on real tokens) -> (...)."""
        log_coverage = coverage.clamp(MIN_COVERAGE, 1.0).log()
        if source_mask is not None:
            log_coverage = log_coverage.masked_fill(~source_mask, 0.0)
        return self.beta * log_coverage.sum(dim=-1)

    def score(
        self,
        sum_log_probs: torch.Tensor,
        length: int,
        coverage: torch.Tensor | None = None,  # (..., src_len); needed when beta is not 0
        source_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The score a finished hypothesis of `length` tokens ranks by."""
        score = sum_log_probs / self.length_divisor(length)
        if self.beta != 0.0:
            score = score + self.coverage_penalty(coverage, source_mask)
        return score


def check_beam_penalties(generation_config: GenerationConfig, has_attention: bool) -> None:
    """Refuse penalties that are not ours to apply: an unknown type, a negative β, β without attention."""
    length_penalty_type = getattr(generation_config, "length_penalty_type", None)
    if length_penalty_type is not None and length_penalty_type not in LENGTH_PENALTY_TYPES:
        raise ValueError(
            f"length_penalty_type must be one of {', '.join(LENGTH_PENALTY_TYPES)}, got {length_penalty_type!r}"
        )
    beta = getattr(generation_config, "coverage_penalty", None) or 0.0
    if beta < 0:
        raise ValueError(f"coverage_penalty must be at least 0 (it rewards covering the source), got {beta}")
    if beta and not has_attention:
        raise ValueError("coverage_penalty needs attention weights, and this model has no attention")
