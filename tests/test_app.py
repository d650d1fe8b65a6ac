"""The app (`hf-rnn-seq2seq app`): its computations as plain functions, the page through Gradio's API client, and the
page itself in a real browser (headless Chromium driven by Playwright), all on one tiny model trained here so that
its translations, n-best lists and steps mean something. One app is launched for the module, on 127.0.0.1."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util
import runpy
import shutil
import socket
from importlib.metadata import requires, version
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
import yaml
from packaging.requirements import Requirement
from PIL import Image
from tiny_models import ENGLISH, KOREAN, save_tiny_translator

from hf_rnn_seq2seq import app, explanation
from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.space import GRADIO_VERSION, write_space
from hf_rnn_seq2seq.tasks import model_task

TRAIN_STEPS = 150  # enough for the tiny model to translate most of tiny_models.PAIRS (10-15 s on one thread)
TRAINED_SIZE = {"embedding_size": 32, "hidden_size": 32}
SENTENCE = KOREAN[0]  # "나는 지금 빵을 만들어요." -> "I make bread now."
BEAMS, TOP_K = 3, 4
MIN_PIXEL_STD = 10.0  # a blank or single-colour image has (almost) no spread in its pixel values
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
BROWSER_TIMEOUT_MS = 60_000  # the first translation also loads the page's fonts; two shared cores can be slow
CONCURRENT_REQUESTS = 4
REQUEST_TIMEOUT_S = 120
SPACE_MODEL_ID = "someone/koen-rnn"


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    """A tiny model trained on tiny_models.PAIRS (in place of conftest's untrained one): its outputs mean something."""
    model_dir = save_tiny_translator(tmp_path_factory.mktemp("trained"), train_steps=TRAIN_STEPS, **TRAINED_SIZE)
    return load_translator(model_dir)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def connections():
    """The hosts this process looks up or connects to while the module's app runs: its server, the API client, the
    browser's driver. Gradio's telemetry or a font service would show here (as a lookup, where DNS is offline)."""
    hosts = []
    getaddrinfo, connect, connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def looked_up(host, *args, **kwargs):
        hosts.append(host)
        return getaddrinfo(host, *args, **kwargs)

    def recorded(method):
        def call(self, address):
            if isinstance(address, tuple):  # an internet address, (host, port, ...); a Unix socket's is a path
                hosts.append(address[0])
            return method(self, address)

        return call

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", looked_up)
        patch.setattr(socket.socket, "connect", recorded(connect))
        patch.setattr(socket.socket, "connect_ex", recorded(connect_ex))
        yield hosts


@pytest.fixture(scope="module")
def url(translator, connections):
    """The page of `translator`, served on 127.0.0.1 for the module's tests."""
    port = free_port()
    served = app.launch(app.build_app(translator, "tiny model"), host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    served.close()


@pytest.fixture(scope="module")
def client(url, tmp_path_factory):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(
        url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("downloads"))
    )


# The computations, without a page.


@pytest.mark.parametrize("num_beams", [1, BEAMS])
def test_n_best_gives_one_hypothesis_per_beam_best_first(translator, num_beams):
    model_inputs, _ = explanation.encode_source(translator, SENTENCE)
    hypotheses = explanation.n_best(translator, model_inputs, num_beams)
    assert len(hypotheses) == num_beams
    scores = [hypothesis.score for hypothesis in hypotheses]
    assert scores == sorted(scores, reverse=True) and all(score <= 0 for score in scores)
    assert hypotheses[0].text == translator(SENTENCE, num_beams=num_beams)[0]["translation_text"]
    assert hypotheses[0].text in ENGLISH  # a sentence it learnt (which one, a CPU's rounding can tip: CI saw two)
    for hypothesis in hypotheses:
        assert hypothesis.ids[0] == translator.model.config.decoder_start_token_id
        assert hypothesis.ids[-1] == translator.model.config.eos_token_id
    # The score is the mean log-probability of the tokens (length_penalty 1.0), which the steps give one by one.
    steps = explanation.decoding_steps(translator, model_inputs, hypotheses[0].ids, TOP_K)
    assert np.isclose(np.mean([np.log(step.probability) for step in steps]), scores[0], atol=1e-4)


def test_steps_are_the_generators_distribution_at_each_greedy_step(translator):
    """One row per generated token; the probabilities are those of generate()'s own steps (an independent path:
    one RNN step at a time, where the table comes from a teacher-forced pass)."""
    assert_steps_are_generates_distributions(translator)


def test_steps_of_a_pointer_generator_are_its_mixture(tmp_path):
    """With copy_attention and coverage, the table shows the distribution generate() ranks by: the mixture."""
    options = dict(attention="additive", copy_attention=True, coverage=True)
    assert_steps_are_generates_distributions(load_translator(save_tiny_translator(tmp_path, **options)))


def assert_steps_are_generates_distributions(translator) -> None:
    model_inputs, _ = explanation.encode_source(translator, SENTENCE)
    output = translator.model.generate(
        **model_inputs, num_beams=1, do_sample=False, output_scores=True, return_dict_in_generate=True
    )
    ids = output.sequences[0].tolist()
    steps = explanation.decoding_steps(translator, model_inputs, ids, TOP_K)
    tokens = translator.target_tokenizer.convert_ids_to_tokens(ids)
    assert len(steps) == len(ids) - 1 == len(output.scores)
    for t, (step, logits) in enumerate(zip(steps, output.scores)):
        expected = torch.softmax(logits[0].float(), dim=-1)
        assert (step.decoder_input, step.output) == (tokens[t], tokens[t + 1])
        assert np.isclose(step.probability, expected[ids[t + 1]].item(), atol=1e-5)
        top_tokens, top_probabilities = zip(*step.top)
        assert len(step.top) == TOP_K and list(top_probabilities) == sorted(top_probabilities, reverse=True)
        assert all(0 <= p <= 1 for p in top_probabilities) and sum(top_probabilities) <= 1 + 1e-6
        assert np.allclose(top_probabilities, expected.topk(TOP_K).values.numpy(), atol=1e-5)
        assert top_tokens[0] == step.output  # greedy: the kept token is the most probable one


def test_page_outputs_show_translation_tables_and_heatmap(translator):
    message, translation, n_best, image, steps = app.page_outputs(translator, SENTENCE, BEAMS, TOP_K)
    assert message == "" and translation == translator(SENTENCE, num_beams=BEAMS)[0]["translation_text"]
    assert translation in ENGLISH
    assert n_best["headers"] == app.N_BEST_HEADERS and [row[0] for row in n_best["data"]] == [1, 2, 3]
    assert n_best["data"][0][1] == translation
    assert steps["headers"] == app.STEP_HEADERS and steps["data"][-1][2] == "</s>"
    assert [row[0] for row in steps["data"]] == list(range(1, len(steps["data"]) + 1))
    assert steps["data"][0][1] == "<s>" and len(steps["data"][0][4].split("·")) == TOP_K
    assert image.ndim == 3 and image.shape[2] == 4 and image[..., :3].std() > MIN_PIXEL_STD


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Type a sentence"),
        ("   \n", "Type a sentence"),
        ("빵" * (explanation.MAX_SOURCE_TOKENS + 1), f"translates at most {explanation.MAX_SOURCE_TOKENS}"),
    ],
)
def test_refused_input_gives_a_message_and_empty_outputs(translator, text, message):
    shown, translation, n_best, image, steps = app.page_outputs(translator, text)
    assert message in shown
    assert (translation, n_best["data"], image, steps["data"]) == ("", [], None, [])


