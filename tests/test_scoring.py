"""Scoring given translations (`score`), n-best lists with scores, alignments from attention and generate()'s
search options on the command line (`translate`, `evaluate`), on tiny models."""

import math

import pytest
import torch
from tiny_models import ENGLISH, KOREAN, one_thread, save_tiny_translator, write_test_set

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.plotting import align_translation
from hf_rnn_seq2seq.scoring import hard_alignment, score_lines, score_targets
from hf_rnn_seq2seq.translate import translate_lines, translate_lines_n_best
from hf_rnn_seq2seq_cli import EXIT_ERROR, main

N_PAIRS = 6
NUM_BEAMS = 3
TOLERANCE = 1e-4  # float32 log-probabilities summed in a different order
TRAIN_STEPS = 150  # as test_app.py: the tiny model then translates most of the pairs, and ends its translations
TRAINED_SIZE = {"embedding_size": 32, "hidden_size": 32}


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A model trained a little on the pairs: its attention means something and its searches differ."""
    return save_tiny_translator(tmp_path_factory.mktemp("trained"), train_steps=TRAIN_STEPS, **TRAINED_SIZE)


@pytest.fixture(scope="module")
def trained(trained_dir):
    return load_translator(trained_dir)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    prefix = write_test_set(tmp_path_factory.mktemp("data"), N_PAIRS)
    return prefix.with_suffix(".ko"), prefix.with_suffix(".en")


@torch.no_grad()
def step_by_step_log_probs(translator, source: str, target_ids: list[int]) -> list[float]:
    """log P(y_t | x, y_<t) for each target token, by generate()'s own route: one forward call a token, carrying
    the Decoder's state."""
    model = translator.model
    encoded = translator.tokenizer(source, return_tensors="pt")
    encoder_outputs = model.get_encoder()(**encoded)
    cache, previous, log_probs = None, model.config.decoder_start_token_id, []
    for token in target_ids:
        output = model(
            encoder_outputs=encoder_outputs,
            attention_mask=encoded["attention_mask"],
            decoder_input_ids=torch.tensor([[previous]]),
            cache=cache,
            use_cache=True,
        )
        log_probs.append(torch.log_softmax(output.logits[0, -1], dim=-1)[token].item())
        cache, previous = output.cache, token
    return log_probs


def test_score_is_the_sum_of_each_steps_log_softmax(trained):
    with one_thread():
        scored = list(score_lines(trained, KOREAN[:N_PAIRS], ENGLISH[:N_PAIRS], batch_size=4))
    for source, reference, result in zip(KOREAN, ENGLISH, scored):
        ids = trained.target_tokenizer(reference)["input_ids"]
        assert result.ids == ids and ids[-1] == trained.model.config.eos_token_id  # end-of-sentence is scored
        assert result.log_probs == pytest.approx(step_by_step_log_probs(trained, source, ids), abs=TOLERANCE)
        assert result.per_token == pytest.approx(result.total / len(ids))


def test_score_equals_generates_score_of_a_greedy_translation(trained):
    model = trained.model
    encoded = trained.tokenizer(KOREAN[0], return_tensors="pt")
    with one_thread():
        output = model.generate(**encoded, num_beams=1, return_dict_in_generate=True, output_scores=True)
    transition = model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)[0]
    translation = trained.target_tokenizer.decode(output.sequences[0], skip_special_tokens=True)
    assert output.sequences[0, -1] == model.config.eos_token_id
    [scored] = score_lines(trained, [KOREAN[0]], [translation])
    assert scored.ids == output.sequences[0, 1:].tolist()  # the translation re-encodes to the same tokens
    assert scored.total == pytest.approx(transition.sum().item(), abs=TOLERANCE)


