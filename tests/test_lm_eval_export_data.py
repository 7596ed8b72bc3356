"""`xling-align export-data` writes the offline layout from the hub (a stand-in `load_dataset`, no network)."""

from __future__ import annotations

import pytest

from xling_align.commands import export_data
from xling_align.evaluation.benchmark_table import BENCHMARKS
from xling_align.lm_eval_tasks import data_loader


@pytest.fixture
def fake_hub(monkeypatch):
    import datasets

    calls = []

    def load_dataset(path, name=None, split=None, data_files=None, **kwargs):
        if path in ("json", "csv"):  # a repository with a loading script, read from its own file (hub_data)
            ((split, location),) = data_files.items()
            owner, repo, *file = location.removeprefix("hf://datasets/").split("/")
            path, name = f"{owner}/{repo}", file[-1].split(".")[0]
        calls.append((path, name, split))
        benchmark = {
            "google-research-datasets/paws-x": "pawsx",
            "cambridgeltl/xcopa": "xcopa",
            "aps/super_glue": "xcopa",
            "Muennighoff/xwinograd": "xwinograd",
            "allenai/winogrande": "xwinograd",
        }[path]
        table = BENCHMARKS[benchmark]
        rows = []
        for i in range(2):  # two distinct items (a file of copies is refused)
            row = {column: f"{path}|{name}|{split}" + (f"|{i}" if i else "") for column in table.columns}
            # the hub's types and values where the tasks check them
            row.update({column: values[0] for column, values in table.column_values.items()})
            row[table.label_column] = table.label_values[0]
            if benchmark == "xwinograd":
                row["sentence"] += " _ ."
            rows.append(row)
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_export_writes_the_layout_the_tasks_read(fake_hub, tmp_path, capsys):
    argv = [
        "--output",
        str(tmp_path),
        "--benchmarks",
        "pawsx",
        "xcopa",
        "xwinograd",
        "--languages",
        "en",
        "de",
        "et",
        "fr",
    ]
    assert export_data.main(argv) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl"))
    assert written == [
        "pawsx/de/test.jsonl",
        "pawsx/de/train.jsonl",
        "pawsx/en/test.jsonl",
        "pawsx/en/train.jsonl",
        "pawsx/en/validation.jsonl",  # the English dev split: demonstrations of the xling_afp_* tasks
        "pawsx/fr/test.jsonl",
        "pawsx/fr/train.jsonl",
        "xcopa/en/train.jsonl",
        "xcopa/en/validation.jsonl",
        "xcopa/et/test.jsonl",
        "xcopa/et/validation.jsonl",
        "xwinograd/en/test.jsonl",
        "xwinograd/en/train.jsonl",
        "xwinograd/en/validation.jsonl",
        "xwinograd/fr/test.jsonl",
    ]
    assert ("aps/super_glue", "copa", "train") in fake_hub  # English COPA behind xcopa/en
    assert ("allenai/winogrande", "winogrande_xl", "train") in fake_hub  # WinoGrande behind xwinograd/en/train
    assert ("allenai/winogrande", "winogrande_xl", "validation") in fake_hub  # and behind xwinograd/en/validation
    # the tasks' loader reads the exported files back, demonstrations included
    splits = data_loader.load_benchmark("xcopa", "et", "en", data_dir=str(tmp_path))
    assert splits["test"][0]["premise"] == "cambridgeltl/xcopa|et|test"
    assert splits["demos"].load()[0]["premise"] == "aps/super_glue|copa|train"
    # a second run keeps what exists
    fake_hub.clear()
    assert export_data.main(argv) == 0
    assert fake_hub == []


def test_unknown_language_or_benchmark_is_explained(fake_hub, tmp_path, capsys):
    assert export_data.main(["--output", str(tmp_path), "--benchmarks", "pawsx", "--languages", "de", "xx"]) == 2
    assert "xx" in capsys.readouterr().err
    assert export_data.main(["--output", str(tmp_path), "--benchmarks", "paws"]) == 2
    assert "unknown benchmark 'paws'" in capsys.readouterr().err
    assert fake_hub == []


def test_old_spellings_still_work_with_a_notice(fake_hub, tmp_path, capsys):
    # released spellings: --out, comma-separated lists
    assert export_data.main(["--out", str(tmp_path), "--benchmarks", "pawsx,xwinograd", "--languages", "en,fr"]) == 0
    err = capsys.readouterr().err
    assert "--out is deprecated; use --output" in err
    assert "separate the values with spaces: --benchmarks pawsx xwinograd" in err
    assert "separate the values with spaces: --languages en fr" in err
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl"))
    assert written == [
        "pawsx/en/test.jsonl",
        "pawsx/en/train.jsonl",
        "pawsx/en/validation.jsonl",
        "pawsx/fr/test.jsonl",
        "pawsx/fr/train.jsonl",
        "xwinograd/en/test.jsonl",
        "xwinograd/en/train.jsonl",
        "xwinograd/en/validation.jsonl",
        "xwinograd/fr/test.jsonl",
    ]


def test_output_is_required(capsys):
    import pytest

    with pytest.raises(SystemExit) as done:
        export_data.main(["--benchmarks", "pawsx"])
    assert done.value.code == 2 and "--output" in capsys.readouterr().err
