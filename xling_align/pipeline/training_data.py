"""The datasets of an `xling-align train` run, decided in one place: `load_training_data(script_args) -> TrainingData`.

The recipe's data settings (`ScriptArguments` in `training_script.py`) go in; one `TrainingData` comes out,
which the training script uses as it is: the training rows, the evaluation rows, the run's languages and
where each dataset came from (for the model card). Nothing downstream re-derives these decisions.

- training rows: `dataset_path` (prepared AFP rows: JSONL/JSON or a `save_to_disk` folder), else
  `data_source` + `data_input` + `languages` + `data_options`, built with `xling_align.data` (the same
  builder as `xling-align data build`);
- evaluation rows, in order of preference: `eval_dataset_path` (AFP rows, or a parallel file turned into
  pair rows); the pairs the data builder held out (`data_options: {heldout_size: N}`); the pairs of
  AFPConfig's `alignment_eval_file` (so that evaluation has data whenever the alignment callback is on);
- languages: `languages` when set, else every code in the training rows' `source_lang`/`target_lang`
  (set and different from the rows' languages: refused, since the model card lists them).

Every input is checked before a model is loaded, and each mistake is one `TrainingDataError` naming the
setting, the file and the fix: a missing file, an empty or header-only one, bytes that are not UTF-8 (found
up front: `datasets` decodes lazily), text columns of another type, broken JSON (with its line).

Example:
    >>> from xling_align.package_paths import resolve_path
    >>> from xling_align.pipeline.training_data import load_rows, pairs_to_rows
    >>> rows = load_rows(resolve_path("pkg://xling_align/resources/tiny/train.jsonl"))
    >>> sorted(rows.column_names)[:4]
    ['completion', 'kind', 'prompt', 'source_lang']
    >>> held_out = pairs_to_rows(resolve_path("pkg://xling_align/resources/tiny/heldout.en-de.tsv"))
    >>> held_out[0]["kind"], held_out[0]["prompt"]
    ('pair', '')
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass

import datasets

from xling_align.data import DataBuildConfig, DataFormatError, RowBuilder, load_parallel_pairs
from xling_align.data.columns import (
    INSTRUCTION_COLUMNS,
    LANGUAGE_COLUMNS,
    PAIR_COLUMNS,
    TEXT_COLUMNS,
    TrainingColumnsError,
    training_column_groups,
)
from xling_align.data.parallel import LANGUAGES_HINT, same_language
from xling_align.data.readers import SKIP_HINT, check_utf8, iter_json_records, mixed_type_columns
from xling_align.data.rows import make_row
from xling_align.errors import XlingAlignError

_JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")


class TrainingDataError(XlingAlignError, ValueError):
    """Training or evaluation data that cannot be used; the message names the input and the fix."""


@dataclass
class TrainingData:
    """The datasets of one run, as the recipe's data settings resolve them.

    Attributes:
        train_dataset: the training rows (columns checked, `max_train_samples` applied).
        eval_dataset: the evaluation rows for checkpoint selection (`max_eval_samples` applied), or None.
        languages: the run's language codes (`languages`, else those found in the training rows).
        train_source: where the training rows came from (a path, or `<data_source>: <data_input>`).
        eval_source: where the evaluation rows came from, or None without evaluation rows.
    """

    train_dataset: datasets.Dataset
    eval_dataset: datasets.Dataset | None
    languages: list[str]
    train_source: str
    eval_source: str | None


def load_training_data(script_args, alignment_eval_file: str | None = None) -> TrainingData:
    """The run's datasets from the data fields of `ScriptArguments` (see the module docstring)."""
    for name, path in (
        ("dataset_path", script_args.dataset_path),
        ("eval_dataset_path", script_args.eval_dataset_path),
        ("alignment_eval_file", alignment_eval_file),
    ):
        _check_exists(name, path)
    heldout = None
    if script_args.dataset_path is not None:
        train_where = f"dataset_path {script_args.dataset_path!r}"
        train = load_rows(script_args.dataset_path, script_args.dataset_train_split)
        train_source = script_args.dataset_path
    else:
        train_where = f"data_source {script_args.data_source!r} ({script_args.data_input or 'hub'})"
        train, heldout = build_rows(
            script_args.data_source, script_args.data_input, script_args.languages, script_args.data_options
        )
        train_source = f"{script_args.data_source}: {script_args.data_input or 'hub'}"
    check_training_columns(train, train_where)
    check_training_rows(train, train_where)
    if script_args.languages and script_args.dataset_path is not None:
        # against the whole file: the first max_train_samples rows may hold only some of its languages
        check_languages_match(script_args.languages, languages_in_rows(train), train_where)
    train = _first(train, script_args.max_train_samples)

    limit = script_args.max_eval_samples
    alignment_pairs = _held_out_pairs("alignment_eval_file", alignment_eval_file) if alignment_eval_file else None
    if script_args.eval_dataset_path is not None:
        evaluation = load_evaluation_rows(script_args.eval_dataset_path)
        eval_where = f"eval_dataset_path {script_args.eval_dataset_path!r}"
        check_training_columns(evaluation, eval_where)
        check_training_rows(evaluation, eval_where)
        evaluation, eval_source = _first(evaluation, limit), script_args.eval_dataset_path
    elif heldout is not None:
        evaluation = _first(heldout, limit)
        eval_source = f"{len(evaluation)} pairs held out by the data builder"
    elif alignment_pairs is not None:
        evaluation, eval_source = _first(alignment_pairs, limit), alignment_eval_file
    else:
        evaluation, eval_source = None, None

    languages = list(script_args.languages) if script_args.languages else languages_in_rows(train)
    return TrainingData(train, evaluation, languages, train_source, eval_source)


