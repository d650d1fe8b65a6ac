"""Build a lexical shortlist (as Marian's `--shortlist`) from parallel training text, for decoding with
`generate(use_shortlist=True)` (`--shortlist` on the command line).

For each source token the shortlist keeps the `top_k` target tokens most associated with it, by the Dice
coefficient over sentence pairs, `2 * pairs(s, t) / (pairs(s) + pairs(t))`: `pairs(s, t)` counts the training
pairs whose source holds `s` and whose target holds `t`, `pairs(s)` and `pairs(t)` those holding each. Ranking by
`pairs(s, t)` alone would give every source token the same frequent target tokens (articles, punctuation),
which the shortlist holds anyway: it always allows the `frequent` most frequent target tokens and the target
tokenizer's special tokens.

    hf-rnn-seq2seq shortlist outputs/koen data/train       # writes outputs/koen/shortlist.npz
"""

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from .data import load_translation_data
from .loading import load_model
from .modeling.generator import NO_CANDIDATE, Shortlist
from .tokenization import load_tokenizers

# Target tokens kept per source token, and the most frequent target tokens always allowed: Marian's examples use
# 50 of each (`--shortlist lex.s2t 50 50`); a frequent list twice that costs little and catches function words.
DEFAULT_TOP_K = 50
DEFAULT_FREQUENT = 100
# Sentence pairs tokenized at a time: the tokenizer's batches, and a bound on the lists held at once.
TOKENIZE_BATCH = 10_000


def pair_incidence(ids: Iterable[list[int]], vocab_size: int, n_pairs: int) -> torch.Tensor:
    """(n_pairs, vocab_size) sparse 0/1: which tokens each sentence holds."""
    rows, columns = [], []
    for row, sentence in enumerate(ids):
        unique = sorted(set(sentence))
        rows += [row] * len(unique)
        columns += unique
    indices = torch.tensor([rows, columns], dtype=torch.long).reshape(2, -1)
    values = torch.ones(indices.shape[1], dtype=torch.float32)  # counts stay exact in float32 below 2**24 pairs
    return torch.sparse_coo_tensor(indices, values, (n_pairs, vocab_size), check_invariants=False).coalesce()


def build_shortlist(
    source_ids: list[list[int]],
    target_ids: list[list[int]],
    source_vocab_size: int,
    target_vocab_size: int,
    always_allowed: Iterable[int] = (),
    top_k: int = DEFAULT_TOP_K,
    frequent: int = DEFAULT_FREQUENT,
) -> Shortlist:
    """The shortlist of token-id pairs (source, target sentences): see the module docstring. `always_allowed`
    (the special tokens) joins the `frequent` most frequent target tokens."""
    if len(source_ids) != len(target_ids):
        raise ValueError(f"{len(source_ids)} source sentences but {len(target_ids)} target sentences")
    if not source_ids:
        raise ValueError("no training pairs to build a shortlist from")
    if top_k < 1 or frequent < 0:
        raise ValueError(f"top_k must be at least 1 and frequent at least 0, got {top_k} and {frequent}")
    source = pair_incidence(source_ids, source_vocab_size, len(source_ids))  # (pairs, |V_s|)
    target = pair_incidence(target_ids, target_vocab_size, len(target_ids))  # (pairs, |V_t|)
    with warnings.catch_warnings():  # torch calls its sparse CSR support "beta" on every product
        warnings.simplefilter("ignore", UserWarning)
        together = torch.sparse.mm(source.t().coalesce(), target).coalesce()  # (|V_s|, |V_t|) pairs(s, t)
    pairs_s = torch.sparse.sum(source, dim=0).to_dense()  # (|V_s|,)
    pairs_t = torch.sparse.sum(target, dim=0).to_dense()  # (|V_t|,)
    rows, columns = together.indices().numpy()
    dice = (2 * together.values() / (pairs_s[rows] + pairs_t[columns])).numpy()

    # Per source token, its target tokens best first (ties: the lower id first); keep the first top_k.
    order = np.lexsort((columns, -dice, rows))
    rows, columns = rows[order], columns[order]
    first_of_row = np.searchsorted(rows, rows)  # where each entry's source token starts in the sorted list
    rank = np.arange(len(rows)) - first_of_row
    kept = rank < top_k
    candidates = np.full((source_vocab_size, top_k), NO_CANDIDATE, dtype=np.int64)
    candidates[rows[kept], rank[kept]] = columns[kept]

    counts = np.bincount(
        np.concatenate([np.asarray(s, dtype=np.int64) for s in target_ids]), minlength=target_vocab_size
    )
    most_frequent = np.argsort(-counts, kind="stable")[:frequent]
    most_frequent = most_frequent[counts[most_frequent] > 0]
    always = np.union1d(most_frequent, np.asarray(list(always_allowed), dtype=np.int64))
    return Shortlist(torch.from_numpy(candidates), torch.from_numpy(always))


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    ids = []
    for start in range(0, len(texts), TOKENIZE_BATCH):
        ids += tokenizer(texts[start : start + TOKENIZE_BATCH])["input_ids"]
    return ids


def build_model_shortlist(
    model_dir: str | os.PathLike,
    data: str,
    source_lang: str = "ko",
    target_lang: str = "en",
    top_k: int = DEFAULT_TOP_K,
    frequent: int = DEFAULT_FREQUENT,
) -> Path:
    """Build the shortlist of the model saved in `model_dir` from training data `data` (anything
    `load_translation_data` reads), with the model's tokenizers; write it into `model_dir` and return its path."""
    model = load_model(model_dir)
    source_tokenizer, target_tokenizer = load_tokenizers(model_dir)
    pairs = load_translation_data(data, source_lang, target_lang)["translation"]
    shortlist = shortlist_from_pairs(
        pairs, source_tokenizer, target_tokenizer, source_lang, target_lang, top_k, frequent
    )
    shortlist.check(model.config, str(model_dir))
    return shortlist.save(model_dir)


def shortlist_from_pairs(
    pairs: list[dict[str, str]],
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    source_lang: str,
    target_lang: str,
    top_k: int = DEFAULT_TOP_K,
    frequent: int = DEFAULT_FREQUENT,
) -> Shortlist:
    """The shortlist of translation pairs (`{source_lang: text, target_lang: text}`, as datasets hold them)."""
    return build_shortlist(
        tokenize(source_tokenizer, [pair[source_lang] for pair in pairs]),
        tokenize(target_tokenizer, [pair[target_lang] for pair in pairs]),
        len(source_tokenizer),
        len(target_tokenizer),
        always_allowed=target_tokenizer.all_special_ids,
        top_k=top_k,
        frequent=frequent,
    )


__all__ = ["DEFAULT_FREQUENT", "DEFAULT_TOP_K", "build_model_shortlist", "build_shortlist", "shortlist_from_pairs"]
