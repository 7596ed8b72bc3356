"""Parallel corpora: translation pairs from TSV/CSV, JSONL or a hub dataset with a `translation` column.

File layouts:
- TSV / CSV: a header row naming the language columns (`en<TAB>de`); more columns are allowed when the
  two language columns are given (`languages=("en", "de")`) or are the only registered language codes.
- JSONL: one object per line, either with two language-code keys (`{"en": ..., "de": ...}`), a
  `translation` dict (`{"translation": {"en": ..., "de": ...}}`, the WMT/OPUS hub layout), or an AFP row
  (`source_lang`, `target_lang`, `source_sentence`, `target_sentence`; rows whose sentences are empty, such
  as instruction-only rows, carry no pair and are skipped).

Language codes are returned as written in the file. Asking for languages matches registered codes by
meaning (`eng_Latn` finds an `en` column) and other names exactly (synthetic languages work too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xling_align.data.columns import PAIR_COLUMNS, SOURCE_LANG, SOURCE_SENTENCE, TARGET_LANG, TARGET_SENTENCE
from xling_align.data.readers import (
    SKIP_HINT,
    DataFormatError,
    InvalidRecords,
    iter_delimited,
    iter_json_records,
    text_format,
)
from xling_align.languages import is_known, normalize_code

_AFP_KEYS = (SOURCE_LANG, TARGET_LANG, *PAIR_COLUMNS)
# the hint when a header has more than two columns; a command without `--languages` replaces it
LANGUAGES_HINT = (
    "keep only the two language columns, or pass the two languages (languages=('en', 'de') / --languages en de)"
)


@dataclass(frozen=True)
class ParallelPair:
    """One translation pair read from a file.

    Args:
        source_lang: code of `source` as written in the file.
        target_lang: code of `target` as written in the file.
        source: the sentence in `source_lang`.
        target: its translation in `target_lang`.
        line: line of the file where the record starts (0 for hub rows: their index).
    """

    source_lang: str
    target_lang: str
    source: str
    target: str
    line: int


def same_language(a: str, b: str) -> bool:
    """Whether two codes name the same language (registered codes by meaning, others exactly)."""
    if a == b:
        return True
    if is_known(a) and is_known(b):
        return normalize_code(a) == normalize_code(b)
    return False


def _find(name: str, candidates: Iterable[str]) -> str | None:
    for candidate in candidates:
        if same_language(name, candidate):
            return candidate
    return None


def _choose_columns(path: Path, header: list[str], languages: tuple[str, str] | None) -> tuple[int, int]:
    header = [name.strip() for name in header]
    if languages is not None:
        found = [_find(code, header) for code in languages]
        missing = [code for code, column in zip(languages, found) if column is None]
        if missing:
            raise DataFormatError(
                path,
                f"the header has no column for {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(map(repr, header))})",
                1,
                hint="name the language columns in the header row, or ask for the languages the file has",
            )
        return header.index(found[0]), header.index(found[1])
    if len(header) == 2:
        return 0, 1
    language_columns = [index for index, name in enumerate(header) if is_known(name)]
    if len(language_columns) > 2:  # `id` is Indonesian's code but usually a row-id column
        language_columns = [index for index in language_columns if header[index] != "id"]
    if len(language_columns) == 2:
        return language_columns[0], language_columns[1]
    raise DataFormatError(
        path,
        f"cannot tell which two of the header's {len(header)} columns ({', '.join(map(repr, header))}) "
        "hold the languages",
        1,
        hint=LANGUAGES_HINT,
    )


def _iter_delimited_pairs(
    path: Path, delimiter: str, languages, invalid: InvalidRecords, counts: Counter
) -> Iterator[ParallelPair]:
    rows = iter_delimited(path, delimiter)
    first = next(rows, None)
    if first is None:
        raise DataFormatError(
            path,
            "the file is empty",
            hint="a parallel file starts with a header row naming its two language columns, e.g. `en<TAB>de`",
        )
    _, header = first
    left, right = _choose_columns(path, header, languages)
    left_lang, right_lang = header[left].strip(), header[right].strip()
    if not left_lang or not right_lang:
        raise DataFormatError(
            path,
            "a language column of the header row is unnamed",
            1,
            hint="name both language columns, e.g. `en<TAB>de`",
        )
    for number, fields in rows:
        if len(fields) != len(header):
            invalid.handle(
                DataFormatError(
                    path,
                    f"expected {len(header)} columns as in the header, found {len(fields)}",
                    number,
                    hint=SKIP_HINT,
                )
            )
            continue
        source, target = fields[left].strip(), fields[right].strip()
        if not source or not target:
            counts["empty"] += 1
            continue
        yield ParallelPair(left_lang, right_lang, source, target, number)


def _pair_from_object(record: dict, languages) -> tuple[str, str, object, object] | str:
    """(lang_a, lang_b, text_a, text_b) or a description of what is wrong."""
    if all(key in record for key in _AFP_KEYS):
        return record[SOURCE_LANG], record[TARGET_LANG], record[SOURCE_SENTENCE], record[TARGET_SENTENCE]
    fields = record.get("translation") if isinstance(record.get("translation"), dict) else record
    if languages is not None:
        found = [_find(code, fields) for code in languages]
        if None in found:
            missing = [code for code, key in zip(languages, found) if key is None]
            return f"no key for {', '.join(map(repr, missing))} (keys: {', '.join(map(repr, fields))})"
        return found[0], found[1], fields[found[0]], fields[found[1]]
    text_keys = [key for key, value in fields.items() if isinstance(value, str)]
    if len(text_keys) != 2:
        text_keys = [key for key in text_keys if is_known(key)]
    if len(text_keys) != 2:
        return (
            "expected two language-code keys, a `translation` dict, or an AFP row with "
            f"{', '.join(_AFP_KEYS)} (keys: {', '.join(map(repr, record))})"
        )
    return text_keys[0], text_keys[1], fields[text_keys[0]], fields[text_keys[1]]


def _iter_json_pairs(path: Path, languages, invalid: InvalidRecords, counts: Counter) -> Iterator[ParallelPair]:
    for number, record in iter_json_records(path, invalid):
        found = _pair_from_object(record, languages)
        if isinstance(found, str):
            invalid.handle(DataFormatError(path, found, number, hint=SKIP_HINT))
            continue
        lang_a, lang_b, text_a, text_b = found
        if not all(isinstance(value, str) for value in found):
            invalid.handle(
                DataFormatError(path, "language codes and sentences must be strings", number, hint=SKIP_HINT)
            )
            continue
        text_a, text_b = text_a.strip(), text_b.strip()
        if not text_a or not text_b:
            counts["empty"] += 1
            continue
        if languages is not None and same_language(lang_a, languages[1]) and same_language(lang_b, languages[0]):
            lang_a, lang_b, text_a, text_b = lang_b, lang_a, text_b, text_a  # AFP rows may go either way
        yield ParallelPair(lang_a, lang_b, text_a, text_b, number)


def iter_parallel_file(
    path: str | Path,
    languages: tuple[str, str] | None = None,
    invalid: InvalidRecords | None = None,
    counts: Counter | None = None,
    columns: tuple[str, str] | None = None,
) -> Iterator[ParallelPair]:
    """Stream the translation pairs of a TSV/CSV/JSONL file (optionally `.gz`), in file order.

    Args:
        path: the parallel file.
        languages: the two language columns/keys to read (None: the file's only two).
        invalid: what to do with malformed records (default: raise `DataFormatError`).
        counts: a Counter that receives `empty` for pairs with an empty side (skipped).
        columns: names of the two text columns/keys when they are not language codes (e.g.
            `("english", "german")`); the pairs are then labelled with `languages`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: parallel file not found (give a .tsv, .csv or .jsonl file)")
    invalid = invalid or InvalidRecords()
    counts = counts if counts is not None else Counter()
    kind = text_format(path)
    languages = tuple(languages) if languages is not None else None
    lookup = tuple(columns) if columns is not None else languages
    if kind == "json":
        pairs = _iter_json_pairs(path, lookup, invalid, counts)
    else:
        pairs = _iter_delimited_pairs(path, "\t" if kind == "tsv" else ",", lookup, invalid, counts)
    if columns is None or languages is None:
        yield from pairs
        return
    label = dict(zip(columns, languages))
    for pair in pairs:
        yield ParallelPair(
            label.get(pair.source_lang, pair.source_lang),
            label.get(pair.target_lang, pair.target_lang),
            pair.source,
            pair.target,
            pair.line,
        )


def load_parallel_pairs(
    path: str | Path,
    skip_invalid: bool = False,
    languages: tuple[str, str] | None = None,
    counts: Counter | None = None,
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """All translation pairs of a parallel file, grouped by (source language, target language).

    Args:
        path: a TSV/CSV file whose header names the two language columns, or a JSONL file with two
            language-code keys, a `translation` dict, or AFP rows (source_lang/target_lang/...).
        skip_invalid: skip malformed records instead of raising `DataFormatError`.
        languages: the two language columns/keys to read (None: the file's only two).
        counts: a Counter that receives `empty` (pairs with an empty side) and `invalid` (skipped records).

    Returns:
        `{(lang_a, lang_b): [(sentence_a, sentence_b), ...]}` in file order; pairs with an empty side are
        left out (counted in `counts`).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
        >>> _ = path.write_text("en\\tde\\nGood morning.\\tGuten Morgen.\\n", encoding="utf-8")
        >>> load_parallel_pairs(path)
        {('en', 'de'): [('Good morning.', 'Guten Morgen.')]}
    """
    counts = counts if counts is not None else Counter()
    invalid = InvalidRecords(skip=skip_invalid)
    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for pair in iter_parallel_file(path, languages=languages, invalid=invalid, counts=counts):
        grouped.setdefault((pair.source_lang, pair.target_lang), []).append((pair.source, pair.target))
    counts["invalid"] += invalid.count
    return grouped


def iter_hub_translation_pairs(
    dataset_name: str,
    languages: tuple[str, str],
    config: str | None = None,
    split: str = "train",
    column: str = "translation",
) -> Iterator[ParallelPair]:
    """Stream pairs from a hub dataset with a `translation` dict column (WMT/OPUS layout).

    Uses `datasets.load_dataset(..., streaming=True)`, so nothing is downloaded up front. The config
    defaults to `"{lang_a}-{lang_b}"` as in the WMT datasets.
    """
    from datasets import load_dataset

    config = config or f"{languages[0]}-{languages[1]}"
    stream = load_dataset(dataset_name, config, split=split, streaming=True)
    for index, row in enumerate(stream):
        fields = row.get(column)
        if not isinstance(fields, dict):
            raise DataFormatError(
                f"{dataset_name} ({config}, {split})",
                f"row {index} has no dict column {column!r} (columns: {', '.join(row)})",
                hint="pass the name of the translation column",
            )
        keys = [_find(code, fields) for code in languages]
        if None in keys:
            raise DataFormatError(
                f"{dataset_name} ({config}, {split})",
                f"row {index}: the {column!r} column has keys {list(fields)}, not {list(languages)}",
                hint="ask for the languages the dataset has",
            )
        source, target = (fields[keys[0]] or "").strip(), (fields[keys[1]] or "").strip()
        if source and target:
            yield ParallelPair(keys[0], keys[1], source, target, index)
