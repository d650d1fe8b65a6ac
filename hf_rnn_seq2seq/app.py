"""Watch the model work: a local web page (Gradio) where a person types a sentence and sees the translation (or the
summary, the reply: the page words itself after the model's task, read from its model card by `tasks.model_task`),
the n-best list of a beam search, the attention heatmap, and each decoding step — the Decoder's input token and the
Generator's most probable next tokens.

    hf-rnn-seq2seq app outputs/koen           # http://127.0.0.1:7860, this machine only
    python -c "from hf_rnn_seq2seq.app import serve; serve('outputs/koen')"

The model-side work is in `explanation` (`encode_source`, `n_best`, `decoding_steps`, `explain`), plain functions
that tests call without a browser; `build_app` lays them out on a page and `launch` serves it. The page works
offline: Gradio's telemetry and version check are off, its theme's fonts are the ones it ships, and Hangul is drawn
with the NanumGothic font that the attention plots use, served by the app itself, when the browser has no Korean
font of its own. Nothing is shared unless asked (`share=True`), and the server listens on 127.0.0.1 unless told
otherwise. Requests wait in a queue, `CONCURRENCY_LIMIT` of them decoded at a time.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import numpy as np

from .explanation import DEFAULT_BEAMS, DEFAULT_TOP_K, MAX_SOURCE_TOKENS, InputError, explain
from .loading import load_translator
from .modeling.pipeline import RNNTranslationPipeline
from .plotting import Alignment, attention_figure, korean_font_path
from .tasks import ModelTask, model_task

DEFAULT_HOST = "127.0.0.1"  # this machine only; give 0.0.0.0 to serve the network
MAX_BEAMS = 8
MAX_TOP_K = 10
# Requests decoded at the same time; the rest wait in the queue, at most MAX_QUEUE_SIZE of them. A request takes a
# fraction of a second on a CPU, and more at once would only share the same cores.
CONCURRENCY_LIMIT = 2
MAX_QUEUE_SIZE = 64
EXAMPLES = ["저는 커피를 좋아해요.", "내일 아침에 공원에서 만나요.", "이 책은 정말 재미있어요."]  # for Korean sources


@dataclass(frozen=True)
class Wording:
    """How the page names the input, the output and what the model does, for one task."""

    source: str  # the input box
    output: str  # the output box
    button: str
    verb: str  # "the model {verb} it"


WORDINGS = {
    "translation": Wording("Source sentence", "Translation", "Translate", "translates"),
    "summarization": Wording("Text to summarize", "Summary", "Summarize", "summarizes"),
    "dialogue": Wording("Message", "Reply", "Reply", "replies to"),
    "text2text": Wording("Input text", "Output", "Generate", "rewrites"),
}


def wording(task: ModelTask) -> tuple[Wording, list[str]]:
    """The page's words for the model's task, and its example inputs: the Korean ones for a Korean source (or a
    translation model whose card names no language, as the first models were ko→en), none otherwise."""
    words = WORDINGS[task.task]
    source_language = task.languages[0] if task.languages else None
    if source_language:
        words = Wording(f"{words.source} ({source_language})", words.output, words.button, words.verb)
    korean = source_language == "ko" or (source_language is None and task.task == "translation")
    return words, EXAMPLES if korean else []


N_BEST_HEADERS = ["rank", "translation", "score"]
STEP_HEADERS = ["step", "Decoder input", "output", "P(output)", "top-k next tokens (Generator softmax)"]
STEP_TABLE_MAX_HEIGHT = 1200  # pixels, about 40 steps; longer translations scroll within the table
PROBABILITY_DIGITS = 4  # decimals shown for probabilities and scores
# The page's fonts: Gradio's default Latin font (served by the app), then the Korean fonts of common systems, then
# NanumGothic served by the app (a browser fetches it only for Hangul that none of the fonts before it has).
LATIN_FONT = gr.themes.LocalFont("Source Sans Pro", weights=(400, 600))
HANGUL_WEB_FONT = "NanumGothic served"
# Of the NanumGothic files that come with the plots' font package, the one browsers accept: Chrome's font sanitizer
# refuses the others for their empty hinting-source tables (TSI3). It is also the smallest (1.5 MB).
HANGUL_WEB_FONT_FILE = "NanumGothicLight.ttf"
KOREAN_SYSTEM_FONTS = ("Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans KR", "Noto Sans CJK KR", "NanumGothic")
HANGUL_UNICODE_RANGE = "U+1100-11FF, U+3130-318F, U+A960-A97F, U+AC00-D7AF, U+D7B0-D7FF"


def attention_image(alignment: Alignment) -> np.ndarray:
    """The attention heatmap as an RGBA image, (height, width, 4): for the page, without a file in between."""
    figure = attention_figure(alignment)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())


def _rounded(value: float) -> float:
    return round(value, PROBABILITY_DIGITS)


def page_outputs(
    translator: RNNTranslationPipeline,
    text: str,
    num_beams: int = DEFAULT_BEAMS,
    top_k: int = DEFAULT_TOP_K,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
) -> tuple[str, str, dict, np.ndarray | None, dict]:
    """What the page's outputs show for `text`: message, translation, n-best table, heatmap, step table. Text the
    page refuses gives the reason as the message and empty outputs, never an error."""
    try:
        explanation = explain(translator, text, num_beams, top_k, max_source_tokens)
    except InputError as err:
        return str(err), "", {"headers": N_BEST_HEADERS, "data": []}, None, {"headers": STEP_HEADERS, "data": []}
    messages = []
    if explanation.unknown:
        pieces = " ".join(f"'{piece}'" for piece in dict.fromkeys(explanation.unknown))
        messages.append(
            f"⚠️ Not in the model's vocabulary, read as {translator.tokenizer.unk_token}: {pieces}. "
            "The translation cannot use them."
        )
    if explanation.alignment is None:
        messages.append("This model has no attention (config.attention=None): there is no heatmap to draw.")
    n_best_rows = [[rank, h.text, _rounded(h.score)] for rank, h in enumerate(explanation.n_best, 1)]
    step_rows = [
        [
            number,
            step.decoder_input,
            step.output,
            _rounded(step.probability),
            "  ·  ".join(f"{token} {probability:.{PROBABILITY_DIGITS}f}" for token, probability in step.top),
        ]
        for number, step in enumerate(explanation.steps, 1)
    ]
    image = None if explanation.alignment is None else attention_image(explanation.alignment)
    return (
        "\n\n".join(messages),
        explanation.translation,
        {"headers": N_BEST_HEADERS, "data": n_best_rows},
        image,
        {"headers": STEP_HEADERS, "data": step_rows},
    )


def build_app(
    translator: RNNTranslationPipeline,
    title: str,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    task: ModelTask | None = None,
) -> gr.Blocks:
    """The page: a sentence and the search's settings in, `page_outputs` out (also as the API endpoint
    /translate, whatever the task); worded for `task` (None: a translation model); a queue serves several people
    at once."""
    words, examples = wording(task or ModelTask())
    # Gradio's telemetry and version check would reach the Internet from the server. The page's setting covers the
    # Blocks; some of Gradio's calls read only this variable.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {title}\n"
            f"Type a text: the model {words.verb} it with beam search and shows how. "
            "The **score** of a hypothesis is the search's: the sum of its tokens' log-probabilities divided by "
            "its length (to the power `length_penalty`). Each **step** shows the token the Decoder read and the "
            "Generator's most probable next tokens."
        )
        with gr.Row():
            with gr.Column(scale=3):
                placeholder = examples[0] if examples else None
                source = gr.Textbox(label=words.source, placeholder=placeholder, lines=2, elem_id="source")
                with gr.Row():
                    num_beams = gr.Slider(1, MAX_BEAMS, value=DEFAULT_BEAMS, step=1, label="beam size (1: greedy)")
                    top_k = gr.Slider(1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="top-k tokens per step")
                button = gr.Button(words.button, variant="primary", elem_id="translate")
                if examples:
                    gr.Examples(examples, inputs=source)
                message = gr.Markdown(elem_id="message")
                translation = gr.Textbox(label=words.output, interactive=False, elem_id="translation")
                candidates = gr.Dataframe(
                    headers=N_BEST_HEADERS, label="n-best list", interactive=False, elem_id="n-best"
                )
            with gr.Column(scale=2):
                heatmap = gr.Image(
                    label=f"Attention (source across, {words.output.lower()} down)",
                    type="numpy",
                    format="png",
                    interactive=False,
                    elem_id="attention",
                )
        steps = gr.Dataframe(
            headers=STEP_HEADERS,
            label="Decoding, step by step",
            interactive=False,
            wrap=True,
            max_height=STEP_TABLE_MAX_HEIGHT,
            elem_id="steps",
        )

        def translate(text: str, beams: float, k: float) -> tuple[str, str, dict, np.ndarray | None, dict]:
            return page_outputs(translator, text, int(beams), int(k), max_source_tokens)

        gr.on(
            [button.click, source.submit],
            translate,
            inputs=[source, num_beams, top_k],
            outputs=[message, translation, candidates, heatmap, steps],
            api_name="translate",
        )
    return app.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=MAX_QUEUE_SIZE)


def theme() -> gr.themes.Base:
    """Gradio's default look and Latin font (which the app serves: no font service), then Hangul from the fonts
    named above."""
    korean = [f"'{name}'" for name in (*KOREAN_SYSTEM_FONTS, HANGUL_WEB_FONT)]  # quoted: names with spaces
    return gr.themes.Default(font=[LATIN_FONT, *korean, "ui-sans-serif", "system-ui", "sans-serif"])


def hangul_font_path() -> Path:
    """The NanumGothic file the page's @font-face serves."""
    return korean_font_path().with_name(HANGUL_WEB_FONT_FILE)


