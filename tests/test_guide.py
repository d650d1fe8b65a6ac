"""The seq2seq guides (docs/seq2seq-guide.md, docs/seq2seq-guide.ko.md) tie the formulas of the explanation this
project grew from to our code in one table each: a quantity, a snippet of the line that computes it, that line, and
the tensor's shape. These tests hold the tables to the code, so that a guide breaks loudly when the code moves: each
line must still hold its snippet, and tiny models of several configurations must give every tensor its stated shape.
"""

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling.loss import IGNORE_INDEX

ROOT = Path(__file__).parents[1]
README, KOREAN_README = ROOT / "README.md", ROOT / "README.ko.md"
GUIDES = [ROOT / "docs" / "seq2seq-guide.md", ROOT / "docs" / "seq2seq-guide.ko.md"]
TABLE_HEADER = "| quantity | code | line | shape |"
# `[path:NN](../path#LNN)`: the reference a reader sees and the link GitHub follows must name the same line.
LINE_LINK = re.compile(r"\[(?P<path>[^\]]+):(?P<line>\d+)\]\(\.\./(?P=path)#L(?P=line)\)")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")  # a cell holds `|` as `\|` (as in `|V|`)
RELATIVE_LINK = re.compile(r"\]\((?!https?://)(?P<target>[^)#\s]+)")

# Quantities that only some configurations compute.
ATTENTION_ONLY = {"α_{1:n}", "c_{1:n}", "h̃_{1:n}"}
STEP_BY_STEP = {"[emb(y_{t-1}); h̃_{t-1}]", "h^dec_t"}  # the Decoder's loop over t: with input feeding
ALL_AT_ONCE = {"h^dec_{1:n}"}  # the whole target in one RNN call: without input feeding
# Shape symbols that are config fields of the same name.
CONFIG_SYMBOLS = ("embedding_size", "hidden_size", "encoder_hidden_size", "encoder_layers", "decoder_layers")
GENERATOR_INPUT = "the Decoder's output"  # recorded to call the Generator on; not a row

# One batch: 3 sentences, padded to m = 7 source and n = 5 target tokens.
SOURCE_LENGTHS, TARGET_LENGTHS = (7, 3, 5), (4, 5, 2)
FIRST_WORD = 3  # ids below are padding, <BOS>, <EOS>
SIZES = dict(vocab_size=30, decoder_vocab_size=40, embedding_size=12, hidden_size=16, dropout=0.0)
# Sizes differ from one another (and from batch, m and n) where a shape could confuse them.
CONFIGS = [
    dict(cell_type="gru", bidirectional=False, attention=None, input_feeding=False),
    dict(cell_type="lstm", bidirectional=True, attention="general", input_feeding=False),
    dict(
        cell_type="lstm",
        bidirectional=True,
        attention="general",
        input_feeding=True,
        bridge="linear",
        encoder_hidden_size=9,
        encoder_layers=4,
        decoder_layers=2,
    ),
    dict(cell_type="gru", bidirectional=True, attention="additive", input_feeding=True, num_layers=2, bridge="zeros"),
]


@dataclass
class Row:
    quantity: str
    code: str
    path: str
    line: int
    shape: str


def table(guide: Path) -> list[Row]:
    """The rows of the guide's table, with code spans and `\\|` escapes undone."""
    lines = guide.read_text(encoding="utf-8").splitlines()
    assert lines.count(TABLE_HEADER) == 1, f"{guide.name} must hold exactly one table headed {TABLE_HEADER}"
    rows = []
    for line in lines[lines.index(TABLE_HEADER) + 2 :]:  # after the header and its |---| line
        if not line.startswith("|"):
            break
        cells = [cell.strip().replace("\\|", "|") for cell in UNESCAPED_PIPE.split(line)[1:-1]]
        assert len(cells) == 4, f"{guide.name}: a row needs 4 cells: {line}"
        quantity, code, reference, shape = cells
        link = LINE_LINK.fullmatch(reference)
        assert link, f"{guide.name}: {quantity}: the line must read [path:NN](../path#LNN), not {reference}"
        rows.append(Row(quantity.strip("`"), code.strip("`"), link["path"], int(link["line"]), shape.strip("`")))
    return rows


def size_of(shape: str, symbols: dict[str, int]) -> tuple[int, ...]:
    """`(batch, m, num_directions * encoder_hidden_size)` -> sizes: each dimension is a sum of products of symbols."""
    dims = shape.removeprefix("(").removesuffix(")")
    if not dims:
        return ()

    def symbol(name: str) -> int:
        assert name in symbols, f"{shape}: unknown symbol {name!r} (known: {', '.join(symbols)})"
        return symbols[name]

    return tuple(
        sum(math.prod(symbol(factor.strip()) for factor in term.split("*")) for term in dim.split("+"))
        for dim in dims.split(",")
    )


