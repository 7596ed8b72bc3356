"""`xling-align analyze` end to end on tiny saved models, the embeddings cache, and bad-input errors."""

import json
import os

import matplotlib.image
import numpy as np
import pytest
import torch

from tests.conftest import build_tiny_model
from xling_align.alignment.pooling import embed_sentences
from xling_align.analysis.analyzer import AnalysisSettings, analyze_model
from xling_align.analysis.embeddings_cache import model_fingerprint
from xling_align.analysis.layer_embeddings import embed_layers, resolve_layers
from xling_align.analysis.metrics import alignment_metrics
from xling_align.analysis.model_loading import ModelSource
from xling_align.analysis.pairs import load_analysis_pairs
from xling_align.cli import main as cli_main

ANIMALS = [("cat", "Katze"), ("dog", "Hund"), ("cow", "Kuh"), ("bird", "Vogel"), ("horse", "Pferd"), ("fish", "Fisch")]
VERBS = [("sees", "sieht"), ("hears", "hört")]
PAIRS = [
    (f"The {a} {v} the {b}.", f"Die {a_de} {v_de} die {b_de}.")
    for a, a_de in ANIMALS[:3]
    for v, v_de in VERBS
    for b, b_de in ANIMALS[3:5]
]  # 12 distinct pairs


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    from transformers import ByT5Tokenizer

    root = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (0, 1):
        path = root / f"tiny-{seed}"
        build_tiny_model("llama", num_layers=2, seed=seed).save_pretrained(path)
        ByT5Tokenizer().save_pretrained(path)
        paths.append(path)
    return paths


@pytest.fixture
def pairs_tsv(tmp_path):
    path = tmp_path / "pairs.en-de.tsv"
    path.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in PAIRS), encoding="utf-8")
    return path