def test_characters_outside_the_vocabulary_are_named_beside_the_translation(translator):
    message, translation, *_ = app.page_outputs(translator, "나는 漢字 😀 빵을 만들어요.", BEAMS, TOP_K)
    assert "Not in the model's vocabulary, read as <unk>: '漢字' '😀'" in message
    assert translation


def test_a_model_without_attention_gets_no_heatmap_but_everything_else(tmp_path):
    translator = load_translator(save_tiny_translator(tmp_path, attention=None, input_feeding=False))
    message, translation, _, image, steps = app.page_outputs(translator, SENTENCE)
    assert "no attention" in message and image is None and steps["data"]


# The page through Gradio's API client.


def test_api_answers_as_the_functions_do(translator, client):
    message, translation, n_best, image_path, steps = client.predict(SENTENCE, BEAMS, TOP_K, api_name="/translate")
    expected = app.page_outputs(translator, SENTENCE, BEAMS, TOP_K)
    assert (message, translation) == expected[:2]
    assert n_best["data"] == expected[2]["data"] and steps["data"] == expected[4]["data"]
    with Image.open(image_path) as image:
        assert image.format == "PNG" and image.size == expected[3].shape[1::-1]


def test_api_refuses_empty_input_with_a_message(client):
    message, translation, n_best, image, steps = client.predict("", BEAMS, TOP_K, api_name="/translate")
    assert "Type a sentence" in message and translation == "" and image is None