def padded(lengths: tuple[int, ...], vocab_size: int, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random word ids in rows of `lengths`, right-padded with `fill`; and the mask of real tokens."""
    mask = torch.arange(max(lengths)) < torch.tensor(lengths)[:, None]
    return torch.randint(FIRST_WORD, vocab_size, mask.shape).masked_fill(~mask, fill), mask.long()


def run_and_record(model: RNNSeq2SeqForConditionalGeneration, labels: torch.Tensor, **inputs) -> dict[str, list]:
    """The tensors behind the table's quantities, by name, while the model runs teacher forcing on one batch. Forward
    hooks on the modules that compute them record one entry per call: one in all, or one per step in the Decoder's
    loop. The Generator is then called on the Decoder's output, as `generate()` calls it."""
    seen = defaultdict(list)
    encoder, decoder = model.model.encoder, model.model.decoder

    def record(module: nn.Module, quantity: str, pick: Callable[[tuple, object], torch.Tensor]) -> None:
        module.register_forward_hook(lambda _, args, output: seen[quantity].append(pick(args, output)))

    record(encoder, "x_{1:m}", lambda args, _: args[0])
    record(encoder.embed_tokens, "emb(x_{1:m})", lambda _, output: output)
    record(encoder, "h^enc_{1:m}", lambda _, output: output.last_hidden_state)
    record(encoder, "h^enc_final", lambda _, output: output.final_hidden)
    record(decoder, "h^dec_0", lambda args, _: args[3].hidden)  # the state the Decoder starts from
    record(decoder, "y_{0:n-1}", lambda args, _: args[0])
    record(decoder.embed_tokens, "emb(y_{0:n-1})", lambda _, output: output)
    record(decoder.rnn, "h^dec_{1:n}", lambda _, output: output[0])
    record(decoder, GENERATOR_INPUT, lambda _, output: output[0])
    if model.config.attention is not None:
        record(decoder.attention, "α_{1:n}", lambda _, output: output[1])
        record(decoder.attention, "c_{1:n}", lambda _, output: output[0])
        record(decoder.attention_out, "h̃_{1:n}", lambda _, output: output)  # before its tanh: the same shape

    rnn_step = decoder._rnn_step  # the loop's step without autograd: a method, not a module, so wrapped

    def recorded_step(step_input: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor | None):
        seen["[emb(y_{t-1}); h̃_{t-1}]"].append(step_input)
        hidden, cell = rnn_step(step_input, hidden, cell)
        seen["h^dec_t"].append(hidden)
        return hidden, cell

    decoder._rnn_step = recorded_step
    with torch.no_grad():
        output = model(labels=labels, **inputs)
        (decoder_output,) = seen.pop(GENERATOR_INPUT)
        seen["y_{1:n}"].append(labels)
        seen["z_{1:n}"].append(model.generator(decoder_output))
        seen["p_{1:n}"].append(model.generator.probabilities(decoder_output))
        seen["loss"].append(output.loss)
    return seen


def absent(config: RNNSeq2SeqConfig) -> set[str]:
    """The quantities this configuration does not compute."""
    missing = set() if config.attention else set(ATTENTION_ONLY)
    return missing | (ALL_AT_ONCE if config.input_feeding else STEP_BY_STEP)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_line_still_holds_its_code(guide: Path):
    for row in table(guide):
        lines = (ROOT / row.path).read_text(encoding="utf-8").splitlines()
        found = lines[row.line - 1].strip() if row.line <= len(lines) else "(past the end of the file)"
        assert row.code in found, (
            f"{guide.name}: {row.quantity}: {row.path}:{row.line} reads `{found}`, not `{row.code}`: "
            "find the line that computes it now and update the table in both guides"
        )


@pytest.mark.parametrize("options", CONFIGS, ids=lambda options: "-".join(map(str, options.values())))
def test_every_stated_shape_is_the_tensor_shape(options: dict):
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig(**SIZES, **options)
    model = RNNSeq2SeqForConditionalGeneration(config).eval()
    input_ids, attention_mask = padded(SOURCE_LENGTHS, config.vocab_size, config.pad_token_id)
    labels, _ = padded(TARGET_LENGTHS, config.decoder_vocab_size, IGNORE_INDEX)
    seen = run_and_record(model, labels, input_ids=input_ids, attention_mask=attention_mask)
    symbols = {
        "batch": len(SOURCE_LENGTHS),
        "m": max(SOURCE_LENGTHS),
        "n": max(TARGET_LENGTHS),
        "|V|": config.decoder_vocab_size,
        "num_directions": config.num_directions,
        **{name: getattr(config, name) for name in CONFIG_SYMBOLS},
    }
    for guide in GUIDES:
        rows = [row for row in table(guide) if row.quantity not in absent(config)]
        assert set(seen) == {row.quantity for row in rows}, f"{guide.name}: rows and recorded quantities differ"
        for row in rows:
            # A quantity of the whole target computed step by step (attention in the loop) is joined over the
            # steps as the Decoder joins them; a step's own quantities are checked step by step.
            tensors = seen[row.quantity]
            if row.quantity not in STEP_BY_STEP and len(tensors) > 1:
                tensors = [torch.cat(tensors, dim=1)]
            for tensor in tensors:
                assert tuple(tensor.shape) == size_of(row.shape, symbols), f"{guide.name}: {row.quantity}"


def test_both_guides_hold_the_same_table():
    english, korean = (table(guide) for guide in GUIDES)
    assert english == korean


def test_korean_readme_starts_with_the_two_commands_of_readme():
    commands = re.match(r"```bash\n.*?\n```\n", README.read_text(encoding="utf-8"), re.DOTALL)
    assert commands, "README.md must start with the block of `make demo` and `make test`"
    assert KOREAN_README.read_text(encoding="utf-8").startswith(commands.group(0))


@pytest.mark.parametrize("document", [KOREAN_README, *GUIDES], ids=lambda path: path.name)
def test_relative_links_lead_to_files(document: Path):
    for target in RELATIVE_LINK.findall(document.read_text(encoding="utf-8")):
        assert (document.parent / target).exists(), f"{document.name} links to {target}, which does not exist"
