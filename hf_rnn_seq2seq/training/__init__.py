"""Training: `main` trains and evaluates a model as the training command's flags say (see `run`).

One job per module: `arguments` (the flags), `trainer` (batches, the Trainer, metrics), `ema` (the moving average
of the weights), `checkpoints` (which checkpoints are complete, room for the next one), `model_card` (the README.md
of a trained model) and `run` (the run itself, top to bottom).
"""


def __getattr__(name: str):
    # `main` brings the whole training stack (datasets, the Trainer, plotting: seconds of start-up); imported when
    # asked for, so that a tool that needs one module of this package (averaging reads `checkpoints`) starts without.
    if name == "main":
        from .run import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["main"]
