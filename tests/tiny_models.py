"""Tiny models and toy data shared by the pipeline, translate, CLI, plot and ONNX tests.

`save_tiny_translator` writes what a trained output directory holds (model, tokenizer, generation config) for a
Korean→English model too small to translate well but real in every other way. `train_reverse_model` trains a
tiny model on reversing token sequences (as test_learning.py does), so that its searches have clear winners.
`write_digit_corpus` writes a corpus that `training.main` learns in a few hundred steps with `TINY_MODEL`.
"""

import itertools
import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_rnn_seq2seq.tokenization import BYTE_TOKENS, save_tokenizers, train_tokenizer

# 4 x 4 x 5 x 4 = 320 short handwritten sentence pairs built from parts.
SUBJECTS = [("나는", "I"), ("우리는", "we"), ("언니는", "my sister"), ("아이들은", "the children")]
TIMES = [("지금", "now"), ("아침에", "in the morning"), ("주말에", "on weekends"), ("가끔", "sometimes")]
OBJECTS = [
    ("빵을", "bread"),
    ("물을", "water"),
    ("신문을", "the paper"),
    ("노래를", "a song"),
    ("차를", "tea"),
]
VERBS = [("만들어요", "make"), ("마셔요", "drink"), ("읽어요", "read"), ("들어요", "hear")]
PAIRS = [
    (f"{s_ko} {t_ko} {o_ko} {v_ko}.", f"{s_en[0].upper()}{s_en[1:]} {v_en} {o_en} {t_en}.")
    for (s_ko, s_en), (t_ko, t_en), (o_ko, o_en), (v_ko, v_en) in itertools.product(SUBJECTS, TIMES, OBJECTS, VERBS)
]
KOREAN = [ko for ko, _ in PAIRS]
ENGLISH = [en for _, en in PAIRS]
VOCAB_SIZE = 200
REPO_ROOT = Path(__file__).parents[1]
HIDDEN_SIZE = 16
MAX_NEW_TOKENS = 8


def save_tiny_translator(directory: Path, train_steps: int = 0, byte_fallback: bool = False, **config_options) -> Path:
    """A Korean→English model with a joint tokenizer trained on `PAIRS`, saved into `directory`: untrained, or
    trained on `PAIRS` for `train_steps` steps (then it translates them, and its attention means something).
    `byte_fallback` gives the tokenizer the byte tokens too."""
    torch.manual_seed(0)
    vocab_size = VOCAB_SIZE + (len(BYTE_TOKENS) if byte_fallback else 0)
    tokenizer = train_tokenizer(KOREAN, ENGLISH, vocab_size=vocab_size, byte_fallback=byte_fallback)
    options = dict(embedding_size=HIDDEN_SIZE, hidden_size=HIDDEN_SIZE, cell_type="gru", dropout=0.0, init_scale=0.3)
    config = RNNSeq2SeqConfig(vocab_size=len(tokenizer), **(options | config_options))
    model = RNNSeq2SeqForConditionalGeneration(config)
    if train_steps:
        _train_on_pairs(model, tokenizer, train_steps)
        # The tokenizer is about one token a character: room for the longest English sentence.
        model.generation_config.max_new_tokens = max(map(len, tokenizer(ENGLISH)["input_ids"]))
    else:
        model.generation_config.max_new_tokens = MAX_NEW_TOKENS
    model.eval().save_pretrained(directory)
    save_tokenizers(tokenizer, tokenizer, directory)
    return directory


PAIRS_BATCH = 32
MAX_GRAD_NORM = 1.0  # the Trainer's default: this learning rate can spike without it


def _train_on_pairs(model: RNNSeq2SeqForConditionalGeneration, tokenizer, steps: int) -> None:
    source = tokenizer(KOREAN, padding=True, return_tensors="pt")
    target = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    labels = target["input_ids"].masked_fill(target["attention_mask"] == 0, -100)
    g = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    with one_thread():
        for _ in range(steps):
            batch = torch.randint(0, len(PAIRS), (PAIRS_BATCH,), generator=g)
            loss = model(
                input_ids=source["input_ids"][batch],
                attention_mask=source["attention_mask"][batch],
                labels=labels[batch],
            ).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()


