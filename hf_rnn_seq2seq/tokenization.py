"""Subword tokenizers for the RNN encoder-decoder, trained with the `tokenizers` library.

Every tokenizer made here has the same pipeline, chosen so that Korean and English text round-trips:
`decode(encode(text)) == text` after NFKC normalisation and whitespace collapsing, for any text made of
characters seen in training.

* normaliser: NFKC, then every run of whitespace becomes one space, then leading/trailing spaces go;
* pre-tokenizer + decoder: Metaspace (spaces become `▁` inside tokens, so decoding restores them exactly;
  Korean needs this since its words are space-separated and must not be glued together);
* model: Unigram (default) or BPE;
* special tokens with fixed ids: `<pad>`=0, `<s>`=1 (BOS, the decoder start token), `</s>`=2 (EOS), `<unk>`=3;
* post-processor: `</s>` after every sequence, source and target alike, so the encoder sees where the
  sentence ends and the decoder learns to stop.

Byte fallback
-------------
A character the training text never had is `<unk>`: the model cannot copy it, and the pipeline warns. Korean
meets this often (rare Hangul syllables such as 똠 or 뷁, Hanja such as 漢字), as one syllable block is one
character. With `byte_fallback=True` the 256 byte tokens `<0x00>` ... `<0xFF>` are added after the learned ones
(within `vocab_size`), an unseen character is encoded as the bytes of its UTF-8 form, and the decoder
(`ByteFallback` before `Metaspace`) joins them back: `decode(encode(text)) == text` for any text, seen or not.
Off by default, so that tokenizers trained without it (and the models that use them) stay as they were.

Joint or separate vocabularies
------------------------------
A joint vocabulary (one tokenizer trained on source + target text) is the default: `tokenizer(src,
text_target=tgt)` then gives `input_ids` and `labels`. With separate vocabularies (`train_tokenizers(...,
joint=False)`) each side has its own tokenizer; both still use ids 0-3 for the special tokens, so the model
config's `pad_token_id`, `bos_token_id`/`decoder_start_token_id` and `eos_token_id` hold for both.

`save_tokenizers` lays a model directory out as:

    model_dir/tokenizer.json, tokenizer_config.json           the source tokenizer
    model_dir/target_tokenizer/tokenizer.json, ...            the target tokenizer, only when separate

so `AutoTokenizer.from_pretrained(model_dir)` always gives the source tokenizer (what a pipeline encodes
with), and `load_tokenizers(model_dir)` gives `(source, target)` -- the same object twice when joint.
"""

import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.tokenization_utils_base import VERY_LARGE_INTEGER
from transformers.utils import cached_file

from .errors import DataError

logger = logging.getLogger(__name__)

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<s>", "</s>", "<unk>"
# The trainers give special tokens the first ids, in this order: <pad>=0, <s>=1, </s>=2, <unk>=3.
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN]
TOKENIZER_MODELS = ("unigram", "bpe")
DEFAULT_VOCAB_SIZE = 8000
TARGET_TOKENIZER_DIR = "target_tokenizer"
# An RNN has no position limit; transformers' own "no limit" value keeps the tokenizer from ever truncating.
MODEL_MAX_LENGTH = VERY_LARGE_INTEGER
# Mixed-precision training pads each batch to a multiple of this many tokens: variable-length batches then
# come in a few shapes instead of hundreds, and every new matrix shape costs a kernel compiled for it and kept
# (oneDNN on a CPU caches up to 1,024), so peak memory falls by a quarter for a few percent of speed; 8
# (transformers' translation example under fp16) saved little more and cost more (bench/DESIGN.md).
MIXED_PRECISION_PAD_MULTIPLE = 4
# Byte fallback's tokens, one per byte value, spelt as `tokenizers` looks them up: <0x00> ... <0xFF>.
BYTE_TOKENS = [f"<0x{byte:02X}>" for byte in range(256)]


def _new_tokenizer(model: str, vocab_size: int, show_progress: bool) -> tuple[Tokenizer, trainers.Trainer]:
    if model == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token=UNK_TOKEN, show_progress=show_progress
        )
    elif model == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=show_progress)
    else:
        raise ValueError(f"unknown tokenizer model {model!r}; choose one of {', '.join(TOKENIZER_MODELS)}")
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    return tokenizer, trainer


