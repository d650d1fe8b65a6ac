"""An exponential moving average of the weights during training (OpenNMT-py's `--average_decay`, fairseq's EMA,
Marian's `--exponential-smoothing`): after every optimizer step, average ← decay · average + (1 − decay) · weights.

The average is what the run evaluates, picks its best checkpoint by, and saves. Between optimizer steps the model
holds the average, and only during a step the weights the optimizer updates (the raw weights); so evaluation, each
checkpoint's model.safetensors, `load_best_model_at_end` and the final model all get the average without any of
them knowing about it. The raw weights, which training continues from, go into each checkpoint as
`RAW_WEIGHTS_NAME`, saved and loaded with the optimizer's state (which belongs to them): a resumed run goes on with
the same raw weights, optimizer state and average, bit for bit, as a run that was not interrupted.

With decay d the average forgets a step's weights with a time constant of 1 / (1 − d) steps (1,000 for 0.999). It
starts from the weights training starts from, which are far from trained: so at the n-th optimizer step the decay
is min(d, (1 + n) / (WARM_UP + n)), as in OpenNMT-py and TensorFlow's ExponentialMovingAverage. The early average
follows the weights closely, and the decay reaches d after (WARM_UP · d − 1) / (1 − d) steps (8,990 for 0.999);
without this, a run of 3,000 steps would still hold 5% of its random start (0.999^3000).
"""

import logging
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel, TrainerCallback

logger = logging.getLogger(__name__)

# The raw weights in a checkpoint of a run with a moving average (its model.safetensors holds the average).
RAW_WEIGHTS_NAME = "raw_weights.safetensors"
DECAY_KEY = "ema_decay"  # the decay, in that file's metadata
WARM_UP = 10  # the decay at optimizer step n is at most (1 + n) / (WARM_UP + n) (see above)


def check_decay(decay: float) -> None:
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"--ema_decay must be in [0, 1) (0.999 is usual; 0 keeps the raw weights), got {decay}")


def saved_decay(checkpoint: str | os.PathLike) -> float | None:
    """The decay of the moving average a checkpoint holds, or None for a checkpoint of a run without one."""
    path = Path(checkpoint) / RAW_WEIGHTS_NAME
    if not path.is_file():
        return None
    with safe_open(path, "pt") as raw_weights:
        return float(raw_weights.metadata()[DECAY_KEY])


def check_resumable(checkpoint: str | os.PathLike | None, decay: float | None) -> None:
    """Refuse to resume a run that averaged its weights without averaging: its model.safetensors holds the average,
    and training would go on from it instead of from the weights it was training."""
    if checkpoint is not None and decay is None and (checkpoint_decay := saved_decay(checkpoint)) is not None:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint}: that run averaged its weights; resume it with --ema_decay "
            f"{checkpoint_decay}"
        )


class ExponentialMovingAverage(TrainerCallback):
    """Keeps the moving average of the model's parameters in the model between optimizer steps, and the raw
    weights in `raw` (see the module's docstring). `TranslationTrainer` adds it for `--ema_decay` and saves and
    loads the raw weights with each checkpoint (`save`, `load`)."""

    def __init__(self, decay: float):
        check_decay(decay)
        self.decay = decay
        self.names: list[str] = []
        self.parameters: list[torch.nn.Parameter] = []
        self.average: list[torch.Tensor] = []  # equal to the parameters between steps
        self.raw: list[torch.Tensor] | None = None

    def start(self, model: PreTrainedModel) -> None:
        """Average from the model's weights on: both the average and the raw weights are the model's now."""
        named = list(model.named_parameters())
        self.names = [name for name, _ in named]
        self.parameters = [parameter for _, parameter in named]
        self.average = [parameter.detach().clone() for parameter in self.parameters]
        self.raw = [parameter.detach().clone() for parameter in self.parameters]

    def save(self, checkpoint_dir: str | os.PathLike) -> None:
        """Write the raw weights into a checkpoint (whose model.safetensors the Trainer fills with the average)."""
        tensors = {name: raw.cpu().contiguous() for name, raw in zip(self.names, self.raw)}
        save_file(tensors, Path(checkpoint_dir) / RAW_WEIGHTS_NAME, metadata={DECAY_KEY: repr(self.decay)})

    def load(self, checkpoint_dir: str | os.PathLike, model: PreTrainedModel) -> None:
        """Continue the average of a checkpoint the Trainer has loaded into `model` (its model.safetensors: the
        average) with the raw weights saved beside it. A checkpoint of a run without an average starts one."""
        self.start(model)
        path = Path(checkpoint_dir) / RAW_WEIGHTS_NAME
        if not path.is_file():
            logger.info("%s holds no moving average: it starts from the checkpoint's weights", checkpoint_dir)
            return
        checkpoint_decay = saved_decay(checkpoint_dir)
        if checkpoint_decay != self.decay:
            logger.warning(
                "%s averaged with decay %s; it goes on with %s", checkpoint_dir, checkpoint_decay, self.decay
            )
        saved = load_file(path, device=str(self.parameters[0].device))
        if sorted(saved) != sorted(self.names):
            raise ValueError(f"{path} holds other parameters than the model: it is not this model's checkpoint")
        with torch.no_grad():
            for name, raw in zip(self.names, self.raw):
                raw.copy_(saved[name])

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.raw is None:  # not resumed (`load` starts a resumed run)
            self.start(model)

    def on_step_begin(self, args, state, control, **kwargs):
        with torch.no_grad():
            for parameter, raw in zip(self.parameters, self.raw):
                parameter.copy_(raw)  # the optimizer steps from the raw weights

    def on_step_end(self, args, state, control, **kwargs):
        decay = min(self.decay, (1 + state.global_step) / (WARM_UP + state.global_step))
        with torch.no_grad():
            for parameter, raw, average in zip(self.parameters, self.raw, self.average):
                raw.copy_(parameter)
                # lerp by 1 − decay: decay 0 gives exactly the raw weights (torch.lerp computes a weight of 1 as `end`)
                average.lerp_(raw, 1.0 - decay)
                parameter.copy_(average)

    def on_train_end(self, args, state, control, **kwargs):
        # The model keeps the average (or the best checkpoint's, which the Trainer loaded); the rest is let go.
        self.parameters, self.average, self.raw = [], [], None


__all__ = ["RAW_WEIGHTS_NAME", "ExponentialMovingAverage", "check_decay", "check_resumable", "saved_decay"]
