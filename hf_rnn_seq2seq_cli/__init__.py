"""The `hf-rnn-seq2seq` command (also `python -m hf_rnn_seq2seq`): one subcommand per thing users do.

    hf-rnn-seq2seq train training/configs/demo_koen.json --output_dir outputs/koen
    hf-rnn-seq2seq translate outputs/koen -i news.ko -o news.en --num-beams 5
    hf-rnn-seq2seq translate outputs/koen -i news.ko --num-beams 5 --n-best 5 --print-alignment
    hf-rnn-seq2seq translate outputs/koen outputs/koen-2 -i news.ko --weights 2 1  # an ensemble of two
    hf-rnn-seq2seq generate outputs/aeslc -i emails.txt -o subjects.txt       # translate's alias, for any task
    hf-rnn-seq2seq evaluate outputs/koen data/test --json test_scores.json
    hf-rnn-seq2seq score outputs/koen --source test.ko --reference test.en
    hf-rnn-seq2seq evaluate outputs/aeslc data/test --source-lang src --target-lang tgt --metrics rouge
    hf-rnn-seq2seq tokenizer data/train tokenizer/ --vocab-size 8000
    hf-rnn-seq2seq average --last 5 outputs/koen -o outputs/koen-averaged
    hf-rnn-seq2seq translate outputs/koen -i news.ko --dtype int8      # int8 matrix products, in onnxruntime
    hf-rnn-seq2seq export outputs/koen outputs/koen-onnx
    hf-rnn-seq2seq shortlist outputs/koen data/train          # then: translate ... --shortlist
    hf-rnn-seq2seq plot-attention outputs/koen "저는 커피를 좋아해요." -o plots/
    hf-rnn-seq2seq app outputs/koen                           # a web page: http://127.0.0.1:7860
    hf-rnn-seq2seq app --write-space my-space user/koen-model  # a Hugging Face Space serving a Hub model

Bad input (missing files, bad data, bad options) ends with one line on stderr saying what to fix, and exit
status 2; the package raises ValueError (DataError is one) or OSError for those, and they are caught here, as is
MissingExtra: a command run without the optional dependencies it needs.

Why a package of its own beside `hf_rnn_seq2seq`: importing `hf_rnn_seq2seq` registers the model with
transformers' Auto classes, which imports torch and transformers (seconds). Here the parser is built from the
standard library alone and each subcommand imports what it uses when it runs, so `--help` and a mistyped option
answer at once. The choices and defaults below are the command's own; tests/cli/test_cli.py checks that they are
the package's.
"""

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path

# The command's defaults and choices: the package's modules are imported only when a subcommand runs.
DEFAULT_BATCH_SIZE = 32
DEFAULT_VOCAB_SIZE = 8000
DEFAULT_OPSET = 17
DTYPES = ("float32", "bfloat16", "float16")
QUANTIZED_DTYPES = ("int8",)  # translate and evaluate only: onnxruntime over quantized graphs, not PyTorch
QUANTIZATIONS = ("int8",)
TOKENIZER_MODELS = ("unigram", "bpe")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BOOTSTRAP_SAMPLES = 1000
LENGTH_PENALTY_TYPES = ("power", "wu")
SCORE_DECIMALS = 4
ROUGE_TOKENIZERS = ("default", "whitespace")
DEFAULT_SHORTLIST_TOP_K = 50
DEFAULT_SHORTLIST_FREQUENT = 100

PROG = "hf-rnn-seq2seq"
EXIT_ERROR = 2  # what argparse uses for a bad command line: the user has something to fix either way
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C
# The modules the app extra (pip install 'hf-rnn-seq2seq[app]') brings that the app cannot run without.
APP_MODULES = ("gradio",)
# The onnx extra's: export needs onnx, translating with the exported or quantized graphs onnxruntime.
ONNX_EXTRA = "onnx"
EXPORT_MODULES = ("onnx",)
ENGINE_MODULES = ("onnxruntime",)


class MissingExtra(Exception):
    """A command needs an optional dependency that is not installed; the message names the pip command."""


