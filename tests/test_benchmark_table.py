"""The benchmark table: its facts agree with each other and with data in the hub's format."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from xling_align.evaluation import benchmark_table
from xling_align.evaluation.benchmark_table import BENCHMARKS, DEMONSTRATIONS, DEV, SCORED, benchmark

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "lm_eval" / "data"


def test_examples_in_the_docstring_run():
    assert doctest.testmod(benchmark_table).failed == 0


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_language_has_a_scored_split_and_demonstrations_never_come_from_it(name):
    table = BENCHMARKS[name]
    assert table.english in table.languages and len(set(table.languages)) == len(table.languages)
    for lang in table.languages:
        scored, demos = table.scored(lang), table.demonstrations(lang)
        assert scored is not None and scored.split
        assert demos is None or (demos.path, demos.name, demos.split) != (scored.path, scored.name, scored.split)
        assert demos is None or demos.split != scored.split  # both live in one local folder, one file per split
    for lang, role in table.overrides:
        assert lang in table.languages and role in (SCORED, DEMONSTRATIONS, DEV)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_prompt_words_cover_every_language_or_none(name):
    table = BENCHMARKS[name]
    if table.prompt_words:
        assert set(table.prompt_words) == set(table.languages)
        assert {len(words) for words in table.prompt_words.values()} == {len(table.prompt_word_names)}
    assert table.detokenized_languages <= set(table.languages)
    assert table.label_column in table.columns


def test_words_are_named():
    assert benchmark("pawsx").words("de") == {"right": "richtig", "yes": "Ja", "no": "Nein"}


def test_labels_and_columns_match_data_in_the_hub_format():
    """Every fixture file (hub columns, hub types) has the table's columns and only its label values."""
    files = sorted(FIXTURE_DATA.glob("*/*/*.jsonl"))
    assert {path.parts[-3] for path in files} == set(BENCHMARKS)
    for path in files:
        table = BENCHMARKS[path.parts[-3]]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert rows and all(set(table.columns) <= set(row) for row in rows), path
        assert {row[table.label_column] for row in rows} <= set(table.label_values), path


def test_unknown_benchmark_and_role_are_refused():
    with pytest.raises(ValueError, match="unknown benchmark 'paws': expected one of xnli, pawsx"):
        benchmark("paws")
    with pytest.raises(ValueError, match="unknown split role 'test'"):
        benchmark("xnli").split("de", "test")


# lm-eval 0.4.13's own task folder of each benchmark: an independent record of names, hub ids and splits
LM_EVAL_FOLDERS = {
    "xnli": "xnli",
    "pawsx": "paws-x",
    "xcopa": "xcopa",
    "xstorycloze": "xstorycloze",
    "xwinograd": "xwinograd",
    "belebele": "belebele",
}


def _builtin_tasks(folder: Path) -> dict[str, dict]:
    """`{task name: config with includes merged}` of every task YAML in one lm-eval task folder."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # `!function ...`: not needed here

    def load(path: Path) -> dict:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader) or {}
        if "include" in config:
            config = {**load(path.parent / config.pop("include")), **config}
        return config

    configs = (load(path) for path in folder.glob("*.yaml") if not path.name.startswith("_"))
    return {config["task"]: config for config in configs if isinstance(config.get("task"), str)}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_languages_hub_ids_and_scored_splits_agree_with_lm_eval_builtins(name):
    lm_eval = pytest.importorskip("lm_eval")
    table = BENCHMARKS[name]
    builtins = _builtin_tasks(Path(lm_eval.__file__).parent / "tasks" / LM_EVAL_FOLDERS[name])
    covered = {lang: builtins.get(f"{table.builtin_task_prefix}_{lang}") for lang in table.languages}
    assert set(builtins) == {f"{table.builtin_task_prefix}_{lang}" for lang, c in covered.items() if c}
    missing = [lang for lang, config in covered.items() if config is None]
    assert missing == (["en"] if name == "xcopa" else [])  # lm-eval has no English XCOPA; the table uses COPA
    for lang, config in covered.items():
        if config is None:
            continue
        scored = table.scored(lang)
        assert (config["dataset_path"], config["dataset_name"]) == (scored.path, scored.name), lang
        assert (config.get("test_split") or config["validation_split"]) == scored.split, lang
