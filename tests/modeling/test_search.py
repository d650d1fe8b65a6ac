"""search.py's loops, which drop sentences once they are final, against transformers' own loops.

generate() sends plain requests (token ids only) to search.py and everything else to transformers; asking
for `return_dict_in_generate=True` sends the same request through transformers' loop, whose `.sequences`
must be the same tensor (tokens, fill and width). Models: the reversal task at every kind of Decoder state
(GRU / LSTM, with and without attention and input feeding), trained so that sentences end at different
lengths, and untrained ones that run to the length limit.
"""

import pytest
import torch
from reference_search import beam_search
from tiny_models import BOS, EOS, one_thread, reverse_batch, train_reverse_model, until_eos

DECODERS = {
    "gru": dict(cell_type="gru"),
    "gru-attention": dict(cell_type="gru", attention="dot"),
    "lstm-bi-general-feeding": dict(cell_type="lstm", bidirectional=True, attention="general", input_feeding=True),
    "lstm-2-layers-feeding": dict(cell_type="lstm", encoder_layers=2, decoder_layers=2, attention="general",
                                  input_feeding=True),
}  # fmt: skip
SEARCHES = {
    "greedy": dict(num_beams=1),
    "beam3-raw": dict(num_beams=3, length_penalty=0.0),
    "beam4-lp1-two-returned": dict(num_beams=4, length_penalty=1.0, num_return_sequences=2),
    "beam3-early": dict(num_beams=3, early_stopping=True),
    "beam3-never": dict(num_beams=3, early_stopping="never", length_penalty=0.6),
}
MAX_NEW_TOKENS = 12
TRAIN_STEPS = 60  # a part-trained model: most outputs end, at different lengths, some run on


@pytest.fixture(scope="module", params=list(DECODERS), ids=list(DECODERS))
def model(request):
    return train_reverse_model(steps=TRAIN_STEPS, **DECODERS[request.param])


