"""`xling_align.data.columns`: the names the data builders write are the constants the trainer and `xling-align
train` read, and the column-group check is one check for both."""

import json
import subprocess
import sys

import datasets
import pytest

from xling_align.data import columns
from xling_align.data.builders import DataBuildConfig, iter_rows
from xling_align.data.parallel import load_parallel_pairs
from xling_align.data.replay_rows import ReplayInterleaver
from xling_align.data.rows import make_row
from xling_align.data.writer import row_features
from xling_align.pipeline.training_data import TrainingDataError, check_training_columns, pairs_to_rows


def test_the_row_columns_are_the_named_groups_in_order():
    assert columns.ROW_COLUMNS == (
        "prompt",
        "completion",
        "source_sentence",
        "target_sentence",
        "source_lang",
        "target_lang",
        "kind",
    )
    assert columns.ROW_COLUMNS == (
        *columns.INSTRUCTION_COLUMNS,
        *columns.PAIR_COLUMNS,
        *columns.LANGUAGE_COLUMNS,
        columns.KIND,
    )
    assert set(columns.TEXT_COLUMNS) == set(columns.ROW_COLUMNS) - {columns.KIND}


def test_builders_write_exactly_the_row_columns(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("en\tde\nThank you.\tDanke.\nGood night.\tGute Nacht.\n", encoding="utf-8")
    built = list(iter_rows(DataBuildConfig(languages=["en", "de"], source="parallel", input=str(pairs))))
    assert built and all(tuple(row) == columns.ROW_COLUMNS for row in built)
    assert tuple(make_row("en", "de", "pair", source_sentence="a", target_sentence="b")) == columns.ROW_COLUMNS
    assert tuple(row_features()) == columns.ROW_COLUMNS
    held_out = pairs_to_rows(str(pairs))
    assert tuple(held_out.column_names) == columns.ROW_COLUMNS
    assert held_out[0][columns.SOURCE_SENTENCE] == "Thank you." and held_out[0][columns.TARGET_LANG] == "de"


def test_replay_rows_add_the_replay_text_column():
    interleaver = ReplayInterleaver(["a document"], share=0.5, seed=0, language="en")
    rows = list(interleaver.rows([make_row("en", "de", "pair", source_sentence="a", target_sentence="b")]))
    assert [tuple(row) for row in rows] == [(*columns.ROW_COLUMNS, columns.REPLAY_TEXT)] * 2
    replay = rows[1]
    assert replay[columns.REPLAY_TEXT] == "a document" and replay[columns.KIND] == "replay"
    assert replay[columns.SOURCE_LANG] == "en"


def test_the_parallel_reader_reads_built_rows_by_the_same_names(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [
        make_row("en", "de", "pair", source_sentence="Thank you.", target_sentence="Danke."),
        make_row("en", "de", "instruction", prompt="Hi", completion=" there"),
    ]  # no pair: skipped
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert load_parallel_pairs(str(path)) == {("en", "de"): [("Thank you.", "Danke.")]}


@pytest.mark.parametrize(
    ("names", "groups"),
    [
        (columns.ROW_COLUMNS, columns.ColumnGroups(True, True, ())),
        (["prompt", "completion"], columns.ColumnGroups(True, False, ())),
        (["source_sentence", "target_sentence", "kind"], columns.ColumnGroups(False, True, ())),
    ],
)
def test_column_groups_found(names, groups):
    assert columns.training_column_groups(names, "the train dataset") == groups


def test_other_sft_formats_count_only_where_accepted():
    assert columns.training_column_groups(["messages"], "x", accept_other_formats=True).other_formats == ("messages",)
    with pytest.raises(columns.TrainingColumnsError, match=r"x has columns \['messages'\], but AFP training needs"):
        columns.training_column_groups(["messages"], "x")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["prompt", "source_sentence", "target_sentence"], "has column 'prompt' but not 'completion'"),
        (["prompt", "completion", "target_sentence"], "has column 'target_sentence' but not 'source_sentence'"),
        (["question", "answer"], r"has columns \['answer', 'question'\], but AFP training needs prompt \+ completion"),
    ],
)
def test_train_data_and_the_trainer_refuse_the_same_columns_the_same_way(names, message):
    # xling-align train checks the columns before a model is loaded, with the check AFPTrainer runs
    dataset = datasets.Dataset.from_dict({name: ["x"] for name in names})
    with pytest.raises(TrainingDataError, match=f"dataset_path 'rows.jsonl' {message}"):
        check_training_columns(dataset, "dataset_path 'rows.jsonl'")
    with pytest.raises(columns.TrainingColumnsError, match=f"the train dataset {message}"):
        columns.training_column_groups(names, "the train dataset", accept_other_formats=True)


def test_importing_the_column_names_loads_neither_torch_nor_datasets():
    code = "import sys, xling_align.data.columns; print('torch' in sys.modules, 'datasets' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
