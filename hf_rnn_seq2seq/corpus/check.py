"""Check an embedded parallel corpus against the rules its README states, and print its statistics.

    python -m hf_rnn_seq2seq.corpus.check [CORPUS_DIR]        # default: everyday-koen; exit 1 on any problem

A corpus folder holds, per split (train, validation, test, and held-out: pairs kept aside from training and
tuning, to score the model on sentences written apart from the corpus), three line-aligned files: `SPLIT.ko`,
`SPLIT.en` and `SPLIT.topic` (the topic of each pair). The rules:

- every line holds one sentence: no empty lines, no tabs, no leading or trailing spaces, a final newline;
- Korean is NFC; English is printable ASCII (straight quotes and apostrophes);
- no Korean sentence twice, within or across splits (compared with runs of spaces collapsed);
- an English sentence may repeat within a split (as the translation of different Korean sentences, plain and
  polite forms say), never across splits;
- at least MIN_PAIRS pairs in train + validation + test, and MIN_EVALUATION_PAIRS in validation and in test each;
- mostly short sentences: at least MIN_SHORT_SHARE of each side has SHORT_WORDS words;
- the README's topic table (between TABLE_START and TABLE_END) is the one this script prints.
"""

import argparse
import statistics
import string
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

EVERYDAY_KOEN = Path(__file__).parent / "everyday-koen"
SPLITS = ("train", "validation", "test", "held-out")
SIDES = ("ko", "en")
MIN_PAIRS = 15_000
MIN_EVALUATION_PAIRS = 1_000
SHORT_WORDS = range(3, 16)  # 3 to 15 words a side
MIN_SHORT_SHARE = 0.9
ENGLISH_CHARACTERS = set(string.printable) - set("\t\n\r\x0b\x0c")
TABLE_START, TABLE_END = "<!-- topic table: python -m hf_rnn_seq2seq.corpus.check -->", "<!-- end of topic table -->"


def read_split(corpus: Path, split: str) -> dict[str, list[str]]:
    """`{"ko": lines, "en": lines, "topic": lines}` of one split (line endings removed)."""
    return {ext: (corpus / f"{split}.{ext}").read_text(encoding="utf-8").split("\n") for ext in (*SIDES, "topic")}


def line_problems(path: str, lines: list[str]) -> list[str]:
    """Problems with the line structure of one file (`lines` is its text split on line feeds)."""
    if lines[-1] != "":
        return [f"{path}: no newline at the end of the file"]
    problems = []
    for number, line in enumerate(lines[:-1], 1):
        if not line.strip():
            problems.append(f"{path}:{number}: empty line")
        elif "\t" in line or "\r" in line or line != line.strip():
            problems.append(f"{path}:{number}: tab, carriage return, or leading/trailing space")
    return problems


def check(corpus: Path) -> tuple[list[str], dict]:
    """The problems found in `corpus` (none: it keeps the rules) and its statistics."""
    problems: list[str] = []
    pairs: dict[str, list[tuple[str, str, str]]] = {}  # split -> (ko, en, topic)
    for split in SPLITS:
        files = read_split(corpus, split)
        for ext, lines in files.items():
            problems += line_problems(f"{split}.{ext}", lines)
        counts = {ext: len(lines) - 1 for ext, lines in files.items()}
        if len(set(counts.values())) != 1:
            problems.append(f"{split}: the .ko, .en and .topic files have {counts} lines; they must be line-aligned")
        pairs[split] = list(zip(files["ko"][:-1], files["en"][:-1], files["topic"][:-1]))

    korean_at: dict[str, str] = {}
    english_splits: dict[str, set[str]] = defaultdict(set)
    for split, rows in pairs.items():
        for number, (ko, en, _) in enumerate(rows, 1):
            if not unicodedata.is_normalized("NFC", ko):
                problems.append(f"{split}.ko:{number}: not NFC")
            if not set(en) <= ENGLISH_CHARACTERS:
                problems.append(
                    f"{split}.en:{number}: characters outside printable ASCII: {set(en) - ENGLISH_CHARACTERS}"
                )
            key = " ".join(ko.split())
            if key in korean_at:
                problems.append(f"{split}.ko:{number}: the same Korean sentence as {korean_at[key]}")
            korean_at.setdefault(key, f"{split}.ko:{number}")
            english_splits[en].add(split)
    problems += [
        f"English sentence in {sorted(where)}: {en!r}" for en, where in english_splits.items() if len(where) > 1
    ]

    main_splits = [pairs[split] for split in ("train", "validation", "test")]
    if sum(map(len, main_splits)) < MIN_PAIRS:
        problems.append(f"train + validation + test hold {sum(map(len, main_splits))} pairs, fewer than {MIN_PAIRS}")
    for split in ("validation", "test"):
        if len(pairs[split]) < MIN_EVALUATION_PAIRS:
            problems.append(f"{split} holds {len(pairs[split])} pairs, fewer than {MIN_EVALUATION_PAIRS}")

    statistics_ = {"pairs": {split: len(rows) for split, rows in pairs.items()}, "words": {}}
    for side, column in zip(SIDES, range(2)):
        words = [len(row[column].split()) for rows in main_splits for row in rows]
        short = sum(n in SHORT_WORDS for n in words) / len(words) if words else 0.0
        statistics_["words"][side] = {
            "mean": statistics.mean(words) if words else 0.0,
            "median": statistics.median(words) if words else 0,
            "max": max(words, default=0),
            "short_share": short,
        }
        if short < MIN_SHORT_SHARE:
            problems.append(
                f"only {short:.0%} of the {side} sentences have 3-15 words (at least {MIN_SHORT_SHARE:.0%})"
            )

    statistics_["topics"] = {split: Counter(row[2] for row in rows) for split, rows in pairs.items()}
    table = topic_table(statistics_["topics"])
    readme = (corpus / "README.md").read_text(encoding="utf-8")
    if f"{TABLE_START}\n{table}{TABLE_END}" not in readme:
        problems.append(f"README.md: the topic table between {TABLE_START!r} and {TABLE_END!r} is not:\n{table}")
    return problems, statistics_


def topic_table(topics: dict[str, Counter]) -> str:
    """A Markdown table of pairs per topic and split."""
    names = sorted(set().union(*topics.values()))
    lines = ["| topic | " + " | ".join(SPLITS) + " | total |", "|---|" + "---:|" * (len(SPLITS) + 1)]
    for name in [*names, None]:
        counts = [sum(topics[split].values()) if name is None else topics[split][name] for split in SPLITS]
        label = "**total**" if name is None else name
        lines.append(f"| {label} | " + " | ".join(f"{n:,}" for n in counts) + f" | {sum(counts):,} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=EVERYDAY_KOEN, help="corpus folder")
    corpus = parser.parse_args(argv).corpus
    problems, found = check(corpus)
    print(f"{corpus}: " + ", ".join(f"{split} {n:,}" for split, n in found["pairs"].items()) + " pairs")
    for side, words in found["words"].items():
        print(
            f"{side}: {words['mean']:.1f} words on average, median {words['median']}, longest {words['max']}; "
            f"{words['short_share']:.1%} with 3-15 words"
        )
    print(topic_table(found["topics"]), end="")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
