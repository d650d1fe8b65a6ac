"""Train and evaluate an RNN encoder–decoder translation model with transformers' Seq2SeqTrainer.

    python training/train.py training/configs/demo_koen.json [--flag value ...]
    python training/train.py --config training/configs/demo_koen.json --num_train_epochs 5
    python training/train.py --train_file data/train --validation_file data/dev --output_dir out [...]

The steps follow transformers' examples/pytorch/translation/run_translation.py: load the parallel data, get
a tokenizer (load one, or train one on the training data), build a new model (or load one), train with
evaluation by generation, stop early on validation BLEU and keep the best checkpoint; then translate the
validation and test splits, report BLEU and chrF, and leave in `output_dir` a complete Hub repository:
weights and modelling code, tokenizer(s), generation_config.json and a model card with the scores.

The same command runs under `torchrun --nproc_per_node N` and `accelerate launch --multi_gpu --num_processes N`
(add `--use_cpu` on a machine without GPUs): the main process trains the tokenizer and writes the files.
"""

import argparse
import copy
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers
from datasets import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    EarlyStoppingCallback,
    EvalPrediction,
    GenerationConfig,
    HfArgumentParser,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .checkpoints import (
    check_free_space,
    check_writable,
    checkpoint_step,
    is_complete,
    last_complete_checkpoint,
    set_aside_incomplete,
)
from .configuration_rnn_seq2seq import ATTENTION_TYPES, BRIDGE_TYPES, CELL_TYPES, RNNSeq2SeqConfig
from .data import filter_by_length, load_translation_data, make_preprocess_function
from .attention_plot import plot_training_curves
from .loss import IGNORE_INDEX
from .metrics import compute_translation_metrics
from .model_card import write_model_card
from .modeling_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration
from .pipeline import RNNTranslationPipeline
from .tokenization import (
    MIXED_PRECISION_PAD_MULTIPLE,
    TOKENIZER_MODELS,
    check_vocabularies,
    load_tokenizers,
    save_tokenizers,
    train_tokenizers,
)
from .translate import load_model

logger = logging.getLogger(__name__)

# Pairs longer than this many tokens (after subword segmentation) are left out of training: they are rare,
# slow to run through an RNN, and usually misaligned.
DEFAULT_MAX_LENGTH = 128
# Beam size of a new model's generation_config.json (what NMT toolkits decode test sets with).
DEFAULT_NUM_BEAMS = 5
TRAINING_CURVES_FILE = "training_curves.png"  # loss and validation BLEU/chrF over steps, beside the model card
ARCHITECTURE_FIELDS = (
    "embedding_size",
    "hidden_size",
    "encoder_hidden_size",
    "num_layers",
    "encoder_layers",
    "decoder_layers",
    "cell_type",
    "bidirectional",
    "attention",
    "input_feeding",
    "bridge",
    "dropout",
    "init_scale",
    "tie_word_embeddings",
)


