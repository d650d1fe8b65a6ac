"""generate() options that transformers offers, on the recurrent model, and refusals of bad input."""

import pytest
import torch
from transformers import TextStreamer

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

PAD, BOS, EOS = 0, 1, 2
SOURCE = torch.tensor([[5, 9, 13, 7, 2], [8, 4, 2, 0, 0]])
MASK = (SOURCE != PAD).long()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(vocab_size=30, embedding_size=16, hidden_size=16, init_scale=0.5)
    return RNNSeq2SeqForConditionalGeneration(config).eval()


def run(model, **kwargs):
    return model.generate(SOURCE, attention_mask=MASK, **kwargs)


def generated_lengths(sequences: torch.Tensor) -> list[int]:
    """Generated tokens per row, up to and including the first EOS."""
    lengths = []
    for row in sequences[:, 1:].tolist():
        lengths.append(row.index(EOS) + 1 if EOS in row else len(row))
    return lengths


def test_starts_with_bos_and_respects_max_new_tokens(model):
    out = run(model, max_new_tokens=5)
    assert torch.all(out[:, 0] == BOS)
    assert out.shape[1] <= 1 + 5


def test_min_new_tokens_holds_back_eos(model):
    with torch.no_grad():
        model.generator.proj.bias[EOS] += 10.0  # EOS would otherwise come first
        try:
            assert generated_lengths(run(model, max_new_tokens=8)) == [1, 1]
            out = run(model, max_new_tokens=8, min_new_tokens=4)
        finally:
            model.generator.proj.bias[EOS] -= 10.0
    assert all(n >= 5 for n in generated_lengths(out))


def test_sampling_is_seeded_and_honours_top_k(model):
    torch.manual_seed(1)
    a = run(model, do_sample=True, top_k=3, temperature=0.7, max_new_tokens=6)
    torch.manual_seed(1)
    b = run(model, do_sample=True, top_k=3, temperature=0.7, max_new_tokens=6)
    assert torch.equal(a, b)
    torch.manual_seed(1)
    out = run(model, do_sample=True, top_k=1, max_new_tokens=6)  # top_k=1 sampling is greedy
    assert torch.equal(out, run(model, max_new_tokens=6))
    torch.manual_seed(1)
    assert run(model, do_sample=True, top_p=0.9, max_new_tokens=6).shape[0] == 2


def test_no_repeat_ngram_size(model):
    out = run(model, max_new_tokens=12, no_repeat_ngram_size=2, num_beams=2)
    for row in out[:, 1:].tolist():
        row = row[: row.index(EOS)] if EOS in row else row
        bigrams = list(zip(row, row[1:]))
        assert len(bigrams) == len(set(bigrams))


def test_repetition_penalty_and_bad_words(model):
    plain = run(model, max_new_tokens=6)
    banned = int(plain[0, 1])
    out = run(model, max_new_tokens=6, bad_words_ids=[[banned]], repetition_penalty=1.3)
    assert banned not in out.tolist()[0] and banned not in out.tolist()[1]


def test_scores_and_attentions_in_dict_output(model):
    out = run(model, max_new_tokens=4, return_dict_in_generate=True, output_scores=True, output_attentions=True)
    steps = out.sequences.shape[1] - 1
    assert len(out.scores) == steps and out.scores[0].shape == (2, 30)
    assert len(out.cross_attentions) == steps
    assert out.cross_attentions[0][0].shape == (2, 1, 1, SOURCE.shape[1])


def test_streamer_receives_the_tokens(model):
    class Collect(TextStreamer):
        def __init__(self):
            self.tokens = []

        def put(self, value):
            self.tokens.append(value.flatten().tolist())

        def end(self):
            self.ended = True

    streamer = Collect()
    out = model.generate(SOURCE[:1], max_new_tokens=5, streamer=streamer)
    assert streamer.ended and sum(streamer.tokens, []) == out[0].tolist()


def test_without_cache_gives_the_same_tokens(model):
    assert torch.equal(run(model, max_new_tokens=6, use_cache=False), run(model, max_new_tokens=6))


def test_token_ids_outside_the_vocabulary_are_refused(model):
    with pytest.raises(ValueError, match="vocabulary has 30 entries"):
        model(input_ids=torch.tensor([[5, 31]]), decoder_input_ids=torch.tensor([[BOS]]))
    with pytest.raises(ValueError, match="labels"):
        model(input_ids=SOURCE, attention_mask=MASK, labels=torch.tensor([[5, 99], [3, 4]]))


def test_left_padded_decoder_inputs_are_refused(model):
    with pytest.raises(ValueError, match="right-padded"):
        model(
            input_ids=SOURCE,
            attention_mask=MASK,
            decoder_input_ids=torch.tensor([[PAD, BOS], [BOS, 5]]),
            decoder_attention_mask=torch.tensor([[0, 1], [1, 1]]),
        )


def test_more_returned_sequences_than_beams_is_refused(model):
    with pytest.raises(ValueError, match="num_return_sequences"):
        run(model, num_beams=2, num_return_sequences=3)


def test_source_keys_are_projected_once_per_sentence(model, monkeypatch):
    attention = model.model.decoder.attention
    calls = []
    original = attention.project_keys
    monkeypatch.setattr(attention, "project_keys", lambda h_enc: calls.append(h_enc.shape) or original(h_enc))
    out = run(model, max_new_tokens=6, min_new_tokens=6, num_beams=3)
    assert out.shape[1] == 7 and len(calls) == 1
