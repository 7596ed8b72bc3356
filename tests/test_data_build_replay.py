"""`xling-align data build --replay-file`: replay rows interleaved at the share, and AFPTrainer trains on them."""

import json
from pathlib import Path

from datasets import load_dataset

from xling_align.cli import main
from xling_align.data.replay_rows import ReplayInterleaver

BACTRIAN = Path(__file__).parent / "fixtures" / "data" / "bactrian"
TEXTS = ["The river runs to the sea.", "Der Hund schläft im Garten.", "Snow fell at night."]


def _build(tmp_path, *options, output="out.jsonl"):
    replay = tmp_path / "replay.txt"
    replay.write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    code = main(
        [
            "data",
            "build",
            "--source",
            "bactrian-x",
            "--input-dir",
            str(BACTRIAN),
            "--languages",
            "en",
            "de",
            "--replay-file",
            str(replay),
            *options,
            "--output",
            str(tmp_path / output),
        ]
    )
    return code, tmp_path / output


def test_replay_rows_make_the_share_along_the_file(tmp_path, capsys):
    code, output = _build(tmp_path, "--replay-share", "0.25", "--replay-lang", "en")
    assert code == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    replay = [row for row in rows if row["replay_text"]]
    built = len(rows) - len(replay)
    assert len(replay) == round(built / 3)  # 0.25 of all rows = a third of the built ones
    assert {row["replay_text"] for row in replay} <= set(TEXTS)
    assert all(row["kind"] == "replay" and row["source_lang"] == "en" and not row["prompt"] for row in replay)
    assert all("replay_text" in row for row in rows)
    first_half = rows[: len(rows) // 2]
    assert abs(sum(bool(r["replay_text"]) for r in first_half) / len(first_half) - 0.25) < 0.1  # spread out
    assert f"of which {len(replay)} replay rows" in capsys.readouterr().out


def test_interleaver_counts_and_repeats_documents():
    rows = list(ReplayInterleaver(["a", "b"], share=0.5, seed=0).rows({"kind": "pair"} for _ in range(5)))
    assert sum(bool(row["replay_text"]) for row in rows) == 5
    assert {row["replay_text"] for row in rows if row["replay_text"]} == {"a", "b"}


def test_refusals_name_the_option(tmp_path, capsys):
    code, _ = _build(tmp_path, "--replay-share", "1.5")
    assert code == 2 and "--replay-share 1.5" in capsys.readouterr().err
    code, _ = _build(tmp_path, output="folder")
    assert code == 2 and "ending in .jsonl" in capsys.readouterr().err


def test_built_rows_train_with_their_replay_rows(tmp_path, byte_tokenizer):
    from xling_align import AFPConfig, AFPTrainer
    from xling_align.tiny_models import TINY_MODEL_PREFIX, build_tiny_model

    code, output = _build(tmp_path, "--replay-share", "0.25")
    assert code == 0
    rows = load_dataset("json", data_files=str(output), split="train")
    model, _ = build_tiny_model(TINY_MODEL_PREFIX + "llama", seed=0)
    args = AFPConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=8,
        report_to="none",
        activation_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = AFPTrainer(model=model, args=args, train_dataset=rows, processing_class=byte_tokenizer)
    assert sum(trainer.train_dataset["afp_replay"]) == sum(bool(text) for text in rows["replay_text"])
    trainer.train()
    assert any(entry.get("replay_loss", 0) > 0 for entry in trainer.state.log_history)
