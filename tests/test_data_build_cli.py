"""`xling-align data build` on the fixture folder: what a user of the command checks first."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xling_align.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "data"
BACTRIAN = FIXTURES / "bactrian"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def fixture_items(language):
    """Independent reading of the fixture: {id: item} (the zh file's broken line is left out)."""
    path = next(BACTRIAN.glob(f"{language}.json*"))
    if path.suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
    else:
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return {record["id"]: record for record in records}


def build(tmp_path, *options, name="out.jsonl"):
    output = tmp_path / name
    code = main(
        ["data", "build", "--source", "bactrian-x", "--input-dir", str(BACTRIAN), *options, "--output", str(output)]
    )
    return code, output


def test_broken_line_fails_with_its_number_and_leaves_no_output(tmp_path, capsys):
    code, output = build(tmp_path, "--languages", "en", "zh")
    assert code == 2  # bad input, as every clean error of the package
    assert "zh.jsonl, line 4: invalid JSON" in capsys.readouterr().err
    assert not output.exists() and not list(tmp_path.iterdir())  # no temporary file left either


def test_skip_invalid_succeeds_and_reports_counts(tmp_path, capsys):
    code, output = build(tmp_path, "--languages", "en", "zh", "--skip-invalid")
    assert code == 0
    report = capsys.readouterr().out
    assert "invalid 1" in report and "missing-in:zh 1" in report
    rows = read_jsonl(output)
    assert {row["kind"] for row in rows} <= {"instruction", "pair", "instruction+pair"}
    assert all(
        list(row)
        == ["prompt", "completion", "source_sentence", "target_sentence", "source_lang", "target_lang", "kind"]
        for row in rows
    )


@pytest.mark.parametrize("languages", [("en", "de"), ("de", "en")])
def test_cross_rows_answer_with_target_output_of_same_id(tmp_path, languages):
    code, output = build(tmp_path, "--languages", *languages, "--cross-probability", "0.5", "--repeat", "4")
    assert code == 0
    items = {language: fixture_items(language) for language in languages}
    by_instruction = {
        (lang, item["instruction"]): item_id for lang in languages for item_id, item in items[lang].items()
    }
    rows = read_jsonl(output)
    cross = [row for row in rows if row["source_lang"] != row["target_lang"] and row["prompt"]]
    assert cross
    for row in cross:
        item_id = by_instruction[(row["source_lang"], row["source_sentence"])]
        assert row["completion"] == " " + items[row["target_lang"]][item_id]["output"]
        assert row["target_sentence"] == items[row["target_lang"]][item_id]["instruction"]
        assert row["prompt"].startswith(items[row["source_lang"]][item_id]["instruction"])
    # id 4 is missing in German: no row mentions it
    assert not any("Summarize" in row["prompt"] or "Summarize" in row["source_sentence"] for row in rows)


def test_same_seed_identical_files_other_seed_differs(tmp_path):
    options = ("--languages", "en", "de", "--repeat", "5")
    _, first = build(tmp_path, *options, "--seed", "3", name="a.jsonl")
    _, second = build(tmp_path, *options, "--seed", "3", name="b.jsonl")
    _, third = build(tmp_path, *options, "--seed", "4", name="c.jsonl")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != third.read_bytes()


def test_tsv_parallel_gives_both_directions_and_translation_rows(tmp_path, capsys):
    output = tmp_path / "p.jsonl"
    code = main(
        [
            "data",
            "build",
            "--source",
            "parallel",
            "--input",
            str(FIXTURES / "parallel.en-de.tsv"),
            "--languages",
            "en",
            "de",
            "--seed",
            "0",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    rows = read_jsonl(output)
    pairs = [
        line.split("\t") for line in (FIXTURES / "parallel.en-de.tsv").read_text(encoding="utf-8").splitlines()[1:]
    ]
    forward = {
        (row["source_sentence"], row["target_sentence"])
        for row in rows
        if (row["source_lang"], row["target_lang"]) == ("en", "de")
    }
    backward = {
        (row["target_sentence"], row["source_sentence"])
        for row in rows
        if (row["source_lang"], row["target_lang"]) == ("de", "en")
    }
    assert forward == backward == {tuple(pair) for pair in pairs}
    assert all(row["kind"] == "translation+pair" for row in rows)
    german = next(row for row in rows if row["source_sentence"] == "Good morning.")
    assert (german["prompt"], german["completion"]) == ("Good morning. Translate into German:", " Guten Morgen.")
    assert "en -> de" in capsys.readouterr().out


def test_pivot_mode_translation_file_heldout_and_tokens(tmp_path, capsys):
    heldout = tmp_path / "heldout.jsonl"
    code, output = build(
        tmp_path,
        "--languages",
        "en",
        "de",
        "zh",
        "--mode",
        "pivot",
        "--skip-invalid",
        "--translation-file",
        str(FIXTURES / "parallel.en-de.tsv"),
        "--heldout-output",
        str(heldout),
        "--heldout-size",
        "1",
        "--tokenizer",
        "byt5",
        "--pretraining-tokens",
        "1000000",
    )
    assert code == 0
    report = capsys.readouterr().out
    assert "per mille" in report and "tokens:" in report
    rows = read_jsonl(output)
    pairs = {(row["source_lang"], row["target_lang"]) for row in rows if row["source_sentence"]}
    assert ("de", "zh") not in pairs and ("zh", "de") not in pairs  # pairs always touch the pivot
    assert any(row["kind"] == "translation+pair" for row in rows)
    held = read_jsonl(heldout)
    assert held and {(row["source_lang"], row["kind"]) for row in held} == {("en", "pair")}
    held_sentences = {row["source_sentence"] for row in held}
    assert not any(row["source_sentence"] in held_sentences or row["target_sentence"] in held_sentences for row in rows)


def test_bad_options_exit_2(tmp_path, capsys):
    code, _ = build(tmp_path, "--languages", "en", "de", "zh")
    assert code == 2 and "pivot" in capsys.readouterr().err
    code, _ = build(tmp_path, "--languages", "en", "klingon")
    error = capsys.readouterr().err
    assert code == 2 and "unknown language code 'klingon'" in error and "zh" in error
    code, _ = build(tmp_path, "--languages", "en", "de", "--heldout-size", "3")
    assert code == 2 and "--heldout-output" in capsys.readouterr().err


def test_console_script_runs_in_a_temp_dir(tmp_path):
    output = tmp_path / "rows.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "xling_align",
        "data",
        "build",
        "--source",
        "parallel",
        "--input",
        str(FIXTURES / "parallel.en-de.tsv"),
        "--languages",
        "en",
        "de",
        "--output",
        str(output),
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(output)) == 10


def test_every_config_field_is_a_flag_with_its_help():
    """The flags are generated from DataBuildConfig: a new field is a new flag, documented by its help."""
    import dataclasses

    from xling_align.commands.data import make_parser
    from xling_align.data import DataBuildConfig

    build_parser = make_parser()._subparsers._group_actions[0].choices["build"]
    by_dest = {}
    for action in build_parser._actions:
        by_dest.setdefault(action.dest, action)  # the field's own flag comes first, then aliases
    for item in dataclasses.fields(DataBuildConfig):
        action = by_dest[item.name]
        assert f"--{item.name.replace('_', '-')}" in action.option_strings
        assert action.help == item.metadata["help"]


def test_held_out_pairs_default_and_old_spellings(tmp_path, capsys):
    pairs = FIXTURES / "parallel.en-de.tsv"
    heldout = tmp_path / "heldout.tsv"
    common = ["data", "build", "--source", "parallel", "--input", str(pairs), "--languages", "en", "de"]
    # the default, 200 held-out items, takes every record of this 5-record file: nothing left to train on
    assert main([*common, "--output", str(tmp_path / "a.jsonl"), "--heldout-output", str(heldout)]) == 2
    err = capsys.readouterr().err
    assert "every record was held out (5 held-out pairs, --heldout-size 200)" in err and "below 5" in err
    assert not (tmp_path / "a.jsonl").exists()
    assert (
        main([*common, "--output", str(tmp_path / "a.jsonl"), "--heldout-output", str(heldout), "--heldout-size", "2"])
        == 0
    )
    assert len(heldout.read_text(encoding="utf-8").splitlines()) - 1 == 2
    assert {(row["source_sentence"], row["target_sentence"]) for row in read_jsonl(tmp_path / "a.jsonl")}
    capsys.readouterr()
    # --pairs-only (released spelling) still works, with a notice naming the new flag
    assert main([*common, "--output", str(tmp_path / "b.jsonl"), "--pairs-only", "--dedup"]) == 0
    assert "--pairs-only is deprecated; use --no-translation-prompts" in capsys.readouterr().err
    assert (
        main([*common, "--output", str(tmp_path / "c.jsonl"), "--no-translation-prompts", "--remove-duplicates"]) == 0
    )
    assert read_jsonl(tmp_path / "b.jsonl") == read_jsonl(tmp_path / "c.jsonl")
    assert {row["kind"] for row in read_jsonl(tmp_path / "c.jsonl")} == {"pair"}


def test_a_file_without_records_builds_nothing_and_says_so(tmp_path, capsys):
    header_only = tmp_path / "pairs.en-de.tsv"
    header_only.write_text("en\tde\n", encoding="utf-8")
    output = tmp_path / "rows.jsonl"
    code = main(
        [
            "data",
            "build",
            "--source",
            "parallel",
            "--input",
            str(header_only),
            "--languages",
            "en",
            "de",
            "--output",
            str(output),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no rows were built from" in err and "pairs.en-de.tsv" in err and "not only a header" in err
    assert not output.exists()


def test_a_json_array_in_a_jsonl_file_is_read_as_an_array(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps([{"en": "Good morning.", "de": "Guten Morgen."}, {"en": "Thanks.", "de": "Danke."}]))
    output = tmp_path / "rows.jsonl"
    assert (
        main(
            [
                "data",
                "build",
                "--source",
                "parallel",
                "--input",
                str(pairs),
                "--languages",
                "en",
                "de",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    sentences = {row[side] for row in read_jsonl(output) for side in ("source_sentence", "target_sentence")}
    assert {"Good morning.", "Guten Morgen.", "Thanks.", "Danke."} <= sentences
