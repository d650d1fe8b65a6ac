"""Ensembles: several models decoding together, their logits averaged at every step (hf_rnn_seq2seq/ensemble.py)."""

import copy
import json
import shutil

import pytest
import torch
from tiny_models import (
    BOS,
    HIDDEN_SIZE,
    KOREAN,
    one_thread,
    reverse_batch,
    train_reverse_model,
    until_eos,
    write_test_set,
)

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.ensemble import RNNSeq2SeqEnsemble, load_ensemble_translator
from hf_rnn_seq2seq.tokenization import load_tokenizers, save_tokenizers, train_tokenizer
from hf_rnn_seq2seq_cli import EXIT_ERROR, main

MAX_NEW_TOKENS = 10
N_SENTENCES = 6
WEIGHTS = [2.0, 1.0]


@pytest.fixture(scope="module")
def reverse_model():
    model = train_reverse_model(steps=40)
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    return model


@pytest.fixture(scope="module")
def other_model():
    """Another architecture (LSTM, no input feeding) trained less: its distributions differ from reverse_model's."""
    return train_reverse_model(steps=20, cell_type="lstm", input_feeding=False)


@pytest.fixture(scope="module")
def copy_model():
    """A pointer-generator with coverage: its logits are log-probabilities, and its state carries the coverage."""
    model = train_reverse_model(steps=20, attention="additive", copy_attention=True, coverage=True)
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    return model


@pytest.fixture(scope="module")
def source():
    input_ids, attention_mask, _ = reverse_batch(N_SENTENCES, torch.Generator().manual_seed(1))
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("model_name", ["reverse_model", "copy_model"])
def test_two_copies_give_exactly_the_model_s_tokens_and_scores(request, model_name, source, num_beams):
    reverse_model = request.getfixturevalue(model_name)
    ensemble = RNNSeq2SeqEnsemble([reverse_model, copy.deepcopy(reverse_model)])
    options = dict(num_beams=num_beams, return_dict_in_generate=True, output_scores=True)
    with one_thread(), torch.no_grad():
        alone = reverse_model.generate(**source, **options)
        together = ensemble.generate(**source, **options)
        assert torch.equal(ensemble.generate(**source, num_beams=num_beams), alone.sequences)
    assert torch.equal(together.sequences, alone.sequences)
    assert all(torch.equal(a, b) for a, b in zip(together.scores, alone.scores))
    if num_beams > 1:
        assert torch.equal(together.sequences_scores, alone.sequences_scores)


def ensemble_log_probs(models, weights, encoder_outputs, mask, decoder_input_ids, states):
    """One step of every model; the weighted mean of their log-probabilities (not renormalised), new states."""
    total, new_states = 0, []
    for model, weight, encoded, state in zip(models, weights, encoder_outputs, states):
        output = model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=decoder_input_ids, cache=state)
        total = total + weight * torch.log_softmax(output.logits[:, -1], dim=-1)
        new_states.append(output.cache)
    return total, new_states


def test_greedy_follows_the_weighted_mean_of_log_probabilities(reverse_model, other_model, source):
    """A hand-written greedy search over the weighted mean of the members' log-probabilities, step by step."""
    models, weights = [reverse_model, other_model], [w / sum(WEIGHTS) for w in WEIGHTS]
    with one_thread(), torch.no_grad():
        generated = RNNSeq2SeqEnsemble(models, WEIGHTS).generate(**source, num_beams=1)
        encoded = [model.get_encoder()(**source) for model in models]
        tokens = torch.full((N_SENTENCES, 1), BOS)
        states = [None, None]
        for _ in range(MAX_NEW_TOKENS):
            log_probs, states = ensemble_log_probs(
                models, weights, encoded, source["attention_mask"], tokens[:, -1:], states
            )
            tokens = torch.cat([tokens, log_probs.argmax(dim=-1, keepdim=True)], dim=1)
        alone = [model.generate(**source, num_beams=1, max_new_tokens=MAX_NEW_TOKENS) for model in models]
    expected = [until_eos(row) for row in tokens.tolist()]
    assert [until_eos(row) for row in generated.tolist()] == expected
    # The members disagree somewhere, so the test sees the average and not one member.
    assert any([until_eos(row) for row in output.tolist()] != expected for output in alone)


@pytest.mark.parametrize("model_names", [("reverse_model", "other_model"), ("copy_model", "reverse_model")])
def test_beam_scores_are_the_ensemble_s_log_probabilities(request, model_names, source):
    """Each returned hypothesis scores what teacher-forcing it through both members gives: a state that followed
    the wrong beam would give a different sum. A pointer-generator's logits are already log-probabilities, which
    averages with another member's logits all the same (log_softmax only shifts each row by a constant), and its
    coverage must follow the beams too."""
    models, weights = [request.getfixturevalue(name) for name in model_names], [w / sum(WEIGHTS) for w in WEIGHTS]
    with one_thread(), torch.no_grad():
        result = RNNSeq2SeqEnsemble(models, WEIGHTS).generate(
            **source, num_beams=3, length_penalty=0.0, return_dict_in_generate=True, output_scores=True
        )
        for row, sequence in enumerate(result.sequences.tolist()):
            hypothesis = torch.tensor([until_eos(sequence)])
            log_probs = 0
            for model, weight in zip(models, weights):
                logits = model(
                    input_ids=source["input_ids"][row : row + 1],
                    attention_mask=source["attention_mask"][row : row + 1],
                    decoder_input_ids=hypothesis[:, :-1],
                ).logits
                log_probs = log_probs + weight * torch.log_softmax(logits, dim=-1)
            log_probs = torch.log_softmax(log_probs, dim=-1)  # the ensemble's distribution, renormalised
            score = log_probs[0].gather(1, hypothesis[0, 1:, None]).sum()
            torch.testing.assert_close(score, result.sequences_scores[row], atol=1e-4, rtol=1e-4)


