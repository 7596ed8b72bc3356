"""Hub loading with `datasets` >= 4: repositories with a loading script are read from their own files.

Offline: the loading code is pointed at local folders laid out like the hub repositories, their scripts included
(a script that raises if it is run). The script route (`load_dataset(<folder>, <config>)`) fails on such a folder,
so a loader that took it would fail these tests. Each test compares what the loader gives with what the original
loading script did to the same file (its reading procedure, written out here).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from xling_align.data.bactrian_x import BACTRIAN_X_FILES, BACTRIAN_X_HUB_NAME, HubBactrianX
from xling_align.data.hub_data import load_hub_dataset, script_repository
from xling_align.data.readers import InvalidRecords
from xling_align.evaluation.benchmark_table import BENCHMARKS, SCRIPT_REPOSITORIES
from xling_align.lm_eval_tasks import data_loader

SCRIPT = "raise RuntimeError('the loading script ran: datasets >= 4 refuses it')\n"
STORY_HEADER = (
    "story_id\tinput_sentence_1\tinput_sentence_2\tinput_sentence_3\tinput_sentence_4\tsentence_quiz1\t"
    "sentence_quiz2\tanswer_right_ending"
)


def _story_file(path: Path, stories: int, split: str) -> None:
    """An XStoryCloze TSV with the quirks its script handled: quotes, `NA`, leading spaces, short and long rows."""
    lines = [
        STORY_HEADER,
        '1a\t"Tak," skazal on.\tNA\tOn skazal "privet".\t  chetyre\tpyat\tshest\t2',
        "short\ta\tb\tc\td\te",  # six fields: the script skipped it
        "long\ta\tb\tc\td\te\tf\t1\textra",  # nine fields: skipped too
        "",
    ]
    lines += [f"s{i}\tOdin {split} {i}.\tDva.\tTri.\tChetyre.\tPyat.\tShest.\t{1 + i % 2}" for i in range(stories)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _as_the_script_read_it(path: Path) -> list[dict]:
    """xstory_cloze.py's `_generate_examples`: csv.reader (tab, `"` quoting, skipinitialspace), header skipped,
    rows of eight fields by position, the answer an int."""
    names = SCRIPT_REPOSITORIES["juletxara/xstory_cloze"].columns
    with open(path, encoding="utf-8") as handle:
        reader = csv.reader(handle, quotechar='"', delimiter="\t", quoting=csv.QUOTE_ALL, skipinitialspace=True)
        next(reader)
        return [dict(zip(names, row[:7])) | {"answer_right_ending": int(row[7])} for row in reader if len(row) == 8]


@pytest.fixture
def hub_folder(tmp_path, monkeypatch):
    """`<tmp>/<owner>/<repo>/...` as on the hub, with each repository's loading script; the hub points there."""
    from xling_align.data import hub_data

    stories = tmp_path / "juletxara" / "xstory_cloze"
    stories.mkdir(parents=True)
    (stories / "xstory_cloze.py").write_text(SCRIPT, encoding="utf-8")
    for split, count in (("train", 20), ("eval", 12)):
        _story_file(stories / f"spring2016.val.ru.tsv.split_20_80_{split}.tsv", count, split)
    winograd = tmp_path / "Muennighoff" / "xwinograd"
    (winograd / "test").mkdir(parents=True)
    (winograd / "xwinograd.py").write_text(SCRIPT, encoding="utf-8")
    rows = [
        {
            "sentence": f"Le chat {i} a mangé _ car il avait faim.",
            "option1": "la souris",
            "option2": "le chat",
            "answer": str(1 + i % 2),
        }
        for i in range(5)
    ]
    (winograd / "test" / "fr.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    bactrian = tmp_path / "MBZUAI" / "Bactrian-X"
    (bactrian / "data").mkdir(parents=True)
    (bactrian / "Bactrian-X.py").write_text(SCRIPT, encoding="utf-8")
    for lang, word in (("en", "Count"), ("de", "Zähle")):
        items = [
            {
                "instruction": f"{word} to {i}.",
                "input": "" if i % 2 else "context",
                "id": f"alpaca-{i}",
                "output": f"{i}.",
            }
            for i in range(4)
        ]
        with gzip.open(bactrian / "data" / f"{lang}.json.gz", "wt", encoding="utf-8") as handle:
            json.dump(items, handle, ensure_ascii=False, indent=1)  # one JSON array, as the repository's files
    monkeypatch.setattr(hub_data, "HUB_FILES", str(tmp_path) + "/{repo}")
    monkeypatch.delenv(data_loader.DATA_DIR_ENV, raising=False)
    return tmp_path


def test_the_script_route_fails_on_these_folders(hub_folder):
    """What a loader that handed the repository to `load_dataset` would meet: no such config (or the script)."""
    import datasets

    for repo, config in (
        ("juletxara/xstory_cloze", "ru"),
        ("Muennighoff/xwinograd", "fr"),
        (BACTRIAN_X_HUB_NAME, "de"),
    ):
        with pytest.raises(Exception):  # noqa: B017 (datasets raises a different type per layout and version)
            datasets.load_dataset(str(hub_folder / repo), config, split="train" if "Bactrian" in repo else "test")


def test_xstorycloze_is_read_as_its_script_read_it(hub_folder):
    for split in ("train", "eval"):
        loaded = load_hub_dataset("juletxara/xstory_cloze", "ru", split, "offline hint")
        path = hub_folder / "juletxara/xstory_cloze" / f"spring2016.val.ru.tsv.split_20_80_{split}.tsv"
        expected = _as_the_script_read_it(path)
        assert list(loaded) == expected and len(expected) == {"train": 21, "eval": 13}[split]
        assert loaded.features["answer_right_ending"].dtype == "int32" and loaded.features["story_id"].dtype == "string"
    assert list(loaded)[0]["input_sentence_1"] == "Tak, skazal on." and list(loaded)[0]["input_sentence_2"] == "NA"


def test_the_tasks_hub_loader_reads_script_repositories_and_checks_them(hub_folder):
    """`lm_eval_tasks.data_loader` without a data folder: XStoryCloze and XWinograd scored splits from the "hub"."""
    splits = data_loader.load_benchmark("xstorycloze", "ru", "ru")
    # the story with quotes is in both files: the hub's demonstrations lose it, as a local file's would
    assert len(splits["eval"]) == 13 and len(splits["demos"].load()) == 20
    winograd = data_loader.load_benchmark("xwinograd", "fr")["test"]
    assert winograd["answer"] == ["1", "2", "1", "2", "1"] and winograd.features["answer"].dtype == "string"
    assert set(winograd.column_names) == set(BENCHMARKS["xwinograd"].columns)


def test_hub_bactrian_x_reads_its_json_arrays_streaming(hub_folder):
    counts = Counter()
    items = list(HubBactrianX().iter_items("de", InvalidRecords(skip=False), counts))
    assert [(item.id, item.instruction, item.input) for item in items] == [
        ("alpaca-0", "Zähle to 0.", "context"),
        ("alpaca-1", "Zähle to 1.", ""),
        ("alpaca-2", "Zähle to 2.", "context"),
        ("alpaca-3", "Zähle to 3.", ""),
    ]
    assert script_repository(BACTRIAN_X_HUB_NAME) is BACTRIAN_X_FILES
    assert script_repository("google-research-datasets/paws-x") is None  # data-only: load_dataset(path, config)


def test_data_build_from_the_hub_takes_the_files_route(hub_folder, tmp_path):
    from xling_align.cli import main

    output = tmp_path / "rows.jsonl"
    assert main(["data", "build", "--source", "bactrian-x", "--languages", "en", "de", "--output", str(output)]) == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert rows and {row["source_lang"] for row in rows if row["source_lang"]} <= {"en", "de"}
    assert any("Zähle" in row["prompt"] or "Zähle" in row.get("source_sentence", "") for row in rows)


def test_a_data_only_repository_still_goes_through_load_dataset(monkeypatch):
    import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: calls.append((args, kwargs)) or "dataset")
    assert load_hub_dataset("google-research-datasets/paws-x", "de", "test", "hint") == "dataset"
    assert calls == [(("google-research-datasets/paws-x", "de"), {"split": "test", "streaming": False})]