def hangul_font_css() -> str:
    """The @font-face that serves the bundled NanumGothic through the app's file route, for Hangul only."""
    url = f"/gradio_api/file={quote(hangul_font_path().as_posix())}"
    return (
        f"@font-face {{ font-family: '{HANGUL_WEB_FONT}'; src: url('{url}') format('truetype'); "
        f"unicode-range: {HANGUL_UNICODE_RANGE}; }}"
    )


def launch(
    app: gr.Blocks,
    host: str | None = DEFAULT_HOST,
    port: int | None = None,
    share: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Serve `app` on host:port (host None: Gradio's GRADIO_SERVER_NAME, which a Space sets; port None: 7860 or the
    next free port) and wait there, or return at once with `block=False` (then `app.close()` stops it).
    `share=True` also opens a public link through Gradio's relay: off unless asked."""
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        theme=theme(),
        css=hangul_font_css(),
        allowed_paths=[str(hangul_font_path())],
        ssr_mode=False,  # server-side rendering runs a Node server beside Python; the page needs none
        show_error=True,
    )
    return app


def serve(
    model: str | os.PathLike,
    host: str | None = DEFAULT_HOST,
    port: int | None = None,
    share: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Load `model` (a model directory or Hub id) and serve its page, worded for its task (see `launch`)."""
    translator = load_translator(model)
    task = model_task(model)
    title = f"{Path(str(model)).name}: watch the model {WORDINGS[task.task].button.lower()}"
    return launch(build_app(translator, title, task=task), host, port, share, block)


__all__ = ["DEFAULT_HOST", "WORDINGS", "build_app", "launch", "page_outputs", "serve", "wording"]
