"""The command's options: its defaults and choices (the package's, restated so that `--help` imports no torch;
tests/cli/test_cli.py checks them), the argument types and option groups the subcommands share, and the
translation of parsed options into generate() keyword arguments."""

import argparse
import importlib.util

# The command's defaults and choices: the package's modules are imported only when a subcommand runs.
DEFAULT_BATCH_SIZE = 32
DEFAULT_VOCAB_SIZE = 8000
DEFAULT_OPSET = 17
DTYPES = ("float32", "bfloat16", "float16")
QUANTIZED_DTYPES = ("int8",)  # translate and evaluate only: onnxruntime over quantized graphs, not PyTorch
ENGINES = ("pytorch", "onnxruntime")  # translate and evaluate: what runs the search
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
ENGINE_HELP = (
    "what runs the search: PyTorch, or onnxruntime over the model's exported graphs, faster on a CPU (from the onnx "
    "extra; the graphs are made on first use and kept in MODEL_DIR/onnx-float32 or onnx-int8). Default: onnxruntime "
    "for --dtype int8, else pytorch"
)
INTER_THREADS_HELP = (
    "with onnxruntime (--engine onnxruntime, --dtype int8): translate N batches at once, each on 1/N of the threads; "
    "more sentences per second on a file, each batch slower (default: %(default)s)"
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
    if quantized:
        parser.add_argument("--engine", choices=ENGINES, help=ENGINE_HELP)


def add_decoding_options(parser: argparse.ArgumentParser) -> None:
    """The batch size of the commands that translate files, then the generation options (int8 included) and the
    search options."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="sentences per batch (default: %(default)s)"
    )
    parser.add_argument("--inter-threads", type=positive_int, default=1, metavar="N", help=INTER_THREADS_HELP)
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
    """--engine onnxruntime and --dtype int8 run in onnxruntime (and make their graphs with onnx): refuse them at
    once without them."""
    if args.engine == "onnxruntime":
        require_extra(ONNX_EXTRA, EXPORT_MODULES + ENGINE_MODULES, "--engine onnxruntime")
    elif args.dtype in QUANTIZED_DTYPES:
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
