"""Optimised paths give what the straightforward paths give, on the same weights.

Speed work on the model (whole-sequence RNN kernels, fused projections, length-bucketed batches, cached
decoding) must not change a number a user can see. Each test computes one thing two ways:

- training loss and every gradient: the model's own forward over the whole target (whatever fast path it
  takes) against a decoder driven one token per call, carrying `cache` -- the generation path,
  which has to run step by step;
- training loss and gradients of a padded batch against the same sentences one at a time (no padding);
- `generate()` with `use_cache=True` against `use_cache=False` (the whole prefix re-run every step), and a
  padded batch against one sentence at a time, greedy and beam search, on a small model trained briefly so
  that its outputs have varied lengths and real margins.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny_models import BOS, EOS, PAD, PAIRS, config_ids, save_tiny_translator, until_eos

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.modeling import loss as loss_module
from hf_rnn_seq2seq.modeling.attention import float32_for_decoding, source_side_bmm
from hf_rnn_seq2seq.modeling.dropout import Dropout
from hf_rnn_seq2seq.modeling.encoder import RNN_CLASSES, cpu_runs_bfloat16
from hf_rnn_seq2seq.modeling.step_rnn import STEPS_PER_PRODUCT, StepRNN, StepWeight
from hf_rnn_seq2seq.tokenization import MIXED_PRECISION_PAD_MULTIPLE, load_tokenizers
from hf_rnn_seq2seq.training.arguments import RNNTrainingArguments
from hf_rnn_seq2seq.training.trainer import make_collator

IGNORE = -100
VOCAB = 24


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small run fastest on one thread, and a busy machine cannot then stall them in
    thread synchronisation; the previous setting is restored for the other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0, **options) -> RNNSeq2SeqForConditionalGeneration:
    torch.manual_seed(seed)
    config = RNNSeq2SeqConfig(
        vocab_size=VOCAB, embedding_size=12, hidden_size=16, dropout=0.0, init_scale=0.3, **options
    )
    return RNNSeq2SeqForConditionalGeneration(config).to(torch.float64)


def padded(rows: list[list[int]], fill: int) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows))), fill)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out


def random_pairs(n: int, seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """Sources and labels of varied lengths, each ending in EOS."""
    g = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for _ in range(n):
        m, t = (int(x) for x in torch.randint(1, 9, (2,), generator=g))
        src.append(torch.randint(3, VOCAB, (m,), generator=g).tolist() + [EOS])
        tgt.append(torch.randint(3, VOCAB, (t,), generator=g).tolist() + [EOS])
    return src, tgt


def gradients(model) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def whole_sequence_loss(model, source, mask, labels):
    """The model's training forward: all target positions in one call."""
    out = model(input_ids=source, attention_mask=mask, labels=labels)
    return out.loss, out.logits


def token_by_token_loss(model, source, mask, labels):
    """The straightforward decoder: one target position per call, the recurrent state carried in
    `cache` exactly as generate() carries it."""
    decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels)
    encoder_outputs = model.get_encoder()(source, mask)
    state, logits = None, []
    for t in range(decoder_input_ids.size(1)):
        out = model(
            encoder_outputs=encoder_outputs,
            attention_mask=mask,
            decoder_input_ids=decoder_input_ids[:, t : t + 1],
            cache=state,
            use_cache=True,
        )
        state = out.cache
        logits.append(out.logits)
    logits = torch.cat(logits, dim=1)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE), logits


ARCHITECTURES = [
    dict(cell_type="lstm", attention="general", input_feeding=True),  # the benchmark's model
    dict(cell_type="lstm", attention="general", input_feeding=False),  # whole-sequence kernel in training
    dict(cell_type="gru", attention="additive", input_feeding=False),
    dict(cell_type="lstm", attention=None, input_feeding=False, num_layers=2),
    dict(cell_type="gru", attention="dot", input_feeding=True, num_layers=2),
]
IDS = config_ids(ARCHITECTURES)


