"""The model on tiny configurations with random weights: every combination of options.

Each sweep case checks that the fast paths (packed encoder, cached step-by-step decoding,
beam reordering) agree with slow, obviously-right computations.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F
from reference_search import beam_search, greedy
from tiny_models import config_ids
from transformers.generation.utils import DeferredStopCheck

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling.decoder import RecurrentState

VOCAB = 40
PAD, BOS, EOS = 0, 1, 2
EOS_BIAS = 2.0  # makes random models end sentences after a few tokens, at varied lengths
MAX_NEW_TOKENS = 8
# After a hypothesis ends, transformers fills with `pad_token_id or eos_token_id`: with pad id 0, beam
# search fills with EOS. Either decodes to nothing.
FILL = {PAD, EOS}


def sweep():
    for cell, bidirectional, attention, layers in itertools.product(
        ("gru", "lstm", "rnn"), (False, True), (None, "dot", "general", "additive"), (1, 2)
    ):
        for input_feeding in (False, True) if attention else (False,):
            yield dict(
                cell_type=cell,
                bidirectional=bidirectional,
                attention=attention,
                input_feeding=input_feeding,
                num_layers=layers,
            )


SWEEP = list(sweep())
SWEEP_IDS = config_ids(SWEEP)


def tiny_model(seed: int = 0, **options) -> RNNSeq2SeqForConditionalGeneration:
    torch.manual_seed(seed)
    config = RNNSeq2SeqConfig(
        vocab_size=VOCAB, embedding_size=12, hidden_size=16, dropout=0.0, init_scale=0.5, **options
    )
    model = RNNSeq2SeqForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.generator.proj.bias[EOS] += EOS_BIAS
    return model


def sources(seed: int = 1) -> list[torch.Tensor]:
    """Unpadded source sentences of different lengths (each ends with EOS, as the tokenizer does)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.cat([torch.randint(3, VOCAB, (n,), generator=g), torch.tensor([EOS])]) for n in (6, 1, 4)]


def pad_batch(rows: list[torch.Tensor], side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
        ids[i, span], mask[i, span] = r, 1
    return ids, mask


@pytest.fixture(params=SWEEP, ids=SWEEP_IDS)
def model(request):
    return tiny_model(**request.param)


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, field",
    [
        (dict(cell_type="transformer"), "cell_type"),
        (dict(attention="multihead"), "attention"),
        (dict(bridge="mean"), "bridge"),
        (dict(hidden_size=0), "hidden_size"),
        (dict(dropout=1.5), "dropout"),
        (dict(attention=None), "input_feeding"),  # input_feeding defaults to True
        (dict(attention=None, input_feeding=False, bridge="zeros"), "bridge"),
        (dict(attention="dot", encoder_hidden_size=16), "attention"),
        (dict(bridge="copy", encoder_layers=2, decoder_layers=1), "bridge"),
        (dict(tie_word_embeddings=True, embedding_size=8), "tie_word_embeddings"),
        (dict(hidden_size=15), "hidden_size"),
        (dict(eos_token_id=500), "eos_token_id"),
    ],
)
def test_invalid_config_names_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        RNNSeq2SeqConfig(vocab_size=VOCAB, hidden_size=options.pop("hidden_size", 16), **options)


def test_config_defaults_and_round_trip(tmp_path):
    config = RNNSeq2SeqConfig(vocab_size=VOCAB, hidden_size=16, attention="none", input_feeding=False)
    assert config.attention is None
    assert config.decoder_vocab_size == VOCAB and config.encoder_hidden_size == 8
    config.save_pretrained(tmp_path)
    assert RNNSeq2SeqConfig.from_pretrained(tmp_path).to_dict() == config.to_dict()


# --- the parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional, expected", [(False, 16), (True, 32)])
def test_encoder_output_shape(bidirectional, expected):
    model = tiny_model(bidirectional=bidirectional, encoder_hidden_size=16, bridge="linear")
    ids, mask = pad_batch(sources())
    h_enc = model.get_encoder()(ids, mask).last_hidden_state
    assert h_enc.shape == (3, ids.shape[1], expected)  # (batch, m, hidden) or 2 x hidden
    assert torch.all(h_enc[mask == 0] == 0)


def test_generator_returns_probabilities():
    model = tiny_model()
    probs = model.generator.probabilities(torch.randn(2, 3, 16))
    assert probs.shape == (2, 3, VOCAB)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 3))


@pytest.mark.parametrize("attention", ["dot", "general", "additive"])
def test_attention_puts_no_weight_on_padding(attention):
    model = tiny_model(attention=attention)
    ids, mask = pad_batch(sources(), side="left")
    out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.full((3, 4), BOS), output_attentions=True)
    weights = out.cross_attentions[0][:, 0]  # (batch, tgt_len, src_len)
    assert torch.all(weights.masked_select(mask[:, None, :] == 0) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))


