"""Pictures of a model: attention alignments (source tokens x target tokens) and training curves, as PNG.

Hangul needs a font that has it; matplotlib's own DejaVu Sans draws boxes. NanumGothic (SIL Open Font
Licence) comes from the `koreanize-matplotlib` package, whose font file is read directly: importing that
package would change matplotlib's global settings (and it imports `distutils`, gone in Python 3.12).
Figures are drawn with matplotlib's object API on the Agg canvas, so nothing touches pyplot's global state or
needs a display.
"""

import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .scoring import length_through_eos

KOREAN_FONT_PACKAGE, KOREAN_FONT_DISTRIBUTION = "koreanize_matplotlib", "koreanize-matplotlib"
KOREAN_FONT_FILE = Path("fonts") / "NanumGothic.ttf"
FALLBACK_FONT = "DejaVu Sans"
DPI = 100
# Attention heatmaps grow with the sentence: this much per token, plus room for labels and the colour bar.
INCHES_PER_TOKEN = 0.35
MARGIN_INCHES = 2.5
MIN_SIDE_INCHES = 4.0
CURVES_FIGSIZE = (10.0, 4.0)  # inches: loss on the left, validation scores on the right
LOSS_KEYS = ("loss", "eval_loss")
SCORE_KEYS = ("eval_bleu", "eval_chrf")
CURVE_LABELS = {"loss": "training loss", "eval_loss": "validation loss", "eval_bleu": "BLEU", "eval_chrf": "chrF"}


def korean_font_path() -> Path:
    """The bundled Korean font file (NanumGothic, TrueType)."""
    spec = importlib.util.find_spec(KOREAN_FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"plots need the Hangul font of the {KOREAN_FONT_DISTRIBUTION} package: "
            f"pip install {KOREAN_FONT_DISTRIBUTION}"
        )
    return Path(spec.submodule_search_locations[0]) / KOREAN_FONT_FILE


@functools.cache
def font_families() -> list[str]:
    """Register the bundled Korean font with matplotlib (once: every registration adds an entry to matplotlib's
    font list, which a long-running app would grow without end); return the font families to draw tokens with."""
    font_path = korean_font_path()
    font_manager.fontManager.addfont(str(font_path))
    # DejaVu Sans (matplotlib's own) draws what NanumGothic lacks, such as the "▁" of subword tokens.
    return [font_manager.FontProperties(fname=font_path).get_name(), FALLBACK_FONT]


def _new_figure(figsize: tuple[float, float]) -> Figure:
    figure = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)  # fixed size: no bbox_inches="tight", so the size is predictable
    return path


@dataclass
class Alignment:
    """Attention of one translation: `weights[t, s]` is how much output token t looked at source token s."""

    source_tokens: list[str]
    target_tokens: list[str]
    weights: np.ndarray  # (len(target_tokens), len(source_tokens)), rows sum to 1
    source_text: str
    translation: str


@torch.no_grad()
def align(
    model: PreTrainedModel,
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    sentence: str,
    **generate_kwargs,
) -> Alignment:
    """Translate `sentence`, then read the attention the model paid while producing that translation."""
    _check_alignable(model, sentence)
    model.eval()
    encoded = source_tokenizer(sentence, return_tensors="pt").to(model.device)
    generated = model.generate(**encoded, **generate_kwargs)[:1]  # (1, 1 + n): the start token, then the output
    return align_translation(model, source_tokenizer, target_tokenizer, sentence, generated)


def _check_alignable(model: PreTrainedModel, sentence: str) -> None:
    if model.config.attention is None:
        raise ValueError("this model has no attention (config.attention=None): there is no alignment to plot")
    if not sentence.strip():
        raise ValueError("cannot plot the attention of an empty sentence")


@torch.no_grad()
def align_translation(
    model: PreTrainedModel,
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    sentence: str,
    generated: torch.Tensor,  # (1, 1 + n): the start token, then a translation of `sentence`
) -> Alignment:
    """The attention the model paid while producing `generated` from `sentence`: one teacher-forced pass over the
    generated tokens, which gives the same weights as the steps of the search that produced them. For callers that
    already hold the translation (a beam's best hypothesis, say), so that it is not searched for again."""
    _check_alignable(model, sentence)
    model.eval()
    encoded = source_tokenizer(sentence, return_tensors="pt").to(model.device)
    generated = generated[:, : length_through_eos(generated[0].tolist(), model.config.eos_token_id)]
    output = model(**encoded, decoder_input_ids=generated[:, :-1], output_attentions=True)
    weights = output.cross_attentions[0][0, 0]  # (n, src_len): row t predicts generated[t + 1]
    return Alignment(
        source_tokens=source_tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()),
        target_tokens=target_tokenizer.convert_ids_to_tokens(generated[0, 1:].tolist()),
        weights=weights.float().cpu().numpy(),
        source_text=sentence,
        translation=target_tokenizer.decode(generated[0], skip_special_tokens=True),
    )