def test_without_the_hub_one_message_names_the_dataset_and_the_local_alternative(tmp_path):
    """A fresh interpreter with HF_HUB_OFFLINE=1: the hub is out of reach, as on a machine without network."""
    code = (
        "from xling_align.evaluation.benchmark_table import HubSplit\n"
        "from xling_align.lm_eval_tasks import data_loader\n"
        "from xling_align.data.bactrian_x import HubBactrianX\n"
        "from xling_align.data.readers import InvalidRecords\n"
        "from collections import Counter\n"
        "for repo, config, split in (('juletxara/xstory_cloze', 'ru', 'eval'),\n"
        "                            ('google-research-datasets/paws-x', 'de', 'test')):\n"
        "    try:\n"
        "        data_loader.load_hub_split('pawsx', HubSplit(repo, config, split))\n"
        "    except Exception as error:\n"
        "        print(type(error).__name__, '|', error)\n"
        "try:\n"
        "    list(HubBactrianX().iter_items('de', InvalidRecords(skip=False), Counter()))\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, '|', error)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop(data_loader.DATA_DIR_ENV, None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if "|" in line]
    assert len(lines) == 3, result.stdout + result.stderr[-3000:]
    for line, repo in zip(lines[:2], ("juletxara/xstory_cloze", "google-research-datasets/paws-x")):
        assert line.startswith("UnreachableBenchmarkDataError | Could not reach the Hugging Face hub for " + repo)
        assert "XLING_DATA_DIR=DIR" in line and "xling-align export-data --from-release" in line
    assert lines[2].startswith(
        "HubUnreachableError | Could not reach the Hugging Face hub for MBZUAI/Bactrian-X (config de, split train)"
    )
    assert "xling-align data build --input-dir FOLDER" in lines[2]


def test_the_module_examples_hold():
    import doctest

    from xling_align.data import hub_data

    assert doctest.testmod(hub_data).failed == 0
