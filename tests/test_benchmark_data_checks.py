"""Local benchmark data is checked before it is scored: right values in another type are converted, wrong ones stop.

Through the real `lm_eval` command: labels as strings (a CSV reader's output) score exactly what the hub's
integer labels score, in every benchmark family, and bad data (a file that is not UTF-8, copied rows, two blanks,
demonstrations that are scored items) ends the run with one `error:` line naming the file, the lines and the fix
(exit status 2, no traceback; `xling-eval` prints the same). The unit tests below cover each check on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xling_align.evaluation.benchmark_table import BENCHMARKS
from xling_align.lm_eval_tasks import data_loader
from xling_align.lm_eval_tasks.data_checks import (
    BenchmarkDataError,
    check_scored_split,
    checked_rows,
    coerce_label,
    read_rows,
)

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "lm_eval" / "data"
# one task per family, each with a fixture scored split
ONE_TASK_PER_FAMILY = {
    "xling_pawsx_de": ("pawsx", "de", "test"),
    "xling_xnli_de": ("xnli", "de", "validation"),
    "xling_xcopa_et": ("xcopa", "et", "test"),
    "xling_xstorycloze_ar": ("xstorycloze", "ar", "eval"),
    "xling_xwinograd_fr": ("xwinograd", "fr", "test"),
    "xling_belebele_eng_Latn": ("belebele", "eng_Latn", "test"),
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _other_type(value):
    """The label as the other type: `1` -> `"1"` (a CSV reader), `"1"` -> `1` (a script that parsed it)."""
    return str(value) if isinstance(value, int) else int(value)


def _numbered(rows):
    return list(enumerate(rows, start=1))


# ------------------------------------------------------------------------------------------ unit checks
def test_the_module_examples_hold():
    import doctest

    from xling_align.lm_eval_tasks import data_checks

    assert doctest.testmod(data_checks).failed == 0


@pytest.mark.parametrize("name", BENCHMARKS)
def test_labels_of_the_other_type_are_converted_to_the_hub_type(name):
    table = BENCHMARKS[name]
    for value in table.label_values:
        assert coerce_label(_other_type(value), table.label_values) == value
        assert type(coerce_label(_other_type(value), table.label_values)) is type(value)
        assert coerce_label(value, table.label_values) == value
    assert coerce_label(" 1\r", (0, 1)) == 1 and coerce_label(1.0, (0, 1)) == 1  # CRLF residue, a float from pandas


@pytest.mark.parametrize("bad", [-1, 3, "yes", "entailment", "", None, True, 1.5, [1]])
def test_labels_that_name_no_choice_are_refused(bad):
    assert coerce_label(bad, (0, 1, 2)) is None


def test_an_out_of_range_label_names_file_column_values_lines_and_fix():
    rows = [{"premise": "p", "hypothesis": "h", "label": value} for value in (0, -1, 2, "contradiction", -1)]
    with pytest.raises(BenchmarkDataError) as error:
        checked_rows(_numbered(rows), "xnli", "de", "data/xnli/de/validation.jsonl")
    message = str(error.value)
    assert message.startswith("data/xnli/de/validation.jsonl: column 'label' holds 3 value(s)")
    assert "-1 (line 2, 2 rows)" in message and "'contradiction' (line 4)" in message
    assert "one of 0, 1, 2 (integers): 0 = entailment, 1 = neutral, 2 = contradiction" in message


def test_the_label_column_of_each_family_is_the_one_checked():
    story = {f"input_sentence_{i}": "s." for i in range(1, 5)} | {"sentence_quiz1": "a.", "sentence_quiz2": "b."}
    rows = checked_rows(_numbered([story | {"answer_right_ending": "2"}]), "xstorycloze", "ar", "f")
    assert rows[0]["answer_right_ending"] == 2
    with pytest.raises(BenchmarkDataError, match="column 'answer_right_ending' holds 1 value"):
        checked_rows(_numbered([story | {"answer_right_ending": 0}]), "xstorycloze", "ar", "f")
    passage = {"flores_passage": "p", "question": "q", **{f"mc_answer{i}": "a" for i in range(1, 5)}}
    assert (
        checked_rows(_numbered([passage | {"correct_answer_num": 4}]), "belebele", "eng_Latn", "f")[0][
            "correct_answer_num"
        ]
        == "4"
    )
    with pytest.raises(BenchmarkDataError, match="one of 1, 2, 3, 4 \\(strings\\): 1 = mc_answer1"):
        checked_rows(_numbered([passage | {"correct_answer_num": "D"}]), "belebele", "eng_Latn", "f")


def test_text_columns_fixed_values_and_the_winograd_blank_are_checked():
    copa = {"premise": "p.", "choice1": "a", "choice2": "b", "label": 0}
    with pytest.raises(
        BenchmarkDataError, match="column 'question' holds 1 value.* 'Cause' .*one of 'cause', 'effect'"
    ):
        checked_rows(_numbered([copa | {"question": "Cause"}]), "xcopa", "et", "f")
    with pytest.raises(BenchmarkDataError, match="column 'sentence1' holds 1 value.* 7 .*text"):
        checked_rows(_numbered([{"sentence1": 7, "sentence2": "b", "label": 1}]), "pawsx", "ja", "f")
    # where lm-eval drops documents with an empty sentence (PAWS-X en/de/es/fr), null is allowed
    assert checked_rows(
        _numbered(
            [{"sentence1": None, "sentence2": "b", "label": 1}, {"sentence1": "a", "sentence2": "b", "label": 0}]
        ),
        "pawsx",
        "de",
        "f",
    )
    with pytest.raises(
        BenchmarkDataError,
        match=r"f: column 'choice1/choice2' holds 1 value.s. that are empty: '' "
        r"\(line 1\)",
    ):  # lm-eval's prompt failed with an IndexError
        checked_rows(_numbered([copa | {"question": "cause", "choice1": ""}]), "xcopa", "et", "f")
    winograd = {"option1": "a", "option2": "b", "answer": "1"}
    with pytest.raises(BenchmarkDataError, match="without the blank"):
        checked_rows(_numbered([winograd | {"sentence": "No gap here."}]), "xwinograd", "fr", "f")


def test_a_file_whose_every_pair_lm_eval_would_drop_is_refused(tmp_path):
    """PAWS-X en/de/es/fr leave out pairs with an empty sentence; a file of only such pairs left lm-eval nothing to
    score, and it failed with an IndexError from inside `datasets`."""
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation import lm_eval_plugin

    root = tmp_path / "data"
    path = data_loader.local_path(root, "pawsx", "en", "test")
    path.parent.mkdir(parents=True)
    _write(path, [{"sentence1": "", "sentence2": "b", "label": 1}, {"sentence1": "a", "sentence2": None, "label": 0}])
    lm_eval_plugin.register()
    with pytest.raises(BenchmarkDataError) as error:
        TaskManager(include_defaults=False, metadata={"data_dir": str(root)}).load(["xling_pawsx_en"])
    assert str(path) in str(error.value) and "every row has an empty sentence" in str(error.value)
    # in Japanese lm-eval scores such pairs as they are, so they are not refused there
    assert checked_rows(_numbered([{"sentence1": "", "sentence2": "b", "label": 1}]), "pawsx", "ja", "f")


def test_repeated_ids_and_files_of_copies_are_refused_a_few_repeats_reported(caplog):
    """Each copy of a row is scored; the revert of 2f7900e kept in mind: a few repeats may be the benchmark's own."""
    pairs = [{"id": i, "sentence1": f"a{i}", "sentence2": "b", "label": i % 2} for i in range(1, 4)]
    with pytest.raises(
        BenchmarkDataError,
        match=r"f: 1 id value.s. occur on more than one row .lines 2, 4.\. Each "
        "pawsx item has its own id",
    ):
        check_scored_split(_numbered(pairs + pairs[1:2]), "pawsx", "de", "test", "f")
    nli = [{"premise": "p", "hypothesis": f"h{i}", "label": i % 3} for i in range(3)]
    with pytest.raises(
        BenchmarkDataError,
        match=r"f: every item occurs more than once .6 rows, 3 distinct items by "
        r"premise\+hypothesis; lines 1, 4; lines 2, 5; lines 3, 6.\.",
    ):
        check_scored_split(_numbered(nli + nli), "xnli", "de", "validation", "f")
    with caplog.at_level("WARNING"):
        check_scored_split(_numbered(nli + [nli[0] | {"label": 2}, nli[2]]), "xnli", "de", "validation", "g")
    assert (
        "warning: g: 2 item(s) occur more than once (same premise+hypothesis; lines 1, 4; lines 3, 5), 1 of them "
        "with different labels: each copy is scored, 2 extra row(s) in all" in caplog.text
    )
    assert "warning: g: 5 rows, the published xnli de validation split has 2490" in caplog.text
    caplog.clear()
    empty = [{"sentence1": "", "sentence2": "", "label": 0}] * 2  # left out by lm-eval in PAWS-X de: not items
    with caplog.at_level("WARNING"):
        check_scored_split(_numbered(empty + pairs), "pawsx", "de", "test", "e")
    assert "occur more than once" not in caplog.text
    caplog.clear()
    full = [{"premise": "p", "hypothesis": f"h{i}", "label": i % 3} for i in range(2490)]
    with caplog.at_level("WARNING"):  # a full copy (a --limit run included: lm-eval cuts after loading) is quiet
        check_scored_split(_numbered(full), "xnli", "de", "validation", "h")
    assert caplog.text == ""


