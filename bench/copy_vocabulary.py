"""Why the pointer-generator needs no extended vocabulary with our subword tokenizers, measured on a corpus.

See et al. (2017) copy words that are outside the decoder's word vocabulary, so each batch extends the vocabulary
with its source's unknown words. Our tokenizers split any text into subword pieces of one joint vocabulary
(`copy_attention` requires it), so a word unseen in training is still a sequence of known pieces, each of which
the Generator can produce and the copy distribution can point at; only a piece the tokenizer maps to `<unk>` (a
character never seen in training) could be neither generated nor copied. This script trains the joint tokenizer
the training command would train on the train split, then counts, on the test split:

- target words (split on whitespace) that never occur in the training targets: what a word-level model could only
  copy through an extended vocabulary; and how many of those occur in their own source;
- target pieces that are `<unk>`: what no model with this tokenizer can produce, copy or not.

    python bench/copy_vocabulary.py ../shared/data/aeslc-en --vocab-size 8000
"""

import argparse
from pathlib import Path

from hf_rnn_seq2seq.tokenization import train_tokenizer


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="folder with train.src, train.tgt, test.src, test.tgt")
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()
    train_source, train_target = lines(args.data / "train.src"), lines(args.data / "train.tgt")
    test_source, test_target = lines(args.data / "test.src"), lines(args.data / "test.tgt")
    tokenizer = train_tokenizer(train_source, train_target, vocab_size=args.vocab_size)

    seen_words = {word for text in train_target for word in text.split()}
    words = unseen = unseen_in_source = 0
    for source, target in zip(test_source, test_target):
        source_words = set(source.split())
        for word in target.split():
            words += 1
            if word not in seen_words:
                unseen += 1
                unseen_in_source += word in source_words
    pieces = [piece for ids in tokenizer(test_target)["input_ids"] for piece in ids]
    unknown = sum(piece == tokenizer.unk_token_id for piece in pieces)
    print(f"joint unigram vocabulary: {len(tokenizer)} pieces, trained on {len(train_source)} train pairs")
    print(f"test target words not in any training target: {unseen}/{words} = {unseen / words:.2%}")
    print(f"  of which in their own source (a word-level pointer-generator copies them): {unseen_in_source}")
    print(f"test target pieces that are <unk> (neither generated nor copied): {unknown}/{len(pieces)} "
          f"= {unknown / len(pieces):.3%}")  # fmt: skip


if __name__ == "__main__":
    main()
