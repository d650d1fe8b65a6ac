"""Training checkpoints that survive a crash: which ones are complete, and room to write the next one.

The Trainer writes a checkpoint folder file by file (weights, optimizer, scheduler, RNG states) and writes
`trainer_state.json` last. A run killed while saving therefore leaves a folder without a readable
`trainer_state.json`; `get_last_checkpoint` would still pick it, by its step number, and resuming from it
would fail or, worse, continue from a mix of two steps. Here a checkpoint counts only once its state file
parses and names its own step. (A killed process loses nothing the kernel has already accepted, so file order
is enough; surviving a power cut would need fsync, which the Trainer does not do.)
"""

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

# Where an incomplete checkpoint is moved, so that neither resuming nor the Trainer's rotation of old
# checkpoints mistakes it for a real one (its name no longer matches `checkpoint-<step>`).
INCOMPLETE_PREFIX = "incomplete-"
# A checkpoint holds the weights and Adam's two moments per weight (float32), plus small files.
CHECKPOINT_BYTES_PER_PARAMETER = 3 * 4
# Room asked for beyond one checkpoint: the final model, the tokenizer, logs and the model card.
SPARE_FACTOR = 2


def checkpoint_step(path: Path) -> int | None:
    """The step of a `checkpoint-<step>` folder name, else None."""
    prefix = f"{PREFIX_CHECKPOINT_DIR}-"
    name = path.name
    if path.is_dir() and name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return None


def is_complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing `checkpoint`: its state file, written last, parses and has its step."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == checkpoint_step(checkpoint)


def last_complete_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in `output_dir`, or None."""
    folders = [path for path in Path(output_dir).iterdir() if checkpoint_step(path) is not None]
    return max(filter(is_complete, folders), key=checkpoint_step, default=None)


def set_aside_incomplete(output_dir: str | os.PathLike, last_complete: Path | None) -> None:
    """Rename the checkpoints newer than `last_complete` (what `last_complete_checkpoint` found: those are the
    ones a run killed while saving left) to `incomplete-checkpoint-<step>`, with a warning: kept for inspection,
    never resumed from, and out of the Trainer's rotation."""
    newest_complete_step = -1 if last_complete is None else checkpoint_step(last_complete)
    for checkpoint in Path(output_dir).iterdir():
        step = checkpoint_step(checkpoint)
        if step is None or step <= newest_complete_step:
            continue
        set_aside = checkpoint.with_name(INCOMPLETE_PREFIX + checkpoint.name)
        shutil.rmtree(set_aside, ignore_errors=True)  # from an earlier crash at the same step
        checkpoint.rename(set_aside)
        logger.warning(
            "%s was not completely written (the run stopped while saving it): moved to %s; resuming from "
            "the checkpoint before it",
            checkpoint,
            set_aside.name,
        )


def check_writable(output_dir: str | os.PathLike) -> None:
    """Refuse, before any work, an output directory that cannot be created or written."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise OSError(f"--output_dir {output_dir}: cannot write there ({err.strerror}); use another folder") from None


def check_free_space(output_dir: str | os.PathLike, n_parameters: int) -> None:
    """Refuse, before training, an output directory without room for a checkpoint and the final model."""
    needed = SPARE_FACTOR * CHECKPOINT_BYTES_PER_PARAMETER * n_parameters
    free = shutil.disk_usage(output_dir).free
    if free < needed:
        raise OSError(
            f"--output_dir {output_dir}: {free / 1e6:.0f} MB free, but a checkpoint of this model and the final "
            f"model need about {needed / 1e6:.0f} MB; free some space or choose another folder"
        )


def resolve_checkpoint(value: str | None, output_dir: str | os.PathLike) -> str | None:
    """`--resume_from_checkpoint` as a folder: a path, or `last`/`true` for the newest complete checkpoint in
    output_dir (one a crash left half-written is set aside)."""
    if value is None:
        return None
    if value.lower() in ("last", "true"):
        output_dir = Path(output_dir)
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


__all__ = [
    "check_free_space",
    "check_writable",
    "checkpoint_step",
    "how_to_resume",
    "is_complete",
    "last_complete_checkpoint",
    "resolve_checkpoint",
    "set_aside_incomplete",
]
