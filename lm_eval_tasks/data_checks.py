"""Benchmark rows checked before anything is scored: a wrong value stops the run, it never becomes a number.

A local copy of a benchmark is often converted by hand (a CSV reader turns every label into a string, a
script writes `-1` for "no gold label", a spreadsheet adds a byte-order mark). lm-eval scores such data
without a word: a string label never equals a choice index, so every document counts as wrong. The data
loader therefore reads and checks every row here first:

- the file: UTF-8 (a byte-order mark is dropped), JSON lines or one JSON array of objects;
- the columns the prompts read (`Benchmark.columns`) are present in every row;
- text columns hold text, and a column with a fixed set of values (`Benchmark.column_values`, e.g. XCOPA's
  `question`) holds one of them;
- an XWinograd sentence holds exactly one `_` (the prompt fills the first; a second stayed in the text);
- a scored split (`check_scored_split`): a repeated id, or a file made only of repeated items, is refused;
  other repeated items, and fewer rows than the published split, are reported with a warning;
- a demonstration split holds no item of the scored split (`check_demonstrations`): a few such rows (a
  published release's quirk) are dropped with one warning, a pool made mostly of them is refused;
- the label column holds one of `Benchmark.label_values`. A value that differs only in type is converted
  when that is unambiguous (`"1"` or `1.0` for the integer label `1`, the integer `2` for the string label
  `"2"`); anything else (an out-of-range number, a label name, an empty cell) stops the run with a message
  that names the file, the column, the bad values and what to write instead.

Example:
    >>> from xling_align.lm_eval_tasks.data_checks import checked_rows
    >>> rows = [(1, {"sentence1": "A.", "sentence2": "B.", "label": "1"})]
    >>> checked_rows(rows, "pawsx", "de", "test.jsonl")
    [{'sentence1': 'A.', 'sentence2': 'B.', 'label': 1}]
    >>> checked_rows([(1, {"sentence1": "A.", "sentence2": "B.", "label": "yes"})], "pawsx", "de", "test.jsonl")
    Traceback (most recent call last):
    ...
    xling_align.lm_eval_tasks.data_checks.BenchmarkDataError: test.jsonl: column 'label' holds 1 value(s) the pawsx tasks cannot score: 'yes' (line 1). It must hold one of 0, 1 (integers): 0 = not a paraphrase, 1 = paraphrase. Write the label as one of these values (the hub's format).
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from xling_align.data.readers import mixed_type_columns
from xling_align.errors import XlingAlignError
from xling_align.evaluation.benchmark_table import Benchmark, benchmark

_SHOWN = 5  # bad values quoted in a message
logger = logging.getLogger(__name__)
_warned: set[str] = set()  # one warning per file and kind in a process (several tasks read the same file)


class BenchmarkDataError(XlingAlignError, ValueError):
    """Benchmark data that would be scored wrongly; the message names the file, what is wrong and the fix."""


class MissingBenchmarkDataError(BenchmarkDataError, FileNotFoundError):
    """A local benchmark file that is not there; the message names the path expected and how to write it."""


class UnreachableBenchmarkDataError(BenchmarkDataError, ConnectionError):
    """Hub data that could not be reached; the message names the dataset and the local alternative."""


# --------------------------------------------------------------------------------------- the file
def read_rows(path: Path, name: str) -> list[tuple[int, dict]]:
    """`(line, row)` for every object of a benchmark file: JSON lines, or one JSON array of objects.

    Raises `BenchmarkDataError` for a file that is not UTF-8, a line that is not JSON, a record that is not
    an object, or a file without rows; each message names the file and the line.
    """
    from xling_align.data.readers import DataFormatError, iter_json_records

    columns = ", ".join(benchmark(name).columns)
    try:
        rows = list(iter_json_records(path))
    except DataFormatError as error:
        where = error.path + (f", line {error.line}" if error.line is not None else "")
        where += f", byte offset {error.byte_offset}" if error.byte_offset is not None else ""
        if "UTF-8" in error.problem:
            fix = "convert it to UTF-8 first, e.g. `iconv -f <its encoding> -t UTF-8 IN > OUT`"
        else:
            fix = f"each line must be one JSON object with the columns {columns} (or the file one JSON array of them)"
        raise BenchmarkDataError(f"{where}: {error.problem}; {fix}.") from None
    if not rows:
        raise BenchmarkDataError(
            f"{path} holds no rows: write the benchmark's rows into it (columns {columns}), or remove the file."
        )
    return rows


# --------------------------------------------------------------------------------------- the rows
def _integral(value) -> int | None:
    """`value` as an int when it is one in another type (`"1"`, `" 1 "`, `1.0`), else None."""
    if isinstance(value, bool):
        return None  # true/false are not indices
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit() and text.isascii():
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def coerce_label(value, label_values: tuple):
    """The label value `value` stands for, or None when it stands for none of `label_values`.

    >>> coerce_label("2", (0, 1, 2)), coerce_label(2.0, (0, 1, 2)), coerce_label(1, ("1", "2"))
    (2, 2, '1')
    >>> coerce_label(-1, (0, 1, 2)) is None, coerce_label(True, (0, 1)) is None
    (True, True)
    """
    number = _integral(value)
    if number is None:
        return None
    for allowed in label_values:
        if _integral(allowed) == number:
            return allowed
    return None


def _shown(value) -> str:
    return repr(value) if not isinstance(value, str) or len(value) < 40 else repr(value[:37] + "...")


def _bad_values_message(where: str, column: str, bad: list[tuple[int, object]], what: str) -> str:
    counts = Counter(_shown(value) for _, value in bad)
    first_line = {}
    for line, value in bad:
        first_line.setdefault(_shown(value), line)
    examples = ", ".join(
        f"{value} (line {first_line[value]}{f', {counts[value]} rows' if counts[value] > 1 else ''})"
        for value in list(counts)[:_SHOWN]
    )
    more = f" and {len(counts) - _SHOWN} more" if len(counts) > _SHOWN else ""
    return f"{where}: column {column!r} holds {len(bad)} value(s) {what}: {examples}{more}."


def _label_rule(table: Benchmark) -> str:
    kind = "integers" if isinstance(table.label_values[0], int) else "strings"
    values = ", ".join(str(value) for value in table.label_values)
    meanings = ", ".join(f"{value} = {meaning}" for value, meaning in zip(table.label_values, table.label_names))
    return f"one of {values} ({kind})" + (f": {meanings}" if meanings else "")


def checked_rows(rows: list[tuple[int, dict]], name: str, lang: str, where: str) -> list[dict]:
    """The rows of `name` in `lang`, checked (module docstring) and with unambiguous labels converted.

    Args:
        rows: `(line, row)` pairs as `read_rows` returns them.
        name: the benchmark (`xnli`, `pawsx`, ...).
        lang: the benchmark's code of the rows' language.
        where: the file, for messages.

    Raises:
        BenchmarkDataError: naming the column, the bad values with their lines, and the values expected.
    """
    table = benchmark(name)
    missing = Counter(column for _, row in rows for column in table.columns if column not in row)
    if missing:
        found = sorted(set().union(*(row.keys() for _, row in rows)))
        partial = [
            f"{column} is missing in {missing[column]} of {len(rows)} rows, first at line "
            f"{next(line for line, row in rows if column not in row)}"
            for column in table.columns
            if 0 < missing[column] < len(rows)
        ]
        raise BenchmarkDataError(
            f"{where}: missing column(s) {', '.join(column for column in table.columns if column in missing)}"
            + (f" ({'; '.join(partial)})" if partial else "")
            + f". Found: {', '.join(found)}. The {name} tasks need: {', '.join(table.columns)}"
            + " (the hub's column names)."
        )
    label = table.label_column
    bad_labels = []
    checked = []
    for line, row in rows:
        value = coerce_label(row[label], table.label_values)
        if value is None:
            bad_labels.append((line, row[label]))
        checked.append({**row, label: value})
    if bad_labels:
        raise BenchmarkDataError(
            _bad_values_message(where, label, bad_labels, f"the {name} tasks cannot score")
            + f" It must hold {_label_rule(table)}. Write the label as one of these values (the hub's format)."
        )
    for column in table.columns:
        if column == label:
            continue
        allowed = table.column_values.get(column)
        # PAWS-X documents with an empty sentence are dropped before scoring where lm-eval detokenizes
        may_be_empty = lang in table.detokenized_languages
        bad = [
            (line, row[column])
            for line, row in rows
            if not (isinstance(row[column], str) or (may_be_empty and row[column] is None))
            or (allowed is not None and row[column] not in allowed)
        ]
        if bad:
            expected = f"one of {', '.join(map(repr, allowed))}" if allowed else "text (a JSON string)"
            raise BenchmarkDataError(
                _bad_values_message(where, column, bad, "that are not " + expected)
                + f" The {name} prompts read it as {expected}; fix those rows."
            )
    if lang in table.detokenized_languages and all(
        any(row[column] in (None, "") for column in table.columns if column != label) for row in checked
    ):
        # lm-eval drops these documents before scoring: with none left it would fail deep inside `datasets`
        raise BenchmarkDataError(
            f"{where}: every row has an empty sentence ({', '.join(c for c in table.columns if c != label)}), "
            f"and the {name} {lang} task leaves such pairs out, so nothing is left to score. "
            "Fill in the sentences (is a column misnamed or emptied by the conversion?)."
        )
    if name == "xcopa":  # the prompt lowercases each choice's first letter: an empty one has none
        empty = [
            (line, row[column]) for line, row in rows for column in ("choice1", "choice2") if not row[column].strip()
        ]
        if empty:
            raise BenchmarkDataError(
                _bad_values_message(where, "choice1/choice2", empty, "that are empty")
                + " Each XCOPA alternative is a sentence; fill in those rows or remove them."
            )
    if name == "xwinograd":  # the prompt cuts the sentence at its first `_`: a second one would stay in the text
        no_blank = [(line, row["sentence"]) for line, row in rows if row["sentence"].count("_") == 0]
        blanks = [(line, row["sentence"]) for line, row in rows if row["sentence"].count("_") > 1]
        if no_blank or blanks:
            what = "without the blank `_`" if no_blank else "with more than one `_`"
            raise BenchmarkDataError(
                _bad_values_message(where, "sentence", no_blank or blanks, what)
                + " Each XWinograd sentence holds exactly one `_`, the gap the options fill; "
                "write any other underscore as another character, or remove those rows."
            )
    _refuse_mixed_types(checked, where)
    return checked


def _refuse_mixed_types(rows: list[dict], where: str) -> None:
    """A column (also one the prompts do not read) must keep one type: Arrow cannot store a mix."""
    mixed = mixed_type_columns(rows)
    if mixed:
        described = "; ".join(f"{column!r}: {', '.join(kinds)}" for column, kinds in mixed.items())
        raise BenchmarkDataError(
            f"{where}: column(s) with values of different types ({described}). Give each column "
            "one type in every row (e.g. all strings), or drop the column if the prompts do not "
            "need it."
        )


def check_hub_split(dataset, name: str, where: str) -> None:
    """The checks of `checked_rows` on a hub split (`datasets.Dataset`), by its features and label values."""
    table = benchmark(name)
    found = set(dataset.column_names)
    missing = [column for column in table.columns if column not in found]
    if missing:
        raise BenchmarkDataError(
            f"{where}: missing column(s) {', '.join(missing)}. Found: {', '.join(sorted(found))}. "
            f"The {name} tasks need: {', '.join(table.columns)}."
        )
    values = dataset.unique(table.label_column)
    bad = [
        value for value in values if value not in table.label_values or type(value) is not type(table.label_values[0])
    ]
    if bad:
        raise BenchmarkDataError(
            f"{where}: column {table.label_column!r} holds {', '.join(map(_shown, bad[:_SHOWN]))}; "
            f"the {name} tasks need {_label_rule(table)}. Is it the split the tasks expect?"
        )


# --------------------------------------------------------------------------------------- items
def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def item_key(row: dict, table: Benchmark) -> tuple:
    """What makes `row` one scored question: its `item_columns` (surrounding spaces aside)."""
    return tuple(
        value.strip() if isinstance(value, str) else value
        for value in (row.get(column) for column in table.item_columns)
    )


def _lines_shown(groups: list[list[int]]) -> str:
    shown = "; ".join(
        f"lines {', '.join(map(str, lines[:_SHOWN]))}" + (" ..." if len(lines) > _SHOWN else "")
        for lines in groups[:_SHOWN]
    )
    return shown + (f"; and {len(groups) - _SHOWN} more" if len(groups) > _SHOWN else "")


def check_scored_split(rows: list[tuple[int, dict]], name: str, lang: str, split: str, where: str) -> None:
    """The checks of a split the tasks score, on `(line, row)` pairs (`read_rows`): repeated items, size.

    Every copy of a repeated item is scored, so it counts once per copy in the accuracy, its standard error and
    the size-weighted group means. What is refused and what is only reported:

    - refused: an id (`Benchmark.id_columns`, where the file has them) on more than one row: published ids are
      unique, so the rows were copied (a split concatenated with itself, rows appended twice);
    - refused: a file in which every item occurs more than once: no published split is made of copies;
    - warned, with the count and the lines: other repeated items (`Benchmark.item_columns` equal, e.g. XNLI's
      premise+hypothesis: its premises alone repeat by design), with equal or different labels. A published
      split may hold a few such rows (this table cannot rule it out offline), so they are reported, not refused;
    - warned: fewer rows than the published split (`Benchmark.published_size`): the score is not the
      benchmark's. (`--limit` is applied by lm-eval after loading, so a `--limit` run on a full file is quiet.)
    """
    table = benchmark(name)
    ids = [column for column in table.id_columns if all(column in row for _, row in rows)]
    if len(ids) == len(table.id_columns) and ids:
        by_id: dict[tuple, list[int]] = {}
        for line, row in rows:
            by_id.setdefault(tuple(repr(row[column]) for column in ids), []).append(line)
        repeated = [lines for lines in by_id.values() if len(lines) > 1]
        if repeated:
            raise BenchmarkDataError(
                f"{where}: {len(repeated)} {'+'.join(ids)} value(s) occur on more than one row "
                f"({_lines_shown(repeated)})."
                f" Each {name} item has its own {'+'.join(ids)} in the published split, so these rows were copied "
                "(a file appended twice?) and each copy would be scored. Keep one row per id."
            )
    by_item: dict[tuple, list[int]] = {}
    labels: dict[tuple, set] = {}
    for line, row in rows:
        key = item_key(row, table)
        if lang in table.detokenized_languages and any(value in (None, "") for value in key):
            continue  # lm-eval leaves this pair out (PAWS-X): not an item that is scored
        by_item.setdefault(key, []).append(line)
        labels.setdefault(key, set()).add(repr(row.get(table.label_column)))
    repeated = [lines for lines in by_item.values() if len(lines) > 1]
    columns = "+".join(table.item_columns)
    if repeated and all(len(lines) > 1 for lines in by_item.values()):
        raise BenchmarkDataError(
            f"{where}: every item occurs more than once ({sum(map(len, by_item.values()))} rows, {len(by_item)} "
            f"distinct items by {columns}; {_lines_shown(repeated)}). No published {name} split is made of copies: "
            "keep one row per item (was the file written twice?)."
        )
    if repeated:
        copies = sum(len(lines) - 1 for lines in repeated)
        conflicting = sum(1 for key, lines in by_item.items() if len(lines) > 1 and len(labels[key]) > 1)
        _warn_once(
            f"warning: {where}: {len(repeated)} item(s) occur more than once (same {columns}; {_lines_shown(repeated)})"
            + (f", {conflicting} of them with different labels" if conflicting else "")
            + f": each copy is scored, {copies} extra row(s) in all. If they are not in the published split, "
            "remove the copies."
        )
    published = table.published_size(lang, split)
    if published is not None and len(rows) < published:
        _warn_once(
            f"warning: {where}: {len(rows)} rows, the published {name} {lang} {split} split has {published}: "
            "the score is not comparable with the benchmark's (use --limit to score part of a full copy)."
        )


@dataclass(frozen=True)
class ScoredItems:
    """The items of a scored split, to keep them out of a demonstration split: `item_key` -> first line (`unit`:
    `line` of a local file, `row` of a hub split)."""

    where: str
    first_line: dict
    unit: str = "line"

    @classmethod
    def of(cls, rows, name: str, where: str, unit: str = "line") -> ScoredItems:
        table = benchmark(name)
        first: dict = {}
        for line, row in rows:
            first.setdefault(item_key(row, table), line)
        return cls(where, first, unit)


# A pool with more scored items than this share is a copy of the scored split, not a release's quirk (the largest
# overlap of a published release we know, PAWS-X de dev and test, is 18 of 2,000 rows: 0.9%)
MOST_SHARED_DEMONSTRATIONS = 0.10


def check_demonstrations(
    rows: list[tuple[int, dict]], name: str, where: str, scored: ScoredItems, unit: str = "line"
) -> list[tuple[int, dict]]:
    """The demonstration rows that are no item of the scored split: a query must never come with its own answer.

    A few shared rows (at most `MOST_SHARED_DEMONSTRATIONS` of the pool) are a quirk of real releases (PAWS-X's
    dev and test files share identical items): they are dropped, with one warning that names how many. A pool
    with more of them is a copy of the scored split, and refused.
    """
    table = benchmark(name)
    shared = [
        (line, scored.first_line[key]) for line, row in rows if (key := item_key(row, table)) in scored.first_line
    ]
    if not shared:
        return rows
    pairs = ", ".join(f"{unit} {line} (= {scored.unit} {scored_line})" for line, scored_line in shared[:_SHOWN])
    more = f" and {len(shared) - _SHOWN} more" if len(shared) > _SHOWN else ""
    what = (
        f"{where}: {len(shared)} of {len(rows)} demonstration row(s) are items of the scored split {scored.where} "
        f"(same {'+'.join(table.item_columns)}): {pairs}{more}"
    )
    if len(shared) > MOST_SHARED_DEMONSTRATIONS * len(rows):
        raise BenchmarkDataError(
            f"{what}. That is more than {MOST_SHARED_DEMONSTRATIONS:.0%} of the pool, so it looks like a copy of the "
            "scored split, and a demonstration may be drawn for its own query, which then comes with its answer. "
            "Give the benchmark's demonstration split instead (is the file a copy of the scored split?)."
        )
    _warn_once(
        f"warning: {what}. They are left out of the demonstrations (a published release may share a few "
        f"items between its splits); {len(rows) - len(shared)} rows remain to draw from."
    )
    dropped = {line for line, _ in shared}
    return [(line, row) for line, row in rows if line not in dropped]
