"""Write rows atomically: to a temporary file beside the target, then rename, so an interrupted build
never leaves a half-written file that looks complete. JSONL or a `datasets` `save_to_disk` folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from xling_align.data.rows import ROW_COLUMNS, make_row


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_jsonl(rows: Iterable[dict], path: str | Path) -> int:
    """Write `rows` as JSON lines to `path` atomically; returns the number of rows.

    `rows` may be a lazy iterator: if it raises, the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(path)
    count = 0
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def row_features():
    """`datasets.Features` of the row: seven string columns in the canonical order."""
    from datasets import Features, Value

    return Features({name: Value("string") for name in ROW_COLUMNS})


def save_rows_to_disk(rows: Iterable[dict], path: str | Path) -> int:
    """Write `rows` as a `datasets.Dataset` folder (`Dataset.load_from_disk`) atomically.

    Rows are streamed to a temporary JSONL file first and converted by Arrow, so memory stays bounded.
    An existing folder at `path` is replaced only once the new one is complete.
    """
    import datasets
    from datasets import Dataset

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the build prints its own statistics
    try:
        staged_jsonl = work / "rows.jsonl"
        count = write_jsonl(rows, staged_jsonl)
        if count:
            dataset = Dataset.from_json(str(staged_jsonl), features=row_features(), cache_dir=str(work / "cache"))
        else:
            dataset = Dataset.from_dict({name: [] for name in ROW_COLUMNS}, features=row_features())
        staged = work / "dataset"
        dataset.save_to_disk(str(staged))
        del dataset
        previous = path.with_name(f".{path.name}.old-{os.getpid()}")
        if path.exists():
            os.replace(path, previous)
        os.replace(staged, path)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if bars_were_on:
            datasets.enable_progress_bars()
    return count


def write_pairs(pairs: Iterable[tuple[str, str, str, str]], path: str | Path) -> int:
    """Write translation pairs `(source_lang, target_lang, source, target)` atomically.

    `.tsv`: header row with the two codes (one language pair only); `.jsonl`: AFP rows of kind `pair`
    (any number of language pairs). Both are read back by `xling_align.data.load_parallel_pairs`.
    """
    path = Path(path)
    pairs = list(pairs)
    name = path.name.lower()
    if name.endswith(".jsonl"):
        return write_jsonl((make_row(s, t, "pair", source_sentence=a, target_sentence=b) for s, t, a, b in pairs), path)
    if not name.endswith(".tsv"):
        raise ValueError(f"{path}: held-out pairs are written as .tsv (one language pair) or .jsonl; rename the file")
    directions = {(s, t) for s, t, _, _ in pairs}
    if len(directions) > 1:
        raise ValueError(
            f"{path}: a .tsv holds one language pair, but the held-out pairs span {sorted(directions)}; "
            "use a .jsonl file"
        )
    for _, _, source, target in pairs:
        if any(char in text for text in (source, target) for char in "\t\r\n"):
            raise ValueError(
                f"{path}: a held-out sentence contains a tab or newline, which TSV cannot hold; use a .jsonl file"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(path)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            source_lang, target_lang = next(iter(directions)) if directions else ("source", "target")
            handle.write(f"{source_lang}\t{target_lang}\n")
            for _, _, source, target in pairs:
                handle.write(f"{source}\t{target}\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return len(pairs)
