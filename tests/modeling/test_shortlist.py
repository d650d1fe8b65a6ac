"""A lexical shortlist: `generate(use_shortlist=True)` scores only the target tokens the model directory's
shortlist lists for the batch's source tokens (plus its always-allowed ones), with log-probabilities normalised
over them; the builder ranks by Dice; the shortlist travels with save_pretrained / from_pretrained."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from tiny_models import EOS, VOCAB, one_thread, reverse_batch, subprocess_environment, train_reverse_model, until_eos

from hf_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling.generator import NO_CANDIDATE, SHORTLIST_FILE, Shortlist
from hf_rnn_seq2seq.shortlist import build_shortlist

SEARCHES = {"greedy": dict(num_beams=1), "beam3": dict(num_beams=3), "beam4-lp0": dict(num_beams=4, length_penalty=0)}
MAX_NEW_TOKENS = 10


@pytest.fixture(scope="module")
def model():
    """Trained on reversing sequences: its outputs hold exactly the source's words, then EOS."""
    return train_reverse_model(steps=200, cell_type="gru", attention="dot")


@pytest.fixture(scope="module")
def batch():
    source, mask, _ = reverse_batch(6, torch.Generator().manual_seed(3))
    return source, mask


def generate(model, source, mask, **kwargs):
    with one_thread(), torch.inference_mode():
        return model.generate(input_ids=source, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, **kwargs)


def identity_shortlist(always: list[int]) -> Shortlist:
    """Each source word may become itself: what the reversal task needs."""
    return Shortlist(torch.arange(VOCAB)[:, None], torch.tensor(always))


@pytest.mark.parametrize("search", list(SEARCHES), ids=list(SEARCHES))
def test_a_shortlist_holding_every_picked_token_gives_the_same_output(model, batch, search):
    source, mask = batch
    full = generate(model, source, mask, **SEARCHES[search])
    try:
        for i in range(len(source)):  # one sentence a batch: a shortlist much smaller than the vocabulary
            one = (source[i : i + 1, : mask[i].sum()], None)
            # The source's words (what the task asks for) and the words the model picks (it makes mistakes).
            model.shortlist = identity_shortlist(sorted({EOS, *until_eos(full[i, 1:].tolist())}))
            shortlisted = generate(model, *one, use_shortlist=True, **SEARCHES[search])
            assert until_eos(shortlisted[0].tolist()) == until_eos(full[i].tolist())
            assert len(model.shortlist.target_ids(one[0])) < VOCAB // 2
    finally:
        model.shortlist = None


@pytest.mark.parametrize("search", list(SEARCHES), ids=list(SEARCHES))
def test_a_restricted_shortlist_emits_only_its_tokens(model, batch, search):
    source, mask = batch
    candidates = torch.full((VOCAB, 2), NO_CANDIDATE)
    candidates[:, 0] = 3  # every source word may become word 3 only
    model.shortlist = Shortlist(candidates, torch.tensor([4, EOS]))
    try:
        output = generate(model, source, mask, use_shortlist=True, **SEARCHES[search])
        theirs = generate(model, source, mask, use_shortlist=True, return_dict_in_generate=True, **SEARCHES[search])
    finally:
        model.shortlist = None
    allowed = {3, 4, EOS, model.config.pad_token_id, model.config.decoder_start_token_id}
    assert set(output.flatten().tolist()) <= allowed
    assert torch.equal(output, theirs.sequences)  # transformers' loops (the fallback) score the same columns


def test_scores_are_log_probabilities_over_the_shortlist(model, batch):
    """Beam search's sequence scores (no length penalty: the sum of the tokens' log-probabilities) are what a
    softmax over the shortlisted columns alone gives, teacher-forced; the other columns are -inf."""
    source, mask = batch
    model.shortlist = identity_shortlist([EOS, 4])
    try:
        output = generate(model, source, mask, use_shortlist=True, num_beams=3, length_penalty=0.0,
                          return_dict_in_generate=True, output_scores=True)  # fmt: skip
        vocabulary = model._shortlisted_vocabulary(source, mask, model.generation_config)
    finally:
        model.shortlist = None
    sequences = output.sequences
    with torch.inference_mode():
        logits = model(
            input_ids=source, attention_mask=mask, decoder_input_ids=sequences[:, :-1], output_vocabulary=vocabulary
        ).logits  # (batch, steps, |V|)
    log_probs = torch.log_softmax(logits, dim=-1)
    outside = torch.ones(VOCAB, dtype=torch.bool)
    outside[vocabulary.ids] = False
    assert torch.isinf(log_probs[..., outside]).all()
    assert torch.allclose(log_probs[..., vocabulary.ids].logsumexp(dim=-1), torch.zeros(()), atol=1e-5)
    for i, row in enumerate(sequences.tolist()):
        n = len(until_eos(row[1:]))
        token_log_probs = log_probs[i, torch.arange(n), sequences[i, 1 : n + 1]]
        assert torch.isclose(token_log_probs.sum(), output.sequences_scores[i], atol=1e-4)


