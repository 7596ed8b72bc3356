"""The issue's check: after brief AFP training on a fixture of pairs, `xling-align analyze` sees the alignment.

A tiny random Llama is trained with AFPTrainer (contrastive term only, at hidden_states[1], mean pooling) on
12 translation pairs; the analysis of base versus trained model on those pairs must show a higher retrieval
accuracy at the contrastive layer for the trained model, and write readable JSON, Markdown and PNGs.
"""

import json

import matplotlib.image

from tests.conftest import build_tiny_model
from tests.test_analysis_cli import PAIRS
from xling_align.cli import main as cli_main

CONTRASTIVE_LAYER = 1


def test_afp_training_raises_retrieval_accuracy_at_the_contrastive_layer(tmp_path, monkeypatch, byte_tokenizer, capsys):
    from datasets import Dataset

    from xling_align import AFPConfig, AFPTrainer

    monkeypatch.chdir(tmp_path)
    model = build_tiny_model("llama", num_layers=2)
    model.save_pretrained(tmp_path / "base")
    byte_tokenizer.save_pretrained(tmp_path / "base")
    rows = Dataset.from_dict({"source_sentence": [en for en, _ in PAIRS], "target_sentence": [de for _, de in PAIRS]})
    args = AFPConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=12,
        per_device_train_batch_size=len(PAIRS),
        learning_rate=5e-3,
        lr_scheduler_type="constant",
        contrastive_layer=CONTRASTIVE_LAYER,
        contrastive_pooling="mean",
        sft_weight=0.0,
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = AFPTrainer(model=model, args=args, train_dataset=rows, processing_class=byte_tokenizer)
    trainer.train()
    trainer.save_model(str(tmp_path / "aligned"))
    byte_tokenizer.save_pretrained(tmp_path / "aligned")

    pairs = tmp_path / "pairs.en-de.tsv"
    pairs.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in PAIRS), encoding="utf-8")
    code = cli_main(
        [
            "analyze",
            "--model",
            "base",
            "--compare",
            "aligned",
            "--pairs",
            str(pairs),
            "--output",
            "out",
            "--layers",
            f"0,{CONTRASTIVE_LAYER}",
            "--pooling",
            "mean",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    base = report["models"]["base"]["metrics"]["en-de"][str(CONTRASTIVE_LAYER)]
    aligned = report["models"]["compare"]["metrics"]["en-de"][str(CONTRASTIVE_LAYER)]
    assert aligned["retrieval_accuracy"] > base["retrieval_accuracy"]
    assert aligned["retrieval_accuracy"] >= 0.5 > base["retrieval_accuracy"]
    assert aligned["cosine_margin"] > base["cosine_margin"]

    assert "compare" in next((tmp_path / "out").glob("*.md")).read_text(encoding="utf-8")
    pngs = list((tmp_path / "out").glob("*.png"))
    assert len(pngs) >= 2
    assert all(matplotlib.image.imread(png).shape[0] > 200 for png in pngs)
