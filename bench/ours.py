#!/usr/bin/env python
"""Our model, driven the way the peer scripts drive theirs: one process per command, on space-separated
subword pieces, with a word-level vocabulary over those pieces.

    python bench/ours.py train     --train-src F --train-tgt F --out DIR [--emb 256 --hid 512 ...] --steps N
    python bench/ours.py train     ... --steps 100 --profile-steps 20  # + DIR/profile.txt: where a step's time goes
    python bench/ours.py translate --model DIR/model --src F --out HYP [--beam 5 --tbatch 32 --max-out 100]
    python bench/ours.py shortlist --model DIR/model --train-src F --train-tgt F   # DIR/model/shortlist.npz
    python bench/ours.py translate ... --shortlist [--max-len-a 1.5 --max-len-b 10]  # with it; source-relative limits
    python bench/ours.py machine   --out FILE.json        # GFLOP/s of torch.matmul on the same threads
    python bench/ours.py flat      --model DIR/model --src F --out FILE.json   # per-token cost vs output length
    python bench/ours.py flopcheck                        # step_flops() against torch.utils.flop_counter

train, translate, machine and flat take `--dtype bfloat16` (see DTYPES); translate also takes `--engine onnxruntime`
and `--dtype int8` (which implies it): the model's float32 or int8 graphs (made on first use into MODEL/onnx-float32
or MODEL/onnx-int8, counted in load_s, not in the decode loop) in onnxruntime, as `hf-rnn-seq2seq translate
--engine onnxruntime` and `--dtype int8` run them.

`versus_peers.py` runs these as child processes (so their peak RSS and whole-command time can be measured)
and never imports torch itself.

Training loop: written here (not `hf_rnn_seq2seq.training`), with the peers' settings: Adam (0.9, 0.999) at a
constant learning rate, batches of `--batch-size` sentences from length-sorted pools with the batch order
shuffled (OpenNMT's bucketing / fairseq's global sort), loss = summed token cross-entropy / sentences in the
batch (OpenNMT `normalization: sents`, Joey `normalization: batch`, fairseq `--sentence-avg`), gradient norm
clipped at `--clip`, uniform(-0.1, 0.1) init (the config's `init_scale`), dropout 0.3. Under bfloat16 the
batches are padded to a multiple of MIXED_PRECISION_PAD_MULTIPLE tokens, as `hf_rnn_seq2seq.training` pads them.
Throughput counts non-pad target tokens incl. </s> (the labels), per window of `--log-every` steps.
"""

import argparse
import array
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]  # ids 0..3, as in hf_rnn_seq2seq.tokenization
PAD, BOS, EOS, UNK = 0, 1, 2, 3
IGNORE = -100
# --dtype: float32 everywhere, or bfloat16 (training: matrix products autocast to bfloat16 over float32 weights,
# as `--bf16 true` does in hf_rnn_seq2seq.training; translating: the weights loaded in bfloat16, as --dtype does)
DTYPES = ("float32", "bfloat16")
QUANTIZED_DTYPES = ("int8",)  # translate only: hf_rnn_seq2seq.loading.QUANTIZED_DTYPES
ENGINES = ("pytorch", "onnxruntime")  # translate only: hf_rnn_seq2seq.loading.ENGINES
ENCODE_CHUNK = 1024  # lines per tokenizer call when encoding the training files (see encode())


