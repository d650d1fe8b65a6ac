"""Train and evaluate an RNN encoder–decoder translation model with transformers' Seq2SeqTrainer.

    python training/train.py training/configs/demo_koen.json [--flag value ...]
    python training/train.py --config training/configs/demo_koen.json --num_train_epochs 5
    python training/train.py --train_file data/train --validation_file data/dev --output_dir out [...]

The steps follow transformers' examples/pytorch/translation/run_translation.py, and `main` reads top to bottom:
load the parallel data, get a tokenizer (load one, or train one on the training data), build a new model (or load
one), train with evaluation by generation, stop early on validation BLEU and keep the best checkpoint; then
translate the validation and test splits, report BLEU and chrF, and leave in `output_dir` a complete Hub
repository: weights and modelling code, tokenizer(s), generation_config.json and a model card with the scores.

The same command runs under `torchrun --nproc_per_node N` and `accelerate launch --multi_gpu --num_processes N`
(add `--use_cpu` on a machine without GPUs): the main process trains the tokenizer and writes the files.
"""

import copy
import logging
import sys
from pathlib import Path

import datasets
import torch
import transformers
from datasets import Dataset
from transformers import (
    EarlyStoppingCallback,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy

from ..data import filter_by_length, load_translation_data, make_preprocess_function, truncate_sources
from ..loading import load_model
from ..metrics import SCORE_LABELS, score_texts
from ..modeling import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from ..modeling.pipeline import RNNText2TextPipeline, RNNTranslationPipeline
from ..plotting import plot_training_curves
from ..shortlist import shortlist_from_pairs
from ..tokenization import check_vocabularies, load_tokenizers, save_tokenizers, train_tokenizers_on_pairs
from .arguments import (
    DEFAULT_NUM_BEAMS,
    DataArguments,
    ModelArguments,
    RNNTrainingArguments,
    architecture,
    check_arguments,
    parse_arguments,
)
from .checkpoints import check_free_space, check_writable, how_to_resume, resolve_checkpoint
from .ema import check_resumable
from .model_card import write_model_card
from .trainer import (
    NonFiniteLossError,
    ScheduledSamplingCallback,
    TimeLimitCallback,
    TranslationTrainer,
    decode,
    make_collator,
    make_compute_metrics,
)

logger = logging.getLogger(__name__)

TRAINING_CURVES_FILE = "training_curves.png"  # loss and validation scores over steps, beside the model card
# The Trainer's metric prefixes -> the split names of Hub datasets (and of saved DatasetDicts).
HUB_SPLITS = {"train": "train", "eval": "validation", "test": "test"}


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
        dataset = load_translation_data(
            path,
            data_args.source_lang,
            data_args.target_lang,
            config=data_args.dataset_config_name,
            split=HUB_SPLITS[split],  # of a Hub dataset or a saved DatasetDict
        )
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
        source_tokenizer, target_tokenizer = train_tokenizers_on_pairs(
            train_data["translation"],
            data_args.source_lang,
            data_args.target_lang,
            joint=not model_args.separate_vocabularies,
            vocab_size=model_args.vocab_size,
            model=model_args.tokenizer_type,
            byte_fallback=model_args.byte_fallback,
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
            **architecture(model_args),
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


def evaluate_split(
    trainer: TranslationTrainer,
    split: str,
    dataset: Dataset,
    raw_dataset: Dataset,
    target_tokenizer: PreTrainedTokenizerBase,
    data_args: DataArguments,
) -> tuple[dict[str, float], list[str]]:
    """Generate for one split; return its metrics (also logged and saved) and the generated texts."""
    output = trainer.predict(dataset, metric_key_prefix=split)
    hypotheses = decode(target_tokenizer, output.predictions)
    # Score against the references as written: the labels went through the tokenizer (NFKC, <unk>).
    references = [pair[data_args.target_lang] for pair in raw_dataset["translation"]]
    scores, _ = score_texts(hypotheses, references, data_args.metric_names, data_args.rouge_tokenizer)
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
                None if data_args.truncate_source else data_args.max_source_length,
                data_args.max_target_length,
                data_args.source_lang,
                data_args.target_lang,
            )
        splits[split] = dataset.map(
            preprocess, batched=True, remove_columns=["translation"], desc=f"tokenizing {split}"
        )
        if data_args.truncate_source:  # every split: the model sees sources as it was trained on them
            splits[split], _ = truncate_sources(splits[split], data_args.max_source_length)
    return splits


def main(args: list[str] | None = None, defaults: dict | None = None) -> dict[str, float]:
    """Train and/or evaluate as the arguments say (command-line flags, over a config file, over `defaults`);
    return all the metrics (also in output_dir/all_results.json)."""
    launched_here = not distributed()  # a process group that exists now is the caller's, to close or keep
    # Everything before training depends only on the arguments and the data: report its errors in one line.
    try:
        model_args, data_args, training_args = parse_arguments(args, defaults)
        setup_logging(training_args)
        check_arguments(model_args, data_args, training_args)
        set_seed(training_args.seed)

        training = data_args.train_file is not None
        if training and training_args.should_save:
            check_writable(training_args.output_dir)
        checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
        check_resumable(checkpoint, training_args.ema_decay)
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
        if training_args.max_train_minutes is not None:
            callbacks.append(TimeLimitCallback(training_args.max_train_minutes))
        if training_args.scheduled_sampling != "none":
            if model.config.copy_attention:  # the model refuses too, but only at the first training step
                raise ValueError(
                    "--scheduled_sampling does not support --copy_attention models (the prediction it feeds back "
                    "would need the copy mixture): train without one of them"
                )
            callbacks.append(
                ScheduledSamplingCallback(training_args.scheduled_sampling, training_args.scheduled_sampling_k)
            )
        if "train" not in splits:  # evaluation only: no evaluations during training to schedule
            training_args.eval_strategy = IntervalStrategy.NO
        trainer = TranslationTrainer(
            model=model,
            args=training_args,
            train_dataset=splits.get("train"),
            eval_dataset=splits.get("eval"),
            processing_class=source_tokenizer,
            data_collator=make_collator(source_tokenizer, model, training_args),
            compute_metrics=make_compute_metrics(target_tokenizer, data_args.metric_names, data_args.rouge_tokenizer),
            callbacks=callbacks,
            max_tokens_per_batch=training_args.max_tokens_per_batch,
            target_tokenizer=target_tokenizer,
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
                trainer, split, splits[split], raw_splits[split], target_tokenizer, data_args
            )
            results |= metrics

    if trainer.is_world_process_zero():
        for split in translations:
            scores = (f"{SCORE_LABELS[name]} {results[f'{split}_{name}']:.2f}" for name in data_args.score_names)
            print(f"{split}: {'  '.join(scores)}")
        shown = "test" if "test" in translations else "eval"
        if shown in translations:
            print_examples(raw_splits[shown], translations[shown], data_args)
    if "train" in splits:
        # Evaluation left generate()'s defaults (max_length=20, top_k=50, ...) in the model's generation config,
        # and the Trainer turned the recurrent state off for training: save the model as it should decode.
        trainer.model.generation_config = decoding
        trainer.model.config.use_cache = True
        if data_args.build_shortlist:
            trainer.model.shortlist = shortlist_from_pairs(
                raw_splits["train"]["translation"],
                source_tokenizer,
                target_tokenizer,
                data_args.source_lang,
                data_args.target_lang,
            )
        if training_args.should_save:
            # The best checkpoint as a Hub repository, saved through the pipeline: weights, modelling code,
            # config, generation config, the tokenizer(s) (a separate target one in target_tokenizer/) and the
            # pipeline's code under `custom_pipelines`, so that `pipeline(model=output_dir,
            # trust_remote_code=True)` translates in a process without this package.
            pipeline_class = RNNTranslationPipeline if data_args.task == "translation" else RNNText2TextPipeline
            pipeline_class(
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
    if launched_here and distributed():
        # Under torchrun or accelerate launch: the ranks finish together and close the process group the Trainer
        # opened. A rank that exits while the others still save tears gloo's threads down under them, and
        # aborted now and then ("terminate called without an active exception").
        trainer.accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()
    return results


def distributed() -> bool:
    """Whether this process belongs to an initialised torch.distributed process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()
