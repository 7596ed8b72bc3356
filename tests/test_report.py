"""`xling-align report`: tables, averages, English-minus-rest gap, before/after difference, plot."""

from __future__ import annotations

import json

import pytest

from xling_align.commands import report
from xling_align.evaluation import score_tables


def _results(path, accs, groups=()):
    payload = {
        "results": {task: {"alias": task, "acc,none": acc, "acc_stderr,none": 0.01} for task, acc in accs.items()},
        "groups": {group: {"acc,none": 0.5} for group in groups},
    }
    for group in groups:
        payload["results"][group] = {"acc,none": 0.5}
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def two_runs(tmp_path):
    before = _results(
        tmp_path / "before.json",
        {
            "xling_pawsx_en": 0.80,
            "xling_pawsx_de": 0.60,
            "xling_pawsx_zh": 0.50,
            "xling_pawsx_de_endemo": 0.55,
            "xling_pawsx_zh_endemo": 0.45,
            "xnli_fr": 0.40,
            "some_other_task": 0.99,
        },
        groups=["xling_pawsx"],
    )
    after = _results(
        tmp_path / "after.json",
        {
            "xling_pawsx_en": 0.82,
            "xling_pawsx_de": 0.70,
            "xling_pawsx_zh": 0.66,
            "xling_pawsx_de_endemo": 0.65,
            "xling_pawsx_zh_endemo": 0.61,
        },
        groups=["xling_pawsx"],
    )
    return before, after


def _row(markdown, section, name):
    lines = markdown.split(f"## {section}")[1].split("\n## ")[0].splitlines()
    return [cell.strip() for cell in next(line for line in lines if line.startswith(f"| {name} |")).split("|")[2:-1]]


def test_tables_with_averages_gap_and_difference(two_runs, capsys):
    assert report.main([str(p) for p in two_runs] + ["--labels", "base,afp"]) == 0
    out = capsys.readouterr().out
    pawsx = "pawsx — in-language demonstrations"
    assert _row(out, pawsx, "de") == ["60.0", "70.0", "+10.0"]
    assert _row(out, pawsx, "**average**") == ["63.3", "72.7", "+9.3"]  # (80+60+50)/3, (82+70+66)/3
    assert _row(out, pawsx, "**average without English**") == ["55.0", "68.0", "+13.0"]
    assert _row(out, pawsx, "**English − rest**") == ["25.0", "14.0", "-11.0"]  # 80-55, 82-68
    endemo = "pawsx — English demonstrations (_endemo)"
    assert _row(out, endemo, "zh") == ["45.0", "61.0", "+16.0"]
    assert _row(out, endemo, "**English (in-language) − rest**") == ["30.0", "19.0", "-11.0"]  # 80-50, 82-63
    # a built-in task is recognised; one missing from the second run shows as a dash
    assert _row(out, "xnli — in-language demonstrations", "fr") == ["40.0", "–", "–"]
    assert "some_other_task" not in out and "| xling_pawsx |" not in out


def test_paper_protocol_tasks_get_their_own_tables_with_their_own_english(tmp_path, capsys):
    before = _results(
        tmp_path / "before.json",
        {
            "xling_afp_pawsx_en": 0.70,
            "xling_afp_pawsx_zh": 0.50,
            "xling_afp_pawsx_zh_native": 0.52,
            "xling_pawsx_en": 0.90,
        },
        groups=["xling_afp_pawsx"],
    )
    after = _results(
        tmp_path / "after.json",
        {
            "xling_afp_pawsx_en": 0.72,
            "xling_afp_pawsx_zh": 0.60,
            "xling_afp_pawsx_zh_native": 0.58,
            "xling_pawsx_en": 0.90,
        },
    )
    assert report.main([str(before), str(after), "--labels", "base,afp"]) == 0
    out = capsys.readouterr().out
    paper = "pawsx — paper protocol, English prompt (xling_afp)"
    assert _row(out, paper, "zh") == ["50.0", "60.0", "+10.0"]
    assert _row(out, paper, "**English − rest**") == ["20.0", "12.0", "-8.0"]  # its own English: 70-50, 72-60
    native = "pawsx — paper protocol, in-language prompt (xling_afp _native)"
    assert _row(out, native, "zh") == ["52.0", "58.0", "+6.0"]
    assert "| xling_afp_pawsx |" not in out


def test_plot_is_written(two_runs, tmp_path):
    image = tmp_path / "chart.png"
    assert report.main([str(p) for p in two_runs] + ["--plot", str(image)]) == 0
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_results_folder_uses_its_newest_file(two_runs, tmp_path, capsys):
    folder = tmp_path / "run" / "model"
    folder.mkdir(parents=True)
    (folder / "results_2026.json").write_text(two_runs[1].read_text())
    assert report.main([str(tmp_path / "run")]) == 0
    assert _row(capsys.readouterr().out, "pawsx — in-language demonstrations", "de") == ["70.0"]


