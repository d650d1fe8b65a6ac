"""The pointer-generator (`copy_attention`) and coverage (See et al., 2017) on tiny models.

Every combination of the two options with both cells, the attentions each allows and input feeding on and off:
the cached step-by-step path against the teacher-forced forward, generate() against the independent reference
searches (which re-run the whole prefix, so a coverage vector not reordered with its beam shows), and our loops
against transformers'. Then what the options are for: a copy task with tokens rare in training, learned faster
and better with copy; and coverage, turned on for a model that repeats itself, lowering its repetitions.
"""

import functools
import itertools
from dataclasses import replace

import pytest
import torch
from reference_search import greedy
from test_modeling import (
    BOS,
    EOS,
    MAX_NEW_TOKENS,
    VOCAB,
    assert_beam_matches_reference,
    assert_cached_decoding_matches_full_forward,
    pad_batch,
    sources,
    tiny_model,
)
from tiny_models import config_ids, one_thread, reverse_batch, train_reverse_model

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling.decoder import RecurrentState
from hf_rnn_seq2seq.tokenization import check_vocabularies


def options():
    for copy, coverage, cell, attention, input_feeding in itertools.product(
        (False, True), (False, True), ("gru", "lstm"), ("dot", "general", "additive"), (False, True)
    ):
        if (copy or coverage) and (attention == "additive" or not coverage):
            yield dict(
                copy_attention=copy,
                coverage=coverage,
                cell_type=cell,
                attention=attention,
                input_feeding=input_feeding,
            )


OPTIONS = list(options())
OPTION_IDS = config_ids(OPTIONS)


def copying_model(**options) -> RNNSeq2SeqForConditionalGeneration:
    """A random tiny model whose coverage weight is not zero (its initial value, which leaves scores as they were)."""
    model = tiny_model(**options)
    if model.config.coverage:
        with torch.no_grad():
            model.model.decoder.attention.coverage_weight.uniform_(-2.0, 2.0)
    return model


@pytest.fixture(params=OPTIONS, ids=OPTION_IDS)
def model(request):
    return copying_model(**request.param)


@pytest.mark.parametrize(
    "options, field",
    [
        (dict(attention=None, input_feeding=False, copy_attention=True), "copy_attention"),
        (dict(copy_attention=True, decoder_vocab_size=VOCAB + 1), "copy_attention"),
        (dict(coverage=True, attention="general"), "coverage"),
        (dict(coverage=True, attention="additive", coverage_loss_weight=-1.0), "coverage_loss_weight"),
    ],
)
def test_invalid_options_name_the_field(options, field):
    with pytest.raises(ValueError, match=f"RNNSeq2SeqConfig.{field}"):
        RNNSeq2SeqConfig(vocab_size=VOCAB, hidden_size=16, **options)


def test_cached_decoding_matches_full_forward(model):
    assert_cached_decoding_matches_full_forward(model)


def test_greedy_matches_reference(model):
    rows = sources()
    ids, mask = pad_batch(rows)
    generated = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, num_beams=1)
    for row, source in zip(generated.tolist(), rows):
        expected = greedy(model, source, MAX_NEW_TOKENS)
        assert row[: len(expected)] == expected


def test_beam_search_matches_reference(model):
    assert_beam_matches_reference(model, length_penalty=1.0)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_our_loops_match_transformers_loops(model, num_beams):
    """Plain requests run search.py's loops, which drop finished rows (and their coverage and source ids) from the
    state; `return_dict_in_generate` runs transformers' loops on the same request."""
    ids, mask = pad_batch(sources())
    with torch.no_grad():
        ours = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, num_beams=num_beams)
        theirs = model.generate(
            ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, num_beams=num_beams, return_dict_in_generate=True
        ).sequences
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_our_loops_drop_finished_rows_with_their_coverage_and_source(num_beams):
    """The random models above mostly end every sentence at the same step, so nothing is dropped; a trained
    pointer-generator with coverage ends its sentences at different steps, and search.py's loops, which then go on
    with fewer rows (each with its own coverage and source ids), must still give transformers' translations."""
    model = train_reverse_model(steps=40, attention="additive", copy_attention=True, coverage=True)
    ids, mask, _ = reverse_batch(8, torch.Generator().manual_seed(3))
    with one_thread(), torch.no_grad():
        ours = model.generate(ids, attention_mask=mask, max_new_tokens=10, num_beams=num_beams)
        theirs = model.generate(
            ids, attention_mask=mask, max_new_tokens=10, num_beams=num_beams, return_dict_in_generate=True
        ).sequences
    first_ends = {row.index(EOS) for row in ours.tolist() if EOS in row}
    assert len(first_ends) > 1, "the sentences must end at different steps for rows to be dropped"
    assert torch.equal(ours, theirs)