@pytest.mark.parametrize("bridge", ["copy", "linear", "zeros"])
@pytest.mark.parametrize("cell_type", ["gru", "lstm"])
def test_bridges(bridge, cell_type):
    model = tiny_model(bridge=bridge, cell_type=cell_type, num_layers=2)
    ids, mask = pad_batch(sources())
    encoded = model.get_encoder()(ids, mask)
    state = model.model.decoder.init_state(encoded)
    assert state.hidden.shape == (2, 3, 16)
    if bridge == "copy":
        torch.testing.assert_close(state.hidden, encoded.final_hidden.transpose(0, 1))
    elif bridge == "zeros":
        assert torch.all(state.hidden == 0)
    assert (state.cell is not None) == (cell_type == "lstm")


def test_linear_bridge_between_different_depths():
    model = tiny_model(bridge="linear", encoder_layers=3, decoder_layers=2)
    assert_cached_decoding_matches_full_forward(model)


# --- the sweep -----------------------------------------------------------------------------------


def assert_cached_decoding_matches_full_forward(model, state_name: str = "cache") -> torch.Tensor:
    """Decode one token at a time, handing the state back under `state_name` and reading it from the outputs under
    the same name; the logits must be the teacher-forced forward's. Returns them, step by step."""
    ids, mask = pad_batch(sources())
    targets = torch.randint(3, VOCAB, (3, 7), generator=torch.Generator().manual_seed(2))
    decoder_input_ids = torch.cat([torch.full((3, 1), BOS), targets], dim=1)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
        encoder_outputs, state, steps = model.get_encoder()(ids, mask), None, []
        for t in range(decoder_input_ids.shape[1]):
            out = model(
                attention_mask=mask,
                encoder_outputs=encoder_outputs,
                decoder_input_ids=decoder_input_ids[:, t : t + 1],
                use_cache=True,
                **{state_name: state},
            )
            state = getattr(out, state_name)
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    return torch.cat(steps, dim=1)


def test_cached_decoding_matches_full_forward(model):
    assert_cached_decoding_matches_full_forward(model)


# Both cells, attention off and on, with and without input feeding: each keeps a different state.
LEGACY_STATE_NAME_CASES = [
    dict(cell_type="gru", attention=None, input_feeding=False),
    dict(cell_type="lstm", attention=None, input_feeding=False, num_layers=2),
    dict(cell_type="gru", attention="general", input_feeding=True),
    dict(cell_type="lstm", attention="additive", input_feeding=False),
    dict(cell_type="lstm", attention="dot", input_feeding=True),
]


@pytest.mark.parametrize("options", LEGACY_STATE_NAME_CASES, ids=lambda options: "-".join(map(str, options.values())))
def test_state_passed_as_past_key_values_works_as_cache(options):
    """`past_key_values`, the name older callers and tutorials use, is transformers' deprecated alias of `cache`:
    step-by-step decoding through it must give exactly what `cache` gives, with transformers' warning."""
    model = tiny_model(**options)
    with pytest.warns(FutureWarning, match="`past_key_values` is deprecated .* Use `cache` instead"):
        legacy = assert_cached_decoding_matches_full_forward(model, state_name="past_key_values")
    assert torch.equal(legacy, assert_cached_decoding_matches_full_forward(model))


def test_base_model_takes_past_key_values_as_cache():
    model = tiny_model(cell_type="lstm", attention="general", input_feeding=True)
    ids, mask = pad_batch(sources())
    first, second = torch.full((3, 1), BOS), torch.full((3, 1), 7)
    with torch.no_grad():
        state = model.model(input_ids=ids, attention_mask=mask, decoder_input_ids=first).cache
        expected = model.model(input_ids=ids, attention_mask=mask, decoder_input_ids=second, cache=state)
        with pytest.warns(FutureWarning, match="`past_key_values` is deprecated"):
            got = model.model(input_ids=ids, attention_mask=mask, decoder_input_ids=second, past_key_values=state)
    assert torch.equal(got.last_hidden_state, expected.last_hidden_state)
    assert got.past_key_values is got.cache


@pytest.mark.parametrize("forward", ["model", "model.model"])
def test_state_under_both_names_is_refused(forward):
    model = tiny_model(cell_type="gru", attention="general", input_feeding=True)
    ids, mask = pad_batch(sources())
    bos = torch.full((3, 1), BOS)
    state = model(input_ids=ids, attention_mask=mask, decoder_input_ids=bos).cache
    module = model.model if forward == "model.model" else model
    with pytest.raises(ValueError, match="as `cache` and as `past_key_values`"):
        module(input_ids=ids, attention_mask=mask, decoder_input_ids=bos, cache=state, past_key_values=state)


def test_greedy_matches_reference(model):
    rows = sources()
    ids, mask = pad_batch(rows)
    generated = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
    for row, source in zip(generated.tolist(), rows):
        expected = greedy(model, source, MAX_NEW_TOKENS)
        assert row[: len(expected)] == expected
        assert all(t == PAD for t in row[len(expected) :])