@dataclass
class ModelArguments:
    """Which model and tokenizer to train: new ones (the default) or saved ones."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A saved model (folder or Hub id) to continue training or to evaluate; its tokenizer comes with "
            "it and the architecture flags below are ignored. Unset: train a new model."
        },
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "A saved tokenizer (folder or Hub id; a `target_tokenizer/` subfolder holds a separate target "
            "vocabulary). Unset: train one on the training data and save it with the model."
        },
    )
    tokenizer_type: str = field(
        default="unigram", metadata={"help": "Subword model of a trained tokenizer.", "choices": TOKENIZER_MODELS}
    )
    vocab_size: int = field(
        default=8000,
        metadata={"help": "Vocabulary size of a trained tokenizer (an upper bound: a small corpus gives fewer)."},
    )
    separate_vocabularies: bool = field(
        default=False,
        metadata={"help": "Train one tokenizer per language instead of a joint source+target vocabulary."},
    )
    # The architecture of a new model: the fields of RNNSeq2SeqConfig, with its defaults.
    embedding_size: int = field(default=RNNSeq2SeqConfig.embedding_size, metadata={"help": "Token embedding size."})
    hidden_size: int = field(default=RNNSeq2SeqConfig.hidden_size, metadata={"help": "Decoder RNN size."})
    encoder_hidden_size: int | None = field(
        default=RNNSeq2SeqConfig.encoder_hidden_size,
        metadata={"help": "Encoder RNN size per direction (unset: hidden_size / directions)."},
    )
    num_layers: int = field(default=RNNSeq2SeqConfig.num_layers, metadata={"help": "RNN depth of both sides."})
    encoder_layers: int | None = field(
        default=RNNSeq2SeqConfig.encoder_layers, metadata={"help": "Encoder depth (unset: num_layers)."}
    )
    decoder_layers: int | None = field(
        default=RNNSeq2SeqConfig.decoder_layers, metadata={"help": "Decoder depth (unset: num_layers)."}
    )
    cell_type: str = field(default=RNNSeq2SeqConfig.cell_type, metadata={"help": "RNN cell.", "choices": CELL_TYPES})
    bidirectional: bool = field(
        default=RNNSeq2SeqConfig.bidirectional, metadata={"help": "Read the source in both directions."}
    )
    attention: str = field(
        default=RNNSeq2SeqConfig.attention,
        metadata={"help": "Attention score, or none.", "choices": [name or "none" for name in ATTENTION_TYPES]},
    )
    input_feeding: bool = field(
        default=RNNSeq2SeqConfig.input_feeding,
        metadata={"help": "Feed the previous attentional vector to the decoder (Luong et al., 2015)."},
    )
    bridge: str = field(
        default=RNNSeq2SeqConfig.bridge,
        metadata={"help": "Encoder final state -> decoder initial state.", "choices": BRIDGE_TYPES},
    )
    dropout: float = field(default=RNNSeq2SeqConfig.dropout, metadata={"help": "Dropout probability."})
    init_scale: float = field(
        default=RNNSeq2SeqConfig.init_scale, metadata={"help": "Initial weights are uniform(-init_scale, init_scale)."}
    )
    tie_word_embeddings: bool = field(
        default=RNNSeq2SeqConfig.tie_word_embeddings,
        metadata={"help": "Share the decoder embedding with the output layer (needs embedding_size == hidden_size)."},
    )
    license: str = field(
        default="unknown",
        metadata={"help": "Licence id for the model card (e.g. cc-by-sa-4.0); follow the training data's terms."},
    )


@dataclass
class DataArguments:
    """Which data to train and evaluate on. A file is anything `load_translation_data` reads: a parallel-text
    prefix (`dir/train` for dir/train.ko + dir/train.en), a .jsonl file, or a comma-separated list of them."""

    source_lang: str = field(default="ko", metadata={"help": "Source language code (the file suffix)."})
    target_lang: str = field(default="en", metadata={"help": "Target language code (the file suffix)."})
    train_file: str | None = field(default=None, metadata={"help": "Training data. Unset: evaluate only."})
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation data: early stopping and the best checkpoint go by its BLEU."}
    )
    test_file: str | None = field(default=None, metadata={"help": "Test data, translated and scored at the end."})
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Training data name(s) for the model card's `datasets:` (comma-separated; Hub dataset ids get "
            "linked). Unset: the names of the folders holding the training files."
        },
    )
    max_source_length: int = field(
        default=DEFAULT_MAX_LENGTH,
        metadata={
            "help": "Training pairs with a longer source (in tokens) are left out. Evaluation pairs are kept "
            "whole: leaving some out would flatter the score."
        },
    )
    max_target_length: int = field(
        default=DEFAULT_MAX_LENGTH,
        metadata={
            "help": "Training pairs with a longer target are left out; also a new model's limit on generated tokens."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation pairs."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only the first N test pairs."})
    num_beams: int | None = field(
        default=None,
        metadata={
            "help": "Beam size for evaluation and in the saved generation_config.json (as --generation_num_beams). "
            f"Unset: the loaded model's, or {DEFAULT_NUM_BEAMS} for a new model."
        },
    )
    show_examples: int = field(
        default=5, metadata={"help": "Print this many test translations (source / reference / hypothesis) at the end."}
    )


@dataclass
class RNNTrainingArguments(Seq2SeqTrainingArguments):
    """Seq2SeqTrainingArguments with defaults for training an RNN translation model from scratch:
    Adam at 1e-3, gradient clipping at 5 and label smoothing 0.1 (as OpenNMT-py and JoeyNMT set up RNNs),
    length-grouped batches, evaluation by generation every epoch, early stopping on validation BLEU with
    the best checkpoint kept, and TensorBoard logs."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the model, tokenizer, model card, results and checkpoints go."}
    )
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Sentence pairs per batch and device."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Sentences per evaluation batch and device."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate of Adam."})
    num_train_epochs: float = field(default=20.0, metadata={"help": "Epochs at most (early stopping may end sooner)."})
    max_grad_norm: float = field(default=5.0, metadata={"help": "Clip the gradient norm to this (RNNs explode)."})
    label_smoothing_factor: float = field(default=0.1, metadata={"help": "Label smoothing epsilon."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Batch sentences of similar length together (less padding to run through the RNN), or: "
            "random, sequential, batch_rebalance.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "When to evaluate."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={"help": "When to save a checkpoint."})
    save_total_limit: int | None = field(
        default=2, metadata={"help": "Checkpoints kept on disk (the best one is always kept)."}
    )
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every N steps."})
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "End with the checkpoint that scored best on the validation data."}
    )
    metric_for_best_model: str | None = field(
        default="bleu", metadata={"help": "Validation metric that picks the best checkpoint: bleu, chrf or loss."}
    )
    predict_with_generate: bool = field(
        default=True, metadata={"help": "Evaluate by translating (needed for BLEU and chrF)."}
    )
    report_to: None | str | list[str] = field(
        default_factory=lambda: ["tensorboard"], metadata={"help": "Where to log: tensorboard, none, all, ..."}
    )
    dataloader_pin_memory: bool = field(
        default_factory=torch.cuda.is_available,  # pinning is for copies to a CUDA device; elsewhere it warns
        metadata={"help": "Pin batches in page-locked memory for faster copies to the GPU (default: with CUDA)."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "Every parameter gets a gradient at every step: DDP need not search."}
    )
    early_stopping_patience: int = field(
        default=5,
        metadata={"help": "Stop after this many evaluations without a better validation score; 0 never stops."},
    )

    def __post_init__(self):
        # transformers wants --use_cpu before it autocasts to bfloat16 on a CPU; without an accelerator the CPU
        # is the only choice, so --bf16 alone should do.
        if (self.bf16 or self.bf16_full_eval) and not torch.accelerator.is_available():
            self.use_cpu = True
        super().__post_init__()