def test_a_winograd_sentence_needs_exactly_one_blank():
    row = {"option1": "a", "option2": "b", "answer": "1"}
    assert checked_rows(_numbered([row | {"sentence": "The cup fell because _ was heavy."}]), "xwinograd", "fr", "f")
    with pytest.raises(
        BenchmarkDataError,
        match=r"f: column 'sentence' holds 1 value.s. with more than one `_`: "
        r"'The _ fell because _ was heavy.' .line 2.\. Each XWinograd "
        "sentence holds exactly one `_`",
    ):
        checked_rows(
            _numbered([row | {"sentence": "A _ b."}, row | {"sentence": "The _ fell because _ was heavy."}]),
            "xwinograd",
            "fr",
            "f",
        )


def test_a_demonstration_split_mostly_of_scored_items_is_refused_when_drawn(tmp_path):
    root = _test_only_copy(tmp_path / "data")
    scored = _rows(data_loader.local_path(root, "xnli", "de", "validation"))
    demos = _write(
        data_loader.local_path(root, "xnli", "de", "train"),
        [{"premise": "Other.", "hypothesis": "Other.", "label": 0}, scored[3] | {"label": 1}],
    )
    splits = data_loader.load_benchmark("xnli", "de", "de", data_dir=str(root))
    with pytest.raises(BenchmarkDataError) as error:
        splits["demos"].load()
    assert str(error.value).startswith(
        f"{demos}: 1 of 2 demonstration row(s) are items of the scored split "
        f"{data_loader.local_path(root, 'xnli', 'de', 'validation')} (same "
        "premise+hypothesis): line 2 (= line 4). That is more than 10% of the pool"
    )
    # English demonstrations for a German query (`_endemo`) share no text with it
    assert len(data_loader.load_benchmark("xnli", "de", "en", data_dir=str(FIXTURE_DATA))["demos"].load()) == 8