def source_batch(n: int = 12, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    source, mask, _ = reverse_batch(n, torch.Generator().manual_seed(seed))
    return source, mask


def generate(model, source, mask, **kwargs):
    with one_thread(), torch.inference_mode():
        return model.generate(input_ids=source, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, **kwargs)


def rows_stepped(model, source=None, mask=None, **kwargs) -> tuple[torch.Tensor, int]:
    """generate()'s output, and how many sentence-rows went through the Decoder over all steps."""
    rows = []
    hook = model.model.decoder.register_forward_pre_hook(lambda _, args: rows.append(args[0].shape[0]))
    if source is None:
        source, mask = source_batch()
    try:
        out = generate(model, source, mask, **kwargs)
    finally:
        hook.remove()
    return out, sum(rows)


@pytest.mark.parametrize("search", list(SEARCHES), ids=list(SEARCHES))
def test_same_sequences_as_transformers_loops(model, search):
    source, mask = source_batch()
    ours = generate(model, source, mask, **SEARCHES[search])
    theirs = generate(model, source, mask, return_dict_in_generate=True, **SEARCHES[search]).sequences
    assert torch.equal(ours, theirs)
    lengths = {len(until_eos(row)) for row in ours.tolist()}
    assert len(lengths) > 1  # sentences ended at different steps: rows were dropped along the way


@pytest.mark.parametrize("search", ["greedy", "beam3-raw"])
def test_same_sequences_at_the_length_limit(search):
    """Untrained, every sentence runs to max_new_tokens (the loop stops on length, not on EOS)."""
    model = train_reverse_model(steps=0, cell_type="lstm", attention="general", input_feeding=True)
    source, mask = source_batch()
    ours = generate(model, source, mask, **SEARCHES[search])
    theirs = generate(model, source, mask, return_dict_in_generate=True, **SEARCHES[search]).sequences
    assert torch.equal(ours, theirs)
    assert ours.shape[1] == 1 + MAX_NEW_TOKENS


@pytest.mark.parametrize("search", ["greedy", "beam3-raw"])
def test_finished_sentences_leave_the_batch(model, search):
    ours, ours_rows = rows_stepped(model, **SEARCHES[search])
    theirs, theirs_rows = rows_stepped(model, return_dict_in_generate=True, **SEARCHES[search])
    assert torch.equal(ours, theirs.sequences)
    assert ours_rows < theirs_rows


def test_requests_with_more_rules_run_transformers_loops(model):
    """A repetition penalty is a logits processor, which search.py does not apply: every row steps to the end."""
    out, rows = rows_stepped(model, num_beams=1, repetition_penalty=1.3)
    assert rows == out.shape[0] * (out.shape[1] - 1)


def test_a_model_in_training_mode_runs_transformers_loops(model):
    """Dropout masks depend on the batch's shape: shrinking it would change what a training-mode model draws."""
    model.train()
    try:
        out, rows = rows_stepped(model, num_beams=1)
    finally:
        model.eval()
    assert rows == out.shape[0] * (out.shape[1] - 1)


@pytest.mark.parametrize("search", ["greedy", "beam3-raw"])
def test_decoder_prompt_outside_the_vocabulary_is_refused(model, search):
    source, mask = source_batch(n=2)
    prompt = torch.full((2, 1), 99)  # the model's vocabulary has 16 entries
    with pytest.raises(ValueError, match="decoder_input_ids holds token ids"):
        generate(model, source, mask, decoder_input_ids=prompt, **SEARCHES[search])


@pytest.mark.parametrize("search", ["greedy", "beam3-raw"])
def test_a_longer_decoder_prompt_gives_transformers_sequences(model, search):
    """A prompt of several tokens (the start token and a forced prefix) is fed in one first step."""
    source, mask = source_batch()
    prompt = torch.tensor([[BOS, 5, 6]]).expand(len(source), -1)
    ours = generate(model, source, mask, decoder_input_ids=prompt, **SEARCHES[search])
    theirs = generate(model, source, mask, decoder_input_ids=prompt, return_dict_in_generate=True, **SEARCHES[search])
    assert torch.equal(ours, theirs.sequences) and torch.equal(ours[:, :3], prompt)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_search_matches_the_independent_reference(length_penalty):
    model = train_reverse_model(steps=TRAIN_STEPS, cell_type="lstm", attention="general", input_feeding=True)
    source, mask = source_batch(n=6)
    num_beams, returned = 3, 2
    out = generate(model, source, mask, num_beams=num_beams, num_return_sequences=returned,
                   length_penalty=length_penalty).view(len(source), returned, -1).tolist()  # fmt: skip
    for got, src, m in zip(out, source, mask):
        with one_thread():
            expected = beam_search(model, src[m.bool()], num_beams, MAX_NEW_TOKENS, length_penalty)
        assert [until_eos(row) for row in got] == [tokens for _, tokens in expected[:returned]]


def eos_prone_model():
    """Untrained, with EOS made likely at every step: a sentence's hypotheses end at different lengths,
    so its best one can be final before it has `num_beams` finished ones."""
    model = train_reverse_model(steps=0, cell_type="lstm", attention="general", input_feeding=True)
    with torch.no_grad():
        model.generator.proj.bias[EOS] += 1.0
    return model


SETTLING = {"raw": (0.0, False, 1), "raw-two-returned": (0.0, False, 2), "never-0.6": (0.6, "never", 1)}


@pytest.mark.parametrize("kind", ["reversal", "eos-prone"])
@pytest.mark.parametrize("settling", list(SETTLING), ids=list(SETTLING))
def test_a_sentence_leaves_once_its_returned_hypotheses_are_settled(kind, settling):
    """It takes Decoder steps until no running beam can enter its `returned` best finished hypotheses
    (read off the independent reference search's steps), and not one more."""
    length_penalty, early_stopping, returned = SETTLING[settling]
    if kind == "reversal":
        model = train_reverse_model(steps=TRAIN_STEPS, cell_type="lstm", attention="general", input_feeding=True)
    else:
        model = eos_prone_model()
    num_beams = 3
    settings = dict(num_beams=num_beams, num_return_sequences=returned, length_penalty=length_penalty,
                    early_stopping=early_stopping)  # fmt: skip
    source, mask = source_batch(n=6)
    for src, m in zip(source, mask):
        src = src[m.bool()].unsqueeze(0)
        _, rows = rows_stepped(model, source=src, mask=torch.ones_like(src), **settings)
        trace = []
        with one_thread():
            beam_search(model, src[0], num_beams, MAX_NEW_TOKENS, length_penalty, early_stopping, trace=trace)
        assert rows == num_beams * steps_until_settled(trace, returned, length_penalty)


def steps_until_settled(trace: list, returned: int, length_penalty: float) -> int:
    """From the reference search's trace: the first step after which no running beam can enter the `returned`
    best finished hypotheses, or the step the reference stopped at."""
    for step, (best_running, finished) in enumerate(trace, start=1):
        if len(finished) < returned:
            continue
        if best_running is None:  # nothing left running
            return step
        # The best a hypothesis finished later can score: at the longest length with a positive length
        # penalty, at the next step's length otherwise.
        best_later = best_running / (MAX_NEW_TOKENS if length_penalty > 0 else step + 1) ** length_penalty
        if best_later < finished[returned - 1]:
            return step
    return len(trace)


def test_without_length_penalty_a_sentence_leaves_when_its_best_hypothesis_is_final():
    """transformers' loop steps each sentence until it has num_beams finished hypotheses; its output
    cannot change once the best finished one outscores every running beam."""
    model = eos_prone_model()
    settings = dict(num_beams=3, length_penalty=0.0)
    ours, ours_rows = rows_stepped(model, **settings)
    theirs, theirs_rows = rows_stepped(model, return_dict_in_generate=True, **settings)
    assert torch.equal(ours, theirs.sequences)
    assert ours_rows < theirs_rows
