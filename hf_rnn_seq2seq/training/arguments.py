"""The training command's flags: which model, which data, how to train; read from the command line over a JSON
config file.

The architecture flags are the fields of `RNNSeq2SeqConfig`, with its defaults and the help its docstring gives
them, so a new config field is a new flag without touching this file.
"""

import argparse
import dataclasses
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, Seq2SeqTrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from ..metrics import METRIC_GROUPS, parse_metric_names
from ..metrics.rouge.rouge import TOKENIZERS as ROUGE_TOKENIZERS
from ..modeling.configuration_rnn_seq2seq import ATTENTION_TYPES, BRIDGE_TYPES, CELL_TYPES, RNNSeq2SeqConfig
from ..modeling.encoder import check_bfloat16
from ..tasks import TASK_BEST_METRIC, TASK_METRICS, TASKS
from ..tokenization import DEFAULT_VOCAB_SIZE, TOKENIZER_MODELS
from .ema import check_decay
from .trainer import SCHEDULED_SAMPLING, check_scheduled_sampling

# Pairs longer than this many tokens (after subword segmentation) are left out of training: they are rare,
# slow to run through an RNN, and usually misaligned.
DEFAULT_MAX_LENGTH = 128
# Beam size of a new model's generation_config.json (what NMT toolkits decode test sets with).
DEFAULT_NUM_BEAMS = 5
# Config fields that are not architecture flags: training takes the vocabulary sizes and special tokens from the
# tokenizer, label smoothing from --label_smoothing_factor, and the rest are fixed for this model.
NOT_ARCHITECTURE = {
    "vocab_size",
    "decoder_vocab_size",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "decoder_start_token_id",
    "label_smoothing",
    "use_cache",
    "is_encoder_decoder",
}
# --metric_for_best_model's default: the task's main score (`TASK_BEST_METRIC`).
AUTO_METRIC = "auto"
CHOICES = {"cell_type": CELL_TYPES, "attention": [name or "none" for name in ATTENTION_TYPES], "bridge": BRIDGE_TYPES}


def documented_fields(cls: type) -> dict[str, str]:
    """`{name: text}` of the `name: text` entries in the Args section of a class's docstring."""
    entries: dict[str, str] = {}
    name = None
    for line in inspect.getdoc(cls).split("Args:", 1)[1].splitlines():
        if entry := re.fullmatch(r" {4}(\w+): (.*)", line):
            name, entries[entry[1]] = entry[1], entry[2]
        elif name and line.startswith(" " * 8):
            entries[name] += " " + line.strip()
    return entries


def _architecture_fields() -> list[tuple]:
    """(name, type, field) of every architecture flag: the config's own fields, with its defaults and help."""
    own = RNNSeq2SeqConfig.__annotations__.keys() - NOT_ARCHITECTURE
    help_texts = documented_fields(RNNSeq2SeqConfig)
    flags = []
    for config_field in dataclasses.fields(RNNSeq2SeqConfig):
        if config_field.name in own:
            metadata = {"help": help_texts[config_field.name]}
            if config_field.name in CHOICES:
                metadata["choices"] = CHOICES[config_field.name]
            flags.append((config_field.name, config_field.type, field(default=config_field.default, metadata=metadata)))
    return flags


# The architecture of a new model (ignored when --model_name_or_path loads a saved one).
ArchitectureArguments = dataclasses.make_dataclass("ArchitectureArguments", _architecture_fields())


def architecture(model_args: ArchitectureArguments) -> dict:
    """The config fields the architecture flags set."""
    return {flag.name: getattr(model_args, flag.name) for flag in dataclasses.fields(ArchitectureArguments)}


