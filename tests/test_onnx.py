"""ONNX export: the graphs compute what PyTorch computes, and the onnxruntime runner decodes as generate() does."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from tiny_models import EOS, KOREAN, VOCAB, one_thread, reverse_batch, save_tiny_translator, train_reverse_model

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.modeling.generator import Shortlist
from hf_rnn_seq2seq.onnx_export import export_model_dir, export_onnx
from hf_rnn_seq2seq.onnx_runtime import OnnxTranslator, state_names

pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
# A batch and a source length unlike the example the graphs were traced with, with right- and left-padded rows.
SOURCE = torch.tensor([[5, 9, 13, 7, 11, 2], [0, 0, 8, 4, 2, 0], [6, 2, 0, 0, 0, 0], [0, 3, 3, 3, 3, 2]])
MASK = (SOURCE != 0).long()
SOURCE_AND_MASK = (SOURCE, MASK)
DECODER_TOKENS = [1, 7, 12, 2]  # fed one step at a time, as generate() would
MAX_NEW_TOKENS = 9
SHORT = 3  # fewer tokens than most reversed sequences need
TOP_K = 3
BEAMS = 4

CONFIGS = {
    "gru-general-feed": dict(cell_type="gru", attention="general", input_feeding=True),
    "lstm-additive-2layers-linear": dict(
        cell_type="lstm", attention="additive", input_feeding=False, num_layers=2, bridge="linear"
    ),
    "rnn-dot-unidirectional": dict(cell_type="rnn", attention="dot", bidirectional=False),
    "lstm-none": dict(cell_type="lstm", attention=None, input_feeding=False),
    "gru-none-zeros-decoder2": dict(
        cell_type="gru", attention=None, input_feeding=False, decoder_layers=2, bridge="linear"
    ),
}


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_graphs_match_pytorch(tmp_path, options):
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(vocab_size=20, embedding_size=8, hidden_size=16, init_scale=0.5, **options)
    model = RNNSeq2SeqForConditionalGeneration(config).eval()
    export_onnx(model, tmp_path)
    runner = OnnxTranslator(tmp_path)

    inputs = runner.encode(SOURCE.numpy(), MASK.numpy())
    with torch.no_grad():
        encoder_outputs = model.get_encoder()(SOURCE, MASK)
        state = model.model.decoder.init_state(encoder_outputs)
    assert np.abs(inputs["encoder_hidden_states"] - encoder_outputs.last_hidden_state.numpy()).max() < TOLERANCE
    for name in state_names(config):
        assert np.abs(inputs[name] - getattr(state, name).numpy()).max() < TOLERANCE, name

    for token in DECODER_TOKENS:
        tokens = torch.full((len(SOURCE), 1), token)
        with torch.no_grad():
            output = model(
                encoder_outputs=encoder_outputs,
                attention_mask=MASK,
                decoder_input_ids=tokens,
                cache=state,
                output_attentions=True,
            )
        state = output.cache
        outputs, inputs = runner.decode_step(tokens[:, 0].numpy(), inputs, k=TOP_K)
        logits = output.logits[:, -1]
        assert np.abs(outputs["logits"] - logits.numpy()).max() < TOLERANCE
        top_log_probs, top_tokens = torch.log_softmax(logits, dim=-1).topk(TOP_K)
        assert np.abs(outputs["top_log_probs"] - top_log_probs.numpy()).max() < TOLERANCE
        assert (outputs["top_tokens"] == top_tokens.numpy()).all()
        if config.attention is not None:
            weights = output.cross_attentions[0][:, 0, -1].numpy()
            assert np.abs(outputs["attention_weights"] - weights).max() < TOLERANCE
        for name in state_names(config):
            assert np.abs(inputs[name] - getattr(state, name).numpy()).max() < TOLERANCE, name


TRAINED = {
    "gru-general": dict(cell_type="gru", attention="general", input_feeding=False),
    "lstm-additive-feed": dict(cell_type="lstm", attention="additive", input_feeding=True),
    "gru-none": dict(cell_type="gru", attention=None, input_feeding=False),
    "lstm-none-2layers": dict(cell_type="lstm", attention=None, input_feeding=False, num_layers=2),
}


@pytest.mark.parametrize("options", TRAINED.values(), ids=TRAINED.keys())
def test_greedy_and_beam_search_equal_generate(tmp_path, options):
    model = train_reverse_model(**options)
    with one_thread():
        export_onnx(model, tmp_path)
    runner = OnnxTranslator(tmp_path)
    source, mask, _ = reverse_batch(32, torch.Generator().manual_seed(1))
    for search in (
        dict(num_beams=1),
        dict(num_beams=1, max_new_tokens=SHORT),
        dict(num_beams=BEAMS),
        dict(num_beams=BEAMS, max_new_tokens=SHORT),  # every beam is cut at the limit
        dict(num_beams=BEAMS, length_penalty=0.5, early_stopping=True),
        dict(num_beams=BEAMS, length_penalty=2.0, early_stopping="never"),
    ):
        search = {"max_new_tokens": MAX_NEW_TOKENS} | search
        with one_thread():
            expected = model.generate(source, attention_mask=mask, **search)
        output = runner.generate(source.numpy(), mask.numpy(), **search)
        assert output.tolist() == expected.tolist(), search


def test_exported_directory_translates_text_like_the_pipeline(tmp_path):
    model_dir = save_tiny_translator(tmp_path / "model")
    paths = export_model_dir(model_dir, tmp_path / "onnx")
    assert [path.name for path in paths] == ["encoder.onnx", "decoder_step.onnx", "generator.onnx"]
    runner = OnnxTranslator(tmp_path / "onnx")
    translator = load_translator(model_dir)
    for num_beams in (1, BEAMS):
        expected = [r["translation_text"] for r in translator(KOREAN[:4], num_beams=num_beams)]
        assert runner.translate(KOREAN[:4], num_beams=num_beams) == expected


def test_missing_graphs_are_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="no encoder.onnx"):
        OnnxTranslator(tmp_path)


def test_source_relative_limits_equal_generate(tmp_path):
    """max_len_a/max_len_b cut each sentence at its own length, as generate() does, in greedy and beam search."""
    model = train_reverse_model(**TRAINED["gru-general"])
    with one_thread():
        export_onnx(model, tmp_path)
    runner = OnnxTranslator(tmp_path)
    source, mask, _ = reverse_batch(16, torch.Generator().manual_seed(2))
    # Room for the reversal of a short source (its words and EOS), not of a long one.
    limits = dict(max_len_a=0.8, max_len_b=1, max_new_tokens=MAX_NEW_TOKENS)
    for search in (
        dict(num_beams=1),
        dict(num_beams=BEAMS),
        dict(num_beams=BEAMS, length_penalty=2.0, early_stopping="never"),
        dict(num_beams=BEAMS, max_new_tokens=SHORT),  # the smaller limit wins
    ):
        search = limits | search
        with one_thread():
            expected = model.generate(source, attention_mask=mask, **search)
        output = runner.generate(source.numpy(), mask.numpy(), **search)
        assert output.tolist() == expected.tolist(), search
        if search["max_new_tokens"] == MAX_NEW_TOKENS:  # some sentences end on EOS, others at their own limit
            ended = (expected == EOS).any(dim=1)
            assert ended.any() and not ended.all()

    # Set on the generation config, they travel with the export (generation_config.json) and apply by default.
    model.generation_config.max_len_a, model.generation_config.max_len_b = limits["max_len_a"], limits["max_len_b"]
    with one_thread():
        export_onnx(model, tmp_path / "with-limits")
        expected = model.generate(source, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS)
    runner = OnnxTranslator(tmp_path / "with-limits")
    assert runner.generate(source.numpy(), mask.numpy(), max_new_tokens=MAX_NEW_TOKENS).tolist() == expected.tolist()


def test_shortlist_equals_generate(tmp_path):
    """With the model's shortlist the runner scores the batch's shortlisted tokens only, normalised over them, and
    translates as generate(use_shortlist=True) does; graphs of a model without one refuse in one line."""
    model = train_reverse_model(**TRAINED["lstm-additive-feed"])
    with one_thread():
        export_onnx(model, tmp_path / "full")
    with pytest.raises(ValueError, match="exported from a model without a shortlist"):
        OnnxTranslator(tmp_path / "full").generate(*(x.numpy() for x in SOURCE_AND_MASK), use_shortlist=True)
    # Each word may become itself or one of the next two: a union much smaller than the vocabulary per sentence.
    words = torch.arange(VOCAB)
    model.shortlist = Shortlist(
        torch.stack([words, (words + 1) % VOCAB, (words + 2) % VOCAB], dim=1), torch.tensor([0])
    )
    with one_thread():
        export_onnx(model, tmp_path / "shortlist")
    runner = OnnxTranslator(tmp_path / "shortlist")
    source, mask, _ = reverse_batch(16, torch.Generator().manual_seed(4))
    searches = [(2, dict(num_beams=1)), (2, dict(num_beams=2)), (16, dict(num_beams=BEAMS, length_penalty=0.5))]
    for batch, search in searches:
        search |= dict(max_new_tokens=MAX_NEW_TOKENS, use_shortlist=True)
        for start in range(0, len(source), batch):
            rows = slice(start, start + batch)
            with one_thread():
                expected = model.generate(source[rows], attention_mask=mask[rows], **search)
            output = runner.generate(source[rows].numpy(), mask[rows].numpy(), **search)
            assert output.tolist() == expected.tolist(), (start, search)

    ids = model.shortlist.target_ids(source[:1], mask[:1], also=[EOS]).numpy()
    vocabulary = runner._shortlisted_vocabulary(source[:1].numpy(), mask[:1].numpy())
    assert vocabulary.ids.tolist() == ids.tolist()
    outputs, _ = runner.decode_step(
        np.array([1]), runner.encode(source[:1].numpy(), mask[:1].numpy()), len(ids), vocabulary
    )
    assert set(outputs["top_tokens"][0].tolist()) == set(ids.tolist())
    assert abs(np.exp(outputs["top_log_probs"]).sum() - 1) < TOLERANCE