def test_state_reorders_the_coverage_with_the_beams_and_selects_the_source_with_the_rows():
    state = RecurrentState(
        hidden=torch.arange(4.0).view(1, 4, 1),
        cell=None,
        input_feed=None,
        attention_keys=torch.arange(4.0).view(4, 1, 1),
        coverage=torch.arange(4.0).view(4, 1),
        source_ids=torch.arange(4).view(4, 1),
    )
    beams = torch.tensor([1, 1, 3, 0])
    reordered = state.reorder(beams)
    assert reordered.coverage[:, 0].tolist() == [1, 1, 3, 0]
    assert torch.equal(reordered.source_ids, state.source_ids)  # beams of a sentence share its source
    kept = state.select(torch.tensor([2, 3]))
    assert kept.coverage[:, 0].tolist() == kept.source_ids[:, 0].tolist() == [2, 3]


LONGER = 2.0  # taken off the EOS logit: random models then end their sentences later


def test_reference_catches_a_coverage_left_behind_by_beam_reordering(monkeypatch):
    """The beam comparison guards the coverage's reordering too: prove it fires when the coverage stays put."""
    reorder = RecurrentState.reorder
    monkeypatch.setattr(
        RecurrentState, "reorder", lambda self, idx: replace(reorder(self, idx), coverage=self.coverage)
    )
    model = copying_model(cell_type="gru", attention="additive", coverage=True, input_feeding=False)
    with torch.no_grad():  # sentences that run longer, so that the beams' coverages part
        model.generator.proj.bias[EOS] -= LONGER
    with pytest.raises(AssertionError):
        assert_beam_matches_reference(model, length_penalty=1.0)


def decoder_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = pad_batch(sources())
    targets = torch.randint(3, VOCAB, (3, 5), generator=torch.Generator().manual_seed(3))
    return ids, mask, torch.cat([torch.full((3, 1), BOS), targets], dim=1)


@pytest.mark.parametrize("p_gen_bias", [-50.0, 0.0, 50.0])
def test_logits_are_the_log_of_the_mixture(p_gen_bias):
    """exp(logits) is a distribution; log_softmax (what generate() and the loss apply) leaves it as it is; with
    p_gen pinned to 1 it is the Generator's softmax, pinned to 0 the attention spread over the source ids."""
    model = copying_model(cell_type="gru", attention="general", copy_attention=True)
    with torch.no_grad():
        model.model.decoder.copy_gate.weight.zero_()
        model.model.decoder.copy_gate.bias.fill_(p_gen_bias)
    ids, mask, decoder_input_ids = decoder_inputs()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_input_ids, output_attentions=True)
        h_dec = model.model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).last_hidden_state
    torch.testing.assert_close(out.logits.exp().sum(-1), torch.ones(out.logits.shape[:2]))
    torch.testing.assert_close(torch.log_softmax(out.logits, dim=-1), out.logits)
    probabilities = out.logits.exp()
    if p_gen_bias > 0:
        torch.testing.assert_close(probabilities, model.generator.probabilities(h_dec))
    elif p_gen_bias < 0:
        weights = out.cross_attentions[0][:, 0]  # (batch, tgt_len, src_len)
        copied = torch.zeros_like(probabilities)
        for b, t, s in itertools.product(*map(range, weights.shape)):
            copied[b, t, ids[b, s]] += weights[b, t, s]
        torch.testing.assert_close(probabilities, copied)


