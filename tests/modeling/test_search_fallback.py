"""A later transformers that renamed or changed a private name search.py uses: generate() runs transformers' own
loops instead, with the same token ids, and warns once.

Each case stands for one such release: an entry of search.py's tables is changed so that our loops look for a
name (or pass keywords) this transformers does not have, while transformers' own loops, which use its real names,
are untouched and still work. Spies record which loops generate() ran.
"""

import ast
import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_search import SEARCHES, TRAIN_STEPS, generate, source_batch
from tiny_models import train_reverse_model, until_eos
from transformers import GenerationMixin

from hf_rnn_seq2seq.modeling import modeling_rnn_seq2seq, search

KINDS = {"greedy": SEARCHES["greedy"], "beam": SEARCHES["beam4-lp1-two-returned"]}
THEIR_LOOPS = {"greedy": "_sample", "beam": "_beam_search"}  # GenerationMixin's
OUR_LOOPS = {"greedy": "greedy_search", "beam": "beam_search"}  # search.py's, as the model's dispatch calls them
FALLBACK_WARNING = "generate() runs transformers' own loops instead"
RENAMED = "_renamed"
# What a later transformers may have changed: a method's name, one of its parameters, a config attribute's name.
CHANGES = [
    *(("method", role) for role in search.TRANSFORMERS_METHODS),
    *(("parameter", role) for role in search.TRANSFORMERS_METHODS),
    *(("attribute", token) for token in search.GENERATION_CONFIG_TENSORS),
]


@pytest.fixture(scope="module")
def model():
    return train_reverse_model(steps=TRAIN_STEPS, cell_type="lstm", attention="general", input_feeding=True)


@pytest.fixture(scope="module")
def normal_outputs(model) -> dict[str, torch.Tensor]:
    """generate()'s token ids by our loops, with nothing missing: sentences that end at different lengths."""
    source, mask = source_batch()
    outputs = {kind: generate(model, source, mask, **settings) for kind, settings in KINDS.items()}
    for out in outputs.values():
        assert len({len(until_eos(row)) for row in out.tolist()}) > 1
    return outputs


@pytest.fixture(autouse=True)
def fresh_process():
    """Forget the per-process check and the warnings already given, as a new process would."""
    search.unusable_methods.cache_clear()
    logging.Logger.warning_once.cache_clear()
    yield
    search.unusable_methods.cache_clear()  # not to keep a result found with a changed table


@pytest.fixture
def loops_run(monkeypatch) -> list[str]:
    """The names of the decoding loops generate() runs, call by call: transformers' and ours."""
    calls = []

    def spy(owner: object, name: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)  # generate() reads `_sample`'s signature
        def recorded(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recorded)

    for name in THEIR_LOOPS.values():
        spy(GenerationMixin, name)
    for name in OUR_LOOPS.values():
        spy(modeling_rnn_seq2seq, name)
    return calls


def simulate_later_transformers(monkeypatch, change: str, key: str) -> str:
    """Make search.py's tables ask for what a later transformers no longer has; return what the warning names."""
    if change == "attribute":
        renamed = search.GENERATION_CONFIG_TENSORS[key] + RENAMED
        monkeypatch.setitem(search.GENERATION_CONFIG_TENSORS, key, renamed)
        return renamed
    method = search.TRANSFORMERS_METHODS[key]
    if change == "method":
        later = dataclasses.replace(method, name=method.name + RENAMED)
    else:  # its first parameter renamed: we would pass a keyword it no longer takes, and lack one it requires
        first, *rest = method.keywords
        later = dataclasses.replace(method, keywords=(first + RENAMED, *rest))
    monkeypatch.setitem(search.TRANSFORMERS_METHODS, key, later)
    return later.name


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("change, key", CHANGES, ids=[f"{change}-{key}" for change, key in CHANGES])
def test_a_changed_private_name_runs_transformers_loops_with_the_same_outputs(
    model, normal_outputs, loops_run, monkeypatch, caplog, change, key, kind
):
    missing = simulate_later_transformers(monkeypatch, change, key)
    source, mask = source_batch()
    with caplog.at_level(logging.WARNING, logger=search.logger.name):
        outputs = [generate(model, source, mask, **KINDS[kind]) for _ in range(2)]
    assert all(torch.equal(out, normal_outputs[kind]) for out in outputs)
    assert loops_run == [THEIR_LOOPS[kind]] * 2
    warnings = [record.getMessage() for record in caplog.records if FALLBACK_WARNING in record.getMessage()]
    assert len(warnings) == 1 and missing in warnings[0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_with_nothing_missing_our_loops_run(model, normal_outputs, loops_run, caplog, kind):
    source, mask = source_batch()
    with caplog.at_level(logging.WARNING, logger=search.logger.name):
        out = generate(model, source, mask, **KINDS[kind])
    assert torch.equal(out, normal_outputs[kind])
    assert loops_run == [OUR_LOOPS[kind]]
    assert FALLBACK_WARNING not in caplog.text


def test_the_table_holds_the_keywords_beam_search_passes(model, monkeypatch):
    """What the check binds to each method's signature is what the loop passes it."""
    passed = {}

    def spy(role: str, original: Callable) -> Callable:
        def recorded(**kwargs):
            passed[role] = set(kwargs)
            return original(**kwargs)

        return recorded

    for role, method in search.TRANSFORMERS_METHODS.items():
        monkeypatch.setattr(model, method.name, spy(role, getattr(model, method.name)))
    source, mask = source_batch(n=2)
    generate(model, source, mask, **KINDS["beam"])
    assert passed == {role: set(method.keywords) for role, method in search.TRANSFORMERS_METHODS.items()}


def test_search_reads_private_names_only_through_its_tables():
    """A `._name` anywhere else in search.py would meet a renamed name mid-search, not in the check."""
    tree = ast.parse(Path(search.__file__).read_text(encoding="utf-8"))
    private = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
    }
    assert not private