def test_requests_at_once_are_queued_and_all_answered(translator, client):
    """Several people at once: their requests wait in the queue and each gets its own answer."""
    sentences = KOREAN[:CONCURRENT_REQUESTS]
    jobs = [client.submit(sentence, BEAMS, TOP_K, api_name="/translate") for sentence in sentences]
    answers = [job.result(timeout=REQUEST_TIMEOUT_S) for job in jobs]
    assert [answer[1] for answer in answers] == [
        app.page_outputs(translator, sentence, BEAMS, TOP_K)[1] for sentence in sentences
    ]


# The page in a browser.


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system's Chromium for Playwright to drive, or a skip saying what is missing."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright is not installed: pip install playwright (the test extra has it)")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no Chromium: install Debian's chromium package (apt-get install chromium), as .ci/run does")
    return chromium


# The load status of the page's font faces of a family, once the fonts the page uses are in ("error" for a font file
# the browser refused).
HANGUL_FONT_STATUS = """async family => {
    await document.fonts.ready;
    return [...document.fonts].filter(face => face.family.replaceAll('"', '') === family).map(face => face.status);
}"""
REFUSED_ON_THE_PAGE = [
    ("", "Type a sentence"),
    ("나는 漢字 빵을 만들어요.", "Not in the model's vocabulary"),
    ("빵" * (explanation.MAX_SOURCE_TOKENS + 1), f"translates at most {explanation.MAX_SOURCE_TOKENS}"),
]


def table_rows(table) -> list[list[str]]:
    """The body rows of a Gradio Dataframe on the page, as the cells' text."""
    return table.evaluate(
        "t => [...t.querySelectorAll('div[role=row]')].map("
        "r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))"
    )


def test_in_a_browser(chromium, translator, url):
    """A person's view: type a sentence, press Translate, read the translation, the n-best list and the steps, see
    the heatmap and the Hangul; refused input gives a message. No request leaves this machine."""
    from playwright.sync_api import expect, sync_playwright

    _, translation, n_best, _, steps = app.page_outputs(
        translator, SENTENCE, explanation.DEFAULT_BEAMS, explanation.DEFAULT_TOP_K
    )
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(BROWSER_TIMEOUT_MS)
            tab.on("request", lambda request: requests.append(request.url))
            tab.goto(url)
            tab.locator("#source textarea").fill(SENTENCE)
            tab.locator("#translate").click()
            expect(tab.locator("#translation textarea")).to_have_value(translation)
            expect(tab.locator("#attention img")).to_be_visible()
            assert tab.locator("#attention img").evaluate("img => img.complete && img.naturalWidth > 0")
            assert [row[1] for row in table_rows(tab.locator("#n-best"))] == [row[1] for row in n_best["data"]]
            assert [row[1:3] for row in table_rows(tab.locator("#steps"))] == [row[1:3] for row in steps["data"]]
            # This machine has no Korean font: the Hangul on the page is drawn with the one the app serves.
            assert tab.evaluate(HANGUL_FONT_STATUS, app.HANGUL_WEB_FONT) == ["loaded"]

            for text, message in REFUSED_ON_THE_PAGE:
                tab.locator("#source textarea").fill(text)
                tab.locator("#translate").click()
                expect(tab.locator("#message")).to_contain_text(message)
        finally:
            browser.close()
    outside = [request for request in requests if urlparse(request).hostname not in LOOPBACK_HOSTS]
    assert requests and not outside, outside