def attention_figsize(n_source: int, n_target: int) -> tuple[float, float]:
    """Size in inches of the heatmap figure of an alignment of `n_source` x `n_target` tokens."""
    width = max(MIN_SIDE_INCHES, n_source * INCHES_PER_TOKEN + MARGIN_INCHES)
    height = max(MIN_SIDE_INCHES, n_target * INCHES_PER_TOKEN + MARGIN_INCHES)
    return width, height


def plot_attention(alignment: Alignment, path: str | os.PathLike) -> Path:
    """Draw `alignment` as a heatmap (source tokens across, target tokens down) into the PNG file `path`."""
    return _save(attention_figure(alignment), path)


def attention_figure(alignment: Alignment) -> Figure:
    """`alignment` as a heatmap (source tokens across, target tokens down), on an Agg canvas of its own."""
    figure = _new_figure(attention_figsize(len(alignment.source_tokens), len(alignment.target_tokens)))
    font = font_families()
    ax = figure.add_subplot()
    image = ax.imshow(alignment.weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(
        range(len(alignment.source_tokens)),
        alignment.source_tokens,
        rotation=45,
        ha="left",
        rotation_mode="anchor",
        fontfamily=font,
    )
    ax.set_yticks(range(len(alignment.target_tokens)), alignment.target_tokens, fontfamily=font)
    ax.xaxis.tick_top()
    ax.set_xlabel("source", fontfamily=font)
    ax.set_ylabel("translation", fontfamily=font)
    caption = f"source: {alignment.source_text}\ntranslation: {alignment.translation}"
    figure.suptitle(caption, fontfamily=font, y=0.02, va="bottom")
    figure.colorbar(image, ax=ax, fraction=0.05)
    figure.subplots_adjust(bottom=0.15)
    return figure


def read_log_history(source: str | os.PathLike | list[dict]) -> list[dict]:
    """The Trainer's log history: given directly, or read from a `trainer_state.json` file (or its folder)."""
    if isinstance(source, list):
        return source
    path = Path(source)
    if path.is_dir():
        path = path / "trainer_state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise OSError(f"{path}: cannot read the training state: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise ValueError(f"{path}: no log_history list; expected the trainer_state.json a Trainer writes")
    return state["log_history"]


def _series(log_history: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(entry["step"], entry[key]) for entry in log_history if key in entry and "step" in entry]
    return [step for step, _ in points], [value for _, value in points]


def plot_training_curves(log_history: str | os.PathLike | list[dict], path: str | os.PathLike) -> Path:
    """Training and validation loss, and validation BLEU/chrF, over training steps, into the PNG file `path`.

    `log_history` is `trainer.state.log_history`, or a path to the `trainer_state.json` a Trainer writes.
    """
    log_history = read_log_history(log_history)
    curves = {key: _series(log_history, key) for key in CURVE_LABELS}
    if not any(steps for steps, _ in curves.values()):
        raise ValueError("the log history has no loss, eval_loss, eval_bleu or eval_chrf entries to plot")
    figure = _new_figure(CURVES_FIGSIZE)
    loss_ax, score_ax = figure.subplots(1, 2)
    for ax, keys, title in ((loss_ax, LOSS_KEYS, "loss"), (score_ax, SCORE_KEYS, "validation score")):
        for key in keys:
            steps, values = curves[key]
            if steps:
                ax.plot(
                    steps, values, marker="o" if key.startswith("eval") else None, markersize=3, label=CURVE_LABELS[key]
                )
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    figure.tight_layout()
    return _save(figure, path)


__all__ = [
    "Alignment",
    "align",
    "align_translation",
    "attention_figure",
    "attention_figsize",
    "korean_font_path",
    "length_through_eos",
    "plot_attention",
    "plot_training_curves",
    "read_log_history",
]
