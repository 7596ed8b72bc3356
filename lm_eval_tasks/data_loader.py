"""Where the data of every `xling_*` task comes from: the hub by default, a local folder offline.

Every task YAML names this module's `load_benchmark` as its `custom_dataset`; lm-eval calls it as
`load_benchmark(**metadata, **dataset_kwargs)`, so the task's `dataset_kwargs` (benchmark, language,
language of the demonstrations) and anything given with `--metadata` (e.g. `data_dir`) arrive here.

Local layout (the hub's column names and split names):

    <data_dir>/<benchmark>/<lang>/<split>.jsonl

`data_dir` is `--metadata '{"data_dir": "..."}'` or else the environment variable `XLING_DATA_DIR`;
with neither, the data are read from the hub (`xling_align.data.hub_data`: `datasets.load_dataset` for data-only
repositories, the repository's own files for those with a loading script, which `datasets` >= 4 refuses),
with the same dataset ids lm-eval 0.4.13 uses for its built-in tasks. `xling-align export-data` writes the
local layout once (from the hub, or `--from-release` from the benchmarks' release files).

Which hub dataset, config and split hold each language, and which columns a file must have, are read from
`xling_align.evaluation.benchmark_table` (the one table of benchmark facts). Local rows are checked (and labels of the
other type converted) by `data_checks` before lm-eval sees them, the scored split also for repeated items and
its size (`load_scored_split`); the demonstration split is deferred (`demonstrations.DeferredSplit`), read
only when a demonstration is drawn; rows of it that are items of the scored split are then dropped with one
warning (a few, as in a published release) or the split is refused (mostly such rows).

Example:
    >>> from xling_align.lm_eval_tasks.data_loader import local_path
    >>> str(local_path("DIR", "pawsx", "de", "test"))
    'DIR/pawsx/de/test.jsonl'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from xling_align.evaluation.benchmark_table import HubSplit, benchmark
from xling_align.lm_eval_tasks.data_checks import (
    MissingBenchmarkDataError,
    ScoredItems,
    UnreachableBenchmarkDataError,
    check_demonstrations,
    check_hub_split,
    check_scored_split,
    checked_rows,
    read_rows,
)
from xling_align.lm_eval_tasks.demonstrations import DeferredSplit

DATA_DIR_ENV = "XLING_DATA_DIR"


def local_path(data_dir: str | os.PathLike, name: str, lang: str, split: str) -> Path:
    """`<data_dir>/<benchmark name>/<lang>/<split>.jsonl`."""
    return Path(data_dir) / name / lang / f"{split}.jsonl"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[str | None, str]:
    """The local data folder and where it was set (`--metadata data_dir`, `$XLING_DATA_DIR`, or none)."""
    # `~` inside --metadata's JSON (or a quoted variable) reaches here unexpanded: the shell never saw it
    if data_dir:
        return os.path.expanduser(str(data_dir)), "--metadata data_dir"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return os.path.expanduser(env), f"${DATA_DIR_ENV}"
    return None, "hub"


def _what_is_there(data_dir: Path, name: str, lang: str) -> str:
    """A hint when the folder is not laid out as expected: the usual slips (wrong level, another language code)."""
    if not data_dir.is_dir():
        return f" The data folder {data_dir} does not exist."
    if data_dir.name == name or (data_dir / lang).is_dir():
        return (
            f" {data_dir} looks like one benchmark's folder: data_dir is the folder above it, holding "
            "<benchmark>/<lang>/<split>.jsonl."
        )
    if (data_dir / name).is_dir() and not (data_dir / name / lang).is_dir():
        found = sorted(child.name for child in (data_dir / name).iterdir() if child.is_dir())
        return (
            f" {data_dir / name} has no folder {lang!r} (it has: {', '.join(found) or 'none'}); the folders are "
            f"named by the benchmark's own language codes ({lang!r} here)."
        )
    return ""


def _missing_file_message(path: Path, name: str, lang: str, split: str, origin: str, demonstrations: bool) -> str:
    data_dir = path.parents[2]
    hint = _what_is_there(data_dir, name, lang)
    export = (
        f"`xling-align export-data --benchmarks {name} --languages {lang} --output DIR` writes it on a machine "
        f"with hub access (copy DIR/{name}/{lang}/{split}.jsonl here)"
    )
    if demonstrations:
        return (
            f"No demonstrations for {name} {lang}: a few-shot run draws them from the {split} split, expected in "
            f"{path} (data folder {data_dir}, set by {origin}). Run 0-shot (--num_fewshot 0), which needs only the "
            f"scored split, or write that file (JSON lines with the columns {', '.join(benchmark(name).columns)}, "
            f"e.g. from your copy of the benchmark's {split} split); {export}.{hint}"
        )
    return (
        f"No local data for {name} {lang} {split}: expected the file {path} (data folder {data_dir}, set by "
        f"{origin}). Write it as JSON lines with the columns {', '.join(benchmark(name).columns)} (the hub's "
        f"column names and label values); {export}.{hint}"
    )


def _read_local_split(
    path: Path, name: str, lang: str, split: str, origin: str, demonstrations: bool = False
) -> tuple[list[tuple[int, dict]], list[dict]]:
    """`(line, row)` pairs and the checked rows of one local file (`data_checks`: encoding, JSON, columns, types,
    label values)."""
    if not path.is_file():
        raise MissingBenchmarkDataError(_missing_file_message(path, name, lang, split, origin, demonstrations))
    numbered = read_rows(path, name)
    return numbered, checked_rows(numbered, name, lang, str(path))


def load_hub_split(name: str, source: HubSplit, base: str | None = None):
    """One split from the hub, its columns and label values checked.

    Data-only repositories go through `datasets.load_dataset(path, config)`; repositories with a loading script
    (refused by `datasets` >= 4) through their own files (`xling_align.data.hub_data`; `base` replaces
    `hf://datasets/<path>`, for tests).
    """
    from xling_align.data.hub_data import HubUnreachableError, load_hub_dataset

    offline = (
        f"Offline, point the tasks at a local copy: {DATA_DIR_ENV}=DIR or lm_eval --metadata "
        f'\'{{"data_dir": "DIR"}}\', DIR holding {name}/<lang>/<split>.jsonl (written by `xling-align '
        "export-data` where the hub can be reached, or by `xling-align export-data --from-release` from the "
        "benchmark's release files)."
    )
    try:
        dataset = load_hub_dataset(source.path, source.name, source.split, offline, base=base)
    except HubUnreachableError as error:  # one `error:` line from lm_eval, like the other data errors
        raise UnreachableBenchmarkDataError(str(error)) from None
    check_hub_split(dataset, name, _hub_where(source))
    return dataset


def _hub_where(source: HubSplit) -> str:
    return f"{source.path} ({source.name}, {source.split})"


def _hub_items(dataset, name: str) -> list[dict]:
    """The columns of every row that make its item (`data_checks.item_key`), read once, by column (fast)."""
    columns = list(benchmark(name).item_columns)
    values = dataset.select_columns(columns).to_dict()
    return [dict(zip(columns, row)) for row in zip(*(values[column] for column in columns))]


def load_split(
    name: str,
    lang: str,
    source: HubSplit,
    data_dir: str | None = None,
    demonstrations: bool = False,
    not_in: ScoredItems | None = None,
    order: Callable[[int], list[int]] | None = None,
):
    """One split as a `datasets.Dataset`, from `data_dir` (or `$XLING_DATA_DIR`) if set, else the hub.

    Local rows are checked first (`data_checks`), so wrong labels or types stop the run instead of being scored;
    `not_in`: the scored split's items, which a demonstration split (local or from the hub) must not hold (a
    few are dropped with a warning, a pool made of them is refused: `data_checks.check_demonstrations`);
    `order(n)`: the order of the split's n rows, applied before those rows are dropped, so the others keep their
    places in it.
    """
    import datasets

    folder, origin = resolve_data_dir(data_dir)
    if folder is None:
        dataset = load_hub_split(name, source)
        places = list(range(len(dataset))) if order is None else order(len(dataset))
        if not_in is not None:  # a published split may share items with the scored one (PAWS-X's dev and test)
            items = _hub_items(dataset, name)
            numbered = [(place + 1, items[place]) for place in places]
            kept = check_demonstrations(numbered, name, _hub_where(source), not_in, unit="row")
            places = [row - 1 for row, _ in kept]
        return dataset if order is None and not_in is None else dataset.select(places)
    path = local_path(folder, name, lang, source.split)
    numbered, rows = _read_local_split(path, name, lang, source.split, origin, demonstrations)
    if order is not None:
        places = order(len(rows))
        numbered, rows = [numbered[i] for i in places], [rows[i] for i in places]
    if not_in is not None:
        kept = {line for line, _ in check_demonstrations(numbered, name, str(path), not_in)}
        rows = [row for (line, _), row in zip(numbered, rows, strict=True) if line in kept]
    return datasets.Dataset.from_list(rows)


def load_scored_split(name: str, lang: str, source: HubSplit, data_dir: str | None = None):
    """The split a task scores, as `load_split`, plus its items, to keep them out of demonstrations.

    A local file also goes through `data_checks.check_scored_split` (repeated items; fewer rows than published).
    """
    import datasets

    folder, origin = resolve_data_dir(data_dir)
    if folder is None:
        dataset = load_hub_split(name, source)
        items = ScoredItems.of(enumerate(_hub_items(dataset, name), start=1), name, _hub_where(source), unit="row")
        return dataset, items
    path = local_path(folder, name, lang, source.split)
    numbered, rows = _read_local_split(path, name, lang, source.split, origin)
    check_scored_split(numbered, name, lang, source.split, str(path))
    return datasets.Dataset.from_list(rows), ScoredItems.of(numbered, name, str(path))


def load_benchmark(
    xling_benchmark: str,
    xling_lang: str,
    xling_demo_lang: str | None = None,
    data_dir: str | None = None,
    **_ignored: Any,
):
    """The `custom_dataset` of every `xling_*` task.

    Args:
        xling_benchmark: one of `xnli`, `pawsx`, `xcopa`, `xstorycloze`, `xwinograd`, `belebele`.
        xling_lang: language whose scored split is loaded (the benchmark's own code, e.g. `eng_Latn`).
        xling_demo_lang: language whose demonstration split becomes the split `demos` (the task's own
            language, or `en` for cross-lingual demonstrations); None for none. It is read only when a
            demonstration is drawn (`demonstrations.DeferredSplit`), so a 0-shot run never needs it.
        data_dir: local data folder (from `--metadata`); `$XLING_DATA_DIR` when not given.
        **_ignored: the rest of lm-eval's metadata (`version`, model arguments) is not used.

    Returns:
        A `datasets.DatasetDict` with the scored split under its hub name and, if any, `demos` (a
        `DeferredSplit`, read by the tasks' `DemonstrationSampler` when first needed).
    """
    import datasets

    table = benchmark(xling_benchmark)
    scored = table.scored(xling_lang)
    scored_rows, scored_items = load_scored_split(xling_benchmark, xling_lang, scored, data_dir)
    splits = {scored.split: scored_rows}
    demos = table.demonstrations(xling_demo_lang) if xling_demo_lang is not None else None
    if demos is not None:
        splits["demos"] = DeferredSplit(
            partial(
                load_split, xling_benchmark, xling_demo_lang, demos, data_dir, demonstrations=True, not_in=scored_items
            ),
            f"the {xling_benchmark} {xling_demo_lang} demonstrations ({demos.split} split)",
        )
    return datasets.DatasetDict(splits)