def _with_byte_fallback(tokenizer: Tokenizer) -> Tokenizer:
    """`tokenizer` with the byte tokens appended to its vocabulary (learned ids unchanged), its model falling back
    on them for characters it has no token for, and a decoder that turns runs of them back into text."""
    serialized = json.loads(tokenizer.to_str())
    model = serialized["model"]
    new_tokens = [token for token in BYTE_TOKENS if tokenizer.token_to_id(token) is None]
    if model["type"] == "BPE":  # a token -> id mapping
        model["vocab"].update({token: tokenizer.get_vocab_size() + i for i, token in enumerate(new_tokens)})
    else:  # Unigram: a list of [token, log-probability], the id its position; bytes are a last resort
        lowest = min(score for _, score in model["vocab"] if score != 0) if len(model["vocab"]) else 0.0
        model["vocab"] += [[token, lowest] for token in new_tokens]
    model["byte_fallback"] = True
    tokenizer = Tokenizer.from_str(json.dumps(serialized))
    tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    return tokenizer


def _train(
    texts: Iterable[str],
    description: str,
    vocab_size: int,
    model: str,
    show_progress: bool,
    byte_fallback: bool = False,
) -> PreTrainedTokenizerFast:
    byte_tokens = len(BYTE_TOKENS) if byte_fallback else 0
    reserved = f"{len(SPECIAL_TOKENS)} special tokens" + (f" and {byte_tokens} byte tokens" if byte_fallback else "")
    if vocab_size <= len(SPECIAL_TOKENS) + byte_tokens:
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room beside the {reserved} ({', '.join(SPECIAL_TOKENS)}); "
            "use a few thousand"
        )
    tokenizer, trainer = _new_tokenizer(model, vocab_size - byte_tokens, show_progress)

    # Count while the trainer reads, so that a generator is consumed only once.
    n_texts, characters = 0, set()

    def checked_texts() -> Iterator[str]:
        nonlocal n_texts
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"{description}: item {index} is a {type(text).__name__}, expected str")
            if text.strip():
                n_texts += 1
                characters.update(text)
            yield text

    try:
        tokenizer.train_from_iterator(checked_texts(), trainer=trainer)
    except Exception as err:
        # The Unigram trainer keeps every character seen as a token and fails when they do not fit.
        if "not large enough to contain all chars" not in str(err):
            raise
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the {description} have about {len(characters)} distinct "
            f"characters and all must fit beside the {reserved}; raise vocab_size"
        ) from None
    if n_texts == 0:
        raise DataError(f"cannot train a tokenizer: the {description} are empty (no non-blank text)")
    if byte_fallback:
        tokenizer = _with_byte_fallback(tokenizer)
    if tokenizer.get_vocab_size() < vocab_size:
        logger.info(
            "%s tokenizer trained on the %s has %d tokens (%d requested): the text is too small for more",
            model,
            description,
            tokenizer.get_vocab_size(),
            vocab_size,
        )
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS_TOKEN}", pair=f"$A {EOS_TOKEN} $B {EOS_TOKEN}", special_tokens=[(EOS_TOKEN, eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=MODEL_MAX_LENGTH,
    )


def train_tokenizer(
    source_texts: Iterable[str],
    target_texts: Iterable[str] | None = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    model: str = "unigram",
    show_progress: bool = False,
    byte_fallback: bool = False,
) -> PreTrainedTokenizerFast:
    """Train one tokenizer on the source and target texts together (a joint vocabulary).

    `vocab_size` is an upper bound: a small corpus gives fewer tokens. Use `len(tokenizer)` for the model.
    `byte_fallback` encodes characters unseen in training as UTF-8 bytes instead of `<unk>` (module docstring).
    """
    texts = chain(source_texts, target_texts) if target_texts is not None else source_texts
    description = "source and target texts" if target_texts is not None else "training texts"
    return _train(texts, description, vocab_size, model, show_progress, byte_fallback)


def train_tokenizers(
    source_texts: Iterable[str],
    target_texts: Iterable[str],
    joint: bool = True,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    target_vocab_size: int | None = None,
    model: str = "unigram",
    show_progress: bool = False,
    byte_fallback: bool = False,
) -> tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]:
    """Train `(source_tokenizer, target_tokenizer)`: one shared tokenizer (returned twice) when `joint`, else one
    per side, the target one with `target_vocab_size` (default: `vocab_size`) tokens at most. `byte_fallback`
    applies to both (module docstring)."""
    if joint:
        tokenizer = train_tokenizer(source_texts, target_texts, vocab_size, model, show_progress, byte_fallback)
        return tokenizer, tokenizer
    source_tokenizer = _train(source_texts, "source texts", vocab_size, model, show_progress, byte_fallback)
    target_size = target_vocab_size or vocab_size
    target_tokenizer = _train(target_texts, "target texts", target_size, model, show_progress, byte_fallback)
    return source_tokenizer, target_tokenizer


def train_tokenizers_on_pairs(
    pairs: Iterable[dict[str, str]], source_lang: str, target_lang: str, **options
) -> tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]:
    """`train_tokenizers` on the two sides of translation pairs (`{source_lang: text, target_lang: text}`, as the
    `translation` column of the data loaders holds them; read twice). `options` go to `train_tokenizers`."""
    return train_tokenizers((pair[source_lang] for pair in pairs), (pair[target_lang] for pair in pairs), **options)