def check_languages_match(languages: list[str], in_rows: list[str], where: str) -> None:
    """Refuse `languages` (what the model card will list) that differ from the languages of the rows."""
    if not in_rows:
        return  # rows without source_lang/target_lang: `languages` is the only record
    unlisted = [code for code in in_rows if not any(same_language(code, given) for given in languages)]
    absent = [code for code in languages if not any(same_language(code, found) for found in in_rows)]
    if unlisted or absent:
        raise TrainingDataError(
            f"languages {' '.join(languages)} (recipe or --languages) do not match {where}, whose rows are in "
            f"{' '.join(in_rows)}"
            + (f"; not listed: {' '.join(unlisted)}" if unlisted else "")
            + (f"; no rows in: {' '.join(absent)}" if absent else "")
            + f". Set languages to the rows' languages (--languages {' '.join(in_rows)}) or leave it unset to read "
            "them from the rows; the model card lists them."
        )


def _first(dataset: datasets.Dataset, count: int | None) -> datasets.Dataset:
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def _check_exists(setting: str, path: str | None) -> None:
    if path and not os.path.exists(path):
        raise TrainingDataError(
            f"{setting} {path!r} does not exist (relative paths start at {os.getcwd()}); "
            f"fix the path, or leave {setting} unset"
        )


def _train_hint(error: DataFormatError, skip: str) -> DataFormatError:
    """`error` with its hint in train's terms: the data module's hints name `data build`'s flags."""
    if error.hint == SKIP_HINT:
        return error.with_hint(skip)
    if error.hint == LANGUAGES_HINT:
        return error.with_hint("keep only the two language columns")
    return error


def _strict(setting: str) -> str:
    return f"fix the record; {setting} is read as it is, nothing is skipped"


def _held_out_pairs(setting: str, path: str) -> datasets.Dataset:
    """The pairs of a held-out parallel file as pair rows; its format errors name the setting."""
    try:
        return pairs_to_rows(path)
    except DataFormatError as error:
        raise TrainingDataError(f"{setting}: {_train_hint(error, _strict(setting))}") from None


def _file_is_blank(path: str) -> bool:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip(b" \t\r\n\xef\xbb\xbf"):
                return False
    return True


