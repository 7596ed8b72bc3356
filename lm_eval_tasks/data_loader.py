"""Where the data of every `xling_*` task comes from: the hub by default, a local folder offline.

Every task YAML names this module's `load_benchmark` as its `custom_dataset`; lm-eval calls it as
`load_benchmark(**metadata, **dataset_kwargs)`, so the task's `dataset_kwargs` (benchmark, language,
language of the demonstrations) and anything given with `--metadata` (e.g. `data_dir`) arrive here.

Local layout (the hub's column names and split names):

    <data_dir>/<benchmark>/<lang>/<split>.jsonl

`data_dir` is `--metadata '{"data_dir": "..."}'` or else the environment variable `XLING_DATA_DIR`;
with neither, the data are read from the hub with `datasets.load_dataset`, with the same dataset ids
lm-eval 0.4.13 uses for its built-in tasks. `xling-align export-data` writes the local layout once.

Which hub dataset, config and split hold each language, and which columns a file must have, are read from
`xling_align.benchmark_table` (the one table of benchmark facts).

Example:
    >>> from xling_align.lm_eval_tasks.data_loader import local_path
    >>> str(local_path("DIR", "pawsx", "de", "test"))
    'DIR/pawsx/de/test.jsonl'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xling_align.benchmark_table import HubSplit, benchmark

DATA_DIR_ENV = "XLING_DATA_DIR"


def local_path(data_dir: str | os.PathLike, name: str, lang: str, split: str) -> Path:
    """`<data_dir>/<benchmark name>/<lang>/<split>.jsonl`."""
    return Path(data_dir) / name / lang / f"{split}.jsonl"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[str | None, str]:
    """The local data folder and where it was set (`--metadata data_dir`, `$XLING_DATA_DIR`, or none)."""
    if data_dir:
        return str(data_dir), "--metadata data_dir"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return env, f"${DATA_DIR_ENV}"
    return None, "hub"


def _read_jsonl(path: Path, name: str, lang: str, split: str, origin: str) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(
            f"No local data for {name} {lang} {split}: expected the file {path} "
            f"(data folder set by {origin}). Write it with `xling-align export-data --benchmarks "
            f"{name} --languages {lang} --output {path.parents[2]}` on a machine with hub access, "
            f"or unset {DATA_DIR_ENV} to read the hub."
        )
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path}, line {line_number}: not valid JSON ({err.msg}). Each line must be one "
                    f"JSON object with the columns {', '.join(benchmark(name).columns)}."
                ) from None
    if not rows:
        raise ValueError(f"{path} holds no rows: export the data again or remove the file.")
    return rows


def check_columns(columns, name: str, where: str) -> None:
    """Raise if `columns` lacks any column the benchmark's prompts need, naming found and needed."""
    needed = benchmark(name).columns
    missing = [column for column in needed if column not in columns]
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {', '.join(missing)}. Found: {', '.join(sorted(columns))}. "
            f"The {name} tasks need: {', '.join(needed)} (the hub's column names)."
        )


def load_hub_split(name: str, source: HubSplit):
    """One split from the hub (`datasets.load_dataset`), its columns checked."""
    import datasets

    dataset = datasets.load_dataset(source.path, source.name, split=source.split)
    check_columns(dataset.column_names, name, f"{source.path} ({source.name}, {source.split})")
    return dataset


def load_split(name: str, lang: str, source: HubSplit, data_dir: str | None = None):
    """One split as a `datasets.Dataset`, from `data_dir` (or `$XLING_DATA_DIR`) if set, else the hub."""
    import datasets

    folder, origin = resolve_data_dir(data_dir)
    if folder is None:
        return load_hub_split(name, source)
    path = local_path(folder, name, lang, source.split)
    rows = _read_jsonl(path, name, lang, source.split, origin)
    columns = set().union(*(row.keys() for row in rows))
    check_columns(columns, name, str(path))
    return datasets.Dataset.from_list(rows)


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
        xling_demo_lang: language whose demonstration split is loaded as the split `demos`
            (the task's own language, or `en` for cross-lingual demonstrations); None for none.
        data_dir: local data folder (from `--metadata`); `$XLING_DATA_DIR` when not given.
        **_ignored: the rest of lm-eval's metadata (`version`, model arguments) is not used.

    Returns:
        A `datasets.DatasetDict` with the scored split under its hub name and, if any, `demos`.
    """
    import datasets

    table = benchmark(xling_benchmark)
    scored = table.scored(xling_lang)
    splits = {scored.split: load_split(xling_benchmark, xling_lang, scored, data_dir)}
    demos = table.demonstrations(xling_demo_lang) if xling_demo_lang is not None else None
    if demos is not None:
        splits["demos"] = load_split(xling_benchmark, xling_demo_lang, demos, data_dir)
    return datasets.DatasetDict(splits)
