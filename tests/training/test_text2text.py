"""Beyond translation, end to end through the command line: train a tiny summarizer on JSON lines with named
columns, then evaluate it with ROUGE and distinct-n, generate with it, and load its pipeline from the saved folder."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import random
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from tiny_models import TINY_MODEL
from transformers import pipeline

from hf_rnn_seq2seq.loading import load_translator
from hf_rnn_seq2seq.modeling.pipeline import TEXT2TEXT_TASK, RNNText2TextPipeline
from hf_rnn_seq2seq.tasks import ModelTask, model_task
from hf_rnn_seq2seq.training.arguments import check_arguments, parse_arguments
from hf_rnn_seq2seq_cli import main as cli

CONFIGS = Path(__file__).parents[2] / "training" / "configs"
WORDS = ["gas", "price", "meeting", "friday", "contract", "draft", "report", "weekly", "budget", "review"]


def write_summaries(path: Path, n_pairs: int, seed: int) -> Path:
    """A toy summarization set: the summary is the first two words of the document."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as file:
        for _ in range(n_pairs):
            document = [rng.choice(WORDS) for _ in range(rng.randint(4, 8))]
            record = {"document": " ".join(document), "summary": " ".join(document[:2]), "id": rng.random()}
            file.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="module")
def summarizer(tmp_path_factory) -> tuple[Path, Path, str]:
    """(model dir, test file, what `train` printed): a tiny model trained through the CLI for summarization."""
    folder = tmp_path_factory.mktemp("summaries")
    train, dev, test = (write_summaries(folder / f"{split}.jsonl", n, seed) for split, n, seed in
                        (("train", 300, 0), ("dev", 20, 1), ("test", 20, 2)))  # fmt: skip
    output_dir = folder / "model"
    status = cli(
        [
            "train",
            "--task", "summarization",
            "--text_column", "document",
            "--summary_column", "summary",
            "--train_file", str(train),
            "--validation_file", str(dev),
            "--test_file", str(test),
            "--output_dir", str(output_dir),
            "--tokenizer_type", "bpe",
            "--vocab_size", "60",
            "--truncate_source", "--max_source_length", "6",  # documents of 4-8 words: some are cut
            "--num_train_epochs", "2",
            "--num_beams", "1",
            "--show_examples", "0",
            *TINY_MODEL,
        ]
    )  # fmt: skip
    assert status == 0
    return output_dir, test


def test_training_scores_rouge_and_saves_a_text2text_model(summarizer):
    output_dir, _ = summarizer
    results = json.loads((output_dir / "all_results.json").read_text())
    assert {"test_rouge1", "test_rouge2", "test_rougeL", "eval_rougeL"} <= set(results)
    assert "test_bleu" not in results
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["best_metric"] == max(entry["eval_rougeL"] for entry in state["log_history"] if "eval_rougeL" in entry)

    config = json.loads((output_dir / "config.json").read_text())
    assert list(config["custom_pipelines"]) == [TEXT2TEXT_TASK]
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.pipeline_tag == "summarization" and "summarization" in card.data.tags
    assert card.data.language is None  # document/summary are columns, not languages
    assert {(r.dataset_split, r.metric_type) for r in card.data.eval_results} >= {("test", "rougeL")}
    assert "ROUGE-L" in card.text and "document→summary summarization model" in card.text
    assert model_task(output_dir).task == "summarization"


