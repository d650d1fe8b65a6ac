"""Length limits relative to the source: `generate(max_len_a=a, max_len_b=b)` gives each sentence at most
`int(a * source_length + b)` new tokens, in search.py's loops and in transformers' (which run when the request
asks for more than token ids), and a batch translates as its sentences would one at a time with that limit."""

import pytest
import torch
from tiny_models import EOS, PAD, one_thread, reverse_batch, train_reverse_model, until_eos
from transformers import GenerationConfig

from hf_rnn_seq2seq.modeling.length_limits import source_relative_max_lengths

SEARCHES = {
    "greedy": dict(num_beams=1),
    "beam3": dict(num_beams=3),
    "beam3-never-lp": dict(num_beams=3, early_stopping="never", length_penalty=1.0),
    "beam4-two-returned": dict(num_beams=4, num_return_sequences=2),
}
MAX_NEW_TOKENS = 12
# Half the source's tokens plus one: shorter than most reversals need (each sentence is cut at its own length),
# longer than some of the model's outputs (those end on EOS first).
LIMITS = dict(max_len_a=0.5, max_len_b=1)


@pytest.fixture(scope="module")
def model():
    return train_reverse_model(steps=60, cell_type="gru", attention="dot")


@pytest.fixture(scope="module")
def batch():
    source, mask, _ = reverse_batch(8, torch.Generator().manual_seed(7))
    return source, mask


def generate(model, source, mask, **kwargs):
    with one_thread(), torch.inference_mode():
        return model.generate(input_ids=source, attention_mask=mask, **({"max_new_tokens": MAX_NEW_TOKENS} | kwargs))


def generated(row: list[int]) -> list[int]:
    """The tokens greedy search generated: after the start token, through EOS, without the PAD fill after a row
    that stopped on its length limit."""
    tokens = until_eos(row[1:])
    while tokens and tokens[-1] == PAD:
        tokens.pop()
    return tokens


def own_limit(mask: torch.Tensor, i: int) -> int:
    return int(LIMITS["max_len_a"] * int(mask[i].sum()) + LIMITS["max_len_b"])


@pytest.mark.parametrize("search", list(SEARCHES), ids=list(SEARCHES))
def test_each_sentence_gets_its_own_limit_as_if_alone(model, batch, search):
    source, mask = batch
    together = generate(model, source, mask, **LIMITS, **SEARCHES[search])
    returned = SEARCHES[search].get("num_return_sequences", 1)
    cut = 0
    for i in range(len(source)):
        alone = generate(model, source[i : i + 1, : mask[i].sum()], None, max_new_tokens=own_limit(mask, i),
                         **SEARCHES[search])  # fmt: skip
        for j in range(returned):
            row = together[i * returned + j].tolist()
            assert row[: alone.shape[1]] == alone[j].tolist()
            # What follows is fill: PAD, or EOS in beam search (transformers fills with EOS when PAD is 0).
            assert set(row[alone.shape[1] :]) <= {PAD if search == "greedy" else EOS}
            assert alone.shape[1] <= 1 + own_limit(mask, i)
            cut += EOS not in alone[j].tolist()
    assert 0 < cut < len(together)  # some sentences reached their limit, others ended on EOS before it


@pytest.mark.parametrize("search", list(SEARCHES), ids=list(SEARCHES))
def test_transformers_loops_follow_the_same_limits(model, batch, search):
    """return_dict_in_generate sends the request through transformers' loops, which read SourceLengthCriteria."""
    source, mask = batch
    ours = generate(model, source, mask, **LIMITS, **SEARCHES[search])
    theirs = generate(model, source, mask, return_dict_in_generate=True, **LIMITS, **SEARCHES[search]).sequences
    assert torch.equal(ours, theirs)


def test_a_sentence_at_its_limit_leaves_the_batch(model, batch):
    """Greedy steps each sentence until its EOS or its own limit, not until the batch's longest."""
    source, mask = batch
    rows = []
    hook = model.model.decoder.register_forward_pre_hook(lambda _, args: rows.append(args[0].shape[0]))
    try:
        output = generate(model, source, mask, **LIMITS)
    finally:
        hook.remove()
    lengths = [len(generated(row)) for row in output.tolist()]
    assert sum(rows) == sum(lengths)
    assert len(set(lengths)) > 1


def test_the_smaller_limit_wins(model, batch):
    source, mask = batch
    assert generate(model, source, mask, max_len_a=10, max_new_tokens=2).shape[1] == 1 + 2
    lengths = [len(generated(row)) for row in generate(model, source, mask, max_len_b=2).tolist()]
    assert max(lengths) <= 2


def test_limits_come_from_the_generation_config_and_the_call_wins(model, batch):
    source, mask = batch
    expected = generate(model, source, mask, **LIMITS)
    config = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, **LIMITS)  # as generation_config.json would hold them
    with one_thread(), torch.inference_mode():
        assert torch.equal(model.generate(input_ids=source, attention_mask=mask, generation_config=config), expected)
    model.generation_config.max_len_b = 0
    try:
        assert torch.equal(generate(model, source, mask, max_len_a=0.5, max_len_b=1), expected)
    finally:
        del model.generation_config.max_len_b


def test_source_length_counts_non_pad_tokens_and_rounds_down():
    lengths = torch.tensor([1, 4, 7])
    assert source_relative_max_lengths(lengths, 1.5, 2, prompt_len=1).tolist() == [1 + 3, 1 + 8, 1 + 12]
    assert source_relative_max_lengths(lengths, 0.0, 0, prompt_len=1).tolist() == [2, 2, 2]  # one token at least


@pytest.mark.parametrize("options", [dict(max_len_a=-1), dict(max_len_b=1.5), dict(max_len_a="2")])
def test_bad_limits_are_one_clear_error(model, batch, options):
    source, mask = batch
    with pytest.raises(ValueError, match="max_len_a must be a number >= 0 and max_len_b an integer >= 0"):
        generate(model, source, mask, **options)


def test_limits_need_the_source(model, batch):
    source, mask = batch
    encoder_outputs = model.get_encoder()(source, mask)
    with pytest.raises(ValueError, match="needs the source: pass input_ids"):
        model.generate(encoder_outputs=encoder_outputs, attention_mask=mask, max_len_a=1.0)


def test_a_saved_generation_config_sets_them_for_the_pipeline(tmp_path):
    """generation_config.json's max_len_a / max_len_b reach generate() through the pipeline, and a call's own win."""
    from tiny_models import KOREAN, save_tiny_translator

    from hf_rnn_seq2seq.loading import load_translator

    model_dir = save_tiny_translator(tmp_path / "model")  # untrained: it never ends on EOS
    translator = load_translator(model_dir)
    translator.model.generation_config.max_len_b = 2
    translator.model.generation_config.save_pretrained(model_dir)
    translator = load_translator(model_dir)
    with one_thread():
        short = translator(KOREAN[:2], batch_size=2)
        assert short == translator(KOREAN[:2], batch_size=2, max_new_tokens=2)
        longer = translator(KOREAN[:2], batch_size=2, max_len_b=4)  # the call's limit, over the saved one
    assert all(len(a["translation_text"]) > len(b["translation_text"]) for a, b in zip(longer, short))
