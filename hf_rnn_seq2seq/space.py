"""Write a Hugging Face Space that serves a model from the Hub with this package's app (`hf_rnn_seq2seq.app`).

    hf-rnn-seq2seq app --write-space my-space user/koen-model
    cd my-space && git init && ... push to https://huggingface.co/spaces/user/koen-demo

A Space installs its requirements.txt and runs app.py. The requirements name this package with its app extra, at
the version that wrote the Space, so app.py is three lines: the page is the one `hf-rnn-seq2seq app` serves. The
model loads through the package's registered classes from safetensors, so the Space runs none of the code in the
model repository (no `trust_remote_code`). Writing a Space needs no Gradio.
"""

import os
import re
from importlib.metadata import version
from pathlib import Path

DISTRIBUTION = "hf-rnn-seq2seq"
# The Gradio a Space runs (its README's sdk_version): the version this package's app extra was tested with.
GRADIO_VERSION = "6.31.0"
PYTHON_VERSION = "3.11"
APP_FILE = "app.py"
# Spaces run on CPUs unless given a GPU: torch's CPU wheels are far smaller than the CUDA ones on PyPI.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# A Hub model id: "name" or "owner/name", letters, digits, "-", "_", "." (what the Hub accepts; no quotes, so it
# can be written into app.py as a string literal as it is).
MODEL_ID_PATTERN = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")

APP_TEMPLATE = '''"""Watch {model_id} translate: the page of `hf-rnn-seq2seq app`, served from a Hugging Face Space."""

from hf_rnn_seq2seq.app import serve

# host None: listen where the Space says (GRADIO_SERVER_NAME), not on 127.0.0.1 as the command does by default.
serve("{model_id}", host=None)
'''

README_TEMPLATE = """---
title: {title}
emoji: 🔤
colorFrom: blue
colorTo: indigo
sdk: gradio
sdk_version: {gradio_version}
python_version: "{python_version}"
app_file: {app_file}
models:
  - {model_id}
license: apache-2.0
short_description: Watch an RNN encoder-decoder translate, step by step
---

# {title}

Type a Korean sentence and watch [{model_id}](https://huggingface.co/{model_id}) translate it: the translation, the
n-best list of a beam search with scores, the attention heatmap, and each decoding step (the Decoder's input token
and the Generator's most probable next tokens). Served by the app of
[hf-rnn-seq2seq]({distribution_url}) {package_version}.
"""


def write_space(directory: str | os.PathLike, model_id: str) -> list[Path]:
    """Write app.py, requirements.txt and README.md (with the Space's front matter) of a Space serving `model_id`
    into `directory`; return their paths. An existing file of those names is overwritten."""
    if not MODEL_ID_PATTERN.match(model_id):
        raise ValueError(f"{model_id!r} is not a Hub model id; give one like 'user/model-name'")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    package_version = version(DISTRIBUTION)
    title = f"{model_id.rsplit('/', 1)[-1]} translator"
    files = {
        APP_FILE: APP_TEMPLATE.format(model_id=model_id),
        "requirements.txt": f"--extra-index-url {TORCH_CPU_INDEX}\n{DISTRIBUTION}[app]=={package_version}\n",
        "README.md": README_TEMPLATE.format(
            title=title,
            gradio_version=GRADIO_VERSION,
            python_version=PYTHON_VERSION,
            app_file=APP_FILE,
            model_id=model_id,
            distribution_url=f"https://pypi.org/project/{DISTRIBUTION}/",
            package_version=package_version,
        ),
    }
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


__all__ = ["GRADIO_VERSION", "write_space"]
