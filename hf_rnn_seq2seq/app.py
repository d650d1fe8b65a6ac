"""Watch the model work: a local web page (Gradio) where a person types a sentence and sees the translation, the
n-best list of a beam search, the attention heatmap, and each decoding step — the Decoder's input token and the
Generator's most probable next tokens.

    hf-rnn-seq2seq app outputs/koen           # http://127.0.0.1:7860, this machine only
    python -c "from hf_rnn_seq2seq.app import serve; serve('outputs/koen')"

The model-side work is in plain functions (`encode_source`, `n_best`, `decoding_steps`, `explain`) that tests call
without a browser; `build_app` lays them out on a page and `launch` serves it. The page works offline: Gradio's
telemetry and version check are off, its theme's fonts are the ones it ships, and Hangul is drawn with the
NanumGothic font that the attention plots use, served by the app itself, when the browser has no Korean font of its
own. Nothing is shared unless asked (`share=True`), and the server listens on 127.0.0.1 unless told otherwise.
Requests wait in a queue, `CONCURRENCY_LIMIT` of them decoded at a time.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import numpy as np
import torch

from .loading import load_translator
from .modeling.pipeline import RNNTranslationPipeline, unknown_characters
from .plotting import Alignment, align_translation, attention_figure, korean_font_path, length_through_eos

DEFAULT_HOST = "127.0.0.1"  # this machine only; give 0.0.0.0 to serve the network
# Longer input is refused with a message: an RNN steps through every token, and one request should not hold a
# shared server for long. A sentence is far shorter.
MAX_SOURCE_TOKENS = 128
MAX_BEAMS = 8
DEFAULT_BEAMS = 5
MAX_TOP_K = 10
DEFAULT_TOP_K = 5
# Requests decoded at the same time; the rest wait in the queue, at most MAX_QUEUE_SIZE of them. A request takes a
# fraction of a second on a CPU, and more at once would only share the same cores.
CONCURRENCY_LIMIT = 2
MAX_QUEUE_SIZE = 64
EXAMPLES = ["저는 커피를 좋아해요.", "내일 아침에 공원에서 만나요.", "이 책은 정말 재미있어요."]
# What generate() divides a beam's log-probability by the length to the power of, where the model's generation
# config sets no `length_penalty` (transformers' GenerationConfig default).
GENERATE_LENGTH_PENALTY = 1.0
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


class InputError(ValueError):
    """Input the page cannot translate; the message says why, and is shown on the page."""


@dataclass
class Hypothesis:
    """One translation of the n-best list: its text, token ids (the start token, then through EOS) and score."""

    text: str
    ids: list[int]
    score: float  # the beam search's ranking score: sum of the tokens' log-probabilities / length ** length_penalty


@dataclass
class Step:
    """Decoding step t: the Decoder read `decoder_input` (ŷ_{t-1}) and the Generator's softmax gave `output` (ŷ_t,
    the token the search kept) the probability `probability`; `top` are its `top_k` most probable tokens."""

    decoder_input: str
    output: str
    probability: float
    top: list[tuple[str, float]]  # (token, P(token)), most probable first


@dataclass
class Explanation:
    """Everything the page shows for one sentence."""

    n_best: list[Hypothesis]  # best first
    steps: list[Step]  # of the best hypothesis, one per generated token
    alignment: Alignment | None  # None for a model without attention
    unknown: list[str]  # pieces of the input read as the unknown token

    @property
    def translation(self) -> str:
        return self.n_best[0].text


def encode_source(
    translator: RNNTranslationPipeline, text: str, max_source_tokens: int = MAX_SOURCE_TOKENS
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model's input for `text` (input_ids and attention_mask, each (1, src_len)) and the pieces of `text` the
    vocabulary lacks; InputError for text that is empty or longer than `max_source_tokens` tokens."""
    if not text.strip():
        raise InputError("Type a sentence to translate.")
    tokenizer = translator.tokenizer
    encoded = tokenizer(text, return_tensors="pt", return_offsets_mapping=tokenizer.is_fast)
    n_tokens = encoded["input_ids"].shape[1]
    if n_tokens > max_source_tokens:
        raise InputError(
            f"The sentence is {n_tokens} tokens long; this page translates at most {max_source_tokens}. "
            "Split it into shorter sentences."
        )
    unknown = unknown_characters(tokenizer, text, encoded)
    model_inputs = {name: encoded[name].to(translator.model.device) for name in ("input_ids", "attention_mask")}
    return model_inputs, unknown


@torch.no_grad()
def n_best(
    translator: RNNTranslationPipeline, model_inputs: dict[str, torch.Tensor], num_beams: int
) -> list[Hypothesis]:
    """The `num_beams` best translations of a beam search of that width (one, the greedy one, for 1), best first,
    with the scores the search ranked them by."""
    model = translator.model
    # The pipeline's own generate() arguments (its default length limit among them), with these on top.
    generate_kwargs = translator._prepare_generate_kwargs(
        {
            "num_beams": num_beams,
            "num_return_sequences": num_beams,
            "do_sample": False,
            "output_scores": True,
            "return_dict_in_generate": True,
        }
    )
    output = model.generate(**model_inputs, **generate_kwargs)
    eos_token_id = model.config.eos_token_id
    rows = [row[: length_through_eos(row, eos_token_id)] for row in output.sequences.tolist()]
    if num_beams > 1:
        scores = output.sequences_scores.tolist()
    else:
        # Greedy search keeps no score: the same formula from its steps' log-probabilities.
        log_probabilities = model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        n_generated = len(rows[0]) - 1
        length_penalty = model.generation_config.length_penalty
        if length_penalty is None:
            length_penalty = GENERATE_LENGTH_PENALTY
        scores = [log_probabilities[0, :n_generated].sum().item() / n_generated**length_penalty]
    decode = translator.target_tokenizer.decode
    return [Hypothesis(decode(ids, skip_special_tokens=True), ids, score) for ids, score in zip(rows, scores)]


