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
- languages: `languages` when set, else every code in the training rows' `source_lang`/`target_lang`.

Example:
    >>> from xling_align.package_paths import resolve_path
    >>> from xling_align.training_data import load_rows, pairs_to_rows
    >>> rows = load_rows(resolve_path("pkg://xling_align/resources/tiny/train.jsonl"))
    >>> sorted(rows.column_names)[:4]
    ['completion', 'kind', 'prompt', 'source_lang']
    >>> held_out = pairs_to_rows(resolve_path("pkg://xling_align/resources/tiny/heldout.en-de.tsv"))
    >>> held_out[0]["kind"], held_out[0]["prompt"]
    ('pair', '')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import datasets

from xling_align.data import DataBuildConfig, RowBuilder, load_parallel_pairs
from xling_align.data.rows import make_row

TRAINING_COLUMNS = {
    "cross-lingual instruction": ("prompt", "completion"),
    "translation pair": ("source_sentence", "target_sentence"),
}
_JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")


class TrainingDataError(ValueError):
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
    heldout = None
    if script_args.dataset_path is not None:
        train = load_rows(script_args.dataset_path, script_args.dataset_train_split)
        train_source = script_args.dataset_path
        check_training_columns(train, f"dataset_path {script_args.dataset_path!r}")
    else:
        train, heldout = build_rows(script_args.data_source, script_args.data_input, script_args.languages,
                                    script_args.data_options)
        train_source = f"{script_args.data_source}: {script_args.data_input or 'hub'}"
        check_training_columns(train, f"data_source {script_args.data_source!r} ({script_args.data_input or 'hub'})")
    train = _first(train, script_args.max_train_samples)

    limit = script_args.max_eval_samples
    if script_args.eval_dataset_path is not None:
        evaluation = load_evaluation_rows(script_args.eval_dataset_path)
        check_training_columns(evaluation, f"eval_dataset_path {script_args.eval_dataset_path!r}")
        evaluation, eval_source = _first(evaluation, limit), script_args.eval_dataset_path
    elif heldout is not None:
        evaluation = _first(heldout, limit)
        eval_source = f"{len(evaluation)} pairs held out by the data builder"
    elif alignment_eval_file:
        evaluation, eval_source = _first(pairs_to_rows(alignment_eval_file), limit), alignment_eval_file
    else:
        evaluation, eval_source = None, None

    languages = list(script_args.languages) if script_args.languages else languages_in_rows(train)
    return TrainingData(train, evaluation, languages, train_source, eval_source)


def _first(dataset: datasets.Dataset, count: int | None) -> datasets.Dataset:
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def load_rows(path: str, split: str = "train") -> datasets.Dataset:
    """A `datasets.Dataset` of prepared rows from a JSONL/JSON file or a `save_to_disk` folder.

    Args:
        path: the file or folder.
        split: the split to take when the folder holds a `DatasetDict`.
    """
    if os.path.isdir(path):
        try:
            loaded = datasets.load_from_disk(path)
        except FileNotFoundError as error:
            raise TrainingDataError(f"{path!r} is a folder but not a datasets.save_to_disk folder ({error})") from error
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise TrainingDataError(f"{path!r} holds splits {sorted(loaded)}, not {split!r}; choose one with --dataset_train_split")
            loaded = loaded[split]
        return loaded
    if not os.path.isfile(path):
        raise TrainingDataError(f"dataset {path!r} does not exist (relative paths start at {os.getcwd()})")
    if path.endswith(_JSON_SUFFIXES):
        return datasets.load_dataset("json", data_files=path, split="train")
    raise TrainingDataError(
        f"dataset {path!r}: prepared AFP rows are read from .jsonl/.json files or save_to_disk folders; build them "
        "with `xling-align data build ... --output OUT.jsonl`, or give raw data with data_source/data_input"
    )


def check_training_columns(dataset: datasets.Dataset, where: str) -> None:
    """Refuse a dataset that has neither instruction columns nor translation-pair columns, listing both."""
    found = set(dataset.column_names)
    if any(set(group) <= found for group in TRAINING_COLUMNS.values()):
        return
    needed = " and/or ".join(f"{' + '.join(columns)} ({kind})" for kind, columns in TRAINING_COLUMNS.items())
    raise TrainingDataError(
        f"{where}: the rows have columns {sorted(found)}, but AFP training needs {needed}. Build AFP rows with "
        "`xling-align data build`, or rename the columns"
    )


def _pair_rows(pairs) -> datasets.Dataset:
    """Pair-only AFP rows from `(source_lang, target_lang, source, target)` tuples."""
    return datasets.Dataset.from_list([
        make_row(source_lang, target_lang, "pair", source_sentence=source, target_sentence=target)
        for source_lang, target_lang, source, target in pairs
    ])


def pairs_to_rows(path: str) -> datasets.Dataset:
    """Translation pairs of any parallel file of the data module -> pair-only AFP rows."""
    pairs = [(source_lang, target_lang, source, target)
             for (source_lang, target_lang), grouped in load_parallel_pairs(path).items()
             for source, target in grouped]
    if not pairs:
        raise TrainingDataError(f"{path!r} holds no translation pairs")
    return _pair_rows(pairs)


def looks_like_afp_rows(path: str) -> bool:
    """Whether `path` holds prepared rows (a save_to_disk folder, or JSON whose first record has row columns)."""
    if os.path.isdir(path):
        return True
    if not path.endswith((".jsonl", ".json")):
        return False
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    try:
        record = json.loads(first) if first.startswith("{") else {}
    except json.JSONDecodeError:
        return False
    return any(column in record for group in TRAINING_COLUMNS.values() for column in group)


def load_evaluation_rows(path: str) -> datasets.Dataset:
    """Held-out rows: prepared AFP rows (a dev split) as they are, any parallel file as pair rows."""
    return load_rows(path, "validation") if looks_like_afp_rows(path) else pairs_to_rows(path)


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
            raise TrainingDataError(f"data_options sets {reserved!r}; set it with data_source / data_input / languages instead")
    location = {"input_dir": input_path} if source == "bactrian-x" else {"input": input_path}
    try:
        config = DataBuildConfig(languages=list(languages), source=source, **location, **fields)
    except TypeError as error:  # an unknown data_options key
        raise TrainingDataError(f"data_options: {error}; the keys are the fields of xling_align.data.DataBuildConfig") from error
    except ValueError as error:  # the builder names the field (languages, mode, ...)
        raise TrainingDataError(f"data_source {source!r}: {error}") from error
    builder = RowBuilder(config)
    rows = list(builder.rows())
    if not rows:
        raise TrainingDataError(f"data_source {source!r} ({input_path}) produced no rows for languages {languages}")
    heldout = _pair_rows(builder.heldout) if builder.heldout else None
    return datasets.Dataset.from_list(rows), heldout


def languages_in_rows(dataset: datasets.Dataset) -> list[str]:
    """Every language code in the rows' `source_lang` / `target_lang` columns, sorted."""
    codes = set()
    for column in ("source_lang", "target_lang"):
        if column in dataset.column_names:
            codes.update(code for code in dataset.unique(column) if code)
    return sorted(codes)