def _unreadable(path: str, error: Exception) -> TrainingDataError:
    """Why `datasets` could not read a JSON file of rows, found again with the data module's reader."""
    try:
        records = list(iter_json_records(path))
    except DataFormatError as found:
        return TrainingDataError(f"dataset {_train_hint(found, _strict('the dataset'))}")
    mixed = mixed_type_columns(record for _, record in records)
    if mixed:
        described = "; ".join(f"{column!r} holds {' and '.join(kinds)}" for column, kinds in mixed.items())
        return TrainingDataError(
            f"dataset {path!r}: a column has values of different types ({described}); give every "
            f"row the same type per column (strings for {', '.join(TEXT_COLUMNS)})"
        )
    cause = str(error).strip().splitlines()[-1] if str(error).strip() else ""
    return TrainingDataError(f"dataset {path!r} cannot be read as JSON rows ({type(error).__name__}: {cause})")


def load_rows(path: str, split: str = "train") -> datasets.Dataset:
    """A `datasets.Dataset` of prepared rows from a JSONL/JSON file or a `save_to_disk` folder.

    Args:
        path: the file or folder.
        split: the split to take when the folder holds a `DatasetDict`.

    Raises:
        TrainingDataError: the path is missing, empty, not UTF-8, not JSON objects, or mixes types in a column.
    """
    if os.path.isdir(path):
        try:
            loaded = datasets.load_from_disk(path)
        except FileNotFoundError as error:
            raise TrainingDataError(f"{path!r} is a folder but not a datasets.save_to_disk folder ({error})") from error
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise TrainingDataError(
                    f"{path!r} holds splits {sorted(loaded)}, not {split!r}; choose one with --dataset_train_split"
                )
            loaded = loaded[split]
        return loaded
    if not os.path.isfile(path):
        raise TrainingDataError(f"dataset {path!r} does not exist (relative paths start at {os.getcwd()})")
    if path.endswith(_JSON_SUFFIXES):
        if _file_is_blank(path):
            raise TrainingDataError(
                f"dataset {path!r} is empty: it holds no rows to train on; build them with "
                "`xling-align data build ... --output OUT.jsonl`"
            )
        try:
            check_utf8(path)  # datasets decodes lazily: a bad byte would surface in the middle of the run
        except DataFormatError as error:
            raise TrainingDataError(f"dataset {error}") from None
        try:
            return datasets.load_dataset("json", data_files=path, split="train")
        except Exception as error:  # datasets wraps the cause (Arrow, Unicode, JSON) in its own errors
            raise _unreadable(path, error) from error
    raise TrainingDataError(
        f"dataset {path!r}: prepared AFP rows are read from .jsonl/.json files or save_to_disk folders; build them "
        "with `xling-align data build ... --output OUT.jsonl`, or give raw data with data_source/data_input"
    )


def check_training_columns(dataset: datasets.Dataset, where: str) -> None:
    """Refuse a dataset that has neither instruction columns nor translation-pair columns (listing both), or
    half of a group (the same check as AFPTrainer's: `xling_align.data.columns.training_column_groups`)."""
    try:
        training_column_groups(dataset.column_names, where)
    except TrainingColumnsError as error:
        raise TrainingDataError(str(error)) from None


def check_training_rows(dataset: datasets.Dataset, where: str) -> None:
    """Refuse an empty dataset, and text columns that hold something other than text."""
    if len(dataset) == 0:
        raise TrainingDataError(
            f"{where}: no rows to train on (the dataset is empty); build rows with "
            "`xling-align data build`, or check the split and filters that produced them"
        )
    wrong = {
        column: dataset.features[column]
        for column in TEXT_COLUMNS
        if column in dataset.features
        and getattr(dataset.features[column], "dtype", None) not in ("string", "large_string", "null")
    }
    if wrong:
        described = ", ".join(
            f"{column} ({getattr(feature, 'dtype', type(feature).__name__)})" for column, feature in wrong.items()
        )
        raise TrainingDataError(f'{where}: column(s) {described} must hold text (strings; "" for absent)')


