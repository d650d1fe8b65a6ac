"""Checkpoint averaging: one model whose weights are the element-wise mean of several checkpoints' (OpenNMT-py's
`average_models.py`, fairseq's `average_checkpoints.py`, JoeyNMT's `average_checkpoints.py`).

The last checkpoints of a run sit around the minimum the optimizer circles late in training; their mean usually lies
nearer its centre and translates a little better than any one of them. A mean is only meaningful between
checkpoints of one model (the same architecture and vocabularies), which is checked before anything is written.
Every parameter is averaged, the pointer-generator's gate and coverage's weight (copy_attention, coverage) included.

A checkpoint of a run with `--ema_decay` (training/ema.py) holds two sets of weights: `model.safetensors`, the
moving average, which that run evaluated and which `translate` loads, and `raw_weights.safetensors`, the weights the
optimizer trains, kept only to resume from. Averaging reads `model.safetensors`, as every other reader of a model
directory does: the mean of moving averages, which moves little beyond the last one when 1 / (1 - decay) is long
beside the checkpoints' spacing.

    average_checkpoints(["run/checkpoint-800", "run/checkpoint-900", "run/checkpoint-1000"], "run-averaged")
    average_checkpoints(last_checkpoints("run", 3), "run-averaged")  # the same: the newest three of the run
"""

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from transformers import PretrainedConfig, PreTrainedTokenizerBase

from .loading import check_model_dir, load_model
from .modeling.pipeline import RNNTranslationPipeline
from .tokenization import TARGET_TOKENIZER_DIR, check_vocabularies, load_tokenizers, same_ids
from .training.checkpoints import checkpoint_step, is_complete

MIN_CHECKPOINTS = 2
# Config fields that differ between checkpoints of one model without changing what its weights mean: bookkeeping,
# the Trainer's settings while training (label smoothing from its flag, the recurrent state turned off), the weights
# of training-only loss terms, and what saving the final model adds.
NOT_ARCHITECTURE = {
    "transformers_version",
    "_name_or_path",
    "dtype",
    "use_cache",
    "label_smoothing",
    "coverage_loss_weight",
    "custom_pipelines",
}
SAME_MODEL = "average checkpoints of one model's training"