def test_score_command_prints_a_line_per_pair(capsys, trained_dir, trained, files):
    source, reference = files
    assert main(["score", str(trained_dir), "--source", str(source), "--reference", str(reference)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == N_PAIRS
    expected = list(score_lines(trained, KOREAN[:N_PAIRS], ENGLISH[:N_PAIRS]))
    for line, scored in zip(lines, expected):
        total, per_token, tokens = line.split("\t")
        assert float(total) == pytest.approx(scored.total, abs=TOLERANCE)
        assert float(per_token) == pytest.approx(scored.per_token, abs=TOLERANCE)
        assert int(tokens) == len(scored.ids)
    n_tokens = sum(len(scored.ids) for scored in expected)
    assert f"{N_PAIRS} pairs, {n_tokens} reference tokens" in captured.err


def test_score_command_refuses_files_of_different_lengths(capsys, tmp_path, model_dir, files):
    short = tmp_path / "short.en"
    short.write_text("one line\n", encoding="utf-8")
    assert main(["score", str(model_dir), "--source", str(files[0]), "--reference", str(short)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"has {N_PAIRS} lines but" in err


def test_n_best_lists_are_the_beams_with_their_scores(trained):
    with one_thread():
        [n_best] = translate_lines_n_best(trained, [KOREAN[1]], n_best=NUM_BEAMS, num_beams=NUM_BEAMS)
        output = trained.model.generate(
            **trained.tokenizer(KOREAN[1], return_tensors="pt"),
            num_beams=NUM_BEAMS,
            num_return_sequences=NUM_BEAMS,
            return_dict_in_generate=True,
            output_scores=True,
        )
    decode = trained.target_tokenizer.decode
    assert [entry.text for entry in n_best] == [decode(ids, skip_special_tokens=True) for ids in output.sequences]
    # The scores transformers' beam search ranked by: log-probability over length ** length_penalty.
    assert [entry.score for entry in n_best] == pytest.approx(output.sequences_scores.tolist(), abs=TOLERANCE)


def test_translate_n_best_prints_index_score_translation(capsys, trained_dir, trained, files):
    argv = ["translate", str(trained_dir), "-i", str(files[0]), "--num-beams", str(NUM_BEAMS), "--n-best", "2"]
    assert main(argv) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [int(index) for index, _, _ in lines] == [i for i in range(N_PAIRS) for _ in range(2)]
    assert [text for _, _, text in lines[::2]] == list(translate_lines(trained, KOREAN[:N_PAIRS], num_beams=NUM_BEAMS))
    for first, second in zip(lines[::2], lines[1::2]):
        assert float(first[1]) >= float(second[1])


def test_n_best_needs_a_wide_enough_beam(capsys, model_dir, files):
    argv = ["translate", str(model_dir), "-i", str(files[0]), "--num-beams", "2", "--n-best", "3"]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "need a beam at least that wide" in err


def test_printed_alignment_is_the_argmax_of_the_attention(capsys, trained_dir, trained, files):
    assert main(["translate", str(trained_dir), "-i", str(files[0]), "--print-alignment"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == N_PAIRS
    eos = trained.model.config.eos_token_id
    for source, line in zip(KOREAN, lines):
        text, printed = line.split("\t")
        pairs = [tuple(map(int, pair.split("-"))) for pair in printed.split()]
        # The attention from plotting.py's own teacher-forced pass over the same translation.
        generated = [trained.model.config.decoder_start_token_id, *trained.target_tokenizer(text)["input_ids"]]
        alignment = align_translation(
            trained.model, trained.tokenizer, trained.target_tokenizer, source, torch.tensor([generated])
        )
        n_source, n_target = len(trained.tokenizer.tokenize(source)), len(generated) - 2  # without EOS
        assert generated[-1] == eos and alignment.weights.shape[1] == n_source + 1
        assert pairs == [(int(alignment.weights[t, :n_source].argmax()), t) for t in range(n_target)]
        assert pairs == hard_alignment(alignment.weights, n_source, n_target)


def test_alignment_needs_attention(capsys, tmp_path, files):
    no_attention = save_tiny_translator(tmp_path / "plain", attention=None, input_feeding=False)
    assert main(["translate", str(no_attention), "-i", str(files[0]), "--print-alignment"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no attention" in err


def test_sampling_with_a_seed_is_reproducible(capsys, model_dir, files):
    def sample(seed: int) -> str:
        argv = ["translate", str(model_dir), "-i", str(files[0]), "--sample", "--top-k", "50", "--seed", str(seed)]
        assert main(argv) == 0
        return capsys.readouterr().out

    first = sample(1)
    assert sample(1) == first
    assert sample(2) != first  # an untrained model's distributions are flat: other draws, other words


def test_sampling_options_need_sample(capsys, model_dir, files):
    assert main(["translate", str(model_dir), "-i", str(files[0]), "--top-p", "0.9"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--top-p: sampling options, used only with --sample: add --sample" in err


@pytest.mark.parametrize(
    "flags, kwargs",
    [
        (["--no-repeat-ngram-size", "1"], dict(no_repeat_ngram_size=1)),
        (["--num-beams", "3", "--length-penalty", "-2"], dict(num_beams=3, length_penalty=-2.0)),
        (
            ["--num-beams", "3", "--length-penalty-type", "wu", "--coverage-penalty", "2"],
            dict(num_beams=3, length_penalty_type="wu", coverage_penalty=2.0),
        ),
    ],
)
def test_search_options_reach_generate(capsys, trained_dir, trained, files, flags, kwargs):
    assert main(["translate", str(trained_dir), "-i", str(files[0]), *flags]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == list(translate_lines(trained, KOREAN[:N_PAIRS], **kwargs))


def test_evaluate_takes_the_search_options(capsys, trained_dir, trained, files, tmp_path):
    prefix = files[0].with_suffix("")
    predictions = tmp_path / "predictions.en"
    argv = ["evaluate", str(trained_dir), str(prefix), "--no-repeat-ngram-size", "1", "--predictions", str(predictions)]
    assert main(argv) == 0
    capsys.readouterr()
    expected = list(translate_lines(trained, KOREAN[:N_PAIRS], no_repeat_ngram_size=1))
    assert predictions.read_text(encoding="utf-8").splitlines() == expected


def test_n_best_scores_with_gnmt_penalties(trained):
    alpha, beta = 0.6, 0.2
    with one_thread():
        [n_best] = translate_lines_n_best(
            trained,
            [KOREAN[2]],
            n_best=NUM_BEAMS,
            num_beams=NUM_BEAMS,
            length_penalty=alpha,
            length_penalty_type="wu",
            coverage_penalty=beta,
        )
    source = trained.tokenizer([KOREAN[2]], return_tensors="pt")
    for entry in n_best:
        # The search's own tokens: the text tokenized again may be segmented otherwise.
        [scored] = score_targets(trained.model, dict(source), [entry.ids])
        generated = torch.tensor([[trained.model.config.decoder_start_token_id, *scored.ids]])
        weights = align_translation(trained.model, trained.tokenizer, trained.target_tokenizer, KOREAN[2], generated)
        coverage = weights.weights.sum(axis=0)  # (source tokens,): over every target token, EOS included
        by_hand = scored.total / ((5 + len(scored.ids)) / 6) ** alpha + beta * sum(
            math.log(min(c, 1.0)) for c in coverage
        )
        assert entry.score == pytest.approx(by_hand, abs=TOLERANCE)
    assert [entry.score for entry in n_best] == sorted((entry.score for entry in n_best), reverse=True)


def test_empty_lines_in_n_best_lists_and_alignments(capsys, tmp_path, trained_dir):
    source = tmp_path / "with-empty.ko"
    source.write_text(f"{KOREAN[0]}\n\n{KOREAN[1]}\n", encoding="utf-8")
    argv = ["translate", str(trained_dir), "-i", str(source), "--num-beams", "2", "--n-best", "2", "--print-alignment"]
    assert main(argv) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [fields[0] for fields in lines] == ["0", "0", "2", "2"]  # the empty line 1 has no entries
    assert all(len(fields) == 4 and fields[3] for fields in lines)
    assert main(["translate", str(trained_dir), "-i", str(source), "--print-alignment"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "\t"  # an empty translation, an empty alignment


def test_n_best_of_an_ensemble_of_two_copies_is_the_models(capsys, trained_dir, files):
    argv = ["-i", str(files[0]), "--num-beams", str(NUM_BEAMS), "--n-best", "2", "--no-progress"]
    assert main(["translate", str(trained_dir), *argv]) == 0
    single = capsys.readouterr().out
    assert main(["translate", str(trained_dir), str(trained_dir), *argv]) == 0
    assert capsys.readouterr().out == single


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--print-alignment"], "not an ensemble"),
        (["--num-beams", "2", "--length-penalty-type", "wu"], "not of an ensemble's"),
    ],
)
def test_ensembles_refuse_alignments_and_gnmt(capsys, model_dir, files, flags, message):
    assert main(["translate", str(model_dir), str(model_dir), "-i", str(files[0]), *flags]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