def _pair_rows(pairs) -> datasets.Dataset:
    """Pair-only AFP rows from `(source_lang, target_lang, source, target)` tuples."""
    return datasets.Dataset.from_list(
        [
            make_row(source_lang, target_lang, "pair", source_sentence=source, target_sentence=target)
            for source_lang, target_lang, source, target in pairs
        ]
    )


def pairs_to_rows(path: str) -> datasets.Dataset:
    """Translation pairs of any parallel file of the data module -> pair-only AFP rows."""
    pairs = [
        (source_lang, target_lang, source, target)
        for (source_lang, target_lang), grouped in load_parallel_pairs(path).items()
        for source, target in grouped
    ]
    if not pairs:
        raise TrainingDataError(f"{path!r} holds no translation pairs")
    return _pair_rows(pairs)


def looks_like_afp_rows(path: str) -> bool:
    """Whether `path` holds prepared rows (a save_to_disk folder, or JSON whose first record has row columns)."""
    if os.path.isdir(path):
        return True
    if not path.endswith((".jsonl", ".json")):
        return False
    with open(path, "rb") as handle:  # only a guess: the reader that follows reports encoding errors
        first = handle.readline().decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    try:
        record = json.loads(first) if first.startswith("{") else {}
    except json.JSONDecodeError:
        return False
    return any(column in record for column in (*INSTRUCTION_COLUMNS, *PAIR_COLUMNS))


def load_evaluation_rows(path: str) -> datasets.Dataset:
    """Held-out rows: prepared AFP rows (a dev split) as they are, any parallel file as pair rows."""
    return load_rows(path, "validation") if looks_like_afp_rows(path) else _held_out_pairs("eval_dataset_path", path)


def build_rows(source: str, input_path: str | None, languages: list[str] | None, options: dict | None):
    """Raw data -> (rows, held-out pair rows or None) with the data module's builder.

    Args:
        source: `bactrian-x`, `parallel` or `instructions` (`xling_align.data.config.SOURCES`).
        input_path: the Bactrian-X folder (None: the hub), or the parallel / instruction file.
        languages: language codes (the first is the pivot in pivot mode).
        options: further `DataBuildConfig` fields (mode, cross_probability, repeat, seed, heldout_size, ...).
    """
    if not languages:
        raise TrainingDataError(f"data_source {source!r} needs languages, e.g. languages: [en, zh]")
    fields = dict(options or {})
    for reserved in ("source", "languages", "input", "input_dir"):
        if reserved in fields:
            raise TrainingDataError(
                f"data_options sets {reserved!r}; set it with data_source / data_input / languages instead"
            )
    location = {"input_dir": input_path} if source == "bactrian-x" else {"input": input_path}
    try:
        config = DataBuildConfig(languages=list(languages), source=source, **location, **fields)
    except TypeError as error:  # an unknown data_options key
        raise TrainingDataError(
            f"data_options: {error}; the keys are the fields of xling_align.data.DataBuildConfig"
        ) from error
    except ValueError as error:  # the builder names the field (languages, mode, ...)
        raise TrainingDataError(f"data_source {source!r}: {error}") from error
    builder = RowBuilder(config)
    try:
        rows = list(builder.rows())
    except DataFormatError as error:
        skip = "fix the record, or add skip_invalid: true to data_options to skip malformed records and count them"
        raise TrainingDataError(f"data_source {source!r}: {_train_hint(error, skip)}") from None
    if not rows:
        raise TrainingDataError(f"data_source {source!r} ({input_path}) produced no rows for languages {languages}")
    heldout = _pair_rows(builder.heldout) if builder.heldout else None
    return datasets.Dataset.from_list(rows), heldout


def languages_in_rows(dataset: datasets.Dataset) -> list[str]:
    """Every language code in the rows' `source_lang` / `target_lang` columns, sorted."""
    codes = set()
    for column in LANGUAGE_COLUMNS:
        if column in dataset.column_names:
            codes.update(code for code in dataset.unique(column) if code)
    return sorted(codes)