def average_state_dicts(state_dicts: Iterable[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts with the same names and shapes, read one at a time (so one model is in
    memory besides the sums). Floating-point tensors are summed in float64, whatever their own type, and the mean is
    returned in that type; integer tensors (counters, not weights) are not averaged: the last state dict's are
    kept."""
    sums: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    count = 0
    for state_dict in state_dicts:
        if count == 0:
            dtypes = {name: tensor.dtype for name, tensor in state_dict.items()}
        elif {name: tensor.shape for name, tensor in state_dict.items()} != {
            name: total.shape for name, total in sums.items()
        }:
            raise ValueError(f"state dict {count + 1} has other tensor names or shapes than the first")
        for name, tensor in state_dict.items():
            if not tensor.is_floating_point():
                sums[name] = tensor.clone()
            elif count == 0:
                sums[name] = tensor.to(torch.float64, copy=True)
            else:
                sums[name] += tensor.to(torch.float64)
        count += 1
    if count == 0:
        raise ValueError("no state dicts to average")
    return {
        name: (total / count).to(dtypes[name]) if total.is_floating_point() else total for name, total in sums.items()
    }


def last_checkpoints(run_dir: str | os.PathLike, n: int) -> list[Path]:
    """The newest `n` complete `checkpoint-<step>` folders of a training output directory, oldest first (as
    fairseq's `--num-epoch-checkpoints`). One a crash left half-written does not count."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise OSError(f"{run_dir}: no such training output directory")
    complete = sorted(
        (path for path in run_dir.iterdir() if checkpoint_step(path) is not None and is_complete(path)),
        key=checkpoint_step,
    )
    if len(complete) < n:
        names = ", ".join(path.name for path in complete) or "none"
        raise ValueError(
            f"--last {n}: {run_dir} holds {len(complete)} complete checkpoint(s) ({names}); average fewer, or keep "
            "more when training (--save_total_limit)"
        )
    return complete[len(complete) - n :]


def check_checkpoints(checkpoints: Sequence[Path], output_dir: Path) -> None:
    """Refuse, before loading any, too few checkpoints, one given twice, a folder that is missing or holds no model,
    a checkpoint a crash left half-written, and an output folder that is one of them."""
    if len(checkpoints) < MIN_CHECKPOINTS:
        raise ValueError(f"averaging needs at least {MIN_CHECKPOINTS} checkpoints, got {len(checkpoints)}")
    for checkpoint in checkpoints:
        if not checkpoint.exists():
            raise OSError(f"{checkpoint}: no such checkpoint directory")
        check_model_dir(checkpoint)  # a file, or a folder without config or weights
        if checkpoint_step(checkpoint) is not None and not is_complete(checkpoint):
            raise ValueError(f"{checkpoint}: not completely written (the run stopped while saving it); leave it out")
    resolved = [checkpoint.resolve() for checkpoint in checkpoints]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise ValueError(f"{checkpoints[i]} is given twice; give each checkpoint once")
    if output_dir.resolve() in resolved:
        raise ValueError(f"-o {output_dir} is one of the checkpoints; write the average into another folder")


def architecture(config: PretrainedConfig) -> dict:
    """The config's fields that fix what the weights mean."""
    return {name: value for name, value in config.to_dict().items() if name not in NOT_ARCHITECTURE}


def check_same_architecture(first: Path, first_config: PretrainedConfig, other: Path, config: PretrainedConfig) -> None:
    expected, found = architecture(first_config), architecture(config)
    differences = [
        f"{name} {expected.get(name)} and {found.get(name)}"
        for name in sorted(expected.keys() | found.keys())
        if expected.get(name) != found.get(name)
    ]
    if differences:
        raise ValueError(f"{first} and {other} are different models ({', '.join(differences)}); {SAME_MODEL}")


def checkpoint_tokenizers(
    checkpoint: Path, config: PretrainedConfig
) -> tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
    """The (source, target) tokenizers a checkpoint was trained with. Checkpoints written before training saved
    the target tokenizer into them lack a separate target vocabulary's: then both come from the training output
    directory above the checkpoint, where training saved them (the source one alone would pass the vocabulary
    check wherever the two vocabularies have the same size, and decode target ids as source pieces)."""
    fix = f"save the tokenizer the model was trained with beside {checkpoint}"
    missing_target = not (checkpoint / TARGET_TOKENIZER_DIR).is_dir()
    if (
        checkpoint_step(checkpoint) is not None
        and missing_target
        and (checkpoint.parent / TARGET_TOKENIZER_DIR).is_dir()
    ):
        checkpoint = checkpoint.parent
    tokenizers = load_tokenizers(checkpoint)
    check_vocabularies(config, *tokenizers, fix)
    return tokenizers


def checked_state_dicts(checkpoints: Sequence[Path]) -> Iterator[dict[str, torch.Tensor]]:
    """Each checkpoint's weights, loaded one at a time, once it is known to be the first one's model: the same
    architecture, and tokenizers that give the same ids (tokenization.same_ids)."""
    first = None
    for checkpoint in checkpoints:
        model = load_model(checkpoint)
        tokenizers = checkpoint_tokenizers(checkpoint, model.config)
        if first is None:
            first = checkpoint, model.config, tokenizers
        else:
            first_checkpoint, first_config, first_tokenizers = first
            check_same_architecture(first_checkpoint, first_config, checkpoint, model.config)
            (first_source, first_target), (source, target) = first_tokenizers, tokenizers
            if not (same_ids(first_source, source, "source") and same_ids(first_target, target, "target")):
                raise ValueError(
                    f"{first_checkpoint} and {checkpoint} have different tokenizers (they give other ids for the same "
                    f"text); {SAME_MODEL}"
                )
        yield model.state_dict()


def average_checkpoints(checkpoints: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> Path:
    """Write into `output_dir` a model directory (weights, config, modelling and pipeline code, generation config,
    tokenizer(s), as training leaves one) whose weights are the mean of the `checkpoints`' (model directories or
    training checkpoints of one model). All but the weights come from the last checkpoint. Returns `output_dir`."""
    checkpoints, output_dir = [Path(path) for path in checkpoints], Path(output_dir)
    check_checkpoints(checkpoints, output_dir)

    average = average_state_dicts(checked_state_dicts(checkpoints))
    model = load_model(checkpoints[-1])
    model.load_state_dict(average)
    model.config.use_cache = True  # checkpoints keep the Trainer's setting for training: decode with the state
    source_tokenizer, target_tokenizer = checkpoint_tokenizers(checkpoints[-1], model.config)
    RNNTranslationPipeline(model=model, tokenizer=source_tokenizer, target_tokenizer=target_tokenizer).save_pretrained(
        output_dir
    )
    return output_dir


__all__ = ["average_checkpoints", "average_state_dicts", "last_checkpoints"]