# The reversal task: random words FIRST_WORD..VOCAB-1, then EOS; the target is the words reversed, then EOS.
PAD, BOS, EOS = 0, 1, 2
FIRST_WORD, VOCAB = 3, 16
MIN_LEN, MAX_LEN = 3, 7
LEARNING_RATE = 1e-2


def config_ids(cases: list[dict]) -> list[str]:
    """pytest ids for parametrizing over config options: "cell_type=gru-attention=dot-..."."""
    return ["-".join(f"{name}={value}" for name, value in case.items()) for case in cases]


def until_eos(row: list[int]) -> list[int]:
    """Tokens up to and including the first EOS (what generate() puts after it is fill)."""
    return row[: row.index(EOS) + 1] if EOS in row else row


def reverse_batch(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded sources ending in EOS, their attention mask, and labels (-100 after the target)."""
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (n,), generator=g)
    source = torch.full((n, MAX_LEN + 1), PAD)
    labels = torch.full((n, MAX_LEN + 1), -100)
    for i, m in enumerate(lengths.tolist()):
        words = torch.randint(FIRST_WORD, VOCAB, (m,), generator=g)
        source[i, : m + 1] = torch.cat([words, torch.tensor([EOS])])
        labels[i, : m + 1] = torch.cat([words.flip(0), torch.tensor([EOS])])
    return source, (source != PAD).long(), labels


def subprocess_environment() -> dict[str, str]:
    """The environment for a test's child process: offline, one torch thread (children run side by side), and
    this checkout's package first on the path (as in the tests' own process), whatever pip installed."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: matrices this small gain nothing from more, and on two cores shared with other
    processes, threads waiting for each other made training and generate() ~50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_reverse_model(steps: int = 200, batch: int = 32, **config_options) -> RNNSeq2SeqForConditionalGeneration:
    """A tiny model trained to reverse sequences: confident enough that its searches have clear winners."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    options = dict(vocab_size=VOCAB, embedding_size=HIDDEN_SIZE, hidden_size=2 * HIDDEN_SIZE, dropout=0.0)
    model = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(**(options | config_options)))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    with one_thread():
        for _ in range(steps):
            source, mask, labels = reverse_batch(batch, g)
            loss = model(input_ids=source, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


# Korean digit names -> English digit names: a task a tiny model learns in a few hundred steps.
KOREAN_DIGITS = ["영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]
ENGLISH_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# With the default init_scale=0.1 a model this small sits on a plateau (near-uniform attention) for hundreds of
# steps before it learns the alignment; 0.3 gets it there within the test's budget.
TINY_MODEL = [
    "--embedding_size", "64", "--hidden_size", "64", "--init_scale", "0.3", "--report_to", "none",
    "--disable_tqdm", "true",
]  # fmt: skip
# Training without a validation set: no evaluation, so no best checkpoint to track and nothing to stop early on.
NO_EVALUATION = ["--eval_strategy", "no", "--load_best_model_at_end", "false", "--early_stopping_patience", "0"]


def write_test_set(directory: Path, n_pairs: int) -> Path:
    """The first `n_pairs` of PAIRS as parallel text, directory/test.ko + directory/test.en; returns the prefix."""
    (directory / "test.ko").write_text("".join(f"{ko}\n" for ko, _ in PAIRS[:n_pairs]), encoding="utf-8")
    (directory / "test.en").write_text("".join(f"{en}\n" for _, en in PAIRS[:n_pairs]), encoding="utf-8")
    return directory / "test"


def write_digit_corpus(path: Path, n_pairs: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as file:
        for _ in range(n_pairs):
            digits = [rng.randrange(len(KOREAN_DIGITS)) for _ in range(rng.randint(2, 6))]
            pair = {"ko": " ".join(KOREAN_DIGITS[d] for d in digits), "en": " ".join(ENGLISH_DIGITS[d] for d in digits)}
            file.write(json.dumps({"translation": pair}, ensure_ascii=False) + "\n")
    return path