def set_threads(n: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def read_lines(path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


# ---------------------------------------------------------------- vocabulary / tokenizers
def build_vocab(lines: list[str], min_freq: int = 1) -> list[str]:
    """Specials, then the pieces of `lines` by descending frequency (ties alphabetical), as the peers do."""
    counts: dict[str, int] = {}
    for line in lines:
        for piece in line.split():
            counts[piece] = counts.get(piece, 0) + 1
    pieces = sorted(
        (p for p, c in counts.items() if c >= min_freq and p not in SPECIALS), key=lambda p: (-counts[p], p)
    )
    return SPECIALS + pieces


def word_level_tokenizer(vocab: list[str]):
    """A `tokenizers` WordLevel tokenizer over whitespace-separated pieces, </s> appended, as a transformers
    fast tokenizer with <pad>=0 <s>=1 </s>=2 <unk>=3."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({p: i for i, p in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def encode(tok, lines: list[str]) -> list[array.array]:
    """Token ids of each line, as compact int32 arrays (4 bytes an id), encoded a chunk of lines at a time.

    Why: one tokenizer call over the whole corpus returns a Python int list per line plus the tokenizer's
    per-line encodings, a transient 120 MB (Multi30k) to 240 MB (Tatoeba) that glibc then keeps in the
    process and that counted against our training peak RSS. fairseq reads binarized ids, Joey token lists.
    """
    out = []
    for b in range(0, len(lines), ENCODE_CHUNK):
        out += [array.array("i", ids) for ids in tok(lines[b : b + ENCODE_CHUNK], add_special_tokens=True)["input_ids"]]
    return out


# ---------------------------------------------------------------- FLOPs
def step_flops(cfg: dict, B: int, S: int, T: int, src_lens: list[int], tgt_lens: list[int]) -> tuple[float, float]:
    """Matmul FLOPs of one training step (forward + backward = 3 x forward), as executed and as useful.

    Counted: encoder LSTM input + recurrent matmuls (packed: real source tokens only), decoder LSTM input
    (embedding + input feed) + recurrent matmuls, attention key projection, scores and context bmm, attention
    output layer, generator. Not counted: embeddings, softmax, element-wise ops.
    "executed" uses the padded decoder/attention shapes the kernels run on (B x T steps, S source positions);
    "useful" only non-pad target positions and each sentence's own source length.
    """
    E, H, V, L = cfg["emb"], cfg["hid"], cfg["tgt_vocab"], cfg["layers"]
    He, D = H // 2, 2
    Ns = sum(src_lens)
    Nt = sum(tgt_lens)
    enc = 0.0
    for layer in range(L):
        inp = E if layer == 0 else D * He
        enc += Ns * D * 2 * 4 * He * (inp + He)
    dec_per_pos = 0.0
    for layer in range(L):
        inp = (E + H) if layer == 0 else H
        dec_per_pos += 2 * 4 * H * (inp + H)
    dec_per_pos += 2 * (D * He + H) * H + 2 * H * V  # attention output layer + generator
    K = D * He
    executed = enc + B * T * dec_per_pos + 2 * B * S * K * H + 2 * B * T * S * (H + K)
    st = sum(s * t for s, t in zip(src_lens, tgt_lens))
    useful = enc + Nt * dec_per_pos + 2 * Ns * K * H + 2 * st * (H + K)
    return 3 * executed, 3 * useful


# ---------------------------------------------------------------- train
def make_batches(
    n_items: int, src: list[array.array], tgt: list[array.array], batch: int, pool: int, rng: random.Random
):
    """One epoch of index batches: shuffle, sort pools by (source, target) length, cut, shuffle the batches."""
    idx = list(range(n_items))
    rng.shuffle(idx)
    pool = pool or n_items
    batches = []
    for p in range(0, n_items, pool):
        chunk = sorted(idx[p : p + pool], key=lambda i: (len(src[i]), len(tgt[i])))
        batches += [chunk[b : b + batch] for b in range(0, len(chunk), batch)]
    rng.shuffle(batches)
    return batches


def collate(ids: list[int], src: list[array.array], tgt: list[array.array], multiple: int = 1):
    """Sources padded with PAD, labels with IGNORE, both to their longest rounded up to a multiple of `multiple`."""
    import torch

    S = -(-max(len(src[i]) for i in ids) // multiple) * multiple
    T = -(-max(len(tgt[i]) for i in ids) // multiple) * multiple
    x = torch.full((len(ids), S), PAD, dtype=torch.long)
    y = torch.full((len(ids), T), IGNORE, dtype=torch.long)
    for r, i in enumerate(ids):
        x[r, : len(src[i])] = torch.frombuffer(src[i], dtype=torch.int32)
        y[r, : len(tgt[i])] = torch.frombuffer(tgt[i], dtype=torch.int32)
    return x, (x != PAD).long(), y


class StepProfile:
    """`train --profile-steps N`: torch.profiler over the last N training steps (the early ones still pay for
    first-touched memory and new kernels); the operators by their own time go to OUT/profile.txt. The windows
    of those steps run slower."""

    def __init__(self, steps: int, last: int, out: Path):
        from torch.profiler import ProfilerActivity, profile

        self.profiler = profile(activities=[ProfilerActivity.CPU]) if steps else None
        self.start, self.stop, self.out = last - steps, last, out

    def after(self, step: int) -> None:
        if self.profiler is None:
            return
        if step == self.start:
            self.profiler.start()
        elif step == self.stop:
            self.profiler.stop()
            table = self.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=40)
            (self.out / "profile.txt").write_text(
                f"{self.stop - self.start} steps from step {self.start + 1}\n{table}\n"
            )


def cmd_train(a) -> None:
    import torch

    set_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
    from hf_rnn_seq2seq.tokenization import MIXED_PRECISION_PAD_MULTIPLE, save_tokenizers

    t_start = time.perf_counter()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    src_lines, tgt_lines = read_lines(a.train_src), read_lines(a.train_tgt)
    src_vocab, tgt_vocab = build_vocab(src_lines, a.min_freq), build_vocab(tgt_lines, a.min_freq)
    src_tok, tgt_tok = word_level_tokenizer(src_vocab), word_level_tokenizer(tgt_vocab)
    src, tgt = encode(src_tok, src_lines), encode(tgt_tok, tgt_lines)  # pieces + </s> (tgt: the labels)
    keep = [i for i in range(len(src)) if 1 < len(src[i]) <= a.max_len + 1 and 1 < len(tgt[i]) <= a.max_len + 1]
    src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]

    config = RNNSeq2SeqConfig(
        vocab_size=len(src_vocab),
        decoder_vocab_size=len(tgt_vocab),
        embedding_size=a.emb,
        hidden_size=a.hid,
        num_layers=a.layers,
        cell_type="lstm",
        bidirectional=True,
        attention="general",
        input_feeding=True,
        bridge="copy",
        dropout=a.dropout,
        init_scale=a.init,
    )
    model = RNNSeq2SeqForConditionalGeneration(config)
    model.train()
    mixed = a.dtype != "float32"
    autocast = torch.autocast("cpu", dtype=getattr(torch, a.dtype), enabled=mixed)
    pad_multiple = MIXED_PRECISION_PAD_MULTIPLE if mixed else 1  # as hf_rnn_seq2seq.training pads
    # What the Trainer gives our users by default (optim adamw_torch_fused, weight decay 0: Adam). The fused
    # kernel steps this model in 4.7 ms against 13.2 ms (2 threads): about 2.5% of a Multi30k training step.
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), fused=True)
    n_params = sum(p.numel() for p in model.parameters())
    fcfg = dict(emb=a.emb, hid=a.hid, tgt_vocab=len(tgt_vocab), layers=a.layers)
    print(
        f"[ours] {len(src)} pairs, vocab {len(src_vocab)}/{len(tgt_vocab)}, {n_params / 1e6:.2f}M params, "
        f"{a.dtype}, threads {torch.get_num_threads()}, setup {time.perf_counter() - t_start:.1f}s",
        flush=True,
    )

    if a.profile_steps and a.profile_steps > a.steps - a.log_every:
        sys.exit(
            f"--profile-steps {a.profile_steps} profiles the last steps but the first log window (warm-up): "
            f"raise --steps to at least {a.log_every + a.profile_steps}"
        )
    profile = StepProfile(a.profile_steps, a.steps, out)
    log = open(out / "train_log.jsonl", "w")
    windows = []
    step, epoch_batches = 0, []
    w_tok = w_flops = w_useful = w_loss = 0.0
    w_start = loop_start = time.perf_counter()
    deadline = loop_start + a.max_seconds if a.max_seconds else None
    while step < a.steps and (deadline is None or time.perf_counter() < deadline):
        if not epoch_batches:
            epoch_batches = make_batches(len(src), src, tgt, a.batch_size, a.pool, rng)
        ids = epoch_batches.pop()
        x, mask, y = collate(ids, src, tgt, pad_multiple)
        with autocast:
            # Keep the loss only, as the Trainer does: holding the output would keep this batch's logits
            # (batch x tgt_len x |V|) alive through the next step's forward, raising the peak RSS.
            # num_items_in_batch: the loss is the sum over the batch / its sentences
            loss = model(input_ids=x, attention_mask=mask, labels=y, num_items_in_batch=len(ids)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        profile.after(step)
        src_lens, tgt_lens = [len(src[i]) for i in ids], [len(tgt[i]) for i in ids]
        ex, us = step_flops(fcfg, len(ids), x.size(1), y.size(1), src_lens, tgt_lens)
        w_tok += sum(tgt_lens)
        w_loss += loss.detach() * len(ids)  # summed token cross-entropy of the batch
        w_flops += ex
        w_useful += us
        if step % a.log_every == 0 or step == a.steps:
            now = time.perf_counter()
            dt = now - w_start
            rec = dict(
                step=step,
                tgt_tokens=w_tok,
                secs=dt,
                tok_per_s=w_tok / dt,
                gflops_exec=w_flops / dt / 1e9,
                gflops_useful=w_useful / dt / 1e9,
                loss_per_sent=loss.item(),
                xent=float(w_loss) / w_tok,
            )  # per target token over the window, as OpenNMT's "xent"
            windows.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if step % (a.log_every * 10) == 0 or step == a.steps:
                print(
                    f"[ours] step {step} xent {rec['xent']:.2f} {rec['tok_per_s']:.0f} tgt tok/s "
                    f"{rec['gflops_exec']:.1f} GFLOP/s",
                    flush=True,
                )
            w_tok = w_flops = w_useful = w_loss = 0.0
            w_start = time.perf_counter()
    loop_s = time.perf_counter() - loop_start

    model_dir = out / "model"
    model.save_pretrained(model_dir)
    save_tokenizers(src_tok, tgt_tok, model_dir)
    steady = windows[1:] or windows

    def weighted(key_num, ws):
        secs = sum(w["secs"] for w in ws)
        return sum(w[key_num] * w["secs"] for w in ws) / secs if secs else float("nan")

    summary = dict(
        steps=step,
        loop_s=loop_s,
        process_s=time.perf_counter() - t_start,
        pairs=len(src),
        n_params=n_params,
        src_vocab=len(src_vocab),
        tgt_vocab=len(tgt_vocab),
        tok_per_s_steady=sum(w["tgt_tokens"] for w in steady) / sum(w["secs"] for w in steady),
        tok_per_s_median=statistics.median(w["tok_per_s"] for w in windows),
        gflops_exec_steady=weighted("gflops_exec", steady),
        gflops_useful_steady=weighted("gflops_useful", steady),
        windows=len(windows),
        final_xent=windows[-1]["xent"] if windows else None,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(
        "[ours] " + json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in summary.items()}),
        flush=True,
    )


# ---------------------------------------------------------------- translate
def load(model_dir: str, dtype: str):
    import torch

    from hf_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration
    from hf_rnn_seq2seq.tokenization import load_tokenizers

    model = RNNSeq2SeqForConditionalGeneration.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    src_tok, tgt_tok = load_tokenizers(model_dir)
    return torch, model, src_tok, tgt_tok


def gen_kwargs(beam: int, max_out: int) -> dict:
    kw = dict(num_beams=beam, do_sample=False, max_new_tokens=max_out, num_return_sequences=1)
    if beam > 1:
        kw.update(length_penalty=0.0, early_stopping=False)  # score = sum of log-probs, no normalisation
    return kw


def decode_batches(lines: list[str], tbatch: int, length_sorted: bool = True) -> list[list[int]]:
    """Line indices in decoding batches of `tbatch`, longest sources first unless told otherwise
    (onmt, fairseq and joey sort their test batches too)."""
    order = list(range(len(lines)))
    if length_sorted:
        order.sort(key=lambda i: len(lines[i].split()), reverse=True)
    return [order[b : b + tbatch] for b in range(0, len(order), tbatch)]


# generate()'s decoding loops: plain requests run search.py's; asking for a dict output runs transformers'.
LOOPS = {"search.py": {}, "transformers": {"return_dict_in_generate": True}}


def generate_ids(model, enc, beam: int, max_out: int, loop: str = "search.py"):
    """The token ids generate() gives for one tokenised batch, through the decoding loop `loop` (LOOPS)."""
    out = model.generate(**enc, **gen_kwargs(beam, max_out), **LOOPS[loop])
    return out.sequences if LOOPS[loop] else out


def add_test_set_arguments(p) -> None:
    """What decoding a test set with a trained model takes (bench/beam_cost.py, bench/search_loops.py)."""
    p.add_argument("--model", required=True, help="a model directory written by bench/ours.py train")
    p.add_argument("--src", required=True, help="subword-segmented source sentences, one per line")
    p.add_argument("--tbatch", type=int, default=32)
    p.add_argument("--max-out", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=DTYPES, default="float32")


def load_test_set(a):
    """torch, the model, the source lines and their tokenised batches (length-sorted, as translate decodes)."""
    set_threads(a.threads)
    torch, model, src_tok, _ = load(a.model, a.dtype)
    lines = read_lines(a.src)
    batches = [
        src_tok([lines[i] for i in chunk], padding=True, return_tensors="pt")
        for chunk in decode_batches(lines, a.tbatch)
    ]
    return torch, model, lines, batches


def onnx_generate_batches(runner):
    """generate() over every batch for an `OnnxTranslator` (`runner`), its `inter_threads` batches at a time: torch
    tensors in and out, as model.generate."""
    import torch

    def generate_batches(batches, do_sample: bool, num_return_sequences: int, **options):
        arrays = [{name: batch[name].numpy() for name in ("input_ids", "attention_mask")} for batch in batches]
        # greedy or beam, no sampling
        return (torch.from_numpy(ids) for ids in runner.generate_batches(arrays, **options))

    return generate_batches


def pytorch_generate_batches(model):
    """model.generate over every batch, one after another."""
    return lambda batches, **options: (model.generate(**batch, **options) for batch in batches)


def decoding_options(a) -> dict:
    """translate's options beyond the peers' settings: the lexical shortlist and source-relative length limits."""
    options = {"use_shortlist": a.shortlist or None, "max_len_a": a.max_len_a, "max_len_b": a.max_len_b}
    return {name: value for name, value in options.items() if value is not None}


def cmd_shortlist(a) -> None:
    """Build the model's lexical shortlist from the (segmented) training files, as `hf-rnn-seq2seq shortlist` does
    from a parallel-text prefix, and save it in the model directory."""
    from hf_rnn_seq2seq.shortlist import build_shortlist
    from hf_rnn_seq2seq.tokenization import load_tokenizers

    src_tok, tgt_tok = load_tokenizers(a.model)
    t0 = time.perf_counter()
    shortlist = build_shortlist(
        [list(ids) for ids in encode(src_tok, read_lines(a.train_src))],
        [list(ids) for ids in encode(tgt_tok, read_lines(a.train_tgt))],
        len(src_tok),
        len(tgt_tok),
        always_allowed=tgt_tok.all_special_ids,
        top_k=a.top_k,
        frequent=a.frequent,
    )
    path = shortlist.save(a.model)
    print(f"[ours] {path}: top {a.top_k} of {len(src_tok)} source pieces + {len(shortlist.always)} always, "
          f"{time.perf_counter() - t0:.1f}s", flush=True)  # fmt: skip


def cmd_translate(a) -> None:
    t_proc = time.perf_counter()
    set_threads(a.threads)
    from hf_rnn_seq2seq.loading import check_engine, load_translator

    engine = check_engine(a.engine, a.dtype, a.inter_threads)
    if engine == "onnxruntime":  # as `translate --engine onnxruntime` runs: the graphs and tokenizers, no PyTorch model
        import torch

        # on set_threads's threads, as PyTorch
        runner = load_translator(a.model, dtype=a.dtype, engine=engine, inter_threads=a.inter_threads)
        src_tok, tgt_tok = runner.tokenizer, runner.target_tokenizer
        generate_batches = onnx_generate_batches(runner)
    else:
        torch, model, src_tok, tgt_tok = load(a.model, a.dtype)
        generate_batches = pytorch_generate_batches(model)
    lines = read_lines(a.src)
    vocab = tgt_tok.convert_ids_to_tokens(list(range(len(tgt_tok))))
    t_load = time.perf_counter() - t_proc
    hyps: list[str] = [""] * len(lines)
    generated = 0
    with torch.inference_mode():
        t0 = time.perf_counter()
        chunks = decode_batches(lines, a.tbatch, length_sorted=not a.no_sort)
        batches = [src_tok([lines[i] for i in chunk], padding=True, return_tensors="pt") for chunk in chunks]
        outputs = generate_batches(batches, **gen_kwargs(a.beam, a.max_out), **decoding_options(a))
        for chunk, out in zip(chunks, outputs):
            for i, row in zip(chunk, out[:, 1:].tolist()):
                pieces = []
                for t in row:
                    if t == EOS:
                        break
                    if t != PAD:
                        pieces.append(vocab[t])
                generated += len(pieces) + 1
                hyps[i] = " ".join(pieces)
        loop_s = time.perf_counter() - t0
    Path(a.out).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    rec = dict(
        sentences=len(lines),
        decode_s=loop_s,
        sents_per_s_reported=len(lines) / loop_s,
        load_s=t_load,
        generated_tokens=generated,
        beam=a.beam,
        tbatch=a.tbatch,
        dtype=a.dtype,
        engine=engine,
        inter_threads=a.inter_threads,
        **decoding_options(a),
    )
    Path(a.out + ".json").write_text(json.dumps(rec, indent=1))
    print(
        f"[ours] decoded {len(lines)} sentences (beam {a.beam}) in {loop_s:.2f}s: "
        f"{rec['sents_per_s_reported']:.1f} sent/s (load {t_load:.1f}s)",
        flush=True,
    )


# ---------------------------------------------------------------- machine: matmul GFLOP/s
def timed_gflops(torch, m: int, k: int, n: int, seconds: float, dtype: str) -> float:
    a, b = torch.randn(m, k, dtype=getattr(torch, dtype)), torch.randn(k, n, dtype=getattr(torch, dtype))
    for _ in range(3):
        torch.matmul(a, b)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # several short timings; keep the best (least disturbed)
        reps, t0 = 0, time.perf_counter()
        while reps < 2 or time.perf_counter() - t0 < 0.2:
            torch.matmul(a, b)
            reps += 1
        best = max(best, 2.0 * m * k * n * reps / (time.perf_counter() - t0) / 1e9)
    return best


def cmd_machine(a) -> None:
    import torch

    set_threads(a.threads)
    rec = dict(
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        dtype=a.dtype,
        matmul_big=dict(
            shape=[a.size, a.size, a.size], gflops=timed_gflops(torch, a.size, a.size, a.size, a.seconds, a.dtype)
        ),
    )
    # the shapes our training step runs on: the decoder LSTM's per-step GEMM and the generator over all steps
    E, H = a.emb, a.hid
    rec["matmul_decoder_step"] = dict(
        shape=[64, E + 2 * H, 4 * H], gflops=timed_gflops(torch, 64, E + 2 * H, 4 * H, a.seconds / 2, a.dtype)
    )
    rec["matmul_generator"] = dict(
        shape=[64 * 16, H, 8000], gflops=timed_gflops(torch, 64 * 16, H, 8000, a.seconds / 2, a.dtype)
    )
    Path(a.out).write_text(json.dumps(rec, indent=1))
    print("[machine] " + json.dumps(rec), flush=True)


# ---------------------------------------------------------------- flat: per-token decode cost vs output length
def cmd_flat(a) -> None:
    set_threads(a.threads)
    torch, model, src_tok, _ = load(a.model, a.dtype)
    lines = read_lines(a.src)[: a.tbatch]
    enc = src_tok(lines, padding=True, return_tensors="pt")
    rec = dict(batch=len(lines), lengths=a.lengths, reps=a.reps)
    with torch.inference_mode():
        for beam in a.beams:  # warm-up: first calls pay for lazy initialisation
            model.generate(**enc, **gen_kwargs(beam, min(a.lengths)), min_new_tokens=min(a.lengths))
        for beam in a.beams:
            per = {}
            for n in a.lengths:
                times = []
                for _ in range(a.reps):
                    t0 = time.perf_counter()
                    out = model.generate(**enc, **gen_kwargs(beam, n), min_new_tokens=n)
                    times.append(time.perf_counter() - t0)
                    assert out.shape[1] == n + 1, out.shape
                t = statistics.median(times)
                per[n] = dict(seconds=t, ms_per_token=1e3 * t / n, ms_per_token_per_sentence=1e3 * t / n / len(lines))
            lengths = sorted(a.lengths)
            short, long_ = lengths[-2], lengths[-1]  # the figure: per-token time at 200 vs at 20 tokens
            r = dict(per_length=per, ratio_long_over_short=per[long_]["ms_per_token"] / per[short]["ms_per_token"])
            if len(lengths) >= 3:
                # per-step cost without the fixed costs (encoder, set-up): steps first..short vs short..long
                first = lengths[-3]
                early = (per[short]["seconds"] - per[first]["seconds"]) / (short - first)
                late = (per[long_]["seconds"] - per[short]["seconds"]) / (long_ - short)
                r.update(
                    marginal_ms_per_step_early=1e3 * early,
                    marginal_ms_per_step_late=1e3 * late,
                    marginal_ratio=late / early,
                )
            rec[f"beam{beam}"] = r
            print(
                f"[flat] beam {beam}: "
                + ", ".join(f"{n} tok {per[n]['ms_per_token']:.2f} ms/token" for n in lengths)
                + f"; ratio {r['ratio_long_over_short']:.2f}"
                + (
                    f"; marginal step cost {r['marginal_ms_per_step_early']:.2f} -> "
                    f"{r['marginal_ms_per_step_late']:.2f} ms"
                    f" (ratio {r['marginal_ratio']:.2f})"
                    if "marginal_ratio" in r
                    else ""
                ),
                flush=True,
            )
    Path(a.out).write_text(json.dumps(rec, indent=1))


def cmd_flopcheck(a) -> None:
    """`step_flops` against torch.utils.flop_counter on one training step of a small model (a self-check)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

    torch.manual_seed(0)
    E, H, V = 32, 64, 500
    config = RNNSeq2SeqConfig(vocab_size=400, decoder_vocab_size=V, embedding_size=E, hidden_size=H, dropout=0.3)
    model = RNNSeq2SeqForConditionalGeneration(config).train()
    src_lens, tgt_lens = [7, 5, 9, 3], [6, 8, 4, 5]
    src = [array.array("i", torch.randint(4, 400, (n - 1,)).tolist() + [EOS]) for n in src_lens]
    tgt = [array.array("i", torch.randint(4, V, (n - 1,)).tolist() + [EOS]) for n in tgt_lens]
    x, mask, y = collate(list(range(4)), src, tgt)
    with FlopCounterMode(display=False) as counter:
        model(input_ids=x, attention_mask=mask, labels=y, num_items_in_batch=4).loss.backward()
    executed, _ = step_flops(dict(emb=E, hid=H, tgt_vocab=V, layers=1), 4, x.size(1), y.size(1), src_lens, tgt_lens)
    ratio = counter.get_total_flops() / executed
    print(f"[flopcheck] flop_counter {counter.get_total_flops():,} vs step_flops {executed:,.0f}: ratio {ratio:.4f}")
    if abs(ratio - 1) > 0.02:
        sys.exit("step_flops disagrees with torch's FLOP counter by more than 2%: the model's matmuls changed")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--train-src", required=True)
    t.add_argument("--train-tgt", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--emb", type=int, default=256)
    t.add_argument("--hid", type=int, default=512)
    t.add_argument("--layers", type=int, default=1)
    t.add_argument("--dropout", type=float, default=0.3)
    t.add_argument("--init", type=float, default=0.1)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--clip", type=float, default=5.0)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--pool", type=int, default=0, help="sentences per length-sorted pool (0: the whole corpus)")
    t.add_argument("--steps", type=int, default=100)
    t.add_argument("--max-seconds", type=float, default=0.0, help="also stop the loop after this many seconds")
    t.add_argument("--max-len", type=int, default=100)
    t.add_argument("--min-freq", type=int, default=1)
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument(
        "--profile-steps", type=int, default=0, help="torch.profiler over this many last steps -> OUT/profile.txt"
    )
    d = sub.add_parser("translate")
    d.add_argument("--model", required=True)
    d.add_argument("--src", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--beam", type=int, default=5)
    d.add_argument("--tbatch", type=int, default=32)
    d.add_argument("--max-out", type=int, default=100)
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--no-sort", action="store_true", help="batch in file order instead of by source length")
    d.add_argument("--shortlist", action="store_true", help="decode with the model's shortlist.npz (see shortlist)")
    d.add_argument("--inter-threads", type=int, default=1, help="onnxruntime: batches decoded at once (see translate)")
    d.add_argument("--max-len-a", type=float, help="at most A * source length + B new tokens a sentence")
    d.add_argument("--max-len-b", type=int, help="see --max-len-a")
    s = sub.add_parser("shortlist")
    s.add_argument("--model", required=True)
    s.add_argument("--train-src", required=True)
    s.add_argument("--train-tgt", required=True)
    s.add_argument("--top-k", type=int, default=50)
    s.add_argument("--frequent", type=int, default=100)
    m = sub.add_parser("machine")
    m.add_argument("--out", required=True)
    m.add_argument("--size", type=int, default=2048)
    m.add_argument("--seconds", type=float, default=3.0)
    m.add_argument("--emb", type=int, default=256)
    m.add_argument("--hid", type=int, default=512)
    m.add_argument("--threads", type=int, default=2)
    f = sub.add_parser("flat")
    f.add_argument("--model", required=True)
    f.add_argument("--src", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--tbatch", type=int, default=32)
    f.add_argument("--lengths", type=int, nargs="+", default=[1, 20, 200])
    f.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    f.add_argument("--reps", type=int, default=3)
    f.add_argument("--threads", type=int, default=2)
    for command in (t, m, f):
        command.add_argument("--dtype", choices=DTYPES, default="float32")
    d.add_argument("--dtype", choices=DTYPES + QUANTIZED_DTYPES, default="float32")
    d.add_argument("--engine", choices=ENGINES, help="default: onnxruntime for --dtype int8, else pytorch")
    sub.add_parser("flopcheck")
    a = p.parse_args(argv)
    if getattr(a, "dtype", None) == "bfloat16":
        from hf_rnn_seq2seq.modeling.encoder import check_bfloat16

        try:
            check_bfloat16("cpu", "run with --dtype float32")
        except ValueError as err:
            sys.exit(f"ours.py: {err}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    {
        "train": cmd_train,
        "translate": cmd_translate,
        "shortlist": cmd_shortlist,
        "machine": cmd_machine,
        "flat": cmd_flat,
        "flopcheck": cmd_flopcheck,
    }[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