def make_collator(
    source_tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, training_args: Seq2SeqTrainingArguments
) -> DataCollatorForSeq2Seq:
    """Pads a batch's sources and labels to its longest (labels with IGNORE_INDEX); under mixed precision to a
    multiple of MIXED_PRECISION_PAD_MULTIPLE, which the padding masks leave without effect on the results."""
    mixed = training_args.bf16 or training_args.fp16
    return DataCollatorForSeq2Seq(
        source_tokenizer,
        model=model,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=MIXED_PRECISION_PAD_MULTIPLE if mixed else None,
    )


def parse_arguments(
    args: list[str] | None = None, defaults: dict | None = None
) -> tuple[ModelArguments, DataArguments, RNNTrainingArguments]:
    """Read the flags, on top of an optional JSON config file given as the first argument or as
    `--config FILE.json`, on top of `defaults` (`{flag_name: value}`): the command line wins over the file,
    the file over `defaults`."""
    args = sys.argv[1:] if args is None else list(args)
    config_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    config_parser.add_argument("--config")
    options, args = config_parser.parse_known_args(args)
    config_path = options.config
    if config_path is None and args and args[0].endswith(".json"):
        config_path, args = args[0], args[1:]

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, RNNTrainingArguments),
        usage="%(prog)s [CONFIG.json | --config CONFIG.json] [--flag value ...]",
        description="Train and evaluate an RNN encoder-decoder translation model. A JSON config file sets any "
        "of the flags below by name; flags given on the command line override it.",
    )
    settings = dict(defaults or {})
    if config_path is not None:
        settings |= read_config(config_path)
    check_option_names(settings, parser, config_path or "defaults")
    parser.set_defaults(**settings)
    return parser.parse_args_into_dataclasses(args=args, look_for_args_file=False)


