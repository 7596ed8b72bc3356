"""Multilingual instruction sources aligned by id: Bactrian-X (local folder or hub) and a user's own file.

Every source yields `InstructionItem`s of one language at a time, in file order and without holding the
file in memory, so a build can join languages by id while holding only one language (see
`instruction_rows.iter_aligned_items`).

- `LocalBactrianX(directory)`: one file per language as in the hub repository once un-gzipped:
  `<lang>.json` (a JSON array of objects with `instruction`, `input`, `id`, `output`); `<lang>.json.gz`,
  `<lang>.jsonl` and `<lang>.jsonl.gz` are accepted too.
- `HubBactrianX()`: `MBZUAI/Bactrian-X` from the hub, one language file at a time, read with `streaming=True`
  through `datasets`' `json` builder on the repository's own `data/<lang>.json.gz` (its loading script is
  refused by `datasets` >= 4; `BACTRIAN_X_FILES`); another repository id is loaded with `load_dataset(id, lang)`.
- `InstructionFile(path, language_column=...)`: one JSON/JSONL/CSV/TSV file holding every language, one
  row per (item, language), aligned by an id column (read once per language).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xling_align.data.parallel import same_language
from xling_align.data.readers import (
    SKIP_HINT,
    DataFormatError,
    InvalidRecords,
    iter_delimited,
    iter_json_records,
    text_format,
)
from xling_align.evaluation.benchmark_table import RepositoryFiles
from xling_align.languages import is_known, normalize_code

BACTRIAN_X_HUB_NAME = "MBZUAI/Bactrian-X"
# The hub repository has a loading script (Bactrian-X.py), refused by datasets >= 4: its files are read directly
# (xling_align.data.hub_data). Each data/<lang>.json.gz is one JSON array of objects with instruction, input, id and
# output (strings); the script gave one split, `train`.
BACTRIAN_X_FILES = RepositoryFiles(
    script="Bactrian-X.py",
    builder="json",
    pattern="data/{config}.json.gz",
    splits=("train",),
    columns=("instruction", "input", "id", "output"),
)
_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class InstructionItem:
    """One instruction in one language.

    Args:
        id: the id shared by the translations of this item.
        instruction: the instruction text.
        input: optional context ("" when absent).
        output: the answer.
        line: where it starts in its file (row index for hub data).
    """

    id: str
    instruction: str
    input: str
    output: str
    line: int


@dataclass(frozen=True)
class ItemFields:
    """Names of the fields of an instruction record (Bactrian-X names by default)."""

    id: str = "id"
    instruction: str = "instruction"
    input: str = "input"
    output: str = "output"


def parse_item(
    record: dict, origin: str, line: int, fields: ItemFields, invalid: InvalidRecords, counts: Counter
) -> InstructionItem | None:
    """Validate one record; None when it is skipped (malformed records go through `invalid`).

    Missing `id`/`instruction`/`output` or non-string values are malformed; a missing `input` means "".
    Empty instruction or output: skipped and counted as `empty`.
    """
    missing = [name for name in (fields.id, fields.instruction, fields.output) if name not in record]
    if missing:
        invalid.handle(
            DataFormatError(origin, f"missing field(s) {missing} (has {sorted(record)})", line, hint=SKIP_HINT)
        )
        return None
    item_id = record[fields.id]
    values = [record[fields.instruction], record.get(fields.input) or "", record[fields.output]]
    if not isinstance(item_id, (str, int)) or isinstance(item_id, bool) or not all(isinstance(v, str) for v in values):
        invalid.handle(
            DataFormatError(
                origin, "id must be a string or integer and instruction/input/output strings", line, hint=SKIP_HINT
            )
        )
        return None
    instruction, input_text, output = (value.strip() for value in values)
    if not instruction or not output:
        counts["empty"] += 1
        return None
    return InstructionItem(str(item_id), instruction, input_text, output, line)


class LocalBactrianX:
    """A folder with one Bactrian-X file per language.

    Args:
        directory: the folder.
        fields: record field names.
    """

    def __init__(self, directory: str | Path, fields: ItemFields = ItemFields()):
        self.directory = Path(directory)
        self.fields = fields
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory}: not a folder (give the folder holding <lang>.json files)")

    def path_for(self, language: str) -> Path:
        """The file of `language` (`<code>.json[l][.gz]`, the code as given or its canonical form)."""
        names = [language] + ([normalize_code(language)] if is_known(language) else [])
        for name in dict.fromkeys(names):
            for suffix in _SUFFIXES:
                candidate = self.directory / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
        present = sorted(p.name for p in self.directory.iterdir() if p.name.endswith(_SUFFIXES))
        raise FileNotFoundError(
            f"{self.directory}: no file for language {language!r} (looked for {language}.json, .json.gz, .jsonl, "
            f".jsonl.gz); files present: {', '.join(present) or 'none'}"
        )

    def iter_items(self, language: str, invalid: InvalidRecords, counts: Counter) -> Iterator[InstructionItem]:
        path = self.path_for(language)
        for line, record in iter_json_records(path, invalid):
            item = parse_item(record, str(path), line, self.fields, invalid, counts)
            if item is not None:
                yield item


class HubBactrianX:
    """Bactrian-X (or a dataset with the same layout) from the Hugging Face hub, one config per language.

    Args:
        name: hub dataset id.
        split: split to read.
        fields: record field names.
        base: where the repository's files are (default `hf://datasets/<name>`; tests give a local folder).
    """

    def __init__(
        self,
        name: str = BACTRIAN_X_HUB_NAME,
        split: str = "train",
        fields: ItemFields = ItemFields(),
        base: str | None = None,
    ):
        self.name, self.split, self.fields, self.base = name, split, fields, base

    def iter_items(self, language: str, invalid: InvalidRecords, counts: Counter) -> Iterator[InstructionItem]:
        from xling_align.data.hub_data import load_hub_dataset

        offline = (
            f"Without the hub, download data/{language}.json.gz of {self.name} into a folder and build from "
            f"it: `xling-align data build --input-dir FOLDER` (`xling-align reproduce --data_input FOLDER`)."
        )
        stream = load_hub_dataset(self.name, language, self.split, offline, base=self.base, streaming=True)
        origin = f"{self.name} (config {language}, split {self.split})"
        for index, record in enumerate(stream):
            item = parse_item(dict(record), origin, index, self.fields, invalid, counts)
            if item is not None:
                yield item


class InstructionFile:
    """One file holding an instruction set in several languages, aligned by an id column.

    Args:
        path: JSON/JSONL/CSV/TSV file (optionally .gz); CSV/TSV need a header row.
        language_column: the column holding each row's language code.
        fields: record field names (id, instruction, input, output).
    """

    def __init__(self, path: str | Path, language_column: str = "language", fields: ItemFields = ItemFields()):
        self.path = Path(path)
        self.language_column = language_column
        self.fields = fields
        self._passes = 0
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: instruction file not found")

    def _records(self, invalid: InvalidRecords) -> Iterator[tuple[int, dict]]:
        kind = text_format(self.path)
        if kind == "json":
            yield from iter_json_records(self.path, invalid)
            return
        rows = iter_delimited(self.path, "\t" if kind == "tsv" else ",")
        first = next(rows, None)
        if first is None:
            return
        header = [name.strip() for name in first[1]]
        for line, values in rows:
            if len(values) != len(header):
                invalid.handle(
                    DataFormatError(
                        self.path,
                        f"expected {len(header)} columns as in the header, found {len(values)}",
                        line,
                        hint=SKIP_HINT,
                    )
                )
                continue
            yield line, dict(zip(header, values))

    def iter_items(self, language: str, invalid: InvalidRecords, counts: Counter) -> Iterator[InstructionItem]:
        # the file is read once per language: file-level problems are reported on the first pass only
        first_pass = not self._passes
        self._passes += 1
        reader_invalid = invalid if first_pass else InvalidRecords(skip=True)
        for line, record in self._records(reader_invalid):
            code = record.get(self.language_column)
            if not isinstance(code, str):
                if first_pass:
                    invalid.handle(
                        DataFormatError(
                            self.path,
                            f"missing or non-string language column {self.language_column!r}",
                            line,
                            hint=SKIP_HINT,
                        )
                    )
                continue
            if same_language(code.strip(), language):
                item = parse_item(record, str(self.path), line, self.fields, invalid, counts)
                if item is not None:
                    yield item
