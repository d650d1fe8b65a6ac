"""Training: `main` trains and evaluates a model as the training command's flags say (see `run`).

One job per module: `arguments` (the flags), `trainer` (batches, the Trainer, metrics), `checkpoints` (which
checkpoints are complete, room for the next one), `model_card` (the README.md of a trained model) and `run` (the
run itself, top to bottom).
"""

from .run import main

__all__ = ["main"]