def read_config(path: str) -> dict:
    """The flags a JSON config file sets, as `{flag_name: value}`."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read the config file {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(config, dict):
        raise ValueError(f'{path}: a config file holds one JSON object, {{"flag_name": value, ...}}')  # noqa: TRY004
    return config


def check_option_names(settings: dict, parser: HfArgumentParser, source: str) -> None:
    known = {f.name for dataclass_type in parser.dataclass_types for f in dataclasses.fields(dataclass_type)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{source}: unknown option(s) {', '.join(unknown)}; see --help for the flag names")


def check_arguments(model_args: ModelArguments, data_args: DataArguments, training_args: RNNTrainingArguments) -> None:
    """Refuse combinations that would fail later (or silently do something else), saying what to change."""
    if training_args.output_dir is None:
        raise ValueError("--output_dir is required: it receives the model, the tokenizer and the results")
    if data_args.train_file is None and model_args.model_name_or_path is None:
        raise ValueError("give --train_file to train a model, or --model_name_or_path to evaluate one")
    if data_args.train_file is None and data_args.validation_file is None and data_args.test_file is None:
        raise ValueError("nothing to do: give --train_file, --validation_file or --test_file")
    if data_args.train_file is not None and data_args.validation_file is None and training_args.eval_strategy != "no":
        raise ValueError(
            "training evaluates on --validation_file (for early stopping and the best checkpoint); give one, or "
            "pass --eval_strategy no --load_best_model_at_end false --early_stopping_patience 0"
        )
    if training_args.eval_strategy == "no" and (
        training_args.early_stopping_patience or training_args.load_best_model_at_end
    ):
        raise ValueError(
            "--eval_strategy no leaves nothing to pick the best checkpoint or stop early on; "
            "add --load_best_model_at_end false --early_stopping_patience 0, or evaluate (--eval_strategy steps)"
        )
    if training_args.early_stopping_patience and not training_args.load_best_model_at_end:
        raise ValueError(
            "--early_stopping_patience needs --load_best_model_at_end true (it tracks the best checkpoint); "
            "or set --early_stopping_patience 0"
        )
    if not training_args.predict_with_generate and training_args.metric_for_best_model in ("bleu", "chrf"):
        raise ValueError(
            f"--metric_for_best_model {training_args.metric_for_best_model} needs --predict_with_generate true "
            "(the score is computed on translations); or use --metric_for_best_model loss"
        )


def setup_logging(training_args: RNNTrainingArguments) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    # Our own progress messages (data sizes, pairs dropped, tokenizer) on the main process only.
    logging.getLogger(__package__).setLevel(logging.INFO if training_args.should_log else logging.WARNING)


def resolve_checkpoint(training_args: RNNTrainingArguments) -> str | None:
    """`--resume_from_checkpoint` as a folder: a path, or `last`/`true` for the newest complete checkpoint in
    output_dir (one a crash left half-written is set aside, see `checkpoints`)."""
    value = training_args.resume_from_checkpoint
    if value is None:
        return None
    if value.lower() in ("last", "true"):
        output_dir = Path(training_args.output_dir)
        checkpoint = None
        if output_dir.is_dir():
            checkpoint = last_complete_checkpoint(output_dir)
            set_aside_incomplete(output_dir, checkpoint)
        if checkpoint is None:
            raise ValueError(f"--resume_from_checkpoint {value}: no complete checkpoint-* folder in {output_dir}")
        return str(checkpoint)
    if not Path(value).is_dir():
        raise ValueError(f"--resume_from_checkpoint {value}: no such folder")
    if checkpoint_step(Path(value)) is not None and not is_complete(Path(value)):
        raise ValueError(
            f"--resume_from_checkpoint {value}: this checkpoint was not completely written (the run stopped while "
            "saving it); give an earlier one, or `last` for the newest complete one"
        )
    return value


def how_to_resume(output_dir: str) -> str:
    """What a run that stopped on an error leaves to resume from."""
    checkpoint = last_complete_checkpoint(output_dir) if Path(output_dir).is_dir() else None
    if checkpoint is None:
        return "no checkpoint was completed: fix the cause and start again"
    return f"the last complete checkpoint is {checkpoint}: fix the cause and rerun with --resume_from_checkpoint last"


class NonFiniteLossError(ArithmeticError):
    """The training loss became NaN or infinite: the weights are no longer usable."""


def load_splits(data_args: DataArguments) -> dict[str, Dataset]:
    """The raw `translation` datasets, keyed by the Trainer's metric prefixes: train, eval, test."""
    files_and_limits = {
        "train": (data_args.train_file, data_args.max_train_samples),
        "eval": (data_args.validation_file, data_args.max_eval_samples),
        "test": (data_args.test_file, data_args.max_predict_samples),
    }
    splits = {}
    for split, (path, max_samples) in files_and_limits.items():
        if path is None:
            continue
        dataset = load_translation_data(path, data_args.source_lang, data_args.target_lang)
        if max_samples is not None:
            dataset = dataset.select(range(min(max_samples, len(dataset))))
        logger.info("%s: %d pairs from %s", split, len(dataset), path)
        splits[split] = dataset
    return splits


