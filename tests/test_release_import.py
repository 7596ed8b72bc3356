"""`xling-align export-data --from-release`: the benchmarks' own release files become the tasks' local layout.

On the real PAWS-X and XCOPA release files (`../shared/data`): the hub's fields and types, every data check the
tasks run passes (none refuses published data), and `lm_eval` scores the imported files 0- and 5-shot. Other
formats (XNLI, XStoryCloze) and broken files on small files written as their releases document them.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xling_align.commands import export_data
from xling_align.evaluation.benchmark_table import benchmark
from xling_align.evaluation.release_import import ReleaseFormatError, import_release
from xling_align.lm_eval_tasks import data_loader, paper_tasks
from xling_align.lm_eval_tasks.data_checks import ScoredItems, read_rows

PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "zh")
XCOPA_LANGS = ("et", "ht", "id", "it", "qu", "sw", "ta", "vi", "zh")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def imported(shared_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported")
    assert export_data.main(["--from-release", str(shared_data_dir), "--output", str(out)]) == 0
    return out


def test_the_real_releases_become_the_hub_layout_with_the_hub_types(imported, shared_data_dir):
    written = sorted(str(path.relative_to(imported)) for path in imported.rglob("*.jsonl"))
    splits = ("test", "validation")
    assert written == sorted(
        [f"pawsx/{lang}/{split}.jsonl" for lang in PAWSX_LANGS for split in splits]
        + [f"xcopa/{lang}/{split}.jsonl" for lang in XCOPA_LANGS for split in splits]
    )
    for lang in PAWSX_LANGS:
        with open(shared_data_dir / "pawsx" / lang / "test_2k.tsv", encoding="utf-8", newline="") as handle:
            release = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        rows = _rows(imported / "pawsx" / lang / "test.jsonl")
        assert len(rows) == 2000 and list(rows[0]) == ["id", "sentence1", "sentence2", "label"]
        assert all(type(row["id"]) is int and row["label"] in (0, 1) and type(row["label"]) is int for row in rows)
        assert [(str(r["id"]), r["sentence1"], r["sentence2"], str(r["label"])) for r in rows] == [
            (r["id"], r["sentence1"], r["sentence2"], r["label"]) for r in release
        ]
    for lang in XCOPA_LANGS:
        for split, name, size in (("test", "test", 500), ("validation", "val", 100)):
            rows = _rows(imported / "xcopa" / lang / f"{split}.jsonl")
            release = _rows(shared_data_dir / "xcopa" / lang / f"{name}.{lang}.jsonl")
            assert rows == release and len(rows) == size
            assert list(rows[0]) == ["premise", "choice1", "choice2", "question", "label", "idx", "changed"]


def _demonstration_warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "demonstration row(s)" in record.getMessage()]


def test_every_data_check_of_the_tasks_passes_on_the_real_releases(imported, caplog):
    """Scored splits, demonstration pools (the dev files) and the paper protocol: nothing refuses published data.

    PAWS-X's dev and test files share identical items (de 18, zh 17, fr 6, es 2, ja 1): they leave the pool.
    """
    expected_shared = {"de": 18, "zh": 17, "fr": 6, "es": 2, "ja": 1, "en": 0}
    table = benchmark("pawsx")
    with caplog.at_level(logging.WARNING):
        for lang in PAWSX_LANGS:
            caplog.clear()
            scored, items = data_loader.load_scored_split("pawsx", lang, table.scored(lang), str(imported))
            assert len(scored) == 2000
            pool = data_loader.load_split(
                "pawsx", lang, table.dev(lang), str(imported), demonstrations=True, not_in=items
            )
            assert len(pool) == 2000 - expected_shared[lang]
            warnings = _demonstration_warnings(caplog)
            assert len(warnings) == (1 if expected_shared[lang] else 0)
            if warnings:
                assert f"{expected_shared[lang]} of 2000 demonstration row(s)" in warnings[0]
            # the paper's protocol: English demonstrations for every language, zh's own for the _native task
            for prompt in ("en",) + (("zh",) if lang == "zh" else ()):
                splits = paper_tasks.load_paper_protocol("pawsx", lang, prompt, data_dir=str(imported))
                shared = expected_shared[lang] if prompt == lang else 0
                assert len(splits["dev"]) == 2000 - shared and len(splits["test"]) == 2000
        for lang in XCOPA_LANGS:  # the tasks' own: validation gives the demonstrations, test is scored
            splits = data_loader.load_benchmark("xcopa", lang, lang, data_dir=str(imported))
            assert len(splits["test"]) == 500 and len(splits["demos"].load()) == 100


def test_the_tasks_own_demonstrations_and_endemo_pass_on_the_real_releases(shared_data_dir, tmp_path, caplog):
    """`--dev-as-demonstrations`: xling_pawsx_<lang> (its own dev rows) and _endemo (English dev rows) draw from
    pools without scored items; XCOPA has its own demonstration split."""
    out = tmp_path / "data"
    assert (
        export_data.main(
            [
                "--from-release",
                str(shared_data_dir),
                "--output",
                str(out),
                "--benchmarks",
                "pawsx",
                "--dev-as-demonstrations",
            ]
        )
        == 0
    )
    expected_shared = {"de": 18, "zh": 17, "fr": 6, "es": 2, "ja": 1, "en": 0}
    with caplog.at_level(logging.WARNING):
        for lang in PAWSX_LANGS:
            own = data_loader.load_benchmark("pawsx", lang, lang, data_dir=str(out))["demos"].load()
            assert len(own) == 2000 - expected_shared[lang]
            english = data_loader.load_benchmark("pawsx", lang, "en", data_dir=str(out))["demos"].load()
            assert len(english) == 2000  # English rows are no item of another language's test file
    assert not (out / "xcopa").exists()


def test_the_paws_x_pool_no_longer_holds_a_scored_item(imported):
    scored, items = data_loader.load_scored_split("pawsx", "de", benchmark("pawsx").scored("de"), str(imported))
    pool = data_loader.load_split("pawsx", "de", benchmark("pawsx").dev("de"), str(imported), not_in=items)
    scored_pairs = {(row["sentence1"].strip(), row["sentence2"].strip()) for row in scored}
    assert not [row for row in pool if (row["sentence1"].strip(), row["sentence2"].strip()) in scored_pairs]
    assert isinstance(items, ScoredItems)


def test_lm_eval_scores_imported_paws_x_and_xcopa_zero_and_five_shot(shared_data_dir, tmp_path, tiny_gpt2_folder):
    """The real `lm_eval` command on the imported files: exit 0, a score per task, the one warning of the pool."""
    out = tmp_path / "data"
    assert (
        export_data.main(
            [
                "--from-release",
                str(shared_data_dir),
                "--output",
                str(out),
                "--benchmarks",
                "pawsx",
                "xcopa",
                "--languages",
                "fr",
                "et",
                "--dev-as-demonstrations",
            ]
        )
        == 0
    )
    assert (out / "pawsx" / "fr" / "train.jsonl").is_file()  # the dev rows, as the demonstration split
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XLING_DATA_DIR": str(out), "OMP_NUM_THREADS": "1"}
    for shots in (0, 5):
        results = tmp_path / f"results{shots}"
        command = [
            os.path.join(os.path.dirname(sys.executable), "lm_eval"),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_gpt2_folder}",
            "--device",
            "cpu",
            "--tasks",
            "xling_pawsx_fr,xling_xcopa_et",
            "--num_fewshot",
            str(shots),
            "--limit",
            "8",
            "--output_path",
            str(results),
        ]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        scores = json.loads(next(results.rglob("results_*.json")).read_text(encoding="utf-8"))["results"]
        assert set(scores) >= {"xling_pawsx_fr", "xling_xcopa_et"}
        assert all(0 <= scores[task]["acc,none"] <= 1 for task in ("xling_pawsx_fr", "xling_xcopa_et"))
        shared = "6 of 2000 demonstration row(s) are items of the scored split"
        assert (shared in run.stderr) == (shots == 5), run.stderr[-3000:]


# ------------------------------------------------------------------------- documented formats, broken files
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_xnli_and_xstorycloze_release_files_are_read_as_the_hub_scripts_read_them(tmp_path):
    header = "language\tgold_label\tsentence1_binary_parse\tsentence1\tsentence2\tpairID"
    _write(
        tmp_path / "XNLI-1.0" / "xnli.test.tsv",
        "\n".join(
            [
                header,
                'de\tentailment\t( x )\tEin "Satz".\tNoch einer.\t1',
                "fr\tcontradiction\t( y )\tUne.\tDeux.\t1",
                "de\tneutral\t( z )\tDrei.\tVier.\t2",
            ]
        )
        + "\n",
    )
    _write(
        tmp_path / "XNLI-MT-1.0" / "multinli" / "multinli.train.de.tsv",
        "premise\thypo\tlabel\nA.\tB.\tcontradictory\nC.\tD.\tentailment\n",
    )
    story_header = (
        "InputStoryid\tInputSentence1\tInputSentence2\tInputSentence3\tInputSentence4\t"
        "RandomFifthSentenceQuiz1\tRandomFifthSentenceQuiz2\tAnswerRightEnding"
    )
    _write(
        tmp_path / "spring2016.val.ru.tsv.split_20_80_eval.tsv",
        story_header + "\nabc-1\tОдин.\tДва.\tТри.\tЧетыре.\tПять.\tШесть.\t2\n",
    )
    out = tmp_path / "out"
    import_release(tmp_path, out, ["xnli", "xstorycloze"], None, report=lambda line: None)
    assert _rows(out / "xnli" / "de" / "test.jsonl") == [
        {"premise": 'Ein "Satz".', "hypothesis": "Noch einer.", "label": 0},
        {"premise": "Drei.", "hypothesis": "Vier.", "label": 1},
    ]
    assert _rows(out / "xnli" / "fr" / "test.jsonl") == [{"premise": "Une.", "hypothesis": "Deux.", "label": 2}]
    assert [row["label"] for row in _rows(out / "xnli" / "de" / "train.jsonl")] == [2, 0]
    assert _rows(out / "xstorycloze" / "ru" / "eval.jsonl") == [
        {
            "story_id": "abc-1",
            "input_sentence_1": "Один.",
            "input_sentence_2": "Два.",
            "input_sentence_3": "Три.",
            "input_sentence_4": "Четыре.",
            "sentence_quiz1": "Пять.",
            "sentence_quiz2": "Шесть.",
            "answer_right_ending": 2,
        }
    ]
    # what the tasks' checks make of them
    assert len(read_rows(out / "xstorycloze" / "ru" / "eval.jsonl", "xstorycloze")) == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "id\tsentence1\tlabel\n1\ta\t1\n",
            r"dev_2k.tsv, line 1: the header lacks sentence2 \(it has: id, sentence1, label\)",
        ),
        (
            "id\tsentence1\tsentence2\tlabel\n1\ta\tb\tyes\n",
            r"dev_2k.tsv, line 2: label 'yes' is not 0 or 1\. PAWS-X labels",
        ),
        ("id\tsentence1\tsentence2\tlabel\n1\ta\tb\n", r"dev_2k.tsv, line 2: 3 tab-separated fields, the header has 4"),
        ("id\tsentence1\tsentence2\tlabel\nx1\ta\tb\t1\n", r"dev_2k.tsv, line 2: id 'x1' is not an integer"),
    ],
)
def test_a_broken_paws_x_file_names_the_file_the_line_and_the_fix(tmp_path, text, expected):
    _write(tmp_path / "x-final" / "de" / "dev_2k.tsv", text)
    with pytest.raises(ReleaseFormatError, match=expected):
        import_release(tmp_path, tmp_path / "out", ["pawsx"], None, report=lambda line: None)


def test_unlabelled_training_rows_are_left_out_and_other_encodings_refused(tmp_path):
    _write(
        tmp_path / "x-final" / "de" / "translated_train.tsv",
        "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t1\n2\tc\t\t\n3\te\tf\tNaN\n4\tg\th\t0\n",
    )
    lines = []
    import_release(tmp_path, tmp_path / "out", ["pawsx"], None, report=lines.append)
    assert [row["id"] for row in _rows(tmp_path / "out" / "pawsx" / "de" / "train.jsonl")] == [1, 4]
    assert "2 row(s) without a valid label or with a wrong number of fields left out (first at line 3" in lines[0]
    latin = tmp_path / "latin" / "x-final" / "fr" / "test_2k.tsv"
    latin.parent.mkdir(parents=True)
    latin.write_bytes("id\tsentence1\tsentence2\tlabel\n1\tété\tb\t1\n".encode("latin-1"))
    with pytest.raises(ReleaseFormatError, match=r"test_2k.tsv, line 2.*UTF-8.*Convert it to UTF-8"):
        import_release(tmp_path / "latin", tmp_path / "out2", ["pawsx"], None, report=lambda line: None)


def test_a_bad_xcopa_row_and_a_folder_without_release_files_are_named(tmp_path, capsys):
    row = {
        "premise": "P.",
        "choice1": "A.",
        "choice2": "B.",
        "question": "effect",
        "label": 2,
        "idx": 0,
        "changed": False,
    }
    _write(tmp_path / "data" / "et" / "test.et.jsonl", json.dumps(row) + "\n")
    with pytest.raises(ReleaseFormatError, match=r"test.et.jsonl, line 1: label 2 is not 0 or 1"):
        import_release(tmp_path, tmp_path / "out", ["xcopa"], None, report=lambda line: None)
    assert export_data.main(["--from-release", str(tmp_path / "empty"), "--output", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert export_data.main(["--from-release", str(tmp_path / "empty"), "--output", str(tmp_path / "o")]) == 2
    assert "no release files of" in capsys.readouterr().err


def test_the_module_examples_hold():
    import doctest

    from xling_align.evaluation import release_import

    assert doctest.testmod(release_import).failed == 0