@torch.no_grad()
def decoding_steps(
    translator: RNNTranslationPipeline, model_inputs: dict[str, torch.Tensor], ids: list[int], top_k: int
) -> list[Step]:
    """The steps that produced the translation `ids` (the start token, then the output): at step t the Decoder reads
    ids[t - 1] and the Generator's softmax gives P(ids[t]) and the `top_k` most probable next tokens. One
    teacher-forced pass over `ids`, which gives the distributions the search saw."""
    model = translator.model
    decoder_input_ids = torch.tensor([ids[:-1]], device=model.device)  # (1, n): <s>, ŷ_1 .. ŷ_{n-1}
    h_dec = model.model(**model_inputs, decoder_input_ids=decoder_input_ids).last_hidden_state  # (1, n, hidden)
    probabilities = model.generator.probabilities(h_dec)[0].float().cpu()  # (n, |V|)
    top = probabilities.topk(top_k, dim=-1)  # values and indices (n, top_k)
    outputs = ids[1:]
    chosen = probabilities[torch.arange(len(outputs)), outputs].tolist()  # (n,)
    tokens = translator.target_tokenizer.convert_ids_to_tokens
    return [
        Step(
            decoder_input=decoder_input,
            output=output,
            probability=probability,
            top=list(zip(tokens(top_ids), top_probabilities)),
        )
        for decoder_input, output, probability, top_ids, top_probabilities in zip(
            tokens(ids[:-1]), tokens(outputs), chosen, top.indices.tolist(), top.values.tolist()
        )
    ]


def explain(
    translator: RNNTranslationPipeline,
    text: str,
    num_beams: int = DEFAULT_BEAMS,
    top_k: int = DEFAULT_TOP_K,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
) -> Explanation:
    """Translate `text` with a beam of `num_beams` and gather what the page shows; InputError for text it refuses."""
    model_inputs, unknown = encode_source(translator, text, max_source_tokens)
    hypotheses = n_best(translator, model_inputs, num_beams)
    best = hypotheses[0].ids
    alignment = None
    if translator.model.config.attention is not None:
        alignment = align_translation(
            translator.model, translator.tokenizer, translator.target_tokenizer, text, torch.tensor([best])
        )
    return Explanation(hypotheses, decoding_steps(translator, model_inputs, best, top_k), alignment, unknown)


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


def build_app(translator: RNNTranslationPipeline, title: str, max_source_tokens: int = MAX_SOURCE_TOKENS) -> gr.Blocks:
    """The page: a sentence and the search's settings in, `page_outputs` out (also as the API endpoint
    /translate); a queue serves several people at once."""
    # Gradio's telemetry and version check would reach the Internet from the server. The page's setting covers the
    # Blocks; some of Gradio's calls read only this variable.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {title}\n"
            "Type a Korean sentence: the model translates it with beam search and shows how. "
            "The **score** of a hypothesis is the search's: the sum of its tokens' log-probabilities divided by "
            "its length (to the power `length_penalty`). Each **step** shows the token the Decoder read and the "
            "Generator's most probable next tokens."
        )
        with gr.Row():
            with gr.Column(scale=3):
                source = gr.Textbox(label="Korean", placeholder=EXAMPLES[0], lines=2, elem_id="source")
                with gr.Row():
                    num_beams = gr.Slider(1, MAX_BEAMS, value=DEFAULT_BEAMS, step=1, label="beam size (1: greedy)")
                    top_k = gr.Slider(1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="top-k tokens per step")
                button = gr.Button("Translate", variant="primary", elem_id="translate")
                gr.Examples(EXAMPLES, inputs=source)
                message = gr.Markdown(elem_id="message")
                translation = gr.Textbox(label="Translation", interactive=False, elem_id="translation")
                candidates = gr.Dataframe(
                    headers=N_BEST_HEADERS, label="n-best list", interactive=False, elem_id="n-best"
                )
            with gr.Column(scale=2):
                heatmap = gr.Image(
                    label="Attention (source across, translation down)",
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
    """Load `model` (a model directory or Hub id) and serve its page (see `launch`)."""
    translator = load_translator(model)
    title = f"{Path(str(model)).name}: watch the model translate"
    return launch(build_app(translator, title), host, port, share, block)


__all__ = [
    "DEFAULT_HOST",
    "MAX_SOURCE_TOKENS",
    "Explanation",
    "Hypothesis",
    "InputError",
    "Step",
    "build_app",
    "decoding_steps",
    "encode_source",
    "explain",
    "launch",
    "n_best",
    "page_outputs",
    "serve",
]