def test_a_folder_with_several_models_results_is_refused(two_runs, tmp_path, capsys):
    """`lm_eval --output_path runs/` for the base and the aligned model: the newest file stood for both sides."""
    for model, run in (("base", two_runs[0]), ("afp", two_runs[1])):
        (tmp_path / "runs" / model).mkdir(parents=True)
        (tmp_path / "runs" / model / "results_2026.json").write_text(run.read_text())
    assert report.main([str(tmp_path / "runs"), str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"holds the results of 2 models ({tmp_path / 'runs' / 'afp'}, {tmp_path / 'runs' / 'base'})" in err
    # re-runs of one model: the newest is used, and the message says which
    (tmp_path / "runs" / "afp" / "results_2027.json").write_text(two_runs[0].read_text())
    assert report.main([str(tmp_path / "runs" / "afp")]) == 0
    assert "using the newest of its 2 results files" in capsys.readouterr().err


def test_bad_inputs_are_explained(tmp_path, capsys):
    assert report.main([str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"something": 1}))
    assert report.main([str(bad)]) == 2
    assert "no `results` mapping" in capsys.readouterr().err
    assert report.main([str(bad), "--labels", "a,b"]) == 2
    assert "one per file" in capsys.readouterr().err


def test_task_names_are_parsed():
    assert score_tables.parse_task("xling_belebele_eng_Latn") == ("belebele", score_tables.IN_LANGUAGE, "eng_Latn")
    assert score_tables.parse_task("belebele_zho_Hans") == ("belebele", score_tables.IN_LANGUAGE, "zho_Hans")
    assert score_tables.parse_task("xling_xcopa_et_endemo") == ("xcopa", score_tables.ENGLISH_DEMOS, "et")
    assert score_tables.parse_task("xling_clone_color_l2") is None


# ------------------------------------------------------------------- only like is compared with like
def _lm_eval_results(path, accs, shots=0, documents=8, total=8):
    """A results file with lm-eval's own bookkeeping: `n-shot` and `n-samples` (what --limit changes)."""
    payload = {
        "results": {task: {"alias": task, "acc,none": acc} for task, acc in accs.items()},
        "n-shot": {task: shots for task in accs},
        "n-samples": {task: {"original": total, "effective": documents} for task in accs},
        "config": {"limit": None if documents == total else float(documents)},
    }
    path.write_text(json.dumps(payload))
    return path


def test_different_shot_counts_get_separate_tables_and_no_difference(tmp_path, capsys):
    zero = _lm_eval_results(tmp_path / "zero.json", {"xling_pawsx_de": 0.5, "xling_pawsx_en": 0.7}, shots=0)
    five = _lm_eval_results(tmp_path / "five.json", {"xling_pawsx_de": 0.6, "xling_pawsx_en": 0.8}, shots=5)
    assert report.main([str(zero), str(five), "--labels", "base,afp"]) == 0
    captured = capsys.readouterr()
    assert _row(captured.out, "pawsx — in-language demonstrations, 0-shot", "de") == ["50.0", "–", "–"]
    assert _row(captured.out, "pawsx — in-language demonstrations, 5-shot", "de") == ["–", "60.0", "–"]
    assert "different numbers of demonstrations (base: 0, afp: 5 shots)" in captured.err


def test_different_document_counts_are_refused(tmp_path, capsys):
    full = _lm_eval_results(tmp_path / "full.json", {"xling_pawsx_de": 0.5})
    limited = _lm_eval_results(tmp_path / "limited.json", {"xling_pawsx_de": 0.75}, documents=4)
    assert report.main([str(full), str(limited), "--labels", "base,afp"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "different numbers of pawsx de documents (base: 8, afp: 4)" in captured.err and "--limit" in captured.err


def test_a_limited_run_is_marked_as_a_subset(tmp_path, capsys):
    limited = _lm_eval_results(tmp_path / "limited.json", {"xling_pawsx_de": 0.75}, documents=4)
    assert report.main([str(limited), str(limited), "--labels", "a,b"]) == 0
    assert "Scored on a subset (lm_eval --limit): xling_pawsx_de 4 of 8 documents" in capsys.readouterr().out


def test_averages_use_only_the_languages_every_run_has(tmp_path, capsys):
    before = _results(
        tmp_path / "before.json", {"xling_pawsx_de": 0.60, "xling_pawsx_zh": 0.50, "xling_pawsx_fr": 0.40}
    )
    after = _results(tmp_path / "after.json", {"xling_pawsx_de": 0.70, "xling_pawsx_zh": 0.60})
    assert report.main([str(before), str(after), "--labels", "base,afp"]) == 0
    out = capsys.readouterr().out
    section = "pawsx — in-language demonstrations"
    assert _row(out, section, "**average**") == ["55.0", "65.0", "+10.0"]  # fr, missing from afp, left out of both
    assert "Averages over the 2 language(s) every run has (de, zh); left out: fr." in out


def test_two_tasks_for_one_cell_and_foreign_files_are_refused(tmp_path, capsys):
    both = _results(tmp_path / "both.json", {"xling_pawsx_de": 0.6, "paws_de": 0.5})
    assert report.main([str(both)]) == 2
    assert "two results for pawsx de (xling_pawsx_de and paws_de)" in capsys.readouterr().err
    other = _results(tmp_path / "other.json", {"hellaswag": 0.3})
    assert report.main([str(other)]) == 2
    assert "(its tasks: hellaswag)" in capsys.readouterr().err
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{")
    assert report.main([str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