def test_generate_returns_the_recurrent_state():
    """generate() carries the Decoder's state between steps as `cache` and hands it back; on MPS it
    asks whether that state can be rolled back a step (to stop a step late) and must hear no."""
    model = tiny_model(cell_type="lstm", attention="general", input_feeding=True)
    ids, mask = pad_batch(sources())
    out = model.generate(ids, attention_mask=mask, max_new_tokens=3, return_dict_in_generate=True)
    assert isinstance(out.cache, RecurrentState) and out.cache.input_feed.shape[0] == ids.shape[0]
    mps = torch.device("mps")
    assert not DeferredStopCheck.is_supported(mps, out.cache, cache_is_returned=True, is_assistant=False)


def assert_beam_matches_reference(model, length_penalty, early_stopping=False, num_beams=4, num_return_sequences=2):
    rows = sources()
    ids, mask = pad_batch(rows, side="right")
    out = model.generate(
        ids,
        attention_mask=mask,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
        max_new_tokens=MAX_NEW_TOKENS,
        return_dict_in_generate=True,
        output_scores=True,
    )
    sequences = out.sequences.view(len(rows), num_return_sequences, -1).tolist()
    scores = out.sequences_scores.view(len(rows), num_return_sequences)
    lengths = set()
    for source, got, got_scores in zip(rows, sequences, scores):
        expected = beam_search(model, source, num_beams, MAX_NEW_TOKENS, length_penalty, early_stopping)
        for (score, tokens), row, row_score in zip(expected, got, got_scores):
            assert row[: len(tokens)] == tokens
            assert set(row[len(tokens) :]) <= FILL
            assert abs(float(row_score) - score) < 1e-4
            lengths.add(len(tokens))
    return lengths


@pytest.mark.parametrize("length_penalty", [0.6, 1.0, 2.0])
def test_beam_search_matches_reference(model, length_penalty):
    assert_beam_matches_reference(model, length_penalty)


@pytest.mark.parametrize("early_stopping", [True, "never"])
def test_beam_search_early_stopping_modes_match_reference(early_stopping):
    model = tiny_model(cell_type="lstm", attention="general", bidirectional=True)
    assert_beam_matches_reference(model, 1.0, early_stopping=early_stopping)


def test_beams_finish_at_different_lengths():
    model = tiny_model(cell_type="lstm", attention="general", bidirectional=True)
    assert len(assert_beam_matches_reference(model, 1.0)) > 1


def test_reference_catches_a_broken_state_reorder(monkeypatch):
    """The beam comparison is the guard against a no-op reorder: prove it fires."""
    monkeypatch.setattr(RecurrentState, "reorder", lambda self, beam_idx: self)
    failures = 0
    for options in SWEEP[:12]:
        try:
            assert_beam_matches_reference(tiny_model(**options), 1.0)
        except AssertionError:
            failures += 1
    assert failures > 0


def test_padding_side_and_batching_do_not_change_outputs(model):
    rows = sources()
    results = {}
    with torch.no_grad():
        for side in ("left", "right"):
            ids, mask = pad_batch(rows, side)
            encoded = model.get_encoder()(ids, mask)
            real = [encoded.last_hidden_state[i][mask[i].bool()] for i in range(len(rows))]
            generated = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, num_beams=2)
            results[side] = (real, encoded.final_hidden, generated)
        for i, source in enumerate(rows):
            alone = model.get_encoder()(source.unsqueeze(0))
            for side in ("left", "right"):
                real, final_hidden, generated = results[side]
                torch.testing.assert_close(real[i], alone.last_hidden_state[0], atol=1e-6, rtol=0)
                torch.testing.assert_close(final_hidden[i], alone.final_hidden[0], atol=1e-6, rtol=0)
            one = model.generate(source.unsqueeze(0), max_new_tokens=MAX_NEW_TOKENS, num_beams=2)[0].tolist()
            for side in ("left", "right"):
                row = results[side][2][i].tolist()
                assert row[: len(one)] == one and set(row[len(one) :]) <= FILL


def test_loss_and_gradients(model):
    ids, mask = pad_batch(sources())
    labels = torch.randint(3, VOCAB, (3, 5), generator=torch.Generator().manual_seed(3))
    labels[1, 2:] = -100
    model.train()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    kept = labels != -100
    expected = -torch.log_softmax(out.logits, -1)[kept].gather(-1, labels[kept].unsqueeze(-1)).mean()
    torch.testing.assert_close(out.loss, expected)
    # The Trainer's num_items_in_batch (tokens over all accumulation steps) turns the mean into sum / N.
    total = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=100).loss * 100
    torch.testing.assert_close(total, F.cross_entropy(out.logits[kept], labels[kept], reduction="sum"))
    out.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
