"""Held-out perplexity per language (`xling_align.analysis.perplexity`, `xling-align analyze`): batched scores equal
one-text-at-a-time plain torch, and the report shows both models and the change."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import ByT5Tokenizer

from xling_align.analysis.perplexity import sentences_by_language, text_perplexity
from xling_align.cli import main as cli_main
from xling_align.tiny_models import TINY_MODEL_PREFIX, build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEXTS = ["Good morning", "The cat sleeps on the warm mat.", "Yes", "Where is the station, please?"]


def _one_by_one(model, tokenizer, texts):
    total, tokens = 0.0, 0
    for text in texts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        logits = model(input_ids=ids).logits[0, :-1]
        total += F.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
        tokens += ids.shape[1] - 1
    return math.exp(total / tokens), tokens


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batched_perplexity_equals_plain_torch_per_text(arch):
    model, _ = build_tiny_model(TINY_MODEL_PREFIX + arch, seed=0)
    model.eval()
    tokenizer = ByT5Tokenizer()
    scores = text_perplexity(model, tokenizer, TEXTS, batch_size=3)
    expected, tokens = _one_by_one(model, tokenizer, TEXTS)
    assert scores["tokens"] == tokens and scores["texts"] == 4
    assert scores["perplexity"] == pytest.approx(expected, rel=1e-4)


def test_sentences_by_language_keeps_each_sentence_once():
    pairs = {("en", "de"): [("a b", "c d"), ("a b", "e f")], ("en", "fr"): [("g h", "i j")]}
    assert sentences_by_language(pairs) == {"en": ["a b", "g h"], "de": ["c d", "e f"], "fr": ["i j"]}


def test_empty_or_one_token_texts_are_refused():
    model, _ = build_tiny_model(TINY_MODEL_PREFIX + "llama", seed=0)
    with pytest.raises(ValueError, match="no text to score"):
        text_perplexity(model, ByT5Tokenizer(), [])


def test_analyze_reports_perplexity_before_and_after(tmp_path, monkeypatch, capsys):
    folders = []
    for seed in (0, 1):
        model, _ = build_tiny_model(TINY_MODEL_PREFIX + "llama", seed=seed)
        folder = tmp_path / f"model{seed}"
        model.save_pretrained(folder)
        ByT5Tokenizer().save_pretrained(folder)
        folders.append(folder)
    pairs = tmp_path / "pairs.en-de.tsv"
    rows = [
        ("Good morning", "Guten Morgen"),
        ("Thank you", "Danke"),
        ("The cat sleeps", "Die Katze schläft"),
        ("Where is it?", "Wo ist es?"),
    ]
    pairs.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in rows), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = cli_main(
        [
            "analyze",
            "--model",
            str(folders[0]),
            "--compare",
            str(folders[1]),
            "--pairs",
            str(pairs),
            "--output",
            "out",
            "--no-separability",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    from transformers import AutoModelForCausalLM

    for label, folder in zip(("base", "compare"), folders, strict=True):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        for side, language in enumerate(("en", "de")):
            expected, _ = _one_by_one(model, ByT5Tokenizer(), [row[side] for row in rows])
            assert report["perplexity"][label][language]["perplexity"] == pytest.approx(expected, rel=1e-4)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Held-out perplexity" in summary and "| en | 4 |" in summary


def test_module_example():
    import doctest

    from xling_align.analysis import perplexity

    assert doctest.testmod(perplexity).failed == 0