def get_tokenizers(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: RNNTrainingArguments,
    train_data: Dataset | None,
    resuming: bool,
) -> tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
    """(source, target) tokenizers: loaded, or trained on the training data and saved into output_dir.

    A resumed run reloads the tokenizer its first run saved, since its checkpoints were trained with it.
    """
    saved = model_args.tokenizer_name or model_args.model_name_or_path
    if saved is None and resuming:
        saved = training_args.output_dir
    if saved is not None:
        return load_tokenizers(saved)

    # The main process trains and saves; the others then load what it saved.
    with training_args.main_process_first(desc="training the tokenizer"):
        if training_args.local_process_index != 0:
            return load_tokenizers(training_args.output_dir)
        pairs = train_data["translation"]
        source_tokenizer, target_tokenizer = train_tokenizers(
            (pair[data_args.source_lang] for pair in pairs),
            (pair[data_args.target_lang] for pair in pairs),
            joint=not model_args.separate_vocabularies,
            vocab_size=model_args.vocab_size,
            model=model_args.tokenizer_type,
        )
        save_tokenizers(source_tokenizer, target_tokenizer, training_args.output_dir)
        logger.info(
            "trained a %s tokenizer on the training data: %d source and %d target tokens",
            model_args.tokenizer_type,
            len(source_tokenizer),
            len(target_tokenizer),
        )
        return source_tokenizer, target_tokenizer


