"""The model card (README.md) of a trained model, written from the run that produced it.

The YAML front matter is the Hub's metadata (languages, licence, tags -- the task among them, which is how the
tools tell a summarizer or a chatbot from a translator (`tasks.model_task`) --, datasets, and a `model-index`
with the scores measured on each evaluated split); the text describes the architecture, the data, the training
settings and the scores, and shows how to load the model.
"""

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import tokenizers
import torch
import transformers
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import GenerationConfig

from ..metrics import SCORE_LABELS
from ..modeling.configuration_rnn_seq2seq import RNNSeq2SeqConfig
from ..tasks import PIPELINE_TAGS
from ..tokenization import TARGET_TOKENIZER_DIR

if TYPE_CHECKING:
    from .arguments import DataArguments, ModelArguments, RNNTrainingArguments

TAGS = ["rnn", "seq2seq", "hf-rnn-seq2seq"]  # after the task's name
# Metric prefixes of the Trainer -> the split names the Hub's model-index uses.
EVALUATED_SPLITS = {"eval": "validation", "test": "test"}
# How the card's text names each task's model and describes its scores.
TASK_MODELS = {
    "translation": "translation model",
    "summarization": "summarization model",
    "dialogue": "dialogue model (a chatbot: message in, reply out)",
    "text2text": "text-to-text model",
}
SCORE_NOTES = {
    "bleu": "BLEU by sacreBLEU with its default 13a tokenisation, on the detokenised output against the references "
    "as written",
    "chrf": "chrF by sacreBLEU",
    "ter": "TER by sacreBLEU (lower is better)",
    "rouge1": "ROUGE-1/2/L: the mean F1 by the `rouge_score` package, with Porter stemming",
    "distinct1": "distinct-1/2: distinct word n-grams over all n-grams of the outputs (variety, not quality)",
}


def _name(option: Enum | str) -> str:
    """The value of a TrainingArguments option, which may be an Enum member (SchedulerType.LINEAR -> linear)."""
    return option.value if isinstance(option, Enum) else option


def dataset_names(files: str, source_lang: str) -> list[str]:
    """Names for the data behind a `--*_file` value: the folder of each local corpus
    (`data/tatoeba-kor-eng/train` -> `tatoeba-kor-eng`), or the name itself for a Hub dataset."""
    names = []
    for entry in (entry.strip() for entry in files.split(",") if entry.strip()):
        path = Path(entry)
        is_local = path.exists() or Path(f"{entry}.{source_lang}").exists()
        name = path.resolve().parent.name if is_local else entry
        if name not in names:
            names.append(name)
    return names


def describe_architecture(config: RNNSeq2SeqConfig, separate_vocabularies: bool) -> list[str]:
    """Rows of a two-column markdown table."""
    cell = config.cell_type.upper() if config.cell_type != "rnn" else "Elman RNN"
    direction = "bidirectional " if config.bidirectional else ""
    attention = f"{config.attention} attention" if config.attention else "no attention"
    if config.input_feeding:
        attention += ", input feeding"
    tied = ", tied with the output layer" if config.tie_word_embeddings else ""
    vocabulary = (
        f"source {config.vocab_size}, target {config.decoder_vocab_size} tokens"
        if separate_vocabularies
        else f"joint, {config.vocab_size} tokens"
    )
    return [
        f"| encoder | {direction}{cell}, {config.encoder_layers} layer(s) of {config.encoder_hidden_size} per "
        "direction |",
        f"| decoder | {cell}, {config.decoder_layers} layer(s) of {config.hidden_size}; {attention} |",
        f"| bridge (encoder state -> decoder state) | {config.bridge} |",
        f"| embeddings | {config.embedding_size}{tied} |",
        f"| vocabulary | {vocabulary} |",
        f"| dropout | {config.dropout} |",
    ]


def describe_training(training_args: "RNNTrainingArguments", metrics: dict[str, float]) -> list[str]:
    """Rows of a two-column markdown table."""
    args = training_args
    if args.max_tokens_per_batch is None:
        batch, sampling = f"{args.per_device_train_batch_size} pairs", f"{args.train_sampling_strategy} sampling"
    else:
        batch, sampling = f"{args.max_tokens_per_batch} tokens a side (padding included)", "length-sorted batches"
    if args.scheduled_sampling != "none":
        sampling += f", scheduled sampling ({args.scheduled_sampling}, k={args.scheduled_sampling_k})"
    rows = [
        (
            f"| optimizer | {_name(args.optim)}, learning rate {args.learning_rate}, {_name(args.lr_scheduler_type)} "
            f"schedule, {args.warmup_steps} warm-up steps |"
        ),
        (
            f"| batch | {batch} × {max(1, args.world_size)} device(s) × "
            f"{args.gradient_accumulation_steps} accumulation step(s), {sampling} |"
        ),
        (
            f"| regularisation | label smoothing {args.label_smoothing_factor}, gradient norm clipped at "
            f"{args.max_grad_norm} |"
        ),
        (
            f"| length | {metrics['epoch']:.1f} epochs (at most {args.num_train_epochs}; early stopping patience "
            f"{args.early_stopping_patience} evaluations of validation {args.metric_for_best_model}) |"
        ),
        f"| seed | {args.seed} |",
    ]
    if args.ema_decay is not None:
        rows.insert(-1, f"| weights | exponential moving average, decay {args.ema_decay} (evaluated and saved) |")
    return rows


