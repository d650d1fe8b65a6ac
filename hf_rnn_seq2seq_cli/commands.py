"""What each subcommand does once its options are parsed: `run_NAME(args)` imports the package's modules it uses
when it runs, so that building the parser stays quick."""

import argparse
import json
import sys
from pathlib import Path

from .options import (
    APP_MODULES,
    ENGINE_MODULES,
    EXPORT_MODULES,
    ONNX_EXTRA,
    SCORE_DECIMALS,
    data_sides,
    decoding_kwargs,
    generation_kwargs,
    require_engine,
    require_extra,
)


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
        engine=args.engine,
        inter_threads=args.inter_threads,
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
        engine=args.engine,
        inter_threads=args.inter_threads,
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
