"""`xling-align reproduce`: the whole pipeline offline on the tiny recipe, resumable stage by stage, and its errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xling_align.commands import reproduce

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "lm_eval" / "data"
TINY = str(ROOT / "recipes" / "tiny.yaml")
# a short training run that still selects a checkpoint on the held-out pairs (evaluated at steps 2 and 4)
SHORT = ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2"]


def _stage_lines(output: str) -> dict[str, str]:
    """`{stage: what happened}` from the `[stage] ...` lines of a run (the last line per stage)."""
    lines = {}
    for line in output.splitlines():
        if line.startswith("[") and "] " in line:
            stage, text = line[1:].split("] ", 1)
            lines[stage] = text
    return lines


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One reproduction of the tiny recipe (run once for the tests of this module)."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("reproduce") / "paper"
    argv = [
        "--recipe",
        TINY,
        "--output",
        str(folder),
        "--limit",
        "2",
        "--benchmark_data_dir",
        str(FIXTURE_DATA),
        *SHORT,
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = reproduce.main(argv)
    return folder, argv, status, out.getvalue()


def test_the_tiny_recipe_runs_end_to_end_offline(first_run):
    folder, _, status, output = first_run
    assert status == 0, output
    stages = _stage_lines(output)
    expected = [
        "data",
        "train",
        "evaluate-base-0shot",
        "evaluate-base-5shot",
        "evaluate-afp-0shot",
        "evaluate-afp-5shot",
        "report",
    ]
    assert list(stages) == expected and all(text.startswith("finished") for text in stages.values()), stages
    assert sorted(p.stem for p in (folder / "stages").glob("*.json")) == sorted(expected)
    # the aligned model was selected on the recipe's held-out pairs, not on a benchmark
    train = json.loads((folder / "stages" / "train.json").read_text())
    assert train["outputs"]["selection"].startswith("best of eval_contrastive_loss")
    assert (folder / "model" / "config.json").is_file() and (folder / "base-model" / "config.json").is_file()
    # each evaluation is an lm-eval results file of the paper-protocol tasks, en and zh, with the asked shots
    tasks = {
        "xling_afp_xnli_en",
        "xling_afp_xnli_zh",
        "xling_afp_pawsx_en",
        "xling_afp_pawsx_zh",
        "xling_afp_xcopa_zh",
        "xling_afp_xstorycloze_en",
        "xling_afp_xstorycloze_zh",
        "xling_afp_xwinograd_en",
        "xling_afp_xwinograd_zh",
    }
    for label in ("base", "afp"):
        for shots in (0, 5):
            results = json.loads((folder / "eval" / f"{label}-{shots}shot" / "results.json").read_text())
            assert tasks <= set(results["results"])
            assert {results["n-shot"][task] for task in tasks} == {shots}
            assert all(results["n-samples"][task]["effective"] == 2 for task in tasks)  # --limit 2
            expected_model = folder / ("model" if label == "afp" else "base-model")
            assert f"pretrained={expected_model}" in str(results["config"]["model_args"]) or results["config"][
                "model_args"
            ]["pretrained"] == str(expected_model)
    report = (folder / "report.md").read_text()
    assert "# 0-shot" in report and "# 5-shot" in report and "--limit 2" in report
    assert "## pawsx — paper protocol, English prompt (xling_afp)" in report and "| zh |" in report
    assert (folder / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_call_skips_every_finished_stage(first_run, capsys):
    folder, argv, status, _ = first_run
    assert status == 0
    model_files = {p: p.stat().st_mtime_ns for p in (folder / "model").rglob("*") if p.is_file()}
    assert reproduce.main(argv) == 0
    stages = _stage_lines(capsys.readouterr().out)
    assert len(stages) == 7 and all("same inputs: skipped" in text for text in stages.values()), stages
    assert {p: p.stat().st_mtime_ns for p in (folder / "model").rglob("*") if p.is_file()} == model_files


def test_a_changed_training_setting_is_refused_unless_redo_train_is_asked(first_run, capsys):
    folder, argv, status, _ = first_run
    assert status == 0
    message = _error(argv + ["--learning_rate", "5e-4"], capsys)
    assert f"{folder / 'model'} holds a model trained with other settings" in message and "--redo train" in message
    assert reproduce.main(argv + ["--redo", "report"]) == 0  # nothing was lost: the same call still skips
    stages = _stage_lines(capsys.readouterr().out)
    assert "skipped" in stages["train"] and stages["report"].startswith("finished")


def test_a_changed_evaluation_option_reruns_only_the_evaluations_and_the_report(first_run, capsys):
    folder, argv, status, _ = first_run
    assert status == 0
    changed = [a for a in argv] + ["--shots", "0", "--benchmarks", "pawsx"]
    changed[changed.index("--limit") + 1] = "3"
    assert reproduce.main(changed) == 0
    stages = _stage_lines(capsys.readouterr().out)
    assert "skipped" in stages["data"] and "skipped" in stages["train"]
    assert stages["evaluate-base-0shot"].startswith("finished") and stages["report"].startswith("finished")
    assert "evaluate-base-5shot" not in stages
    results = json.loads((folder / "eval" / "base-0shot" / "results.json").read_text())
    assert set(results["results"]) == {"xling_afp_pawsx_en", "xling_afp_pawsx_zh"}


def test_a_recipe_with_raw_data_builds_it_in_the_data_stage(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XLING_DATA_DIR", str(FIXTURE_DATA))  # the benchmark data, as the tasks read them
    recipe = tmp_path / "parallel.yaml"
    recipe.write_text(
        Path(TINY)
        .read_text()
        .replace(
            "dataset_path: pkg://xling_align/resources/tiny/train.jsonl",
            f"data_source: parallel\ndata_input: {ROOT / 'tests' / 'fixtures' / 'data' / 'parallel.en-de.tsv'}\n"
            "data_options: {heldout_size: 4}",
        )
        .replace("eval_dataset_path:", "# eval_dataset_path:")
        .replace("languages: [en, de, fr, zh]", "languages: [en, de]")
    )
    argv = [
        "--recipe",
        str(recipe),
        "--output",
        str(tmp_path / "run"),
        "--limit",
        "1",
        "--shots",
        "0",
        "--benchmarks",
        "pawsx",
        "--eval_languages",
        "en",
        *SHORT,
    ]
    assert reproduce.main(argv) == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "run" / "stages" / "data.json").read_text())["outputs"]
    assert data["built"] and Path(data["train"]).is_file() and Path(data["eval"]).is_file()
    heldout = [json.loads(line) for line in Path(data["eval"]).read_text().splitlines()]
    train = [json.loads(line) for line in Path(data["train"]).read_text().splitlines()]
    assert len({row["source_sentence"] for row in heldout}) == 4
    assert not {row["source_sentence"] for row in heldout} & {row["source_sentence"] for row in train}
    # the trainer selected its checkpoint on exactly those held-out pairs
    signature = json.loads((tmp_path / "run" / "model" / "xling_align_run.json").read_text())
    assert signature["script.dataset_path"] == data["train"] and signature["script.data_source"] is None


# ------------------------------------------------------------------------------------------------ errors
def _error(argv, capsys) -> str:
    assert reproduce.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("xling-align reproduce: error: "), captured.err
    return captured.err


def test_bad_options_are_explained_before_anything_runs(tmp_path, capsys):
    base = ["--recipe", TINY, "--output", str(tmp_path / "x"), "--benchmark_data_dir", str(FIXTURE_DATA)]
    assert "no task of xnli, pawsx, xcopa, xstorycloze, xwinograd has this test language" in _error(
        base + ["--eval_languages", "en", "tlh"], capsys
    )
    message = _error(base + ["--eval_languages", "en", "de", "--native"], capsys)
    assert "no prompt in de" in message and "en, zh, ar only" in message and "English prompt" in message
    assert "--redo training: the stages are data, train, evaluate, report" in _error(
        base + ["--redo", "training"], capsys
    )
    assert "--output_dir is set by reproduce" in _error(base + ["--output_dir", "y"], capsys)
    assert "--recipe 'nothing.yaml': no such file" in _error(
        ["--recipe", "nothing.yaml", "--output", str(tmp_path / "x")], capsys
    )
    assert not (tmp_path / "x").exists()


def test_a_shipped_recipe_can_be_named_alone_from_any_folder(tmp_path, monkeypatch, capsys):
    """`--recipe tiny` works outside a checkout (as `train --config tiny`); an unknown name lists the shipped ones."""
    from xling_align.pipeline.reproduction import ReproduceOptions, Reproduction

    monkeypatch.chdir(tmp_path)
    run = Reproduction(
        ReproduceOptions(recipe="tiny", output=str(tmp_path / "x"), benchmark_data_dir=str(FIXTURE_DATA)),
        [],
        log=lambda *_: None,
    )
    assert run.recipe.name == "tiny.yaml" and run.recipe.is_file()
    message = _error(["--recipe", "tinny", "--output", str(tmp_path / "y")], capsys)
    assert "--recipe 'tinny': no such file" in message and "xglm-564m" in message


def test_a_model_that_cannot_be_loaded_offline_names_hf_hub_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _error(
        [
            "--recipe",
            TINY,
            "--output",
            str(tmp_path / "x"),
            "--benchmark_data_dir",
            str(FIXTURE_DATA),
            "--model_name_or_path",
            "nobody/not-in-any-cache",
        ],
        capsys,
    )
    assert "'nobody/not-in-any-cache' cannot be loaded" in message and "HF_HUB_OFFLINE is set" in message
    assert not (tmp_path / "x").exists()


def test_missing_benchmark_data_or_too_few_demonstrations_are_explained(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    message = _error(
        [
            "--recipe",
            TINY,
            "--output",
            str(tmp_path / "x"),
            "--benchmark_data_dir",
            str(empty),
            "--benchmarks",
            "pawsx",
        ],
        capsys,
    )
    assert f"{empty}/pawsx/zh/test.jsonl" in message and "xling-align export-data --output" in message
    message = _error(
        [
            "--recipe",
            TINY,
            "--output",
            str(tmp_path / "x"),
            "--benchmark_data_dir",
            str(FIXTURE_DATA),
            "--benchmarks",
            "pawsx",
            "--shots",
            "0",
            "9",
        ],
        capsys,
    )
    assert "pawsx/en/validation.jsonl holds 8 rows, fewer than --shots 9" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("XLING_DATA_DIR", raising=False)
    assert "HF_HUB_OFFLINE is set and no benchmark data folder is given" in _error(
        ["--recipe", TINY, "--output", str(tmp_path / "x")], capsys
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1"