def test_the_server_and_its_clients_connected_to_this_machine_only(url, client, connections):
    """Run after the tests above (pytest keeps a module's order): nothing they did reached beyond loopback."""
    client.predict(SENTENCE, BEAMS, TOP_K, api_name="/translate")
    assert connections and set(connections) <= LOOPBACK_HOSTS, connections


# The Space writer.


def test_write_space_writes_a_space_that_serves_the_model(tmp_path, monkeypatch):
    paths = write_space(tmp_path / "space", SPACE_MODEL_ID)
    assert sorted(path.name for path in paths) == ["README.md", "app.py", "requirements.txt"]
    space = tmp_path / "space"

    # app.py serves the model with this package's page, listening where the Space says.
    served = []
    monkeypatch.setattr(app, "serve", lambda *args, **kwargs: served.append((args, kwargs)))
    runpy.run_path(str(space / "app.py"), run_name="__main__")
    assert served == [((SPACE_MODEL_ID,), {"host": None})]

    requirements = [line for line in (space / "requirements.txt").read_text().splitlines() if line[:1] not in "-#"]
    assert requirements == [f"hf-rnn-seq2seq[app]=={version('hf-rnn-seq2seq')}"]

    _, front_matter, body = (space / "README.md").read_text(encoding="utf-8").split("---\n", 2)
    card = yaml.safe_load(front_matter)
    assert card["sdk"] == "gradio" and card["sdk_version"] == GRADIO_VERSION and card["app_file"] == "app.py"
    assert card["models"] == [SPACE_MODEL_ID] and card["license"] and SPACE_MODEL_ID in body


def test_the_spaces_gradio_is_one_the_app_extra_allows():
    requirements = [Requirement(line) for line in requires("hf-rnn-seq2seq")]
    (gradio,) = [r for r in requirements if r.name == "gradio" and r.marker and r.marker.evaluate({"extra": "app"})]
    assert gradio.specifier.contains(GRADIO_VERSION)


def test_write_space_refuses_what_is_not_a_model_id(tmp_path):
    with pytest.raises(ValueError, match="not a Hub model id"):
        write_space(tmp_path, "a/b/c")


# Other tasks: the page's words come from the model card's task.


def page_labels(page) -> dict[str, str]:
    """{elem_id: label or value} of the page's input box, output box and button."""
    return {
        block.elem_id: getattr(block, "label", None) or getattr(block, "value", None)
        for block in page.blocks.values()
        if getattr(block, "elem_id", None) in ("source", "translation", "translate")
    }


@pytest.mark.parametrize(
    "card, expected, has_examples",
    [
        (None, {"source": "Source sentence", "translation": "Translation", "translate": "Translate"}, True),
        ("tags: [summarization, rnn]", {"source": "Text to summarize", "translation": "Summary"}, False),
        ("language: [ko]\ntags: [dialogue]", {"source": "Message (ko)", "translation": "Reply"}, True),
    ],
)
def test_the_page_is_worded_for_the_models_task(translator, tmp_path, card, expected, has_examples):
    if card is not None:
        (tmp_path / "README.md").write_text(f"---\n{card}\n---\n# a model\n", encoding="utf-8")
    task = model_task(tmp_path)
    page = app.build_app(translator, "tiny model", task=task)
    assert expected.items() <= page_labels(page).items()
    assert bool(app.wording(task)[1]) == has_examples
    page.close()