@pytest.mark.parametrize("copy_attention", [False, True])
def test_loss_adds_the_coverage_loss(copy_attention):
    """The loss is the mean of -log P(label) + weight * sum_i min(a_i^t, c_i^t), with c^t the attention summed over
    the steps before t, recomputed here from the attention weights the model returns."""
    model = copying_model(
        cell_type="lstm", attention="additive", coverage=True, copy_attention=copy_attention, coverage_loss_weight=0.5
    )
    ids, mask, decoder_input_ids = decoder_inputs()
    labels = torch.cat([decoder_input_ids[:, 1:], torch.full((3, 1), EOS)], dim=1)
    labels[0, 3:] = -100
    out = model(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
    weights = out.cross_attentions[0][:, 0]  # (batch, tgt_len, src_len)
    coverage = weights.cumsum(dim=1) - weights  # the steps before each
    scored = labels != -100
    cross_entropy = -torch.log_softmax(out.logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    penalty = torch.minimum(weights, coverage).sum(-1)
    expected = ((cross_entropy + 0.5 * penalty) * scored).sum() / scored.sum()
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.model.decoder.attention.coverage_weight.grad.abs().sum() > 0


def test_save_and_load(tmp_path):
    model = copying_model(cell_type="lstm", attention="additive", coverage=True, copy_attention=True)
    model.save_pretrained(tmp_path)
    loaded = RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert (loaded.config.copy_attention, loaded.config.coverage) == (True, True)
    ids, mask = pad_batch(sources())
    for num_beams in (1, 3):
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, num_beams=num_beams)
        got = loaded.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, num_beams=num_beams)
        assert torch.equal(got, expected)


