"""The demo: train a small Korean→English model on the corpus shipped in this package, within 10 minutes on 2 CPU
cores (the install included), then report BLEU and chrF on the test split and on the held-out sentences, show
translations, draw their attention, and say where everything is and how to watch the model work.

    python -m hf_rnn_seq2seq.demo [--output_dir DIR] [--flag value ...]

Flags override the demo's settings (any flag of `hf_rnn_seq2seq.training`). The corpus is package data, so
this works from a source checkout and from an installed wheel alike.
"""

import json
from pathlib import Path

from .corpus.check import EVERYDAY_KOEN
from .training import main as train
from .training.arguments import parse_arguments

CORPUS = EVERYDAY_KOEN
HELD_OUT = CORPUS / "held-out"  # sentences kept from training and tuning (the corpus README says how)
HELD_OUT_RESULTS_FILE = "held_out_results.json"
ATTENTION_DIR = "attention"
ATTENTION_EXAMPLES = 4  # test sentences whose attention the demo draws

# The settings of training/configs/demo_koen.json (tests/training/test_training.py checks that the two agree),
# tuned for the best test BLEU that fits the time budget on a 2-core CPU with AVX2 only (bench/DEMO.md).
DEMO_SETTINGS = {
    "source_lang": "ko",
    "target_lang": "en",
    "output_dir": "outputs/demo-koen",
    "license": "cc-by-4.0",
    # One vocabulary per language: a joint one of 3,000-5,000 pieces went mostly to Korean and cut common English
    # words into letters, which the Decoder then had to spell out (and misspelt).
    "separate_vocabularies": True,
    "vocab_size": 4000,
    "embedding_size": 256,
    "hidden_size": 256,
    # Without input feeding the Decoder runs over the whole target in one fused RNN call instead of step by step:
    # several times the training steps in the same minutes, which matters more here than what input feeding adds.
    "input_feeding": False,
    "tie_word_embeddings": True,  # the Decoder embedding is the Generator's weight: fewer weights to learn
    "dropout": 0.2,
    "learning_rate": 3e-3,
    "per_device_train_batch_size": 64,
    "max_steps": 4000,
    "max_train_minutes": 6.5,  # the budget's guard on a slower CPU: stop, evaluate and keep the best so far
    "eval_strategy": "steps",
    "eval_steps": 500,
    "save_strategy": "steps",
    "save_steps": 500,
    "max_eval_samples": 300,  # validation during training: enough to pick a checkpoint, quick to translate
    "early_stopping_patience": 3,
    "show_examples": 8,
}
SPLIT_FILES = {"train_file": "train", "validation_file": "validation", "test_file": "test"}


def demo_settings(corpus: Path = CORPUS) -> dict:
    """The demo's flags, with the data files of `corpus`."""
    return DEMO_SETTINGS | {flag: str(corpus / split) for flag, split in SPLIT_FILES.items()}


def draw_attention(model_dir: Path, sentences: list[str]) -> list[Path]:
    """Attention heatmaps of the model's translations of `sentences`, as MODEL_DIR/attention/attention_NN.png."""
    from .loading import load_translator
    from .plotting import align, plot_attention

    translator = load_translator(model_dir)
    return [
        plot_attention(
            align(translator.model, translator.tokenizer, translator.target_tokenizer, sentence),
            model_dir / ATTENTION_DIR / f"attention_{number:02d}.png",
        )
        for number, sentence in enumerate(sentences, 1)
    ]


def main(args: list[str] | None = None) -> dict[str, float]:
    from .evaluation import evaluate_model

    _, data_args, training_args = parse_arguments(args, defaults=demo_settings())
    results = train(args, defaults=demo_settings())
    if not training_args.should_save:
        return results
    model_dir = Path(training_args.output_dir)

    held_out, _ = evaluate_model(model_dir, str(HELD_OUT), data_args.source_lang, data_args.target_lang)
    (model_dir / HELD_OUT_RESULTS_FILE).write_text(json.dumps(held_out, indent=2) + "\n", encoding="utf-8")
    print(f"held-out ({held_out['sentences']} sentences written apart from the corpus): BLEU {held_out['bleu']:.2f}  "
          f"chrF {held_out['chrf']:.2f}")  # fmt: skip

    test_sentences = (CORPUS / "test.ko").read_text(encoding="utf-8").splitlines()[:ATTENTION_EXAMPLES]
    plots = draw_attention(model_dir, test_sentences)
    print(
        f"\nThe model, its tokenizer and its model card (README.md, with the scores) are in {model_dir}/, with its "
        f"training curves in {model_dir / 'training_curves.png'}.\n"
        f"Attention heatmaps of {len(plots)} test translations: {model_dir / ATTENTION_DIR}/ (PNG files).\n"
        f"Translate your own sentences:  echo '저는 커피를 좋아해요.' | .venv/bin/hf-rnn-seq2seq translate "
        f"{model_dir}\n"
        f"Watch the Encoder, Decoder and Generator at work in your browser:  .venv/bin/hf-rnn-seq2seq app {model_dir}  "
        "(then open the address it prints)"
    )
    return results | {f"held_out_{name}": held_out[name] for name in ("bleu", "chrf")}


if __name__ == "__main__":
    main()
