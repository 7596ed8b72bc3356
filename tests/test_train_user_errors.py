"""`xling-align train` on the data mistakes people make: one `error:` line naming the input, exit status 2.

Each case used to end in a traceback (a bare `StopIteration` from `datasets` for an empty file, a
`UnicodeDecodeError` in the middle of the run, a `FileNotFoundError` for a missing evaluation file) or suggested
a flag `train` does not have.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xling_align.cli import main

QUICK = [
    "--model_name_or_path",
    "xling-align/tiny-random-xglm",
    "--max_steps",
    "1",
    "--eval_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
    "--save_strategy",
    "no",
    "--report_to",
    "none",
    "--bf16",
    "false",
    "--use_cpu",
    "true",
    "--per_device_train_batch_size",
    "2",
    "--cpu_threads",
    "1",
]
ROW = {
    "prompt": "Say hello. Answer in German:",
    "completion": " Hallo",
    "source_sentence": "Hello.",
    "target_sentence": "Hallo.",
}
PAIRS = "en\tde\nGood morning.\tGuten Morgen.\nThank you.\tDanke.\nThe cat sleeps.\tDie Katze schläft.\n"


def _train(tmp_path, capsys, *argv):
    code = main(["train", *argv, "--output", str(tmp_path / "run"), *QUICK])
    err = capsys.readouterr().err
    return code, err.strip().splitlines()[-1] if err.strip() else ""


def _jsonl(path: Path, rows, encoding="utf-8") -> str:
    path.write_bytes("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode(encoding))
    return str(path)


def test_an_empty_file_is_refused_by_name(tmp_path, capsys):
    (tmp_path / "rows.jsonl").write_text("\n\n")
    code, error = _train(tmp_path, capsys, "--dataset_path", str(tmp_path / "rows.jsonl"))
    assert code == 2 and error.startswith("xling-align train: error: dataset ") and "rows.jsonl' is empty" in error


def test_rows_that_are_not_utf8_are_refused_before_training(tmp_path, capsys):
    path = _jsonl(tmp_path / "rows.jsonl", [ROW, ROW | {"completion": " Café"}], encoding="latin-1")
    code, error = _train(tmp_path, capsys, "--dataset_path", path)
    assert code == 2 and "rows.jsonl, byte offset" in error and "not valid UTF-8" in error and "iconv" in error


def test_text_columns_of_another_type_are_named(tmp_path, capsys):
    numbers = _jsonl(tmp_path / "numbers.jsonl", [ROW | {"target_sentence": 5}, ROW | {"target_sentence": 6}])
    code, error = _train(tmp_path, capsys, "--dataset_path", numbers)
    assert code == 2 and "column(s) target_sentence (int64) must hold text" in error
    mixed = _jsonl(tmp_path / "mixed.jsonl", [ROW | {"target_sentence": 5}, ROW])
    code, error = _train(tmp_path, capsys, "--dataset_path", mixed)
    assert code == 2 and "target_sentence" in error and "must hold text" in error


def test_broken_json_names_the_line_without_a_flag_train_lacks(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + '{"prompt": "x", "completion"\n')
    code, error = _train(tmp_path, capsys, "--dataset_path", str(path))
    assert code == 2 and "rows.jsonl, line 2: invalid JSON" in error and "--skip-invalid" not in error


def test_a_json_array_and_a_byte_order_mark_are_read(tmp_path, capsys):
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps([ROW, ROW | {"source_sentence": "Thanks.", "target_sentence": "Danke."}]))
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + (json.dumps(ROW) + "\r\n").encode() * 2)
    for path in (array, bom):
        assert main(["train", "--dataset_path", str(path), "--output", str(tmp_path / path.stem), *QUICK]) == 0
    assert "error" not in capsys.readouterr().err


def test_a_row_the_trainer_refuses_ends_in_one_error_line(tmp_path, capsys):
    path = _jsonl(tmp_path / "rows.jsonl", [ROW, ROW | {"source_sentence": ""}])
    code, error = _train(tmp_path, capsys, "--dataset_path", path)
    assert code == 2 and "the trainer refused the data" in error and "row 1 of the train dataset has an empty" in error


def test_missing_evaluation_files_are_named_before_anything_runs(tmp_path, capsys):
    rows = _jsonl(tmp_path / "rows.jsonl", [ROW, ROW])
    for setting in ("eval_dataset_path", "alignment_eval_file"):
        code, error = _train(tmp_path, capsys, "--dataset_path", rows, f"--{setting}", "held-out.tsv")
        assert code == 2 and f"{setting} 'held-out.tsv' does not exist" in error


def test_malformed_evaluation_files_say_how_to_fix_them_in_train_terms(tmp_path, capsys):
    rows = _jsonl(tmp_path / "rows.jsonl", [ROW, ROW])
    broken = tmp_path / "held-out.tsv"
    broken.write_text(PAIRS + "one\ttwo\tthree\n", encoding="utf-8")
    code, error = _train(tmp_path, capsys, "--dataset_path", rows, "--alignment_eval_file", str(broken))
    assert code == 2 and "alignment_eval_file: " in error and "line 5: expected 2 columns" in error
    assert "--skip-invalid" not in error and "nothing is skipped" in error
    latin = tmp_path / "latin.tsv"
    latin.write_bytes(PAIRS.encode("latin-1"))
    code, error = _train(tmp_path, capsys, "--dataset_path", rows, "--eval_dataset_path", str(latin))
    assert code == 2 and "eval_dataset_path: " in error and "not valid UTF-8" in error and "iconv" in error


def test_raw_data_errors_point_to_data_options(tmp_path, capsys):
    broken = tmp_path / "pairs.en-de.tsv"
    broken.write_text(PAIRS + "one\ttwo\tthree\n", encoding="utf-8")
    code, error = _train(
        tmp_path, capsys, "--data_source", "parallel", "--data_input", str(broken), "--languages", "en", "de"
    )
    assert code == 2 and "line 5: expected 2 columns" in error and "skip_invalid: true to data_options" in error
    header_only = tmp_path / "header.en-de.tsv"
    header_only.write_text("en\tde\n", encoding="utf-8")
    code, error = _train(
        tmp_path, capsys, "--data_source", "parallel", "--data_input", str(header_only), "--languages", "en", "de"
    )
    assert code == 2 and "produced no rows" in error


def test_a_shipped_recipe_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    from xling_align.pipeline.training_script import RecipeError, parse_recipe

    monkeypatch.chdir(tmp_path)
    for name in ("tiny", "tiny.yaml", "pkg://xling_align/recipes/tiny.yaml"):
        script_args, _, model_args = parse_recipe(["--config", name])
        assert model_args.model_name_or_path == "xling-align/tiny-random-xglm"
        assert Path(script_args.dataset_path).is_file()
    (tmp_path / "tiny").write_text("model_name_or_path: my/model\ndataset_path: rows.jsonl\n")
    assert parse_recipe(["--config", "tiny"])[2].model_name_or_path == "my/model"  # a file of that name wins
    with pytest.raises(RecipeError) as error:
        parse_recipe(["--config", "recipes/tiny.yaml"])  # the README's checkout path, from elsewhere
    assert (
        "no such file" in str(error.value) and "--config tiny" in str(error.value) and "xglm-564m" in str(error.value)
    )


def test_languages_that_do_not_match_the_rows_are_refused(tmp_path, capsys):
    rows = _jsonl(tmp_path / "rows.jsonl", [ROW | {"source_lang": "en", "target_lang": "ja"}] * 2)
    code, error = _train(tmp_path, capsys, "--config", "tiny", "--dataset_path", rows)  # tiny says en de fr zh
    assert code == 2 and "languages en de fr zh (recipe or --languages) do not match dataset_path" in error
    assert "not listed: ja" in error and "no rows in: de fr zh" in error and "--languages en ja" in error
    assert (
        main(
            [
                "train",
                "--config",
                "tiny",
                "--dataset_path",
                rows,
                "--languages",
                "eng_Latn",
                "ja",
                "--output",
                str(tmp_path / "ok"),
                *QUICK,
            ]
        )
        == 0
    )  # codes match by meaning (eng_Latn = en)


def test_rows_whose_prompt_fills_max_length_are_counted_or_refused(tmp_path, capsys, caplog):
    """SFTTrainer drops a row with no completion token within max_length, silently; with every row gone the run
    used to end in `ValueError: num_samples should be a positive integer value` from torch's sampler."""
    long_row = {**ROW, "prompt": "Say hello politely to everyone in the room today. Answer in German:"}
    rows = _jsonl(tmp_path / "rows.jsonl", [ROW, ROW, long_row, long_row, long_row])
    code, error = _train(tmp_path, capsys, "--dataset_path", rows, "--max_length", "12")
    assert code == 2 and "all 5 instruction rows of the train dataset were dropped" in error
    assert "max_length=12" in error and "rows.jsonl" in error
    with caplog.at_level("WARNING"):
        code, error = _train(
            tmp_path, capsys, "--dataset_path", rows, "--max_length", "40", "--overwrite_output_dir", "true"
        )
    assert code == 0, error
    assert "3 of 5 instruction rows of the train dataset were dropped" in caplog.text