def build_model(
    model_args: ModelArguments,
    data_args: DataArguments,
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
) -> PreTrainedModel:
    """A saved model, or a new one sized to the tokenizers."""
    if model_args.model_name_or_path is not None:
        model = load_model(model_args.model_name_or_path)
    else:
        config = RNNSeq2SeqConfig(
            vocab_size=len(source_tokenizer),
            decoder_vocab_size=len(target_tokenizer),
            pad_token_id=target_tokenizer.pad_token_id,
            bos_token_id=target_tokenizer.bos_token_id,
            eos_token_id=target_tokenizer.eos_token_id,
            decoder_start_token_id=target_tokenizer.bos_token_id,
            **{name: getattr(model_args, name) for name in ARCHITECTURE_FIELDS},
        )
        model = RNNSeq2SeqForConditionalGeneration(config)
        model.generation_config.num_beams = DEFAULT_NUM_BEAMS
        # A length limit, not `max_new_tokens`: Seq2SeqTrainer sets the default max_length=20 on the model's
        # generation config, and generate() warns on every batch when both are set. The +1 is the start token.
        model.generation_config.max_length = data_args.max_target_length + 1
    fix = "use the tokenizer saved with the model (leave --tokenizer_name unset)"
    check_vocabularies(model.config, source_tokenizer, target_tokenizer, fix)
    n_parameters = sum(p.numel() for p in model.parameters())
    logger.info("model: %.2fM parameters, %s", n_parameters / 1e6, model.config.to_diff_dict())
    return model


def decoding_config(
    model: PreTrainedModel, data_args: DataArguments, training_args: RNNTrainingArguments
) -> GenerationConfig:
    """The decoding settings that evaluation uses and generation_config.json keeps: the model's, with the
    beam size and length limit the arguments set."""
    decoding = copy.deepcopy(model.generation_config)
    decoding.num_beams = data_args.num_beams or training_args.generation_num_beams or decoding.num_beams
    decoding.max_length = training_args.generation_max_length or decoding.max_length
    # Seq2SeqTrainer passes these to generate() as `num_beams`/`max_length`: make them agree.
    training_args.generation_num_beams, training_args.generation_max_length = decoding.num_beams, decoding.max_length
    return decoding


def decode(tokenizer: PreTrainedTokenizerBase, token_ids: np.ndarray) -> list[str]:
    """Token ids (padded with IGNORE_INDEX by the Trainer) to text."""
    token_ids = np.where(token_ids == IGNORE_INDEX, tokenizer.pad_token_id, token_ids)
    return [text.strip() for text in tokenizer.batch_decode(token_ids, skip_special_tokens=True)]