def require_extra(extra: str, modules: tuple[str, ...], needed_by: str) -> None:
    """Refuse to run without the `modules` of the extra `extra`, before importing anything that needs them."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtra(
            f"{', '.join(missing)} is not installed: {needed_by} needs the {extra} extra: pip install '{PROG}[{extra}]'"
        )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # `not >` also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_model_dirs(parser: argparse.ArgumentParser) -> None:
    """One model directory, or several translating as an ensemble, and the ensemble's weights."""
    parser.add_argument(
        "model_dir",
        nargs="+",
        metavar="MODEL_DIR",
        help="model directory (what training or save_pretrained wrote); several translate as their ensemble, "
        "averaging log-probabilities at each step (they need the same tokenizers)",
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        type=positive_float,
        metavar="W",
        help="one weight per model directory of an ensemble (default: equal)",
    )


DTYPE_HELP = (
    "load the weights in this type: bfloat16 translates about twice as fast on CPUs with AVX512-BF16 or AMX and on "
    "recent GPUs"
)
INT8_HELP = (
    "; int8 translates with int8 matrix products on any CPU (onnxruntime, from the onnx extra; the int8 graphs are "
    "made on first use and kept in MODEL_DIR/onnx-int8)"
)


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def add_generation_options(parser: argparse.ArgumentParser, dtypes: tuple[str, ...] = DTYPES) -> None:
    """Decoding options; unset ones come from the model's generation_config.json. And the weights' type."""
    parser.add_argument("--num-beams", type=positive_int, help="beam size (default: the model's; 1 is greedy)")
    parser.add_argument(
        "--max-new-tokens", type=positive_int, help="longest translation in tokens (default: the model's limit)"
    )
    quantized = any(dtype in QUANTIZED_DTYPES for dtype in dtypes)
    parser.add_argument(
        "--max-len-a",
        type=non_negative_float,
        metavar="A",
        help="limit each translation to A * (its source's tokens) + B tokens, B from --max-len-b (default: the "
        "model's; none). --max-new-tokens still applies: the smaller limit wins",
    )
    parser.add_argument(
        "--max-len-b", type=non_negative_int, metavar="B", help="see --max-len-a (default: the model's; 0 with A)"
    )
    parser.add_argument(
        "--shortlist",
        action="store_true",
        default=None,
        help="score only the target tokens that the model directory's lexical shortlist (hf-rnn-seq2seq shortlist) "
        "lists for the batch's source tokens: faster, the same output where the shortlist holds what the model picks",
    )
    parser.add_argument(
        "--dtype",
        choices=dtypes,
        default="float32",
        help=f"{DTYPE_HELP}{INT8_HELP if quantized else ''} (default: %(default)s)",
    )


def add_decoding_options(parser: argparse.ArgumentParser) -> None:
    """The batch size of the commands that translate files, then the generation options (int8 included) and the
    search options."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="sentences per batch (default: %(default)s)"
    )
    add_generation_options(parser, DTYPES + QUANTIZED_DTYPES)
    add_search_options(parser)


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """generate()'s scoring and sampling options; unset ones come from the model's generation_config.json."""
    search = parser.add_argument_group("search", "how hypotheses are scored or sampled (generate() options)")
    search.add_argument(
        "--length-penalty",
        type=float,
        metavar="ALPHA",
        help="beam search: a finished hypothesis scores log P / |Y|**ALPHA (with --length-penalty-type wu, "
        "log P / ((5+|Y|)/6)**ALPHA); 0 ranks by log P alone (default: the model's, else 1.0)",
    )
    search.add_argument(
        "--length-penalty-type",
        choices=LENGTH_PENALTY_TYPES,
        help="beam search: transformers' |Y|**ALPHA (power) or GNMT's ((5+|Y|)/6)**ALPHA (wu) (default: power)",
    )
    search.add_argument(
        "--coverage-penalty",
        type=float,
        metavar="BETA",
        help="beam search: add GNMT's coverage penalty BETA * sum_i log(min(attention paid to source token i, 1)) "
        "(needs attention; default: 0, none)",
    )
    search.add_argument(
        "--no-repeat-ngram-size", type=positive_int, metavar="N", help="never repeat an n-gram of N tokens"
    )
    search.add_argument("--sample", action="store_true", help="sample each token instead of searching")
    search.add_argument("--top-k", type=positive_int, help="with --sample: from the K most probable tokens only")
    search.add_argument("--top-p", type=float, help="with --sample: from the smallest set with probability >= P only")
    search.add_argument("--temperature", type=float, help="with --sample: divide the logits by T first")
    search.add_argument("--seed", type=int, help="with --sample: seed the random numbers, for reproducible samples")


def require_engine(args: argparse.Namespace) -> None:
    """--dtype int8 runs in onnxruntime (and makes its graphs with onnx): refuse it at once without them."""
    if args.dtype in QUANTIZED_DTYPES:
        require_extra(ONNX_EXTRA, EXPORT_MODULES + ENGINE_MODULES, f"--dtype {args.dtype}")


def add_language_options(parser: argparse.ArgumentParser) -> None:
    """The names of the data's two sides: language codes, file suffixes (src, tgt) or columns (document, summary)."""
    parser.add_argument(
        "--source-lang", default="ko", help="source language code or any file suffix, e.g. src (default: ko)"
    )
    parser.add_argument(
        "--target-lang", default="en", help="target language code or any file suffix, e.g. tgt (default: en)"
    )
    parser.add_argument(
        "--text-column", help="source column of JSON lines or a saved dataset, as run_summarization.py names it"
    )
    parser.add_argument("--summary-column", help="target column of JSON lines or a saved dataset")