def test_evaluate_and_generate_commands(summarizer, tmp_path, capsys):
    output_dir, test = summarizer
    report_file = tmp_path / "report.json"
    assert cli(["evaluate", str(output_dir), str(test), "--text-column", "document", "--summary-column", "summary",
                "--json", str(report_file)]) == 0  # fmt: skip
    report = json.loads(report_file.read_text())
    assert {"rouge1", "rouge2", "rougeL"} <= set(report) and "bleu" not in report  # the model's task: ROUGE
    assert report["task"] == "summarization" and "stemmer:yes" in report["signatures"]["rouge"]

    assert cli(["evaluate", str(output_dir), str(test), "--text-column", "document", "--summary-column", "summary",
                "--metrics", "rouge,distinct", "--json", str(report_file)]) == 0  # fmt: skip
    report = json.loads(report_file.read_text())
    assert {"rouge1", "distinct1", "distinct2"} <= set(report)

    documents = [json.loads(line)["document"] for line in test.read_text().splitlines()]
    (tmp_path / "in.txt").write_text("\n".join(documents[:3]) + "\n")
    assert cli(["generate", str(output_dir), "-i", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.txt")]) == 0
    summarizer_pipeline = load_translator(output_dir)
    assert isinstance(summarizer_pipeline, RNNText2TextPipeline)
    expected = [result["generated_text"] for result in summarizer_pipeline(documents[:3])]
    assert (tmp_path / "out.txt").read_text().splitlines() == expected

    assert cli(["evaluate", str(output_dir), str(test), "--text-column", "text"]) == 2
    assert 'no column "text"' in capsys.readouterr().err


def test_evaluate_against_several_reference_files(summarizer, tmp_path, capsys):
    """Each example scores its best reference: with the model's own outputs as one of two references, ROUGE is 100."""
    output_dir, test = summarizer
    columns = ["--text-column", "document", "--summary-column", "summary"]
    predictions, report_file = tmp_path / "predictions.txt", tmp_path / "report.json"
    assert cli(["evaluate", str(output_dir), str(test), *columns, "--predictions", str(predictions)]) == 0
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("".join("zzz\n" for _ in predictions.read_text().splitlines()))
    assert cli(["evaluate", str(output_dir), str(test), *columns, "--references", str(wrong), str(predictions),
                "--json", str(report_file)]) == 0  # fmt: skip
    report = json.loads(report_file.read_text())
    assert report["rouge1"] == report["rougeL"] == 100.0 and "nrefs:2" in report["signatures"]["rouge"]

    wrong.write_text("zzz\n")
    assert cli(["evaluate", str(output_dir), str(test), *columns, "--references", str(wrong)]) == 2
    assert "wrong.txt has 1 lines but" in capsys.readouterr().err


def test_saved_folder_serves_the_text2text_pipeline_from_its_own_code(summarizer):
    output_dir, _ = summarizer
    # The folder lists one custom pipeline, so pipeline() infers the task and runs the pipeline.py saved there
    # (a module of transformers' remote-code cache, not this package's; tests/modeling/test_layout.py checks that
    # the file imports nothing of this package).
    summarize = pipeline(model=str(output_dir), trust_remote_code=True)
    assert type(summarize).__name__ == "RNNText2TextPipeline"
    assert not type(summarize).__module__.startswith("hf_rnn_seq2seq")
    assert list(summarize("gas price meeting friday")[0]) == ["generated_text"]


def test_bad_metric_for_best_model(tmp_path, capsys):
    train = write_summaries(tmp_path / "train.jsonl", 10, 0)
    status = cli(["train", "--task", "summarization", "--text_column", "document", "--summary_column", "summary",
                  "--train_file", str(train), "--validation_file", str(train), "--output_dir", str(tmp_path / "m"),
                  "--metric_for_best_model", "bleu", *TINY_MODEL])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "--metric_for_best_model bleu is not a validation score; choose loss or one of rouge1, rouge2, rougeL" in err


@pytest.mark.parametrize(
    "config, task, best",
    [
        ("aeslc_cpu.json", "summarization", "rougeL"),
        ("aeslc_pointer_cpu.json", "summarization", "rougeL"),
        ("chatbot_ko_cpu.json", "dialogue", "loss"),
    ],
)
def test_recipes_parse(config, task, best):
    model_args, data_args, training_args = parse_arguments([str(CONFIGS / config)])
    check_arguments(model_args, data_args, training_args)
    assert (data_args.task, training_args.metric_for_best_model) == (task, best)
    assert (data_args.source_lang, data_args.target_lang) == ("src", "tgt")


def test_model_task_defaults_to_translation_where_no_card_says_otherwise(tmp_path):
    assert model_task(tmp_path) == ModelTask()  # a folder without a model card: the models before other tasks
    assert model_task(tmp_path / "missing") == ModelTask()  # loading the model will say what is wrong
    (tmp_path / "README.md").write_text("---\nlanguage: [ko, en]\ntags: [translation]\n---\n", encoding="utf-8")
    assert model_task(tmp_path) == ModelTask("translation", ("ko", "en"))


@pytest.mark.parametrize("config", sorted(path.name for path in CONFIGS.glob("*.json")))
def test_every_recipe_parses(config):
    """Every recipe in training/configs names only flags that exist, with values the checks accept."""
    check_arguments(*parse_arguments([str(CONFIGS / config)]))