def _pool_with_scored_items(root: Path, shared_lines: list[int], size: int = 40) -> tuple[Path, list[dict]]:
    """A 40-row xnli de demonstration pool whose rows at `shared_lines` (1-based) are items of the scored split."""
    scored = _rows(data_loader.local_path(root, "xnli", "de", "validation"))
    pool = [
        {"premise": f"Demo premise {i}.", "hypothesis": f"Demo hypothesis {i}.", "label": i % 3} for i in range(size)
    ]
    for n, line in enumerate(shared_lines):
        pool[line - 1] = scored[n] | {"label": scored[n]["label"]}
    return _write(data_loader.local_path(root, "xnli", "de", "train"), pool), pool


def test_a_few_demonstrations_that_are_scored_items_leave_the_sampler_pool_with_one_warning(tmp_path, caplog):
    """What lm-eval's sampler draws from (`DemonstrationSampler.fewshot_docs`) no longer holds them."""
    from xling_align.lm_eval_tasks.demonstrations import DemonstrationSampler

    root = _test_only_copy(tmp_path / "data")
    demos, pool = _pool_with_scored_items(root, [5, 17, 30])  # 3 of 40 rows: 7.5%
    with caplog.at_level("WARNING"):
        for _ in range(2):  # several tasks read one file: one warning
            sampler = DemonstrationSampler(
                list(data_loader.load_benchmark("xnli", "de", "de", data_dir=str(root))["demos"]), rnd=1234
            )
            drawn_from = sampler.fewshot_docs()
            assert len(drawn_from) == 37
    scored_pairs = {
        (row["premise"], row["hypothesis"]) for row in _rows(data_loader.local_path(root, "xnli", "de", "validation"))
    }
    assert not {(doc["premise"], doc["hypothesis"]) for doc in drawn_from} & scored_pairs
    assert [doc["premise"] for doc in drawn_from] == [
        row["premise"] for i, row in enumerate(pool, 1) if i not in (5, 17, 30)
    ]
    warnings = [record.getMessage() for record in caplog.records if "demonstration row(s)" in record.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {demos}: 3 of 40 demonstration row(s) are items of the scored split ")
    assert "left out of the demonstrations" in warnings[0] and "37 rows remain to draw from" in warnings[0]
    assert all(len(sampler.sample(5, eval_doc=None)) == 5 for _ in range(20))


def test_hub_splits_that_share_items_are_handled_like_local_files(monkeypatch, caplog):
    """The hub's PAWS-X validation and test share items too: the dev pool of the paper protocol loses them."""
    import datasets

    from xling_align.lm_eval_tasks import paper_tasks

    test = [{"id": i, "sentence1": f"句子 {i}。", "sentence2": f"另一句 {i}。", "label": i % 2} for i in range(60)]
    validation = [
        {"id": 100 + i, "sentence1": f"开发 {i}。", "sentence2": f"开发句 {i}。", "label": i % 2} for i in range(60)
    ]
    validation[9] = test[4] | {"id": 109}
    served = {"test": test, "validation": validation}
    monkeypatch.setattr(
        datasets,
        "load_dataset",
        lambda path, name=None, split=None, **kwargs: datasets.Dataset.from_list(served[split]),
    )
    monkeypatch.delenv(data_loader.DATA_DIR_ENV, raising=False)
    with caplog.at_level("WARNING"):
        splits = paper_tasks.load_paper_protocol("pawsx", "zh", "zh", demo_seed=0)
    assert len(splits["dev"]) == 59 and 109 not in splits["dev"]["id"]
    assert [message for message in caplog.messages if "demonstration row(s)" in message] == [
        "warning: google-research-datasets/paws-x (zh, validation): 1 of 60 demonstration row(s) are items of the "
        "scored split google-research-datasets/paws-x (zh, test) (same sentence1+sentence2): row 10 (= row 5). "
        "They are left out of the demonstrations (a published release may share a few items between its splits); "
        "59 rows remain to draw from."
    ]


def test_the_paper_protocol_keeps_the_seeded_order_of_the_rows_it_keeps(tmp_path, monkeypatch):
    """A dropped dev row leaves the reference's order of the others as it was (the first k stay the reference's)."""
    from xling_align.evaluation.paper_protocol import reference_order
    from xling_align.lm_eval_tasks import paper_tasks

    scored = _rows(FIXTURE_DATA / "pawsx" / "zh" / "test.jsonl")
    root = tmp_path / "data"
    _write(data_loader.local_path(root, "pawsx", "zh", "test"), scored)
    dev = [
        {"id": 100 + i, "sentence1": f"第一句 {i}。", "sentence2": f"第二句 {i}。", "label": i % 2} for i in range(40)
    ]
    dev[7] = scored[0] | {"id": 107}
    dev[21] = scored[1] | {"id": 121}
    _write(data_loader.local_path(root, "pawsx", "zh", "validation"), dev)
    splits = paper_tasks.load_paper_protocol("pawsx", "zh", "zh", data_dir=str(root), demo_seed=3)
    expected = [dev[i]["id"] for i in reference_order(40, 3) if i not in (7, 21)]
    assert splits[paper_tasks.DEMONSTRATION_SPLIT]["id"] == expected


def test_missing_columns_and_mixed_types_are_named():
    rows = [{"sentence1": "a", "sentence2": "b", "label": 1}, {"sentence1": "a", "label": 0}]
    with pytest.raises(
        BenchmarkDataError, match="missing column.s. sentence2 .sentence2 is missing in 1 of 2 rows, first at line 2."
    ):
        checked_rows(_numbered(rows), "pawsx", "de", "f")
    rows = [
        {"sentence1": "a", "sentence2": "b", "label": 1, "id": 1},
        {"sentence1": "a", "sentence2": "b", "label": 0, "id": "x2"},
    ]
    with pytest.raises(BenchmarkDataError, match="'id': int, str"):
        checked_rows(_numbered(rows), "pawsx", "de", "f")


def test_files_with_bom_crlf_or_one_json_array_are_read_and_other_encodings_refused(tmp_path):
    rows = [{"sentence1": "Straße", "sentence2": "b", "label": 1}, {"sentence1": "c", "sentence2": "d", "label": 0}]
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(row) + "\r\n" for row in rows).encode())
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    for path in (crlf, array):
        assert [row for _, row in read_rows(path, "pawsx")] == rows
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("latin-1"))
    with pytest.raises(
        BenchmarkDataError,
        match=r"latin.jsonl, line 1, byte offset \d+: the file is not valid UTF-8; "
        "convert it to UTF-8",
    ):
        read_rows(latin, "pawsx")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + '\n{"sentence1": \n', encoding="utf-8")
    with pytest.raises(BenchmarkDataError) as error:
        read_rows(broken, "pawsx")
    assert "broken.jsonl, line 2: invalid JSON" in str(error.value) and "--skip-invalid" not in str(error.value)