def data_sides(args: argparse.Namespace) -> tuple[str, str]:
    """(source, target) names: the columns where given, else the language codes / file suffixes."""
    return args.text_column or args.source_lang, args.summary_column or args.target_lang


def generation_kwargs(args: argparse.Namespace) -> dict[str, int | float | bool]:
    options = {
        "num_beams": args.num_beams,
        "max_new_tokens": args.max_new_tokens,
        "max_len_a": args.max_len_a,
        "max_len_b": args.max_len_b,
        "use_shortlist": args.shortlist,
    }
    return {name: value for name, value in options.items() if value is not None}


SAMPLING_OPTIONS = {"top_k": "--top-k", "top_p": "--top-p", "temperature": "--temperature", "seed": "--seed"}


def decoding_kwargs(args: argparse.Namespace) -> dict:
    """generate() keyword arguments of the generation and search options (add_decoding_options) that were given;
    seeds the random numbers when sampling with --seed."""
    if not args.sample:
        given = [flag for name, flag in SAMPLING_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: sampling options, used only with --sample: add --sample")
    elif args.seed is not None:
        from transformers import set_seed

        set_seed(args.seed)
    options = {
        "length_penalty": args.length_penalty,
        "length_penalty_type": args.length_penalty_type,
        "coverage_penalty": args.coverage_penalty,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "do_sample": True if args.sample else None,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "temperature": args.temperature,
    }
    return generation_kwargs(args) | {name: value for name, value in options.items() if value is not None}


def run_translate(args: argparse.Namespace) -> None:
    require_engine(args)
    from hf_rnn_seq2seq.translate import translate_file

    n_lines = translate_file(
        args.model_dir,
        args.input,
        args.output,
        batch_size=args.batch_size,
        progress=args.progress,
        dtype=args.dtype,
        weights=args.weights,
        n_best=args.n_best,
        alignment=args.print_alignment,
        **decoding_kwargs(args),
    )
    if args.output is not None:
        print(f"translated {n_lines} lines into {args.output}", file=sys.stderr)


def flatten(report: dict, prefix: str = "") -> list[tuple[str, object]]:
    """The report's values with dotted names (`signatures.bleu`): one line each when printed."""
    items = []
    for name, value in report.items():
        if isinstance(value, dict):
            items += flatten(value, f"{prefix}{name}.")
        elif isinstance(value, list):  # an ensemble's model directories and weights
            items.append((f"{prefix}{name}", " ".join(map(str, value))))
        else:
            items.append((f"{prefix}{name}", value))
    return items


def run_evaluate(args: argparse.Namespace) -> None:
    require_engine(args)
    from hf_rnn_seq2seq.evaluation import evaluate_model

    report, translations = evaluate_model(
        args.model_dir,
        args.data,
        *data_sides(args),
        args.batch_size,
        args.dtype,
        baseline=args.paired_bootstrap,
        bootstrap_samples=args.bootstrap_samples,
        weights=args.weights,
        metrics=args.metrics,
        rouge_tokenizer=args.rouge_tokenizer,
        reference_files=args.references,
        **decoding_kwargs(args),
    )
    lines = dict(flatten(report))
    width = max(map(len, lines))
    for name, value in lines.items():
        print(f"{name:<{width}}  {value}")
    if args.json is not None:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.predictions is not None:
        Path(args.predictions).write_text("".join(f"{line}\n" for line in translations), encoding="utf-8")


def run_score(args: argparse.Namespace) -> None:
    from hf_rnn_seq2seq.scoring import score_files

    n_pairs, n_tokens, total = 0, 0, 0.0
    for scored in score_files(args.model_dir, args.source, args.reference, args.batch_size, args.dtype):
        print(f"{scored.total:.{SCORE_DECIMALS}f}\t{scored.per_token:.{SCORE_DECIMALS}f}\t{len(scored.ids)}")
        n_pairs, n_tokens, total = n_pairs + 1, n_tokens + len(scored.ids), total + scored.total
    if n_pairs:
        print(
            f"{n_pairs} pairs, {n_tokens} reference tokens: log-probability {total:.{SCORE_DECIMALS}f} in all, "
            f"{total / n_tokens:.{SCORE_DECIMALS}f} per token",
            file=sys.stderr,
        )


def run_tokenizer(args: argparse.Namespace) -> None:
    from hf_rnn_seq2seq.data import load_translation_data
    from hf_rnn_seq2seq.tokenization import save_tokenizers, train_tokenizers_on_pairs

    source, target = data_sides(args)
    source_tokenizer, target_tokenizer = train_tokenizers_on_pairs(
        load_translation_data(args.data, source, target)["translation"],
        source,
        target,
        joint=not args.separate_vocabularies,
        vocab_size=args.vocab_size,
        target_vocab_size=args.target_vocab_size,
        model=args.model,
        byte_fallback=args.byte_fallback,
    )
    save_tokenizers(source_tokenizer, target_tokenizer, args.output_dir)
    with_bytes = " with byte fallback" if args.byte_fallback else ""
    if target_tokenizer is source_tokenizer:
        print(f"{args.output_dir}: joint {args.model} tokenizer{with_bytes}, {len(source_tokenizer)} tokens")
    else:
        print(
            f"{args.output_dir}: {args.model} tokenizers{with_bytes}, {len(source_tokenizer)} source and "
            f"{len(target_tokenizer)} target tokens"
        )


def run_average(args: argparse.Namespace) -> None:
    from hf_rnn_seq2seq.averaging import average_checkpoints, last_checkpoints

    checkpoints = args.checkpoints
    if args.last is not None:
        if len(checkpoints) != 1:
            raise ValueError(f"--last {args.last} takes one training output directory, got {len(checkpoints)} folders")
        checkpoints = last_checkpoints(checkpoints[0], args.last)
    average_checkpoints(checkpoints, args.output_dir)
    print(f"averaged {len(checkpoints)} checkpoints ({', '.join(map(str, checkpoints))}) into {args.output_dir}")


def run_export(args: argparse.Namespace) -> None:
    modules = EXPORT_MODULES + (ENGINE_MODULES if args.quantize is not None else ())
    require_extra(ONNX_EXTRA, modules, f"export{' --quantize' if args.quantize else ''}")
    from hf_rnn_seq2seq.onnx_export import export_model_dir

    for path in export_model_dir(args.model_dir, args.output_dir, args.opset, args.quantize):
        print(path)


def run_shortlist(args: argparse.Namespace) -> None:
    from hf_rnn_seq2seq.shortlist import build_model_shortlist

    print(
        build_model_shortlist(
            args.model_dir, args.data, args.source_lang, args.target_lang, top_k=args.top_k, frequent=args.frequent
        )
    )


def run_plot_attention(args: argparse.Namespace) -> None:
    from hf_rnn_seq2seq.loading import load_translator
    from hf_rnn_seq2seq.plotting import align, plot_attention

    translator = load_translator(args.model_dir, dtype=args.dtype)
    for number, sentence in enumerate(args.sentences, 1):
        alignment = align(
            translator.model, translator.tokenizer, translator.target_tokenizer, sentence, **generation_kwargs(args)
        )
        print(plot_attention(alignment, Path(args.output_dir) / f"attention_{number:02d}.png"))


def run_app(args: argparse.Namespace) -> None:
    if args.write_space is not None:
        from hf_rnn_seq2seq.space import write_space

        for path in write_space(*args.write_space):
            print(path)
        return
    require_extra("app", APP_MODULES, "the app")
    from hf_rnn_seq2seq.app import serve

    serve(args.model_dir, host=args.host, port=args.port, share=args.share)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, run, evaluate and export RNN encoder-decoder translation models.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of each command.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # Only listed here: main() hands everything after `train` to the training script's own parser.
    commands.add_parser(
        "train",
        help="train (and evaluate) a model: all flags of training/train.py (see 'train --help')",
        add_help=False,
    )

    translate = commands.add_parser(
        "translate",
        aliases=["generate"],
        help="translate a file or stdin, one sentence per line (alias generate: summaries, replies, any task)",
        description="Translate text line by line with a saved model (or, as `generate`, summarize, reply: whatever "
        "the model was trained for). Output line N translates input line N; empty lines stay empty.",
    )
    add_model_dirs(translate)
    translate.add_argument("-i", "--input", help="file to translate, UTF-8, one sentence per line (default: stdin)")
    translate.add_argument("-o", "--output", help="file to write the translations to (default: stdout)")
    add_decoding_options(translate)
    translate.add_argument(
        "--n-best",
        type=positive_int,
        metavar="N",
        help="print the N best translations of each line, best first, as 'LINE<tab>SCORE<tab>TRANSLATION' (LINE "
        "counts from 0; SCORE is what the search ranked by); needs --num-beams N or more, or --sample",
    )
    translate.add_argument(
        "--print-alignment",
        action="store_true",
        help="follow each translation with a tab and its alignment to the input from the attention, "
        "'SRC-TGT ...': 0-based indices of subword pieces, end-of-sentence left out (needs attention)",
    )
    translate.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    translate.set_defaults(run=run_translate)

    evaluate = commands.add_parser(
        "evaluate",
        help="BLEU, chrF and TER (or ROUGE, distinct-n) of a model on a test set",
        description="Translate (summarize, reply to) the source side of a test set and score it against the "
        "references, printing each metric's signature: by the model's task, sacreBLEU's BLEU, chrF and TER for "
        "translation, ROUGE-1/2/L for summarization, BLEU, chrF and distinct-1/2 for dialogue; or --metrics.",
    )
    add_model_dirs(evaluate)
    evaluate.add_argument(
        "data",
        help="test set: a parallel-text prefix (data/test for data/test.ko + data/test.en), a .jsonl file or a "
        "saved dataset folder",
    )
    add_language_options(evaluate)
    evaluate.add_argument(
        "--metrics",
        help="comma-separated, of bleu, chrf, ter, rouge, distinct (default: by the model's task, from its model card)",
    )
    evaluate.add_argument(
        "--references",
        nargs="+",
        metavar="FILE",
        help="score against these reference files instead of the data's target side (one reference a line, line N "
        "for example N; several files: several references each, e.g. AESLC's test.ann0 test.ann1 test.ann2)",
    )
    evaluate.add_argument(
        "--rouge-tokenizer",
        choices=ROUGE_TOKENIZERS,
        default=ROUGE_TOKENIZERS[0],
        help="default: rouge_score's (English, with stemming; it drops other scripts); whitespace: any script",
    )
    add_decoding_options(evaluate)
    evaluate.add_argument("--json", metavar="FILE", help="also write the report to this JSON file")
    evaluate.add_argument("--predictions", metavar="FILE", help="also write the translations to this file")
    evaluate.add_argument(
        "--paired-bootstrap",
        metavar="BASELINE",
        help="compare with a baseline by sacreBLEU's paired bootstrap resampling (BLEU and chrF: p-value, mean and "
        "95%% confidence interval): BASELINE is a model directory, translated the same way, or a file of its "
        "translations, one per line",
    )
    evaluate.add_argument(
        "--bootstrap-samples",
        type=positive_int,
        default=DEFAULT_BOOTSTRAP_SAMPLES,
        help="resamples for --paired-bootstrap (default: %(default)s)",
    )
    evaluate.set_defaults(run=run_evaluate)

    score = commands.add_parser(
        "score",
        help="the model's log-probability of given translations (references)",
        description="Score line N of REFERENCE as a translation of line N of SOURCE: print, one line per pair, "
        "'TOTAL<tab>PER_TOKEN<tab>TOKENS', the natural-log probability of the reference's tokens (end-of-sentence "
        "included) in all and per token, and how many tokens; then the totals on stderr.",
    )
    score.add_argument("model_dir", help="model directory")
    score.add_argument("--source", required=True, help="source sentences, UTF-8, one per line")
    score.add_argument("--reference", required=True, help="their translations to score, one per line")
    score.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="pairs per batch (default: %(default)s)"
    )
    score.add_argument("--dtype", choices=DTYPES, default="float32", help="load the weights in this type")
    score.set_defaults(run=run_score)

    tokenizer = commands.add_parser(
        "tokenizer",
        help="train a subword tokenizer on parallel data",
        description="Train a Unigram or BPE tokenizer on both sides of parallel data (or one per side) and save "
        "it in the layout training and translation load.",
    )
    tokenizer.add_argument("data", help="training data: a parallel-text prefix or a .jsonl file")
    tokenizer.add_argument("output_dir", help="directory to save the tokenizer(s) into")
    add_language_options(tokenizer)
    tokenizer.add_argument(
        "--vocab-size", type=positive_int, default=DEFAULT_VOCAB_SIZE, help="vocabulary size (default: %(default)s)"
    )
    tokenizer.add_argument(
        "--model", choices=TOKENIZER_MODELS, default=TOKENIZER_MODELS[0], help="subword model (default: %(default)s)"
    )
    tokenizer.add_argument(
        "--separate-vocabularies", action="store_true", help="one tokenizer per language instead of a joint one"
    )
    tokenizer.add_argument(
        "--target-vocab-size", type=positive_int, help="target vocabulary size when separate (default: --vocab-size)"
    )
    tokenizer.add_argument(
        "--byte-fallback",
        action="store_true",
        help="add the 256 byte tokens (within --vocab-size): characters unseen in the data (rare Hangul syllables, "
        "Hanja) are encoded as their UTF-8 bytes and decode back whole instead of becoming <unk>",
    )
    tokenizer.set_defaults(run=run_tokenizer)

    average = commands.add_parser(
        "average",
        help="average the weights of checkpoints into one model",
        description="Write a model directory whose weights are the mean of the checkpoints' (as fairseq's and "
        "OpenNMT-py's checkpoint averaging), everything else taken from the last checkpoint. The checkpoints must "
        "be of one model: the same architecture and tokenizers. Those of a run with --ema_decay hold moving averages "
        "(model.safetensors), and those are averaged; raw_weights.safetensors is for resuming only.",
    )
    average.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CHECKPOINT",
        help="checkpoint folders (checkpoint-<step> of a training run, or model directories); with --last, the "
        "training output directory holding them",
    )
    average.add_argument(
        "--last",
        type=positive_int,
        metavar="N",
        help="average the newest N complete checkpoints of the training output directory given (as fairseq's "
        "--num-epoch-checkpoints)",
    )
    average.add_argument("-o", "--output-dir", required=True, help="directory to write the averaged model into")
    average.set_defaults(run=run_average)

    export = commands.add_parser(
        "export",
        help="export a model to ONNX (encoder, one decoder step, Generator)",
        description="Write encoder.onnx, decoder_step.onnx and generator.onnx, with the config and tokenizer(s) "
        "(and the model's shortlist), for "
        "hf_rnn_seq2seq.onnx_runtime.OnnxTranslator (greedy and beam search in onnxruntime). Needs the onnx extra: "
        f"pip install '{PROG}[onnx]'.",
    )
    export.add_argument("model_dir", help="model directory")
    export.add_argument("output_dir", help="directory to write the ONNX files into")
    export.add_argument(
        "--opset", type=positive_int, default=DEFAULT_OPSET, help="ONNX opset version (default: %(default)s)"
    )
    export.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="store the weights in this type, activations quantized on the fly (onnxruntime's dynamic "
        "quantization): what translate --dtype int8 runs (default: float32 graphs)",
    )
    export.set_defaults(run=run_export)

    shortlist = commands.add_parser(
        "shortlist",
        help="build a lexical shortlist for faster decoding (translate/evaluate --shortlist)",
        description="For each source token, find the target tokens that occur with it most in the training data "
        "(Dice coefficient over sentence pairs), add the most frequent target tokens, and save the list as "
        "MODEL_DIR/shortlist.npz. Decoding with --shortlist then scores only the shortlisted tokens of each batch.",
    )
    shortlist.add_argument("model_dir", help="model directory (the shortlist is written into it)")
    shortlist.add_argument("data", help="training data: a parallel-text prefix or a .jsonl file")
    add_language_options(shortlist)
    shortlist.add_argument(
        "--top-k",
        type=positive_int,
        default=DEFAULT_SHORTLIST_TOP_K,
        help="target tokens kept per source token (default: %(default)s)",
    )
    shortlist.add_argument(
        "--frequent",
        type=non_negative_int,
        default=DEFAULT_SHORTLIST_FREQUENT,
        help="most frequent target tokens, always allowed (default: %(default)s)",
    )
    shortlist.set_defaults(run=run_shortlist)

    plot = commands.add_parser(
        "plot-attention",
        help="draw attention alignments of sentences as PNG heatmaps",
        description="Translate each sentence and draw the attention weights (source tokens x translation tokens) "
        "as OUTPUT_DIR/attention_NN.png.",
    )
    plot.add_argument("model_dir", help="model directory (of a model with attention)")
    plot.add_argument("sentences", nargs="+", metavar="SENTENCE", help="source sentence(s) to translate and plot")
    plot.add_argument("-o", "--output-dir", default=".", help="directory for the PNG files (default: .)")
    add_generation_options(plot)
    plot.set_defaults(run=run_plot_attention)

    app = commands.add_parser(
        "app",
        help="a web page to watch the model translate (needs the app extra)",
        description="Serve a page where you type a sentence and see its translation, the n-best list of a beam "
        "search, the attention heatmap and each decoding step (the Decoder's input token and the Generator's most "
        "probable next tokens). Or, with --write-space, write a Hugging Face Space that serves a model from the Hub. "
        f"Needs the app extra: pip install '{PROG}[app]'.",
    )
    app.add_argument("model_dir", nargs="?", help="model directory (or Hub id) to serve")
    app.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 serves the network)",
    )
    app.add_argument("--port", type=positive_int, help="port to listen on (default: 7860 or the next free one)")
    app.add_argument(
        "--share", action="store_true", help="also open a public link through Gradio's relay (default: off)"
    )
    app.add_argument(
        "--write-space",
        nargs=2,
        metavar=("DIR", "MODEL_ID"),
        help="instead of serving, write app.py, requirements.txt and README.md of a Space serving MODEL_ID into DIR",
    )
    app.set_defaults(run=run_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        # The training flags are HfArgumentParser dataclass fields: its parser reads them and prints their help
        # (so `train --help` imports transformers, where those fields are defined).
        from hf_rnn_seq2seq.training import main as train

        try:
            train(argv[1:])
        except SystemExit as stop:  # the training script stops with sys.exit("error: ...") on bad input
            if not isinstance(stop.code, str):
                raise
            print(f"{PROG} train: {stop.code}", file=sys.stderr)
            return EXIT_ERROR
        return 0

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "app" and (args.model_dir is None) == (args.write_space is None):
        parser.error("app: give a MODEL_DIR to serve, or --write-space DIR MODEL_ID (not both)")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # loading bars would mix with our output and progress bar
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except (ValueError, OSError, MissingExtra) as err:  # DataError is a ValueError
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