def evaluation_results(data_args: "DataArguments", metrics: dict[str, float]) -> tuple[list[EvalResult], list[str]]:
    """The scores of each evaluated split: as the Hub's model-index entries, and as markdown table rows."""
    split_files = {"eval": data_args.validation_file, "test": data_args.test_file}
    task_name = f"{data_args.task.capitalize()} {data_args.source_lang}->{data_args.target_lang}"
    score_names = data_args.score_names
    eval_results, rows = [], []
    for prefix, split in EVALUATED_SPLITS.items():
        if f"{prefix}_{score_names[0]}" not in metrics:
            continue
        name = "+".join(dataset_names(split_files[prefix], data_args.source_lang))
        scores = {metric: round(metrics[f"{prefix}_{metric}"], 2) for metric in score_names}
        cells = " | ".join(str(score) for score in scores.values())
        rows.append(f"| {split} | {name} | {metrics[f'{prefix}_samples']} | {cells} |")
        eval_results += [
            EvalResult(
                task_type=PIPELINE_TAGS[data_args.task],
                task_name=task_name,
                dataset_type=name,
                dataset_name=name,
                dataset_split=split,
                metric_type=metric,
                metric_name=SCORE_LABELS[metric],
                metric_value=scores[metric],
            )
            for metric in score_names
        ]
    return eval_results, rows


def write_model_card(
    output_dir: str | Path,
    config: RNNSeq2SeqConfig,
    generation_config: GenerationConfig,
    model_args: "ModelArguments",
    data_args: "DataArguments",
    training_args: "RNNTrainingArguments",
    metrics: dict[str, float],
) -> Path:
    """Write `output_dir/README.md` for the model trained with these arguments and scored with `metrics`
    (the Trainer's names: `eval_bleu`, `test_chrf`, ...). Returns the path written."""
    source, target = data_args.source_lang, data_args.target_lang
    repo_id = training_args.hub_model_id or str(output_dir)
    model_name = Path(repo_id).resolve().name if training_args.hub_model_id is None else repo_id.split("/")[-1]
    base_model = model_args.model_name_or_path
    eval_results, result_rows = evaluation_results(data_args, metrics)
    translation = data_args.task == "translation"
    card_data = ModelCardData(
        language=[source, target] if translation else None,  # other tasks name their sides, not languages
        license=model_args.license,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS[data_args.task],
        tags=[data_args.task, *TAGS],
        datasets=(
            [name.strip() for name in data_args.dataset_name.split(",")]
            if data_args.dataset_name
            else dataset_names(data_args.train_file, source)
        ),
        base_model=base_model,
        model_name=model_name,
        eval_results=eval_results or None,
    )

    # With separate vocabularies the output ids are decoded by the target tokenizer, saved in a subfolder.
    separate = (Path(output_dir) / TARGET_TOKENIZER_DIR).is_dir()
    load_target = (
        f'target_tokenizer = AutoTokenizer.from_pretrained("{repo_id}", subfolder="{TARGET_TOKENIZER_DIR}", '
        "trust_remote_code=True)\n"
    )
    origin = f"fine-tuned from `{base_model}`" if base_model else "trained from scratch"
    tokenizer = model_args.tokenizer_name or base_model or f"{model_args.tokenizer_type}, trained on the training data"
    newline = "\n"
    score_notes = [note for name, note in SCORE_NOTES.items() if name in data_args.score_names]
    body = f"""
# {model_name}

A {source}→{target} {TASK_MODELS[data_args.task]}: an RNN encoder–decoder (`hf-rnn-seq2seq`), {origin}
with the Hugging Face `Seq2SeqTrainer`.

## Usage

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)
{load_target if separate else ""}model = AutoModelForSeq2SeqLM.from_pretrained("{repo_id}", trust_remote_code=True)

inputs = tokenizer(["..."], return_tensors="pt", padding=True)  # {source} texts
outputs = model.generate(**inputs)  # decoding settings from generation_config.json
print({"target_tokenizer" if separate else "tokenizer"}.batch_decode(outputs, skip_special_tokens=True))
```

`trust_remote_code=True` runs the model code saved in this repository (AutoTokenizer reads the model's
config, so it asks too). With the `hf-rnn-seq2seq` package installed, `import hf_rnn_seq2seq` registers the
model and the flag is not needed. The model code needs transformers 5.24 or newer.

## Model

| | |
|---|---|
{newline.join(describe_architecture(config, separate))}
| tokenizer | {tokenizer} |

## Training data

- train: `{data_args.train_file}` ({metrics["train_samples"]} pairs of at most {data_args.max_source_length}
  source and {data_args.max_target_length} target tokens)
- validation (early stopping, best checkpoint): `{data_args.validation_file}`
- test: `{data_args.test_file}`

## Training procedure

| | |
|---|---|
{newline.join(describe_training(training_args, metrics))}

## Evaluation

Decoding: beam size {generation_config.num_beams}, at most {generation_config.max_length - 1} tokens
(`max_length` counts the decoder start token). Scores: {"; ".join(score_notes)}.

| split | data | pairs | {" | ".join(SCORE_LABELS[name] for name in data_args.score_names)} |
|---|---|---|{"---|" * len(data_args.score_names)}
{newline.join(result_rows)}

## Framework versions

transformers {transformers.__version__}, torch {torch.__version__}, tokenizers {tokenizers.__version__}
"""
    path = Path(output_dir) / "README.md"
    ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}").save(path)
    return path