@dataclass
class ModelArguments(ArchitectureArguments):
    """Which model and tokenizer to train: new ones (the default, with the architecture flags) or saved ones."""

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
        default=DEFAULT_VOCAB_SIZE,
        metadata={"help": "Vocabulary size of a trained tokenizer (an upper bound: a small corpus gives fewer)."},
    )
    separate_vocabularies: bool = field(
        default=False,
        metadata={"help": "Train one tokenizer per language instead of a joint source+target vocabulary."},
    )
    byte_fallback: bool = field(
        default=False,
        metadata={
            "help": "Give a trained tokenizer the 256 byte tokens (within vocab_size), so that characters unseen in "
            "training (rare Hangul syllables, Hanja) are encoded as UTF-8 bytes and come back whole, not as <unk>."
        },
    )
    license: str = field(
        default="unknown",
        metadata={"help": "Licence id for the model card (e.g. cc-by-sa-4.0); follow the training data's terms."},
    )


@dataclass
class DataArguments:
    """Which data to train and evaluate on, for which task. A file is anything `load_translation_data` reads: a
    parallel-text prefix (`dir/train` for dir/train.ko + dir/train.en), a .jsonl file, a folder written by
    `save_to_disk`, a Hub dataset name, or a comma-separated list of them."""

    task: str = field(
        default="translation",
        metadata={
            "help": "What the model learns: it picks the metrics (translation: BLEU, chrF, TER; summarization: "
            "ROUGE-1/2/L; dialogue: BLEU, chrF, distinct-1/2; text2text: BLEU, chrF, ROUGE), the model card's and "
            "the app's wording, and the saved pipeline (rnn-translation, else rnn-text2text).",
            "choices": list(TASKS),
        },
    )
    source_lang: str = field(
        default="ko",
        metadata={"help": "Source side: language code, file suffix (src), or JSON/dataset column (document)."},
    )
    target_lang: str = field(
        default="en",
        metadata={"help": "Target side: language code, file suffix (tgt), or JSON/dataset column (summary)."},
    )
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "The source column of JSON lines or a dataset (as run_summarization.py); sets --source_lang."
        },
    )
    summary_column: str | None = field(
        default=None,
        metadata={
            "help": "The target column of JSON lines or a dataset (as run_summarization.py); sets --target_lang."
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The configuration of a Hub dataset given as a --*_file name."}
    )
    metrics: str | None = field(
        default=None,
        metadata={
            "help": f"Comma-separated scores for validation and test: {', '.join(METRIC_GROUPS)}. "
            "Unset: the task's (see --task)."
        },
    )
    rouge_tokenizer: str = field(
        default="default",
        metadata={
            "help": "ROUGE's tokenizer: default (rouge_score's, English with stemming; drops other scripts) or "
            "whitespace (any script).",
            "choices": list(ROUGE_TOKENIZERS),
        },
    )
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
    truncate_source: bool = field(
        default=False,
        metadata={
            "help": "Cut sources longer than --max_source_length to that many tokens (ending with </s>) instead of "
            "leaving their pairs out, in every split, as summarizers do with long documents; the number cut is "
            "logged. Translation should leave it off: a cut source loses what its target says."
        },
    )
    max_target_length: int = field(
        default=DEFAULT_MAX_LENGTH,
        metadata={
            "help": "Training pairs with a longer target are left out; also a new model's limit on generated tokens."
        },
    )

    def __post_init__(self):
        # run_summarization.py's names for the two sides, which the loaders call source_lang / target_lang.
        self.source_lang = self.text_column or self.source_lang
        self.target_lang = self.summary_column or self.target_lang
        if self.source_lang == self.target_lang:
            raise ValueError(
                f"the source and target sides are both named '{self.source_lang}'; give them different names (file "
                "suffixes or columns: --source_lang src --target_lang tgt, or --text_column and --summary_column)"
            )

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metric groups scored on validation and test data: --metrics, else the task's."""
        return parse_metric_names(self.metrics) if self.metrics else TASK_METRICS[self.task]

    @property
    def score_names(self) -> list[str]:
        """The scores those metric groups give (rouge: rouge1, rouge2, rougeL)."""
        return [score for group in self.metric_names for score in METRIC_GROUPS[group]]

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
    build_shortlist: bool = field(
        default=False,
        metadata={
            "help": "At the end of training, build a lexical shortlist from the training data and save it with the "
            "model (shortlist.npz; decode with it by --shortlist), as `hf-rnn-seq2seq shortlist` does with its "
            "default sizes."
        },
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
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "Batch by tokens instead of pairs, like fairseq's --max-tokens: as many pairs of about one "
            "length as fit in N tokens a side, padding included (pairs in the batch x its longest source, and x its "
            "longest target, at most N), per device. Replaces --per_device_train_batch_size and "
            "--train_sampling_strategy for training. Unset: batches of --per_device_train_batch_size pairs."
        },
    )
    scheduled_sampling: str = field(
        default="none",
        metadata={
            "help": "Scheduled sampling (Bengio et al., 2015): at each decoder step in training, feed the model's own "
            "previous prediction instead of the reference token with a probability that grows over the steps, "
            "following this schedule and --scheduled_sampling_k: linear min(1, step/k), exponential 1 - k^step, "
            "inverse_sigmoid 1 - k/(k + exp(step/k)). none: always the reference (teacher forcing).",
            "choices": ["none", *SCHEDULED_SAMPLING],
        },
    )
    scheduled_sampling_k: float | None = field(
        default=None,
        metadata={
            "help": "The schedule's k: linear, the steps until every input is a prediction (> 0); exponential, "
            "between 0 and 1 (e.g. 0.999); inverse_sigmoid, at least 1 (e.g. 1000: half at about 6900 steps)."
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
        default=AUTO_METRIC,
        metadata={
            "help": "Validation score that picks the best checkpoint: loss or one of the scores of --metrics (bleu, "
            "chrf, rougeL, distinct2, ...). auto: the task's main score (bleu; rougeL for summarization)."
        },
    )
    predict_with_generate: bool = field(
        default=True, metadata={"help": "Evaluate by generating (needed for every score but the loss)."}
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
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training at the first step after this many minutes (of this run: a resumed run counts "
            "afresh), evaluating and saving there, like fairseq's --stop-time-hours. Unset: no time limit."
        },
    )

    ema_decay: float | None = field(
        default=None,
        metadata={
            "help": "Evaluate, pick the best checkpoint by and save an exponential moving average of the weights, "
            "updated after every optimizer step as average = decay * average + (1 - decay) * weights (OpenNMT-py's "
            "--average_decay, fairseq's EMA), the decay warming up as (1 + step) / (10 + step) until it reaches this "
            "(as OpenNMT-py's); 0.999 to 0.9999 are usual. Checkpoints keep the weights being "
            "trained too (raw_weights.safetensors), for resuming. Unset: no average."
        },
    )

    def __post_init__(self):
        # transformers wants --use_cpu before it autocasts to bfloat16 on a CPU; without an accelerator the CPU
        # is the only choice, so --bf16 alone should do.
        bfloat16 = self.bf16 or self.bf16_full_eval
        if bfloat16 and not torch.accelerator.is_available():
            self.use_cpu = True
        if bfloat16 and self.use_cpu:
            check_bfloat16("cpu", "train in float32 (leave out --bf16 and --bf16_full_eval)")
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise ValueError(f"--max_train_minutes must be positive, got {self.max_train_minutes}")
        if self.ema_decay is not None:
            check_decay(self.ema_decay)
        if self.max_tokens_per_batch is not None and self.max_tokens_per_batch <= 0:
            raise ValueError(f"--max_tokens_per_batch must be positive, got {self.max_tokens_per_batch}")
        if self.scheduled_sampling != "none":
            check_scheduled_sampling(self.scheduled_sampling, self.scheduled_sampling_k)
        super().__post_init__()


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
    if training_args.metric_for_best_model == AUTO_METRIC:
        training_args.metric_for_best_model = TASK_BEST_METRIC[data_args.task]
    best = training_args.metric_for_best_model
    if best not in ("loss", *data_args.score_names):
        raise ValueError(
            f"--metric_for_best_model {best} is not a validation score; choose loss or one of "
            f"{', '.join(data_args.score_names)} (set by --metrics and --task)"
        )
    if not training_args.predict_with_generate and best != "loss":
        raise ValueError(
            f"--metric_for_best_model {best} needs --predict_with_generate true "
            "(the score is computed on generated text); or use --metric_for_best_model loss"
        )