# ------------------------------------------------------------------------------------- the data loader
def _test_only_copy(root: Path, relabel=None) -> Path:
    """The scored splits of ONE_TASK_PER_FAMILY, nothing else (no demonstration split), labels relabelled."""
    for benchmark, lang, split in ONE_TASK_PER_FAMILY.values():
        rows = _rows(FIXTURE_DATA / benchmark / lang / f"{split}.jsonl")
        label = BENCHMARKS[benchmark].label_column
        if relabel is not None:
            rows = [row | {label: relabel(row[label])} for row in rows]
        _write(data_loader.local_path(root, benchmark, lang, split), rows)
    return root


def test_the_loader_converts_string_labels_and_needs_no_demonstration_file(tmp_path):
    root = _test_only_copy(tmp_path, relabel=_other_type)
    splits = data_loader.load_benchmark("xnli", "de", "de", data_dir=str(root))
    original = _rows(FIXTURE_DATA / "xnli" / "de" / "validation.jsonl")
    assert splits["validation"]["label"] == [row["label"] for row in original]
    with pytest.raises(FileNotFoundError) as error:  # the demonstrations only when they are drawn
        splits["demos"].load()
    message = str(error.value)
    assert str(root / "xnli" / "de" / "train.jsonl") in message and "--num_fewshot 0" in message