def test_analyze_writes_metrics_summary_and_plots(saved_models, pairs_tsv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base, other = saved_models
    argv = [
        "analyze",
        "--model",
        str(base),
        "--compare",
        str(other),
        "--pairs",
        str(pairs_tsv),
        "--output",
        "out",
        "--tsne",
    ]
    code = cli_main(argv)
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "out"
    report = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(report["models"]) == {"base", "compare"}
    assert report["pairs"]["en-de"]["n_pairs"] == len(PAIRS)
    for model in report["models"].values():
        assert model["layers"] == [0, 1, 2]
        for values in model["metrics"]["en-de"].values():
            assert 0.0 <= values["retrieval_accuracy"] <= 1.0
            assert {
                "retrieval_accuracy_en_to_de",
                "retrieval_accuracy_de_to_en",
                "mexa_alignment",
                "cosine_margin",
                "language_probe_accuracy",
                "language_silhouette",
            } <= set(values)

    # the numbers equal an independent computation: embed_sentences + the metric on those vectors
    from transformers import AutoModelForCausalLM, ByT5Tokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    tokenizer = ByT5Tokenizer()
    for layer in (1, 2):
        a = embed_sentences(model, tokenizer, [en for en, _ in PAIRS], layer=layer)
        b = embed_sentences(model, tokenizer, [de for _, de in PAIRS], layer=layer)
        expected = alignment_metrics(a, b).to_dict("en", "de")
        got = report["models"]["base"]["metrics"]["en-de"][str(layer)]
        for key in (
            "retrieval_accuracy_en_to_de",
            "retrieval_accuracy_de_to_en",
            "mexa_alignment",
            "cosine_true_pairs",
        ):
            assert got[key] == pytest.approx(expected[key], abs=1e-5), key

    summaries = list(out.glob("*.md"))
    assert summaries and "retrieval" in summaries[0].read_text(encoding="utf-8")
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 4  # retrieval by layer, all metrics by layer, PCA, t-SNE
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0.01


def test_plot_figures_have_axis_labels_and_legends(saved_models, pairs_tsv, tmp_path):
    import matplotlib.pyplot as plt

    from xling_align.analysis.plots import metrics_figure, projection_figure

    pairs = load_analysis_pairs(pairs_tsv)
    settings = AnalysisSettings(layers="1,2", separability=False)
    alignments = [
        analyze_model(ModelSource(str(path)), pairs, settings, tmp_path / "cache", label=label)
        for label, path in zip(("base", "compare"), saved_models)
    ]
    for figure in (
        metrics_figure(alignments, ["retrieval_accuracy", "cosine_margin"]),
        projection_figure(alignments, 2),
    ):
        for ax in figure.axes:
            assert ax.get_xlabel() and ax.get_ylabel()
            labels = [text.get_text() for text in ax.get_legend().get_texts()]
            assert labels
        plt.close(figure)
    line_labels = [line.get_label() for line in metrics_figure(alignments, ["retrieval_accuracy"]).axes[0].lines]
    assert any(label.startswith("base") for label in line_labels) and any(
        label.startswith("compare") for label in line_labels
    )


def test_embeddings_cache_is_reused_and_follows_model_files(saved_models, pairs_tsv, tmp_path, monkeypatch):
    pairs = load_analysis_pairs(pairs_tsv)
    settings = AnalysisSettings(layers="2", separability=False)
    first = analyze_model(ModelSource(str(saved_models[0])), pairs, settings, tmp_path / "cache")

    def must_not_load(self):
        raise AssertionError("the model was loaded although its vectors are cached")

    monkeypatch.setattr(ModelSource, "load", must_not_load)
    again = analyze_model(ModelSource(str(saved_models[0])), pairs, settings, tmp_path / "cache")
    assert again.metrics == first.metrics

    before = model_fingerprint(saved_models[0])
    config = saved_models[0] / "config.json"  # a rewritten checkpoint file gets a new cache key
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert model_fingerprint(saved_models[0]) != before


@pytest.mark.parametrize("arch", ["llama", "bloom"])
def test_one_pass_layer_embeddings_equal_embed_sentences(arch, byte_tokenizer):
    model = build_tiny_model(arch, num_layers=2)
    sentences = [en for en, _ in PAIRS[:5]] + ["a", "Ein viel längerer Satz mit Umlauten: äöü."]
    vectors = embed_layers(model, byte_tokenizer, sentences, layers=[0, 1, -1], pooling="last", batch_size=3)
    assert sorted(vectors) == [0, 1, 2]
    for layer in (0, 1, 2):
        reference = embed_sentences(model, byte_tokenizer, sentences, layer=layer, pooling="last")
        assert torch.allclose(vectors[layer], reference, atol=1e-5)


def test_resolve_layers():
    assert resolve_layers("all", 3) == [0, 1, 2, 3]
    assert resolve_layers("2, -1,0", 3) == [0, 2, 3]
    with pytest.raises(ValueError, match="has 3 decoder layers"):
        resolve_layers("4", 3)
    with pytest.raises(ValueError, match="comma-separated"):
        resolve_layers("first", 3)


def _run_and_capture_error(capsys, argv):
    code = cli_main(["analyze", *argv])
    return code, capsys.readouterr().err


def test_bad_inputs_get_clear_errors(saved_models, pairs_tsv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = str(saved_models[0])

    single = tmp_path / "single.tsv"
    single.write_text("en\ten\nHello.\tHi.\nBye.\tCiao.\n", encoding="utf-8")
    code, err = _run_and_capture_error(capsys, ["--model", model, "--pairs", str(single), "--output", "o1"])
    assert code == 2 and "single language" in err and "single.tsv" in err

    one_column = tmp_path / "one_column.tsv"
    one_column.write_text("en\nHello.\nBye.\n", encoding="utf-8")
    code, err = _run_and_capture_error(capsys, ["--model", model, "--pairs", str(one_column), "--output", "o2"])
    assert code == 2 and "one_column.tsv" in err

    too_few = tmp_path / "few.tsv"
    too_few.write_text("en\tde\nHello.\tHallo.\n", encoding="utf-8")
    code, err = _run_and_capture_error(capsys, ["--model", model, "--pairs", str(too_few), "--output", "o3"])
    assert code == 2 and "at least 2" in err

    for too_few_kept in ("0", "1", "-3"):  # used to end in an Errno 2 about the embeddings cache
        code, err = _run_and_capture_error(
            capsys, ["--model", model, "--pairs", str(pairs_tsv), "--max-pairs", too_few_kept, "--output", "o7"]
        )
        assert code == 2 and f"max_pairs (--max-pairs) is {too_few_kept}: retrieval needs at least 2" in err

    copied = tmp_path / "copied.tsv"  # the English column written twice: retrieval would be a perfect 1.0
    copied.write_text(
        "en\tde\n" + "".join(f"Sentence {i}.\tSentence {i}.\n" for i in range(3)) + "Hello.\tHallo.\n", encoding="utf-8"
    )
    code, err = _run_and_capture_error(capsys, ["--model", model, "--pairs", str(copied), "--output", "o6"])
    assert code == 2 and "copied.tsv: 3 of the 4 en-de pairs have the same text on both sides" in err
    assert not (tmp_path / "o6").exists()
    # a few such pairs (names, numbers) are real translations and stay
    assert (
        len(load_analysis_pairs(_write_pairs(tmp_path / "few-copies.tsv", copies=1, others=3)).pairs[("en", "de")]) == 4
    )

    code, err = _run_and_capture_error(
        capsys, ["--model", model, "--pairs", str(pairs_tsv), "--layers", "1,7", "--output", "o4"]
    )
    assert code == 2 and "2 decoder layers" in err and "[7]" in err

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = str(tmp_path / "no-such-model")
    code, err = _run_and_capture_error(capsys, ["--model", missing, "--pairs", str(pairs_tsv), "--output", "o5"])
    assert code == 2 and "no-such-model" in err and "HF_HUB_OFFLINE" in err


def _write_pairs(path, copies, others):
    path.write_text(
        "en\tde\n"
        + "".join(f"Name {i}\tName {i}\n" for i in range(copies))
        + "".join(f"Hello {i}.\tHallo {i}.\n" for i in range(others)),
        encoding="utf-8",
    )
    return path


def test_lora_adapter_folder_loads_on_its_base(saved_models, pairs_tsv, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(saved_models[0])
    adapted = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    source = ModelSource(str(tmp_path / "adapter"))
    assert source.base_path == str(saved_models[0]) and source.depth == 2
    model, tokenizer = source.load()
    expected = embed_sentences(adapted, tokenizer, ["Hello."], layer=2)
    assert torch.allclose(embed_sentences(model, tokenizer, ["Hello."], layer=2), expected, atol=1e-5)
    plain = embed_sentences(AutoModelForCausalLM.from_pretrained(saved_models[0]), tokenizer, ["Hello."], layer=2)
    assert not np.allclose(plain.numpy(), expected.numpy())  # the adapter is really applied


def test_pairs_left_out_are_reported_never_dropped_silently(saved_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    pairs = tmp_path / "pairs.en-de.tsv"
    pairs.write_text(
        "en\tde\n"
        + "".join(f"{en}\t{de}\n" for en, de in PAIRS[:4])
        + "Lonely.\t\n\tAllein.\n"
        + f"{PAIRS[0][0]}\tNoch einmal.\n",
        encoding="utf-8",
    )
    code = cli_main(
        [
            "analyze",
            "--model",
            str(saved_models[0]),
            "--pairs",
            str(pairs),
            "--output",
            "out",
            "--layers",
            "1",
            "--no-separability",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "left out 2 pair(s) with an empty side" in err and "en-de: left out 1 pair(s) repeating a sentence" in err
    report = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert report["pairs_left_out"] == {"empty_side": 2, "malformed_skipped": 0}
    assert report["pairs"]["en-de"]["n_pairs"] == 4 and report["pairs"]["en-de"]["dropped_duplicates"] == 1
    assert "- left out 2 pair(s) with an empty side" in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")


def test_the_flags_its_messages_suggest_work(saved_models, tmp_path, monkeypatch, capsys):
    """A file with more columns asks for --languages, a malformed record offers --skip-invalid: both exist."""
    monkeypatch.chdir(tmp_path)
    model = str(saved_models[0])
    wide = tmp_path / "wide.tsv"
    wide.write_text(
        "id\ten\tde\tfr\n" + "".join(f"{i}\t{en}\t{de}\tx{i}\n" for i, (en, de) in enumerate(PAIRS)), encoding="utf-8"
    )
    code, err = _run_and_capture_error(capsys, ["--model", model, "--pairs", str(wide), "--output", "w1"])
    assert code == 2 and "--languages en de" in err
    code, err = _run_and_capture_error(
        capsys,
        [
            "--model",
            model,
            "--pairs",
            str(wide),
            "--languages",
            "en",
            "de",
            "--output",
            "w2",
            "--layers",
            "1",
            "--no-separability",
        ],
    )
    assert code == 0, err
    assert json.loads((tmp_path / "w2" / "metrics.json").read_text())["pairs"]["en-de"]["n_pairs"] == len(PAIRS)

    broken = tmp_path / "broken.en-de.tsv"
    broken.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in PAIRS) + "a\tb\tc\n", encoding="utf-8")
    code, err = _run_and_capture_error(capsys, ["--model", model, "--pairs", str(broken), "--output", "b1"])
    assert code == 2 and "line 14: expected 2 columns" in err and "--skip-invalid" in err
    code, err = _run_and_capture_error(
        capsys,
        [
            "--model",
            model,
            "--pairs",
            str(broken),
            "--skip-invalid",
            "--output",
            "b2",
            "--layers",
            "1",
            "--no-separability",
        ],
    )
    assert code == 0 and "skipped 1 malformed record(s)" in err
    assert json.loads((tmp_path / "b2" / "metrics.json").read_text())["pairs_left_out"]["malformed_skipped"] == 1