@pytest.mark.parametrize("options", ARCHITECTURES, ids=IDS)
def test_training_loss_and_gradients_equal_token_by_token(options):
    model = tiny_model(**options).train()  # dropout 0: train mode, deterministic
    src, tgt = random_pairs(5, seed=1)
    source, labels = padded(src, PAD), padded(tgt, IGNORE)
    mask = (source != PAD).long()

    fast_loss, fast_logits = whole_sequence_loss(model, source, mask, labels)
    fast_loss.backward()
    fast_grads = gradients(model)
    slow_loss, slow_logits = token_by_token_loss(model, source, mask, labels)
    slow_loss.backward()
    slow_grads = gradients(model)

    kept = labels != IGNORE
    torch.testing.assert_close(fast_logits[kept], slow_logits[kept], atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(fast_loss, slow_loss, atol=1e-6, rtol=1e-6)  # the loss is summed in float32
    assert fast_grads.keys() == slow_grads.keys() and fast_grads
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], slow_grads[name], atol=1e-9, rtol=1e-6, msg=name)


@pytest.mark.parametrize("options", ARCHITECTURES[:2], ids=IDS[:2])
def test_padded_batch_equals_sentences_one_at_a_time(options):
    """Summed loss and gradients: padding (source and target) contributes nothing, whatever the batching."""
    model = tiny_model(**options).train()
    src, tgt = random_pairs(6, seed=2)
    source, labels = padded(src, PAD), padded(tgt, IGNORE)
    n_sentences = len(src)
    # the peers' normalisation: summed token loss / sentences in the batch
    batch_loss = model(
        input_ids=source, attention_mask=(source != PAD).long(), labels=labels, num_items_in_batch=n_sentences
    ).loss
    batch_loss.backward()
    batch_grads = gradients(model)

    total = 0.0
    for s, t in zip(src, tgt):
        loss = model(input_ids=torch.tensor([s]), labels=torch.tensor([t]), num_items_in_batch=n_sentences).loss
        loss.backward()  # gradients accumulate over the sentences
        total = total + loss.detach()
    alone_grads = gradients(model)
    torch.testing.assert_close(batch_loss.detach(), total, atol=1e-6, rtol=1e-6)  # the loss is summed in float32
    for name in batch_grads:
        torch.testing.assert_close(batch_grads[name], alone_grads[name], atol=1e-9, rtol=1e-6, msg=name)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_batches_pad_to_a_multiple_and_score_the_same(tmp_path, precision):
    """The Trainer's collator pads mixed-precision batches to a multiple of MIXED_PRECISION_PAD_MULTIPLE (fewer
    kernel shapes); the extra padding changes neither the loss nor generate()'s output."""
    directory = save_tiny_translator(tmp_path / "model", cell_type="lstm", attention="general", input_feeding=True)
    tokenizer, _ = load_tokenizers(directory)
    model = RNNSeq2SeqForConditionalGeneration.from_pretrained(directory).to(torch.float64)
    rows = [{"input_ids": tokenizer(ko)["input_ids"], "labels": tokenizer(en)["input_ids"]} for ko, en in PAIRS[:5]]
    plain_args = RNNTrainingArguments(output_dir=str(tmp_path / "run"), report_to=[])
    mixed_args = RNNTrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], **{precision: True})
    plain, mixed = (make_collator(tokenizer, model, args)(rows) for args in (plain_args, mixed_args))

    assert {name: tuple(mixed[name].shape[1:]) for name in ("input_ids", "labels")} == {
        name: (-(-plain[name].shape[1] // MIXED_PRECISION_PAD_MULTIPLE) * MIXED_PRECISION_PAD_MULTIPLE,)
        for name in ("input_ids", "labels")
    }
    assert mixed["labels"].shape[1] > plain["labels"].shape[1]  # these rows do get padded
    torch.testing.assert_close(model(**mixed).loss, model(**plain).loss, atol=1e-12, rtol=1e-12)
    translate = lambda batch: model.generate(  # noqa: E731
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=3, max_new_tokens=6
    )
    assert translate(mixed).tolist() == translate(plain).tolist()


# (additive attention is left out: its tanh(W_q h_dec_t + W_k h_enc) is itself source-sized at every step)
@pytest.mark.parametrize("attention", ["general", "dot"])
def test_mixed_precision_training_keeps_the_source_side_once(attention):
    """Under autocast the attention must not keep a low-precision copy of `h_enc` (or of its keys) per
    target token for the backward pass: the memory kept grows with the target length only by per-step rows."""
    model = tiny_model(cell_type="lstm", attention=attention, input_feeding=True).float().train()
    src, _ = random_pairs(6, seed=3)  # varied lengths: the Encoder runs on packed sequences
    source = padded(src, PAD)
    source_side = source.numel() * model.config.encoder_output_size  # elements of h_enc

    def kept_source_sized_tensors(target_len: int) -> int:
        storages = set()

        def pack(t):
            if t.numel() == source_side:
                storages.add(t.untyped_storage().data_ptr())
            return t

        labels = torch.randint(3, VOCAB, (source.size(0), target_len))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16):
            loss = model(input_ids=source, attention_mask=(source != PAD).long(), labels=labels).loss
        loss.backward()
        return len(storages)

    assert kept_source_sized_tensors(12) == kept_source_sized_tensors(3)


def test_decoding_attention_products_in_bfloat16_run_in_float32():
    """Without autograd (decoding), bfloat16 attention products are taken in float32 (faster on CPUs, see
    source_side_bmm) and rounded back: the bfloat16 product, to within its 8 bits of mantissa."""
    g = torch.Generator().manual_seed(0)
    per_step = torch.randn(6, 1, 32, generator=g).bfloat16()
    source_side = torch.randn(6, 32, 9, generator=g).bfloat16()
    with torch.no_grad():
        out = source_side_bmm(per_step, source_side)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, torch.bmm(per_step.float(), source_side.float()).bfloat16())
    torch.testing.assert_close(out.float(), torch.bmm(per_step, source_side).float(), atol=5e-2, rtol=2e-2)
    with torch.no_grad():  # the source side cast to float32 once for a whole decoding (float32_for_decoding)
        cast_once = source_side_bmm(per_step, float32_for_decoding(source_side))
    assert cast_once.dtype == torch.bfloat16 and torch.equal(cast_once, out)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell_type", ["lstm", "gru", "rnn"])