def test_members_must_agree_on_the_target_vocabulary(reverse_model):
    bigger = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(vocab_size=reverse_model.config.vocab_size + 1))
    with pytest.raises(ValueError, match="model 2 of the ensemble has decoder_vocab_size=17 where model 1 has 16"):
        RNNSeq2SeqEnsemble([reverse_model, bigger])
    with pytest.raises(ValueError, match="got 1 weights for 2 models"):
        RNNSeq2SeqEnsemble([reverse_model, reverse_model], [1.0])
    with pytest.raises(ValueError, match="weights must be positive numbers, got 1.0, 0.0"):
        RNNSeq2SeqEnsemble([reverse_model, reverse_model], [1, 0])


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, model_dir):
    """The conftest's tiny translator, a copy of it, and a differently built one with the same tokenizer."""
    copy_dir = tmp_path_factory.mktemp("copy") / "model"
    shutil.copytree(model_dir, copy_dir)
    other_dir = tmp_path_factory.mktemp("lstm")
    tokenizer, _ = load_tokenizers(model_dir)  # trained again, the tokenizer might differ: Unigram training is not
    save_model(other_dir, tokenizer, tokenizer, cell_type="lstm", hidden_size=HIDDEN_SIZE)  # deterministic
    return model_dir, copy_dir, other_dir


def save_model(directory, source_tokenizer, target_tokenizer, **config_options) -> None:
    """An untrained model with these tokenizers, saved into `directory`."""
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(
        vocab_size=len(source_tokenizer),
        decoder_vocab_size=len(target_tokenizer),
        embedding_size=HIDDEN_SIZE,
        **config_options,
    )
    model = RNNSeq2SeqForConditionalGeneration(config)
    model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    model.save_pretrained(directory)
    save_tokenizers(source_tokenizer, target_tokenizer, directory)


def test_two_copies_translate_as_the_model_does(model_dirs, translator):
    model_dir, copy_dir, _ = model_dirs
    ensemble = load_ensemble_translator([model_dir, copy_dir])
    assert isinstance(ensemble.model, RNNSeq2SeqEnsemble)
    for num_beams in (1, 2):
        expected = translator(KOREAN[:4], num_beams=num_beams)
        assert ensemble(KOREAN[:4], num_beams=num_beams) == expected


def test_different_target_tokenizers_are_refused(tmp_path, model_dirs):
    """Same source tokenizer, a target tokenizer of another vocabulary: the average would mix different tokens."""
    model_dir = model_dirs[0]
    source_tokenizer, _ = load_tokenizers(model_dir)
    save_model(tmp_path, source_tokenizer, train_tokenizer(["other words entirely"] * 10, vocab_size=40))
    with pytest.raises(ValueError, match=f"{tmp_path} has another target tokenizer than {model_dir}"):
        load_ensemble_translator([model_dir, tmp_path])


def test_translate_and_evaluate_commands_take_several_models(tmp_path, capsys, model_dirs):
    model_dir, _, other_dir = model_dirs
    prefix = write_test_set(tmp_path, 4)
    output = tmp_path / "out.en"
    argv = ["translate", str(model_dir), str(other_dir), "-i", f"{prefix}.ko", "-o", str(output), "--no-progress"]
    assert main([*argv, "--weights", "2", "1"]) == 0
    ensemble = load_ensemble_translator([model_dir, other_dir], WEIGHTS)
    expected = [result["translation_text"] for result in ensemble(KOREAN[:4])]
    assert output.read_text(encoding="utf-8").split("\n")[:-1] == expected

    report_file = tmp_path / "report.json"
    argv = ["evaluate", str(model_dir), str(other_dir), str(prefix), "--json", str(report_file), "--weights", "2", "1"]
    assert main(argv) == 0
    report = json.loads(report_file.read_text())
    assert report["model"] == [str(model_dir), str(other_dir)] and report["weights"] == WEIGHTS
    printed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    assert printed["model"] == f"{model_dir} {other_dir}" and printed["weights"] == "2.0 1.0"

    assert main(["translate", str(model_dir), str(other_dir), "--weights", "1"]) == EXIT_ERROR
    assert capsys.readouterr().err.strip() == (
        "hf-rnn-seq2seq translate: error: got 1 weights for 2 models: give one weight per model"
    )