# ------------------------------------------------------------------------------- the real lm_eval command
def _lm_eval(args, cwd, data_dir, console_script=False):
    """lm-eval's CLI in a fresh interpreter; `console_script`: the `lm_eval` command itself, (exit status, stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XLING_DATA_DIR": str(data_dir)}
    if console_script:
        command = [os.path.join(os.path.dirname(sys.executable), "lm_eval"), *map(str, args)]
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        return result.returncode, result.stderr
    command = [
        sys.executable,
        "-c",
        "import sys; from lm_eval.__main__ import cli_evaluate; sys.argv[0] = 'lm_eval'; cli_evaluate()",
        *map(str, args),
    ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _scores(results_dir: Path) -> dict[str, float]:
    results = json.loads(next(results_dir.rglob("results_*.json")).read_text(encoding="utf-8"))["results"]
    return {task: results[task]["acc,none"] for task in ONE_TASK_PER_FAMILY}


def test_lm_eval_scores_labels_of_the_other_type_like_the_hub_labels(tmp_path, tiny_gpt2_folder):
    """Every family, test-only copies, 0-shot: labels written as the other type score exactly as the hub's types.

    The reference is lm-eval's own evaluator in this process, on the same model and the unchanged labels.
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation import lm_eval_plugin

    lm_eval_plugin.register()
    reference = lm_eval.simple_evaluate(
        model=HFLM(pretrained=str(tiny_gpt2_folder), device="cpu", batch_size=16),
        tasks=list(ONE_TASK_PER_FAMILY),
        num_fewshot=0,
        task_manager=TaskManager(include_defaults=False, metadata={"data_dir": str(_test_only_copy(tmp_path / "hub"))}),
    )["results"]
    expected = {task: reference[task]["acc,none"] for task in ONE_TASK_PER_FAMILY}
    converted = _lm_eval(
        [
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_gpt2_folder}",
            "--device",
            "cpu",
            "--batch_size",
            "16",
            "--tasks",
            ",".join(ONE_TASK_PER_FAMILY),
            "--num_fewshot",
            "0",
            "--output_path",
            tmp_path / "csv",
        ],
        tmp_path,
        _test_only_copy(tmp_path / "csv-data", relabel=_other_type),
    )
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert _scores(tmp_path / "csv") == expected
    assert len(set(expected.values())) > 1  # the tiny model's scores differ by task: the comparison means something