def test_the_shortlist_is_saved_and_loaded_with_the_model(model, tmp_path):
    shortlist = Shortlist(torch.arange(VOCAB)[:, None].repeat(1, 2), torch.tensor([EOS, 5]))
    model.shortlist = shortlist
    try:
        model.save_pretrained(tmp_path / "with")
    finally:
        model.shortlist = None
    assert (tmp_path / "with" / SHORTLIST_FILE).is_file()
    loaded = RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path / "with").shortlist
    assert torch.equal(loaded.candidates, shortlist.candidates) and torch.equal(loaded.always, shortlist.always)
    model.save_pretrained(tmp_path / "without")
    assert not (tmp_path / "without" / SHORTLIST_FILE).exists()


def test_asking_for_a_shortlist_the_model_lacks_is_one_clear_error(model, batch, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"{tmp_path} has no shortlist \\({SHORTLIST_FILE}\\): build one with"):
        generate(loaded, *batch, use_shortlist=True)


def test_a_shortlist_for_other_vocabularies_is_refused(model, tmp_path):
    model.save_pretrained(tmp_path)
    Shortlist(torch.zeros((VOCAB + 1, 1), dtype=torch.long), torch.tensor([EOS])).save(tmp_path)
    with pytest.raises(ValueError, match="source vocabulary has"):
        RNNSeq2SeqForConditionalGeneration.from_pretrained(tmp_path)


def test_the_builder_ranks_by_dice_and_keeps_frequent_and_special_tokens():
    # Source word 5 is in every pair, as target word 10 is; word 6 goes with target word 11 only.
    sources = [[5, 6], [5, 7], [5, 7], [5, 8]]
    targets = [[10, 11], [10, 12], [10, 12], [10, 13]]
    shortlist = build_shortlist(sources, targets, 9, 14, always_allowed=[0, 2], top_k=2, frequent=1)
    assert shortlist.candidates[6].tolist() == [11, 10]  # Dice 1 before 2/5: the specific word first
    assert shortlist.candidates[7].tolist() == [12, 10]
    assert shortlist.candidates[5].tolist() == [10, 12]  # Dice 1, then 12 (in two pairs) before 11 and 13
    assert shortlist.candidates[1].tolist() == [NO_CANDIDATE, NO_CANDIDATE]  # never seen
    assert shortlist.always.tolist() == [0, 2, 10]  # the special tokens and the most frequent target word
    assert shortlist.target_ids(torch.tensor([[6, 1]]), torch.tensor([[1, 0]])).tolist() == [0, 2, 10, 11]


def test_a_process_without_the_package_decodes_with_the_shortlist_by_remote_code(model, batch, tmp_path):
    source, mask = batch
    model.shortlist = identity_shortlist([EOS, 4])
    try:
        model.save_pretrained(tmp_path)
        expected = generate(model, source, mask, num_beams=3, use_shortlist=True, max_len_a=0.5, max_len_b=1)
    finally:
        model.shortlist = None
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["hf_rnn_seq2seq"] = None  # any import of the package now fails
        import torch
        from transformers import AutoModelForSeq2SeqLM
        model = AutoModelForSeq2SeqLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert not type(model).__module__.startswith("hf_rnn_seq2seq")
        source, mask = torch.tensor({source.tolist()}), torch.tensor({mask.tolist()})
        out = model.generate(source, attention_mask=mask, max_new_tokens={MAX_NEW_TOKENS}, num_beams=3,
                             use_shortlist=True, max_len_a=0.5, max_len_b=1)
        print(json.dumps(out.tolist()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env=subprocess_environment(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected.tolist()
