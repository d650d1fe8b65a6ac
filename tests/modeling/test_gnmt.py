"""GNMT's length and coverage penalties in beam search (`length_penalty_type="wu"`, `coverage_penalty`): plain beam
search when both are off, hypotheses ranked by the formula computed here by hand, and coverage changing the ranking."""

import copy
import math

import pytest
import torch
from tiny_models import EOS, one_thread, reverse_batch, train_reverse_model, until_eos
from transformers import GenerationConfig

from hf_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration

NUM_BEAMS = 4
MAX_NEW_TOKENS = 10
ALPHA, BETA = 0.6, 0.4  # within the range Wu et al. (2016) tuned on
STRONG_BETA = 5.0  # enough for coverage to overrule the log-probabilities on some sentences
TOLERANCE = 1e-4  # the search sums float32 log-probabilities step by step; the test, float64 in one pass


@pytest.fixture(scope="module")
def model():
    return train_reverse_model(steps=150, attention="general")


@pytest.fixture(scope="module")
def batch():
    source, mask, _ = reverse_batch(16, torch.Generator().manual_seed(1))
    return source, mask


def beam(model, source, mask, **kwargs) -> torch.Tensor:
    with one_thread():
        return model.generate(
            input_ids=source, attention_mask=mask, num_beams=NUM_BEAMS, max_new_tokens=MAX_NEW_TOKENS, **kwargs
        )


@torch.no_grad()
def gnmt_score(model, source: torch.Tensor, mask: torch.Tensor, hypothesis: list[int], alpha: float, beta: float):
    """log P(Y|X) / ((5 + |Y|) / 6)^alpha + beta * sum_i log(min(sum_j a_ij, 1)), by hand from one teacher-forced
    pass over `hypothesis` (the start token, then through EOS)."""
    real = mask.bool()
    output = model(
        input_ids=source[real][None],
        decoder_input_ids=torch.tensor([hypothesis[:-1]]),
        output_attentions=True,
    )
    log_probs = torch.log_softmax(output.logits[0].double(), dim=-1)
    total = sum(log_probs[t, token].item() for t, token in enumerate(hypothesis[1:]))
    length = len(hypothesis) - 1
    coverage = output.cross_attentions[0][0, 0].double().sum(dim=0)  # (src_len,): over every target token
    penalty = sum(math.log(min(c, 1.0)) for c in coverage.tolist())
    return total / ((5 + length) / 6) ** alpha + beta * penalty


def test_off_is_plain_beam_search(model, batch):
    plain = beam(model, *batch, length_penalty=0.0)
    gnmt = beam(model, *batch, length_penalty=0.0, length_penalty_type="wu", coverage_penalty=0.0)
    assert torch.equal(gnmt, plain)


def test_hypotheses_rank_by_the_formula(model, batch):
    source, mask = batch
    kwargs = dict(length_penalty=ALPHA, length_penalty_type="wu", coverage_penalty=BETA)
    returned = beam(model, source, mask, num_return_sequences=NUM_BEAMS, **kwargs).view(len(source), NUM_BEAMS, -1)
    for row in range(len(source)):
        hypotheses = [until_eos(ids) for ids in returned[row].tolist()]
        assert all(ids[-1] == EOS for ids in hypotheses)
        scores = [gnmt_score(model, source[row], mask[row], ids, ALPHA, BETA) for ids in hypotheses]
        assert scores == pytest.approx(sorted(scores, reverse=True), abs=TOLERANCE), row


def test_coverage_penalty_changes_the_ranking(model, batch):
    source, mask = batch
    plain = beam(model, source, mask, length_penalty=0.0)
    covered = beam(model, source, mask, length_penalty=0.0, coverage_penalty=STRONG_BETA)
    changed = [row for row in range(len(source)) if until_eos(plain[row].tolist()) != until_eos(covered[row].tolist())]
    assert changed
    for row in changed:
        by_coverage, by_probability = until_eos(covered[row].tolist()), until_eos(plain[row].tolist())
        # The coverage penalty preferred a hypothesis that log-probability alone ranks lower.
        assert (
            gnmt_score(model, source[row], mask[row], by_coverage, 0.0, STRONG_BETA)
            >= gnmt_score(model, source[row], mask[row], by_probability, 0.0, STRONG_BETA) - TOLERANCE
        )
        assert (
            gnmt_score(model, source[row], mask[row], by_coverage, 0.0, 0.0)
            <= gnmt_score(model, source[row], mask[row], by_probability, 0.0, 0.0) + TOLERANCE
        )


def test_coverage_follows_the_beams_as_sentences_leave(model, batch):
    """Sentences of a batch finish at different steps and leave it: the coverage of the rest must follow."""
    source, mask = batch
    kwargs = dict(length_penalty=ALPHA, length_penalty_type="wu", coverage_penalty=BETA)
    together = beam(model, source, mask, **kwargs)
    for row in range(len(source)):
        alone = beam(model, source[row : row + 1], mask[row : row + 1], **kwargs)
        assert until_eos(alone[0].tolist()) == until_eos(together[row].tolist()), row


def test_set_in_the_generation_config(model, batch):
    kwargs = dict(length_penalty=ALPHA, length_penalty_type="wu", coverage_penalty=BETA)
    by_kwargs = beam(model, *batch, **kwargs)
    config = GenerationConfig(num_beams=NUM_BEAMS, max_new_tokens=MAX_NEW_TOKENS, **kwargs)
    with one_thread():
        by_config = model.generate(input_ids=batch[0], attention_mask=batch[1], generation_config=config)
    assert torch.equal(by_config, by_kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(length_penalty_type="gnmt"), "length_penalty_type must be one of power, wu"),
        (dict(coverage_penalty=-1.0), "coverage_penalty must be at least 0"),
        (dict(length_penalty_type="wu", no_repeat_ngram_size=2), "plain beam search only"),
    ],
)
def test_bad_requests(model, batch, kwargs, message):
    with pytest.raises(ValueError, match=message):
        beam(model, *batch, **kwargs)


def test_coverage_needs_attention(batch):
    model = train_reverse_model(steps=0, attention=None, input_feeding=False)
    with pytest.raises(ValueError, match="needs attention"):
        beam(model, *batch, coverage_penalty=BETA)


def test_saved_with_the_model(model, batch, tmp_path):
    """generation_config.json keeps them (as custom entries, read back by from_pretrained even from a config derived
    from the model's config, whose unknown keys transformers drops), and the reloaded model's searches use them."""
    kwargs = dict(length_penalty=ALPHA, length_penalty_type="wu", coverage_penalty=STRONG_BETA)
    original = model.generation_config
    model.generation_config = copy.deepcopy(original)
    model.generation_config.update(
        num_beams=NUM_BEAMS, max_new_tokens=MAX_NEW_TOKENS, **kwargs, allow_custom_entries=True
    )
    try:
        model.save_pretrained(tmp_path)
    finally:
        model.generation_config = original
    reloaded = RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    with one_thread():
        by_saved_config = reloaded.generate(input_ids=batch[0], attention_mask=batch[1])
    assert torch.equal(by_saved_config, beam(model, *batch, **kwargs))