def test_lm_eval_and_xling_eval_stop_bad_data_with_the_same_line_and_no_traceback(
    tmp_path, tiny_gpt2_folder, monkeypatch, capsys
):
    """The real `lm_eval` console script on a file that is not UTF-8 (it ended in a traceback, exit status 1): one
    `error:` line naming the file and the fix, exit status 2, no traceback; `xling-eval` prints the same message.
    (The label and the other checks reach the user through the same line: the test below, and the unit tests.)"""
    root = _test_only_copy(tmp_path / "data")
    latin = data_loader.local_path(root, "pawsx", "de", "test")
    latin.write_bytes(latin.read_text(encoding="utf-8").replace("e", "é").encode("latin-1"))
    model = ["--model", "hf", "--model_args", f"pretrained={tiny_gpt2_folder}", "--device", "cpu", "--num_fewshot", "0"]

    # xling_xnli_de reads the 8-row fixture: a warning (a short copy), then the error that ends the run
    code, stderr = _lm_eval([*model, "--tasks", "xling_xnli_de,xling_pawsx_de"], tmp_path, root, console_script=True)
    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    short = data_loader.local_path(root, "xnli", "de", "validation")
    assert f"warning: {short}: 8 rows, the published xnli de validation split has 2490" in stderr
    lm_eval_line = stderr.strip().splitlines()[-1]
    assert (
        lm_eval_line.startswith(f"lm_eval: error: {latin}, line 1, byte offset") and "not valid UTF-8" in lm_eval_line
    )
    assert "iconv" in lm_eval_line

    monkeypatch.setenv("XLING_DATA_DIR", str(root))
    monkeypatch.setattr(sys, "argv", ["xling-eval"])  # xling-eval's main sets sys.argv, as lm-eval reads it
    code, stderr = _xling_eval_in_process([*model, "--tasks", "xling_pawsx_de"], capsys, monkeypatch)
    assert code == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == lm_eval_line.replace("lm_eval: ", "xling-eval: ", 1)


def test_xling_eval_refuses_repeated_items_two_blanks_and_demonstrations_that_are_scored(
    tmp_path, tiny_gpt2_folder, monkeypatch, capsys
):
    """The command on three broken copies: each run ends with one `error:` line naming the file and the lines."""
    model = ["--model", "hf", "--model_args", f"pretrained={tiny_gpt2_folder}", "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", ["xling-eval"])
    cases = []
    root = _test_only_copy(tmp_path / "copies")  # the PAWS-X test file appended to itself
    path = data_loader.local_path(root, "pawsx", "de", "test")
    path.write_text(path.read_text(encoding="utf-8") * 2, encoding="utf-8")
    cases.append(
        (
            root,
            ["--tasks", "xling_pawsx_de", "--num_fewshot", "0"],
            f"{path}: 8 id value(s) occur on more than one row (lines 1, 9; lines 2, 10;",
        )
    )
    root = _test_only_copy(tmp_path / "blanks")
    path = data_loader.local_path(root, "xwinograd", "fr", "test")
    rows = _rows(path)
    rows[1]["sentence"] = rows[1]["sentence"].replace("_", "_ _")
    _write(path, rows)
    cases.append(
        (
            root,
            ["--tasks", "xling_xwinograd_fr", "--num_fewshot", "0"],
            f"{path}: column 'sentence' holds 1 value(s) with more than one `_`",
        )
    )
    root = _test_only_copy(tmp_path / "leak")
    scored = data_loader.local_path(root, "xnli", "de", "validation")
    demos = _write(data_loader.local_path(root, "xnli", "de", "train"), _rows(scored)[:3])
    cases.append(
        (
            root,
            ["--tasks", "xling_xnli_de", "--num_fewshot", "1"],
            f"{demos}: 3 of 3 demonstration row(s) are items of the scored split {scored}",
        )
    )
    for root, args, expected in cases:
        monkeypatch.setenv("XLING_DATA_DIR", str(root))
        code, stderr = _xling_eval_in_process([*model, *args], capsys, monkeypatch)
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
        assert last.startswith(f"xling-eval: error: {expected}"), last