def test_coverage_turned_on_for_a_trained_model_starts_where_it_was(tmp_path):
    """w_c starts at zero, so a model saved without coverage and loaded with it scores as before; then it can be
    fine-tuned with the coverage loss, as See et al. (2017) do."""
    model = tiny_model(cell_type="gru", attention="additive", input_feeding=True)
    model.save_pretrained(tmp_path)
    covered = RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path, coverage=True).eval()
    ids, mask, decoder_input_ids = decoder_inputs()
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
        after = covered(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    # (not bitwise: with coverage the steps attend one at a time, and a product over fewer rows may round differently)
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


class Vocabulary:
    """What check_vocabularies reads of a tokenizer."""

    def __init__(self, pieces: list[str]):
        self.pieces = pieces

    def __len__(self) -> int:
        return len(self.pieces)

    def get_vocab(self) -> dict[str, int]:
        return {piece: i for i, piece in enumerate(self.pieces)}


def test_copying_with_separate_vocabularies_is_refused():
    config = RNNSeq2SeqConfig(vocab_size=3, hidden_size=16, copy_attention=True, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, decoder_start_token_id=1)  # fmt: skip
    source, target = Vocabulary(["<pad>", "<s>", "▁a"]), Vocabulary(["<pad>", "<s>", "▁b"])
    check_vocabularies(config, source, Vocabulary(source.pieces), "fix")  # equal vocabularies are one vocabulary
    with pytest.raises(ValueError, match="different vocabularies: train it with one joint vocabulary"):
        check_vocabularies(config, source, target, "fix")


def test_onnx_export_refuses_copy_and_coverage(tmp_path):
    pytest.importorskip("onnx")
    from hf_rnn_seq2seq.onnx_export import export_onnx

    model = copying_model(cell_type="gru", attention="additive", coverage=True, copy_attention=True)
    with pytest.raises(ValueError, match=r"^ONNX export does not support models with copy_attention or coverage=True"):
        export_onnx(model, tmp_path)
    assert not any(tmp_path.iterdir())


# --- what the options are for ------------------------------------------------------------------------------------

# The copy task: the target is the source. Training sources draw each token from COMMON, or from RARE with
# probability RARE_IN_TRAINING; test sources draw half their tokens from RARE, which the Generator has barely seen.
COPY_VOCAB, COMMON, RARE = 48, (3, 36), (36, 48)
COPY_LENGTH, RARE_IN_TRAINING, RARE_IN_TEST = 8, 0.01, 0.5
COPY_STEPS = 40


def copy_batch(n: int, g: torch.Generator, rare: float) -> tuple[torch.Tensor, torch.Tensor]:
    common_tokens = torch.randint(*COMMON, (n, COPY_LENGTH), generator=g)
    rare_tokens = torch.randint(*RARE, (n, COPY_LENGTH), generator=g)
    words = torch.where(torch.rand(n, COPY_LENGTH, generator=g) < rare, rare_tokens, common_tokens)
    source = torch.cat([words, torch.full((n, 1), EOS)], dim=1)
    return source, source.clone()


def train(model, batches, steps: int) -> float:
    """Adam on `steps` batches from `batches()`; returns the last training loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with one_thread():
        for _ in range(steps):
            source, labels = batches()
            loss = model(input_ids=source, attention_mask=torch.ones_like(source), labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


def test_copy_task_is_learned_faster_and_better_with_copy():
    results = {}
    for copy_attention in (False, True):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        config = RNNSeq2SeqConfig(vocab_size=COPY_VOCAB, embedding_size=16, hidden_size=32, cell_type="gru",
                                  attention="general", input_feeding=False, dropout=0.0, init_scale=0.3,
                                  copy_attention=copy_attention)  # fmt: skip
        model = RNNSeq2SeqForConditionalGeneration(config)
        loss = train(model, functools.partial(copy_batch, 32, g, RARE_IN_TRAINING), COPY_STEPS)
        source, labels = copy_batch(64, torch.Generator().manual_seed(99), RARE_IN_TEST)
        with one_thread(), torch.no_grad():
            output = model.eval().generate(source, max_new_tokens=COPY_LENGTH + 1, num_beams=1)[:, 1:]
        right = output[:, : labels.shape[1]] == labels[:, : output.shape[1]]
        rare = labels[:, : output.shape[1]] >= RARE[0]
        results[copy_attention] = (loss, right.float().mean().item(), right[rare].float().mean().item())
    (loss_without, accuracy_without, rare_without), (loss_with, accuracy_with, rare_with) = results.values()
    assert loss_with < loss_without / 4, results
    assert accuracy_with > 0.9 and accuracy_without < 0.5, results
    assert rare_with > 0.9 and rare_without < 0.1, results


# The repetition task: reverse L distinct tokens, so a reference never repeats one. A model part-trained on it
# without coverage repeats tokens; it then trains on for a few steps with and without coverage.
REVERSE_VOCAB, REVERSE_LENGTH = 40, 12
BASE_STEPS, MORE_STEPS = 60, 30


def distinct_reversal_batch(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    words = torch.stack([torch.randperm(REVERSE_VOCAB - 3, generator=g)[:REVERSE_LENGTH] + 3 for _ in range(n)])
    end = torch.full((n, 1), EOS)
    return torch.cat([words, end], dim=1), torch.cat([words.flip(1), end], dim=1)


def repeated_token_rate(rows: list[list[int]]) -> float:
    """The share of output tokens (before EOS) that repeat an earlier one."""
    outputs = [row[: row.index(EOS)] if EOS in row else row for row in rows]
    return sum(len(row) - len(set(row)) for row in outputs) / sum(map(len, outputs))


def test_coverage_lowers_repetitions():
    def reversal_config(coverage: bool) -> RNNSeq2SeqConfig:
        return RNNSeq2SeqConfig(vocab_size=REVERSE_VOCAB, embedding_size=16, hidden_size=32, cell_type="gru",
                                attention="additive", input_feeding=False, dropout=0.0, init_scale=0.3,
                                coverage=coverage)  # fmt: skip

    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    base = RNNSeq2SeqForConditionalGeneration(reversal_config(False))
    train(base, functools.partial(distinct_reversal_batch, 32, g), BASE_STEPS)
    source, _ = distinct_reversal_batch(64, torch.Generator().manual_seed(99))
    rates = {}
    for coverage in (False, True):
        model = RNNSeq2SeqForConditionalGeneration(reversal_config(coverage))
        model.load_state_dict(base.state_dict(), strict=False)  # coverage_weight stays zero: no change yet
        more = torch.Generator().manual_seed(101)
        train(model, functools.partial(distinct_reversal_batch, 32, more), MORE_STEPS)
        with one_thread(), torch.no_grad():
            output = model.eval().generate(source, max_new_tokens=REVERSE_LENGTH + 1, num_beams=1)[:, 1:]
        rates[coverage] = repeated_token_rate(output.tolist())
    assert rates[False] > 0.3, rates  # the task provokes repetitions
    assert rates[True] < 0.6 * rates[False], rates