def test_training_steps_equal_torch_sequence_kernel(cell_type, num_layers):
    """step_rnn.StepRNN (the Decoder's training steps: every weight's gradient taken over several steps at once)
    against the nn.RNN module's own sequence kernel on the same weights: every output, the final state, and the
    gradients of the weights, the inputs and the initial state."""
    torch.manual_seed(0)
    batch, steps, input_size, hidden_size = 3, STEPS_PER_PRODUCT + 3, 5, 7  # two products per weight gradient
    rnn = RNN_CLASSES[cell_type](input_size, hidden_size, num_layers, batch_first=True).double()
    inputs = torch.randn(batch, steps, input_size, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(num_layers, batch, hidden_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn_like(h0, requires_grad=True) if cell_type == "lstm" else None
    probe = torch.randn(batch, steps, hidden_size, dtype=torch.float64)  # a loss that weighs every output
    leaves = [*rnn.parameters(), inputs, h0] + ([c0] if c0 is not None else [])

    def gradients(outputs, final):
        (outputs * probe).sum().add(sum(s.sum() for s in final)).backward()
        grads = [t.grad.clone() for t in leaves]
        for t in leaves:
            t.grad = None
        return grads

    outputs, final = rnn(inputs, h0 if c0 is None else (h0, c0))
    final = final if c0 is not None else (final,)
    torch_grads = gradients(outputs, final)

    step_rnn = StepRNN(rnn, cell_type, torch.nn.Identity())
    hidden, cell, step_outputs = h0, c0, []
    for x_t in inputs.unbind(1):
        hidden, cell = step_rnn.step(x_t, hidden, cell)
        step_outputs.append(hidden[-1])
    ours = torch.stack(step_outputs, 1), (hidden,) if cell is None else (hidden, cell)
    torch.testing.assert_close(ours[0], outputs, atol=1e-12, rtol=1e-10)
    for mine, theirs in zip(ours[1], final):
        torch.testing.assert_close(mine, theirs, atol=1e-12, rtol=1e-10)
    for mine, theirs in zip(gradients(*ours), torch_grads):
        torch.testing.assert_close(mine, theirs, atol=1e-12, rtol=1e-10)


def test_step_weight_of_a_frozen_weight_passes_gradients_to_its_input_only():
    torch.manual_seed(0)
    weight, x = torch.randn(8, 5), torch.randn(4, 5, requires_grad=True)
    step_weight = StepWeight(weight)
    step_weight(x).sum().backward()
    torch.testing.assert_close(x.grad, weight.sum(0).expand(4, 5))
    assert weight.grad is None and not step_weight.gradient.grads  # nothing recorded for a weight gradient


def test_step_weight_under_autocast_equals_the_plain_product():
    """Under bfloat16 autocast a StepWeight multiplies in bfloat16 (the weight cast once) as F.linear does, and
    its gradient over all steps is the per-step gradients' sum, to within bfloat16's rounding."""
    torch.manual_seed(0)
    weight = torch.randn(8, 5, requires_grad=True)
    xs = [torch.randn(4, 5, requires_grad=True) for _ in range(3)]

    def run(step_weight: bool):
        with torch.autocast("cpu", torch.bfloat16):
            project = StepWeight(weight) if step_weight else lambda x: F.linear(x, weight)
            outs = [project(x) for x in xs]
        sum((out.float() * (i + 1)).sum() for i, out in enumerate(outs)).backward()
        grads = [t.grad.clone() for t in (weight, *xs)]
        for t in (weight, *xs):
            t.grad = None
        return outs, grads

    (outs, grads), (plain_outs, plain_grads) = run(step_weight=True), run(step_weight=False)
    for out, plain in zip(outs, plain_outs):
        assert out.dtype == torch.bfloat16 and torch.equal(out, plain)
    for grad, plain in zip(grads, plain_grads):
        assert grad.dtype == torch.float32
        torch.testing.assert_close(grad, plain, rtol=2e-2, atol=2e-2 * plain.abs().max().item())


# (precision, autocast): float64 compares exactly; bfloat16 to within its 8 bits of mantissa
PRECISIONS = [(torch.float64, False, 1e-9), (torch.float32, True, 2e-2), (torch.bfloat16, False, 2e-2)]


@pytest.mark.parametrize("smoothing", [0.0, 0.1], ids=["no-smoothing", "smoothing"])
@pytest.mark.parametrize("slice_elements", [2**21, 5 * VOCAB], ids=["one-slice", "slices-of-5-rows"])
@pytest.mark.parametrize("dtype, autocast, tol", PRECISIONS, ids=["float64", "autocast-bf16", "bfloat16"])
def test_generator_cross_entropy_equals_the_plain_loss(monkeypatch, slice_elements, dtype, autocast, tol, smoothing):
    """Loss, logits and the gradients of h_dec and of the Generator's weight and bias, fused vs
    `F.cross_entropy(generator(h_dec).float(), label_smoothing=...)`, with ignored positions and with a
    second loss on the logits (whose gradient reaches the fused function through its logits output);
    and without autograd."""
    monkeypatch.setattr(loss_module, "SLICE_ELEMENTS", slice_elements)
    torch.manual_seed(0)
    generator = torch.nn.Linear(16, VOCAB).to(dtype)
    h_dec = torch.randn(3, 7, 16, dtype=dtype, requires_grad=True)
    labels = torch.randint(0, VOCAB, (3, 7))
    labels[1, 4:] = IGNORE

    def run(fused: bool):
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            if fused:
                total, logits = loss_module.generator_cross_entropy(generator, h_dec, labels, smoothing)
            else:
                logits = generator(h_dec)
                wide = logits.flatten(0, 1).double()
                total = F.cross_entropy(
                    wide, labels.flatten(), ignore_index=IGNORE, reduction="sum", label_smoothing=smoothing
                )
        (0.5 * total + logits.double().square().mean()).backward()
        grads = [t.grad.double() for t in (h_dec, generator.weight, generator.bias)]
        h_dec.grad = generator.weight.grad = generator.bias.grad = None
        return total.detach().double(), logits.detach(), grads

    (total, logits, grads), (plain_total, plain_logits, plain_grads) = run(fused=True), run(fused=False)
    torch.testing.assert_close(logits, plain_logits, rtol=0, atol=0)
    torch.testing.assert_close(total, plain_total, rtol=tol, atol=0)
    for grad, plain in zip(grads, plain_grads):
        torch.testing.assert_close(grad, plain, rtol=0, atol=tol * plain.abs().max().item())
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        assert loss_module.generator_cross_entropy(generator, h_dec, labels, smoothing)[0].double() == total


def test_training_keeps_no_batch_of_logits_for_backward():
    """What the forward pass keeps for backward holds no (target tokens, |V|) tensor: no logits, no
    log-softmax (the loss's gradients for the Generator are worked out in the forward pass)."""
    model = tiny_model().float().train()
    src, tgt = random_pairs(6, seed=5)
    source, labels = padded(src, PAD), padded(tgt, IGNORE)
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=source, attention_mask=(source != PAD).long(), labels=labels).loss
    loss.backward()
    assert shapes and all(len(shape) < 2 or shape[-1] != VOCAB for shape in shapes), shapes


# ---------------------------------------------------------------------------------------------- generate
def copy_task(n: int, g: torch.Generator):
    """Target = source with each word repeated once more if it is odd: outputs of varied lengths."""
    src, tgt = [], []
    for _ in range(n):
        words = torch.randint(3, VOCAB, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g).tolist()
        src.append(words + [EOS])
        tgt.append([w for word in words for w in ([word, word] if word % 2 else [word])] + [EOS])
    return src, tgt


@pytest.fixture(scope="module")
def trained():
    """The benchmark's architecture (bi-LSTM, general attention, input feeding), trained for a few seconds
    (in float32, compared in float64 so that near-ties cannot flip a token between two paths)."""
    torch.manual_seed(3)
    config = RNNSeq2SeqConfig(
        vocab_size=VOCAB,
        embedding_size=16,
        hidden_size=32,
        dropout=0.0,
        init_scale=0.3,
        cell_type="lstm",
        attention="general",
        input_feeding=True,
    )
    model = RNNSeq2SeqForConditionalGeneration(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    g = torch.Generator().manual_seed(4)
    model.train()
    for _ in range(200):
        src, tgt = copy_task(32, g)
        source = padded(src, PAD)
        loss = model(input_ids=source, attention_mask=(source != PAD).long(), labels=padded(tgt, IGNORE)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model = model.to(torch.float64).eval()
    src, _ = copy_task(6, torch.Generator().manual_seed(5))
    return model, src


DECODINGS = [
    dict(num_beams=1),
    dict(num_beams=4, length_penalty=0.0),  # the benchmark's beam: raw sum of log-probabilities
    dict(num_beams=4, length_penalty=1.0, num_return_sequences=2),
    dict(num_beams=3, length_penalty=0.0, min_new_tokens=6),
]


def generate(model, rows, use_cache=True, **kwargs):
    source = padded(rows, PAD)
    with torch.inference_mode():
        return model.generate(
            input_ids=source,
            attention_mask=(source != PAD).long(),
            max_new_tokens=14,
            do_sample=False,
            use_cache=use_cache,
            return_dict_in_generate=True,
            output_scores=True,
            **kwargs,
        )


@pytest.mark.parametrize("kwargs", DECODINGS, ids=[str(d) for d in DECODINGS])
def test_generate_with_and_without_cache_agree(trained, kwargs):
    model, src = trained
    cached = generate(model, src, use_cache=True, **kwargs)
    uncached = generate(model, src, use_cache=False, **kwargs)
    assert torch.equal(cached.sequences, uncached.sequences)
    if kwargs["num_beams"] > 1:
        torch.testing.assert_close(cached.sequences_scores, uncached.sequences_scores, atol=1e-9, rtol=0)
    lengths = {len(until_eos(row)) for row in cached.sequences.tolist()}
    assert len(lengths) > 1  # the trained model ends sentences at different lengths


@pytest.mark.parametrize("kwargs", DECODINGS[:2], ids=[str(d) for d in DECODINGS[:2]])
def test_batched_generate_equals_one_sentence_at_a_time(trained, kwargs):
    model, src = trained
    batch = generate(model, src, **kwargs).sequences.tolist()
    for row, sentence in zip(batch, src):
        alone = generate(model, [sentence], **kwargs).sequences[0].tolist()
        assert until_eos(row) == until_eos(alone)


def test_the_trained_model_does_the_task(trained):
    """Otherwise the comparisons above would compare noise."""
    model, src = trained
    out = generate(model, src, num_beams=1).sequences.tolist()
    expected = [[BOS] + [w for word in s[:-1] for w in ([word, word] if word % 2 else [word])] + [EOS] for s in src]
    assert sum(until_eos(o) == e for o, e in zip(out, expected)) >= len(src) // 2


# bfloat16 keeps 8 bits of mantissa: where the float32 model's best next token leads the runner-up by less than this
# (in logits), rounding may swap the two, and a different token then changes the rest of the translation.
BFLOAT16_NEAR_TIE = 0.1


def test_bfloat16_weights_choose_the_float32_tokens_except_near_ties(trained):
    """`--dtype bfloat16` (half the memory, faster on CPUs with AVX512-BF16 or AMX) keeps the translations: fed the
    float32 model's greedy translation, the bfloat16 model picks the same next token at every step where the choice
    is not a near-tie. On a CPU without bfloat16 kernels, the model refuses to run in one line instead."""
    model, src = trained
    reference = generate(model, src, num_beams=1).sequences  # (batch, 1 + generated), padded after EOS
    source = padded(src, PAD)
    inputs = dict(input_ids=source, attention_mask=(source != PAD).long(), decoder_input_ids=reference[:, :-1])
    halved = copy.deepcopy(model).to(torch.bfloat16)
    if not cpu_runs_bfloat16():
        with pytest.raises(ValueError, match="bfloat16 needs a CPU with AVX512"):
            halved(**inputs)
        return
    with torch.inference_mode():
        exact, low = model(**inputs).logits, halved(**inputs).logits.double()
    chosen = reference[:, 1:]
    best_two = exact.topk(2, dim=-1).values
    clear = (best_two[..., 0] - best_two[..., 1] > BFLOAT16_NEAR_TIE) & (chosen != PAD)
    assert clear.sum() > clear.numel() // 2  # otherwise the test would check little
    assert torch.equal(low.argmax(dim=-1)[clear], chosen[clear])
    beams = generate(halved, src, **DECODINGS[1])
    assert beams.sequences_scores.dtype == torch.float32  # generate() scores in float32 whatever the weights


def test_dropout_keeps_the_expected_share_and_scales_as_torch():
    """The CPU Dropout (masks from rand_like) keeps each element with probability 1 - p and scales kept
    elements by 1 / (1 - p), as nn.Dropout; in eval mode it is the identity; gradients follow the mask."""
    torch.manual_seed(0)
    p = 0.3
    dropout = Dropout(p)
    x = torch.rand(200, 500, dtype=torch.float64) + 1.0
    x.requires_grad_(True)
    out = dropout(x)
    kept = out != 0
    assert abs(kept.double().mean().item() - (1 - p)) < 0.01  # 100,000 draws: sd 0.0015
    torch.testing.assert_close(out[kept], x[kept] / (1 - p))
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.double() / (1 - p))
    assert torch.equal(dropout.eval()(x), x)