def _check_same_special_ids(source: PreTrainedTokenizerBase, target: PreTrainedTokenizerBase, where: str) -> None:
    """The model config has one pad/bos/eos id for both sides, so both tokenizers must agree on them."""
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id"):
        if getattr(source, name) != getattr(target, name):
            raise ValueError(
                f"{where}: source and target tokenizers disagree on {name} "
                f"({getattr(source, name)} vs {getattr(target, name)}); the model needs the same special ids on "
                f"both sides -- train them with train_tokenizers"
            )


def save_tokenizers(
    source_tokenizer: PreTrainedTokenizerBase, target_tokenizer: PreTrainedTokenizerBase, model_dir: str | os.PathLike
) -> None:
    """Save the tokenizer(s) into `model_dir` (layout in the module docstring).

    Joint (the same object twice): saved once at the top level, and a `target_tokenizer/` folder left by an
    earlier separate-vocabulary save is removed, since `load_tokenizers` would otherwise pick it up.
    """
    source_tokenizer.save_pretrained(model_dir)
    save_target_tokenizer(source_tokenizer, target_tokenizer, model_dir)


def save_target_tokenizer(
    source_tokenizer: PreTrainedTokenizerBase, target_tokenizer: PreTrainedTokenizerBase, model_dir: str | os.PathLike
) -> None:
    """The target side of `save_tokenizers`, for a folder that already holds the source tokenizer (a Trainer
    checkpoint): `target_tokenizer/` for a separate vocabulary; for a joint one nothing, and a stale folder removed."""
    target_dir = Path(model_dir) / TARGET_TOKENIZER_DIR
    if target_tokenizer is source_tokenizer:
        if target_dir.exists():
            logger.warning("removing %s left by an earlier save: the vocabulary is now joint", target_dir)
            shutil.rmtree(target_dir)
        return
    _check_same_special_ids(source_tokenizer, target_tokenizer, str(model_dir))
    target_tokenizer.save_pretrained(target_dir)


def load_tokenizers(model_dir: str | os.PathLike) -> tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
    """Load `(source_tokenizer, target_tokenizer)` saved by `save_tokenizers`, from a folder or a Hub repo.

    Returns the same object twice when there is no `target_tokenizer/` subfolder (a joint vocabulary).
    """
    source_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # cached_file answers "is there such a file" for a local folder and a Hub repo (or its cache) alike.
    target_file = cached_file(
        model_dir, "tokenizer_config.json", subfolder=TARGET_TOKENIZER_DIR, _raise_exceptions_for_missing_entries=False
    )
    if target_file is None:
        return source_tokenizer, source_tokenizer
    target_tokenizer = AutoTokenizer.from_pretrained(model_dir, subfolder=TARGET_TOKENIZER_DIR)
    _check_same_special_ids(source_tokenizer, target_tokenizer, str(model_dir))
    return source_tokenizer, target_tokenizer


def same_ids(first: PreTrainedTokenizerBase, other: PreTrainedTokenizerBase, side: str) -> bool:
    """Whether two tokenizers of one `side` ("source" or "target") agree as models that share them need: a source
    tokenizer must encode any text to the same ids (the whole pipeline compared: normalizer, pre-tokenizer, model,
    byte fallback included), a target one must give each id the same piece (its vocabulary compared)."""
    if side == "source" and first.is_fast and other.is_fast:
        return first.backend_tokenizer.to_str() == other.backend_tokenizer.to_str()
    return first.get_vocab() == other.get_vocab()


def check_vocabularies(
    config: PretrainedConfig,
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    fix: str,
) -> None:
    """Refuse tokenizers whose vocabularies are not the sizes the model was built with: their ids would index the
    wrong embeddings (or past the end), giving nonsense rather than an error. `fix` says what to do instead."""
    target_vocab_size = getattr(config, "decoder_vocab_size", config.vocab_size)
    if config.vocab_size != len(source_tokenizer) or target_vocab_size != len(target_tokenizer):
        raise ValueError(
            f"the model's vocabularies ({config.vocab_size} source, {target_vocab_size} target tokens) do not match "
            f"the tokenizers ({len(source_tokenizer)}, {len(target_tokenizer)}); {fix}"
        )
    # A pointer-generator copies a source id as the same target id: that is the same piece only in a joint vocabulary.
    copies = getattr(config, "copy_attention", False)
    if (
        copies
        and source_tokenizer is not target_tokenizer
        and source_tokenizer.get_vocab() != target_tokenizer.get_vocab()
    ):
        raise ValueError(
            "the model copies source tokens into its output (copy_attention) but its source and target tokenizers "
            "have different vocabularies: train it with one joint vocabulary (without --separate_vocabularies)"
        )