def _xling_eval_in_process(args, capsys, monkeypatch) -> tuple[int, str]:
    """`xling-eval run ARGS` in this process: (exit status, stderr). lm-eval's log handler is made afresh for each
    run (it keeps the stderr of the run that created it, which pytest closes after each test)."""
    import logging

    import lm_eval.utils

    from xling_align.commands import xling_eval

    lm_eval_logger = logging.getLogger("lm_eval")
    handlers = list(lm_eval_logger.handlers)
    monkeypatch.setattr(lm_eval.utils, "_LOGGING_CONFIGURED", False)
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as stopped:
            xling_eval.main(["run", *map(str, args)])
    finally:
        for handler in [h for h in lm_eval_logger.handlers if h not in handlers]:
            lm_eval_logger.removeHandler(handler)
    return stopped.value.code, capsys.readouterr().err


def test_few_shot_on_a_test_only_copy_names_the_missing_demonstrations(tmp_path):
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation import lm_eval_plugin

    lm_eval_plugin.register()
    root = _test_only_copy(tmp_path / "data")
    manager = TaskManager(include_defaults=False, metadata={"data_dir": str(root)})
    task = manager.load(["xling_pawsx_de"])["tasks"]["xling_pawsx_de"]  # built without the train split
    document = task.test_docs()[0]
    assert task.fewshot_context(document, 0) == ""  # 0-shot: no demonstration read (PAWS-X has no context)
    with pytest.raises(FileNotFoundError) as error:
        task.fewshot_context(document, 2)
    assert str(root / "pawsx" / "de" / "train.jsonl") in str(error.value) and "--num_fewshot 0" in str(error.value)


# ------------------------------------------------------------------------------- where the data folder points
def _missing_message(data_dir, lang="zh") -> str:
    with pytest.raises(FileNotFoundError) as error:
        data_loader.load_benchmark("xnli", lang, data_dir=str(data_dir))
    return str(error.value)


def test_a_data_folder_given_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    """`--metadata '{"data_dir": "~/bench"}'`: no shell expands a `~` inside JSON."""
    monkeypatch.setenv("HOME", str(tmp_path))
    source = data_loader.local_path(FIXTURE_DATA, "xnli", "en", "validation")
    target = data_loader.local_path(tmp_path / "bench", "xnli", "en", "validation")
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    assert len(data_loader.load_benchmark("xnli", "en", data_dir="~/bench")["validation"]) == len(_rows(source))
    monkeypatch.setenv(data_loader.DATA_DIR_ENV, "~/bench")
    assert len(data_loader.load_benchmark("xnli", "en")["validation"]) == len(_rows(source))


def test_a_missing_file_message_names_the_usual_slips(tmp_path):
    root = tmp_path / "data"
    (root / "xnli" / "zh-CN").mkdir(parents=True)
    (root / "xnli" / "en").mkdir()
    assert "has no folder 'zh' (it has: en, zh-CN)" in _missing_message(root)
    assert "looks like one benchmark's folder: data_dir is the folder above it" in _missing_message(root / "xnli", "en")
    assert f"The data folder {tmp_path / 'nowhere'} does not exist." in _missing_message(tmp_path / "nowhere")
