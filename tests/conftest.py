import os

# Tests never reach the Hugging Face Hub: everything they load is made or shipped here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
