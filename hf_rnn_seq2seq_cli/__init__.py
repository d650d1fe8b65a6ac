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
    hf-rnn-seq2seq translate outputs/koen -i news.ko --engine onnxruntime  # float32 graphs, in onnxruntime
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
answer at once. The parser is built here, the shared options and the command's defaults and choices are in
options.py, and what each subcommand does is in commands.py.
"""

import argparse
import sys
from collections.abc import Callable

from .commands import (
    run_app,
    run_average,
    run_evaluate,
    run_export,
    run_plot_attention,
    run_score,
    run_shortlist,
    run_tokenizer,
    run_translate,
)
from .options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BOOTSTRAP_SAMPLES,
    DEFAULT_HOST,
    DEFAULT_OPSET,
    DEFAULT_SHORTLIST_FREQUENT,
    DEFAULT_SHORTLIST_TOP_K,
    DEFAULT_VOCAB_SIZE,
    DTYPES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    PROG,
    QUANTIZATIONS,
    ROUGE_TOKENIZERS,
    TOKENIZER_MODELS,
    MissingExtra,
    add_decoding_options,
    add_generation_options,
    add_language_options,
    add_model_dirs,
    non_negative_int,
    positive_int,
)

__all__ = ["EXIT_ERROR", "build_parser", "main"]


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
