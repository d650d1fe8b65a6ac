"""Scheduled sampling in the model's forward: probability 0 is teacher forcing, probability 1 feeds the model its
own greedy predictions (checked against a hand-written decoding loop), and evaluation never samples."""

import pytest
import torch
import torch.nn.functional as F
from tiny_models import reverse_batch

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling.decoder import ScheduledSampling

VOCAB = 16
# Input feeding makes the Decoder step token by token anyway; without it, teacher forcing runs the fused
# sequence kernel and scheduled sampling the steps.
CONFIGS = {
    "input-feeding": dict(attention="general", input_feeding=True, cell_type="lstm"),
    "no-input-feeding": dict(attention="dot", input_feeding=False, cell_type="gru"),
    "no-attention": dict(attention=None, input_feeding=False, cell_type="lstm", num_layers=2),
    # The coverage vector must go on from step to step in the sampling loop too (its loss left out, so that the
    # hand-written loop below needs only the cross-entropy).
    "coverage": dict(
        attention="additive", input_feeding=False, cell_type="gru", coverage=True, coverage_loss_weight=0.0
    ),
}


def tiny_model(dropout: float = 0.0, **options) -> RNNSeq2SeqForConditionalGeneration:
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(
        vocab_size=VOCAB, embedding_size=8, hidden_size=12, dropout=dropout, init_scale=0.5, **options
    )
    model = RNNSeq2SeqForConditionalGeneration(config).train()
    if config.coverage:  # w_c starts at zero: give the coverage a say in the scores
        torch.nn.init.uniform_(model.model.decoder.attention.coverage_weight, -1.0, 1.0)
    return model


def batch() -> dict[str, torch.Tensor]:
    source, mask, labels = reverse_batch(5, torch.Generator().manual_seed(0))
    return dict(input_ids=source, attention_mask=mask, labels=labels)


def loss_and_gradients(model: RNNSeq2SeqForConditionalGeneration, seed: int = 1) -> list[torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(seed)  # the same dropout masks
    loss = model(**batch()).loss
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_probability_zero_is_exactly_teacher_forcing(options):
    model = tiny_model(dropout=0.3, **options)
    teacher_forcing = loss_and_gradients(model)
    model.scheduled_sampling_probability = 0.0
    for expected, got in zip(teacher_forcing, loss_and_gradients(model), strict=True):
        assert torch.equal(expected, got)


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_the_sampling_path_at_probability_zero_reads_the_gold_tokens(options):
    """The step loop with sampling on, but every coin landing on the reference: the teacher-forced outputs."""
    model = tiny_model(**options)
    inputs = batch()
    decoder_input_ids = model.prepare_decoder_input_ids_from_labels(inputs["labels"])
    common = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    teacher_forcing = model.model(**common, decoder_input_ids=decoder_input_ids).last_hidden_state
    never = ScheduledSampling(0.0, model.greedy_token)
    sampled = model.model(**common, decoder_input_ids=decoder_input_ids, scheduled_sampling=never).last_hidden_state
    torch.testing.assert_close(sampled, teacher_forcing)


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_probability_one_feeds_the_previous_greedy_prediction(options):
    model = tiny_model(**options)
    inputs = batch()
    labels = inputs["labels"]
    model.scheduled_sampling_probability = 1.0
    output = model(**inputs)

    # By hand: decode greedily one step at a time from the start token, whatever the references say.
    encoder_outputs = model.model.encoder(inputs["input_ids"], inputs["attention_mask"])
    state = model.model.decoder.init_state(encoder_outputs)
    token = torch.full((labels.size(0), 1), model.config.decoder_start_token_id)
    logits = []
    for _ in range(labels.size(1)):
        decoded = model.model.decoder(token, encoder_outputs.last_hidden_state, inputs["attention_mask"].bool(), state)
        state = decoded.state
        step_logits = model.generator(decoded.h_dec)  # (batch, 1, |V|)
        logits.append(step_logits)
        token = step_logits.argmax(-1)
    logits = torch.cat(logits, dim=1)
    expected = F.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), ignore_index=-100, label_smoothing=model.config.label_smoothing
    )
    torch.testing.assert_close(output.loss, expected)
    # The decoder inputs were the predictions, not the references: the loss differs from teacher forcing's.
    model.scheduled_sampling_probability = 0.0
    assert not torch.allclose(model(**inputs).loss, expected)


def test_evaluation_never_samples():
    model = tiny_model(**CONFIGS["input-feeding"]).eval()
    teacher_forcing = model(**batch()).loss
    model.scheduled_sampling_probability = 1.0
    assert torch.equal(model(**batch()).loss, teacher_forcing)


def test_the_probability_is_not_saved(tmp_path):
    model = tiny_model(**CONFIGS["input-feeding"])
    model.scheduled_sampling_probability = 0.5
    model.save_pretrained(tmp_path)
    assert "scheduled_sampling" not in (tmp_path / "config.json").read_text()
    assert RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).scheduled_sampling_probability == 0.0
