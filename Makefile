# The two commands README.md starts with. Both create the virtual environment on first use.
# torch==2.13.0 is pinned on the same pip line as the package: without it pip resolves a multi-GB CUDA build.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test install clean

demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m hf_rnn_seq2seq.demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -ra

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]" "torch==2.13.0"
	touch $@

clean:
	rm -rf $(VENV) *.egg-info