def make_compute_metrics(target_tokenizer: PreTrainedTokenizerBase) -> Callable[[EvalPrediction], dict[str, float]]:
    """BLEU and chrF of the generated translations against the decoded labels (for picking checkpoints)."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        hypotheses = decode(target_tokenizer, prediction.predictions)
        references = decode(target_tokenizer, prediction.label_ids)
        return compute_translation_metrics(hypotheses, references)

    return compute_metrics


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches shuffled by a generator seeded with (seed, epoch) rather than by the global RNG.

    The Trainer restores the global RNG from a checkpoint only after the resumed epoch's shuffle has been drawn,
    so with the global RNG a run resumed in a later epoch would see its batches in another order than the run
    it continues, and end with other weights. The Trainer calls `set_epoch` before each epoch.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed + epoch)


class TranslationTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer that smooths labels in the model's loss, batches reproducibly, translates evaluation data
    in order, stops on a NaN loss and leaves the model card to `model_card`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # With `label_smoothing_factor` the Trainer takes the labels away from the model and smooths over the
        # returned logits: a float32 log-softmax of the whole batch kept for backward, and a mean per batch
        # even under gradient accumulation. The model's own loss smooths by the same formula without keeping
        # any (loss.py) and divides by the tokens of all accumulated batches.
        if not 0.0 <= self.args.label_smoothing_factor < 1.0:
            raise ValueError(f"--label_smoothing_factor must be in [0, 1), got {self.args.label_smoothing_factor}.")
        self.model.config.label_smoothing = self.args.label_smoothing_factor
        self.label_smoother = None

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(sampler.batch_size, sampler.lengths, seed)
        return sampler

    def _get_eval_sampler(self, eval_dataset: Dataset) -> None:
        # `train_sampling_strategy="group_by_length"` would shuffle evaluation batches too; the translations must
        # come back in dataset order to be paired with their sources. No sampler: the DataLoader's sequential
        # order, which accelerate shards and gathers back in order when distributed.
        return None

    def evaluation_loop(self, *args, **kwargs):
        # Seq2SeqTrainer gathers with `accelerator.gather`, which keeps the samples a distributed run repeats to
        # even out its last batch: the metrics would count them twice and the translations would not line up
        # with the sources. `gather_for_metrics` (the Trainer's own choice) drops them.
        self.gather_function = self.accelerator.gather_for_metrics
        return super().evaluation_loop(*args, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        # The Trainer would go on (its `logging_nan_inf_filter` even hides the NaN from the logs) and the
        # weights would turn to NaN at the optimizer step: stop before it, while the last checkpoint is good.
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1} (lower --learning_rate "
                "or --max_grad_norm, or look for broken pairs in the data)"
            )
        return loss

    def create_model_card(self, **kwargs) -> None:
        # push_to_hub() would overwrite README.md with the Trainer's generic draft; ours has the scores.
        pass


def evaluate_split(
    trainer: TranslationTrainer,
    split: str,
    dataset: Dataset,
    raw_dataset: Dataset,
    target_tokenizer: PreTrainedTokenizerBase,
    target_lang: str,
) -> tuple[dict[str, float], list[str]]:
    """Translate one split; return its metrics (also logged and saved) and the translations."""
    output = trainer.predict(dataset, metric_key_prefix=split)
    hypotheses = decode(target_tokenizer, output.predictions)
    # Score against the references as written: the labels went through the tokenizer (NFKC, <unk>).
    references = [pair[target_lang] for pair in raw_dataset["translation"]]
    scores = compute_translation_metrics(hypotheses, references)
    metrics = output.metrics | {f"{split}_{name}": value for name, value in scores.items()}
    metrics[f"{split}_samples"] = len(dataset)
    trainer.log_metrics(split, metrics)
    trainer.save_metrics(split, metrics)
    if trainer.is_world_process_zero():
        predictions_file = Path(trainer.args.output_dir) / f"{split}_predictions.txt"
        predictions_file.write_text("".join(f"{line}\n" for line in hypotheses), encoding="utf-8")
    return metrics, hypotheses


def print_examples(raw_dataset: Dataset, hypotheses: list[str], data_args: DataArguments) -> None:
    for pair, hypothesis in list(zip(raw_dataset["translation"], hypotheses))[: data_args.show_examples]:
        print(f"\nsource:     {pair[data_args.source_lang]}")
        print(f"reference:  {pair[data_args.target_lang]}")
        print(f"hypothesis: {hypothesis}")


def tokenize_splits(
    raw_splits: dict[str, Dataset],
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    data_args: DataArguments,
) -> dict[str, Dataset]:
    """Token ids of every split; training pairs over the length limits are left out first."""
    preprocess = make_preprocess_function(
        source_tokenizer, target_tokenizer, data_args.source_lang, data_args.target_lang
    )
    splits = {}
    for split, dataset in raw_splits.items():
        if split == "train":
            dataset, _ = filter_by_length(
                dataset,
                source_tokenizer,
                target_tokenizer,
                data_args.max_source_length,
                data_args.max_target_length,
                data_args.source_lang,
                data_args.target_lang,
            )
        splits[split] = dataset.map(
            preprocess, batched=True, remove_columns=["translation"], desc=f"tokenizing {split}"
        )
    return splits


def main(args: list[str] | None = None, defaults: dict | None = None) -> dict[str, float]:
    """Train and/or evaluate as the arguments say (command-line flags, over a config file, over `defaults`);
    return all the metrics (also in output_dir/all_results.json)."""
    # Everything before training depends only on the arguments and the data: report its errors in one line.
    try:
        model_args, data_args, training_args = parse_arguments(args, defaults)
        setup_logging(training_args)
        check_arguments(model_args, data_args, training_args)
        set_seed(training_args.seed)

        training = data_args.train_file is not None
        if training and training_args.should_save:
            check_writable(training_args.output_dir)
        checkpoint = resolve_checkpoint(training_args)
        raw_splits = load_splits(data_args)
        source_tokenizer, target_tokenizer = get_tokenizers(
            model_args, data_args, training_args, raw_splits.get("train"), resuming=checkpoint is not None
        )
        model = build_model(model_args, data_args, source_tokenizer, target_tokenizer)
        if training and training_args.should_save:
            check_free_space(training_args.output_dir, sum(p.numel() for p in model.parameters()))
        decoding = decoding_config(model, data_args, training_args)
        splits = tokenize_splits(raw_splits, source_tokenizer, target_tokenizer, data_args)

        callbacks = []
        if training_args.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=training_args.early_stopping_patience))
        if "train" not in splits:  # evaluation only: no evaluations during training to schedule
            training_args.eval_strategy = IntervalStrategy.NO
        trainer = TranslationTrainer(
            model=model,
            args=training_args,
            train_dataset=splits.get("train"),
            eval_dataset=splits.get("eval"),
            processing_class=source_tokenizer,
            data_collator=make_collator(source_tokenizer, model, training_args),
            compute_metrics=make_compute_metrics(target_tokenizer),
            callbacks=callbacks,
        )
    except (ValueError, OSError) as err:  # DataError is a ValueError
        sys.exit(f"error: {err}")

    results = {}
    if "train" in splits:
        try:
            train_result = trainer.train(resume_from_checkpoint=checkpoint)
        except (NonFiniteLossError, OSError) as err:  # OSError: a checkpoint could not be written (disk full)
            sys.exit(f"error: {err}; {how_to_resume(training_args.output_dir)}")
        metrics = train_result.metrics | {"train_samples": len(splits["train"])}
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results |= metrics

    translations = {}
    for split in ("eval", "test"):
        if split in splits:
            metrics, translations[split] = evaluate_split(
                trainer, split, splits[split], raw_splits[split], target_tokenizer, data_args.target_lang
            )
            results |= metrics

    if trainer.is_world_process_zero():
        for split in translations:
            print(f"{split}: BLEU {results[f'{split}_bleu']:.2f}  chrF {results[f'{split}_chrf']:.2f}")
        shown = "test" if "test" in translations else "eval"
        if shown in translations:
            print_examples(raw_splits[shown], translations[shown], data_args)
    if "train" in splits:
        # Evaluation left generate()'s defaults (max_length=20, top_k=50, ...) in the model's generation config,
        # and the Trainer turned the recurrent state off for training: save the model as it should decode.
        trainer.model.generation_config = decoding
        trainer.model.config.use_cache = True
        if training_args.should_save:
            # The best checkpoint as a Hub repository, saved through the pipeline: weights, modelling code,
            # config, generation config, the tokenizer(s) (a separate target one in target_tokenizer/) and the
            # pipeline's code under `custom_pipelines`, so that `pipeline(model=output_dir,
            # trust_remote_code=True)` translates in a process without this package.
            RNNTranslationPipeline(
                model=trainer.model, tokenizer=source_tokenizer, target_tokenizer=target_tokenizer
            ).save_pretrained(training_args.output_dir)
            try:
                plot_training_curves(trainer.state.log_history, Path(training_args.output_dir) / TRAINING_CURVES_FILE)
            except ValueError as err:  # a run too short to have logged a loss or a score
                logger.warning("no %s written: %s", TRAINING_CURVES_FILE, err)
            write_model_card(
                training_args.output_dir,
                trainer.model.config,
                trainer.model.generation_config,
                model_args,
                data_args,
                training_args,
                results,
            )
            print(f"\nmodel, tokenizer and model card saved in {training_args.output_dir}")
        if training_args.push_to_hub:
            trainer.push_to_hub()
    return results
