"""The model card (README.md) of a trained model, written from the run that produced it.

The YAML front matter is the Hub's metadata (languages, licence, tags, datasets, and a `model-index` with the
BLEU and chrF measured on each evaluated split); the text describes the architecture, the data, the training
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

from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .tokenization import TARGET_TOKENIZER_DIR

if TYPE_CHECKING:  # the training module imports this one
    from .training import DataArguments, ModelArguments, RNNTrainingArguments

TAGS = ["translation", "rnn", "seq2seq", "hf-rnn-seq2seq"]
# Metric prefixes of the Trainer -> the split names the Hub's model-index uses.
EVALUATED_SPLITS = {"eval": "validation", "test": "test"}
METRICS = {"bleu": "BLEU", "chrf": "chrF"}


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
    cell = config.cell_type.upper() if config.cell_type != "rnn" else "Elman RNN"
    direction = "bidirectional " if config.bidirectional else ""
    attention = f"{config.attention} attention" if config.attention else "no attention"
    if config.input_feeding:
        attention += ", input feeding"
    vocabulary = (
        f"source {config.vocab_size}, target {config.decoder_vocab_size} tokens"
        if separate_vocabularies
        else f"joint, {config.vocab_size} tokens"
    )
    return [
        f"| encoder | {direction}{cell}, {config.encoder_layers} layer(s) of {config.encoder_hidden_size} "
        "per direction |",
        f"| decoder | {cell}, {config.decoder_layers} layer(s) of {config.hidden_size}; {attention} |",
        f"| bridge (encoder state -> decoder state) | {config.bridge} |",
        f"| embeddings | {config.embedding_size}{', tied with the output layer' if config.tie_word_embeddings else ''} |",
        f"| vocabulary | {vocabulary} |",
        f"| dropout | {config.dropout} |",
    ]


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
    model_name = (training_args.hub_model_id or Path(output_dir).resolve().name).split("/")[-1]
    repo_id = training_args.hub_model_id or str(output_dir)
    split_files = {"eval": data_args.validation_file, "test": data_args.test_file}

    eval_results = []
    results_table = ["| split | data | pairs | BLEU | chrF |", "|---|---|---|---|---|"]
    for prefix, split in EVALUATED_SPLITS.items():
        if f"{prefix}_bleu" not in metrics:
            continue
        name = "+".join(dataset_names(split_files[prefix], source))
        results_table.append(
            f"| {split} | {name} | {metrics[f'{prefix}_samples']} | {metrics[f'{prefix}_bleu']:.2f} "
            f"| {metrics[f'{prefix}_chrf']:.2f} |"
        )
        for metric, metric_name in METRICS.items():
            eval_results.append(
                EvalResult(
                    task_type="translation",
                    task_name=f"Translation {source}->{target}",
                    dataset_type=name,
                    dataset_name=name,
                    dataset_split=split,
                    metric_type=metric,
                    metric_name=metric_name,
                    metric_value=round(metrics[f"{prefix}_{metric}"], 2),
                )
            )

    card_data = ModelCardData(
        language=[source, target],
        license=model_args.license,
        library_name="transformers",
        pipeline_tag="translation",
        tags=TAGS,
        datasets=(
            [name.strip() for name in data_args.dataset_name.split(",")]
            if data_args.dataset_name
            else dataset_names(data_args.train_file, source)
        ),
        base_model=model_args.model_name_or_path,
        model_name=model_name,
        eval_results=eval_results or None,
    )

    separate = (Path(output_dir) / TARGET_TOKENIZER_DIR).is_dir()
    decoder_tokenizer = "target_tokenizer" if separate else "tokenizer"
    load_target = (
        f'target_tokenizer = AutoTokenizer.from_pretrained("{repo_id}", subfolder="{TARGET_TOKENIZER_DIR}")\n'
        if separate
        else ""
    )
    n_devices = max(1, training_args.world_size)
    base_model = model_args.model_name_or_path
    origin = f"fine-tuned from `{base_model}`" if base_model else "trained from scratch"
    tokenizer = model_args.tokenizer_name or base_model or f"{model_args.tokenizer_type}, trained on the training data"
    body = f"""
# {model_name}

A {source}→{target} translation model: an RNN encoder–decoder (`hf-rnn-seq2seq`), {origin}
with the Hugging Face `Seq2SeqTrainer`.

## Usage

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
{load_target}model = AutoModelForSeq2SeqLM.from_pretrained("{repo_id}", trust_remote_code=True)

inputs = tokenizer(["..."], return_tensors="pt", padding=True)  # {source} sentences
outputs = model.generate(**inputs)  # decoding settings from generation_config.json
print({decoder_tokenizer}.batch_decode(outputs, skip_special_tokens=True))
```

With the `hf-rnn-seq2seq` package installed, `import hf_rnn_seq2seq` registers the model and
`trust_remote_code` is not needed.

## Model

| | |
|---|---|
{chr(10).join(describe_architecture(config, separate))}
| tokenizer | {tokenizer} |

## Training data

- train: `{data_args.train_file}` ({metrics["train_samples"]} pairs of at most {data_args.max_source_length} source and
  {data_args.max_target_length} target tokens)
- validation (early stopping, best checkpoint): `{data_args.validation_file}`
- test: `{data_args.test_file}`

## Training procedure

| | |
|---|---|
| optimizer | {_name(training_args.optim)}, learning rate {training_args.learning_rate}, {_name(training_args.lr_scheduler_type)} schedule, {training_args.warmup_steps} warm-up steps |
| batch | {training_args.per_device_train_batch_size} pairs × {n_devices} device(s) × {training_args.gradient_accumulation_steps} accumulation step(s), {training_args.train_sampling_strategy} sampling |
| regularisation | dropout {config.dropout}, label smoothing {training_args.label_smoothing_factor}, gradient norm clipped at {training_args.max_grad_norm} |
| length | {metrics["epoch"]:.1f} epochs (at most {training_args.num_train_epochs}; early stopping patience {training_args.early_stopping_patience} evaluations on validation {training_args.metric_for_best_model}) |
| seed | {training_args.seed} |

## Evaluation

Decoding: beam size {generation_config.num_beams}, at most {generation_config.max_length - 1} tokens (`max_length`
counts the decoder start token).
Scores from sacreBLEU (BLEU with its default 13a tokenisation, and chrF) on the detokenised output against
the references as written.

{chr(10).join(results_table)}

## Framework versions

transformers {transformers.__version__}, torch {torch.__version__}, tokenizers {tokenizers.__version__}
"""
    path = Path(output_dir) / "README.md"
    ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}").save(path)
    return path
