"""Low-level readers shared by every source: UTF-8 lines with positions, JSONL, and JSON arrays read
incrementally (a Bactrian-X language file is one JSON array of ~67k objects; we never parse it whole).

Every problem is raised as `DataFormatError`, which names the file, the line (or byte offset for
encoding errors), what is wrong and what to do. `InvalidRecords` decides whether a malformed record
stops the build or is skipped and counted (`--skip-invalid`).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

from xling_align.errors import XlingAlignError

_CHUNK_BYTES = 1 << 20  # bytes read at a time from a JSON array
_ITEM_BOUNDARY = re.compile(r"\}\s*,\s*\{")  # where the next object of a JSON array may start


class DataFormatError(XlingAlignError, ValueError):
    """Malformed input: the message says which file, where, what is wrong and what to do.

    Args:
        path: the input file.
        problem: what is wrong.
        line: 1-based line number, when known.
        byte_offset: 0-based byte offset (encoding errors), when known.
        hint: what the user can do about it.
    """

    def __init__(self, path, problem: str, line: int | None = None, byte_offset: int | None = None, hint: str = ""):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.byte_offset = byte_offset
        self.hint = hint
        where = self.path
        if line is not None:
            where += f", line {line}"
        if byte_offset is not None:
            where += f", byte offset {byte_offset}"
        message = f"{where}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def with_hint(self, hint: str) -> DataFormatError:
        """The same error with another hint: a command whose options differ says how to fix it with them."""
        return DataFormatError(self.path, self.problem, self.line, self.byte_offset, hint)


class InvalidRecords:
    """Policy for malformed records: raise (default) or skip and count (`--skip-invalid`).

    Args:
        skip: True to skip malformed records instead of raising.
        keep_examples: how many skipped-record messages to keep for the report.
    """

    def __init__(self, skip: bool = False, keep_examples: int = 5):
        self.skip = skip
        self.count = 0
        self.examples: list[str] = []
        self._keep = keep_examples

    def handle(self, error: DataFormatError) -> None:
        """Raise `error`, or count it when skipping."""
        if not self.skip:
            raise error
        self.count += 1
        if len(self.examples) < self._keep:
            self.examples.append(str(error))


# the hint of every record that `InvalidRecords(skip=True)` may skip; a command without `--skip-invalid`
# replaces it (`DataFormatError.with_hint`)
SKIP_HINT = "fix the record, or pass --skip-invalid (skip_invalid=True) to skip malformed records and count them"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _encoding_error(path: Path, byte_offset: int, line: int | None = None) -> DataFormatError:
    return DataFormatError(
        path,
        "the file is not valid UTF-8",
        line=line,
        byte_offset=byte_offset,
        hint="convert it to UTF-8 first, e.g. `iconv -f <encoding> -t UTF-8`; offsets of .gz files count "
        "decompressed bytes",
    )


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, text)` for each line of a UTF-8 text file (`.gz` is decompressed).

    The line keeps its line ending; a leading byte-order mark is dropped. Invalid UTF-8 raises
    `DataFormatError` with the byte offset of the first bad byte.
    """
    path = Path(path)
    offset = 0
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _encoding_error(path, offset + error.start, number) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            offset += len(raw)
            yield number, text


def _iter_text_chunks(path: Path) -> Iterator[str]:
    """Decoded chunks of a file; invalid UTF-8 raises with the absolute byte offset."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = 0  # bytes handed to the decoder so far
    with _open_binary(path) as handle:
        first = True
        while True:
            raw = handle.read(_CHUNK_BYTES)  # read at call time, so tests can shrink it
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as error:
                raise _encoding_error(path, consumed - pending + error.start) from None
            consumed += len(raw)
            if first and text.startswith("\ufeff"):
                text = text[1:]
            first = first and not text
            if text:
                yield text
            if not raw:
                return


def check_utf8(path: str | Path) -> None:
    """Read the whole file once and raise `DataFormatError` (with the byte offset) if it is not valid UTF-8.

    For files that another library parses (`datasets` decodes lazily and fails later, deep inside a run).
    """
    for _ in _iter_text_chunks(Path(path)):
        pass


def iter_jsonl(path: str | Path, invalid: InvalidRecords | None = None) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, object)` for each non-blank line of a JSON-lines file.

    A line that is not a JSON object goes to `invalid` (raise by default).
    """
    invalid = invalid or InvalidRecords()
    for number, text in iter_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text.strip())
        except json.JSONDecodeError as error:
            invalid.handle(
                DataFormatError(path, f"invalid JSON ({error.msg}, column {error.colno})", number, hint=SKIP_HINT)
            )
            continue
        if not isinstance(record, dict):
            invalid.handle(
                DataFormatError(path, f"expected a JSON object, got {type(record).__name__}", number, hint=SKIP_HINT)
            )
            continue
        yield number, record


class _ArrayCursor:
    """A window over a decoded file: the unread text, the position in it, and the line of that position."""

    def __init__(self, path: Path):
        self._chunks = _iter_text_chunks(path)
        self.buffer, self.pos, self.line = "", 0, 1

    def fill(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at end of file."""
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self.buffer = self.buffer[self.pos :] + chunk
        self.pos = 0
        return True

    def advance(self, new_pos: int) -> None:
        self.line += self.buffer.count("\n", self.pos, new_pos)
        self.pos = new_pos

    def peek(self) -> str:
        """Skip whitespace and return the next character without consuming it ('' at end of file)."""
        while True:
            index, size = self.pos, len(self.buffer)
            while index < size and self.buffer[index] in " \t\r\n":
                index += 1
            self.advance(index)
            if self.pos < size:
                return self.buffer[self.pos]
            if not self.fill():
                return ""

    def resync(self) -> bool:
        """Move to the next element after a malformed one (next `}, {`); False at end of file."""
        while True:
            match = _ITEM_BOUNDARY.search(self.buffer, self.pos)
            if match:
                self.advance(match.end() - 1)
                return True
            if not self.fill():
                return False


def iter_json_array(path: str | Path, invalid: InvalidRecords | None = None) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, object)` for each element of a JSON array, reading the file incrementally.

    Memory stays at about one chunk (1 MiB) plus one element, whatever the file size. The line
    number is where the element starts. A malformed element goes to `invalid`; when skipping, reading
    resumes at the next `}, {` boundary (best effort: Bactrian-X elements are flat objects).
    """
    path = Path(path)
    invalid = invalid or InvalidRecords()
    decoder = json.JSONDecoder()
    cursor = _ArrayCursor(path)
    first = cursor.peek()
    if first != "[":
        raise DataFormatError(
            path,
            "expected a JSON array of objects" + (f", found {first!r}" if first else ", found an empty file"),
            cursor.line,
            hint="a Bactrian-X file is `[{...}, {...}]`; JSON lines need the .jsonl suffix",
        )
    cursor.advance(cursor.pos + 1)
    after_element = False  # True once an element was read: then ',' or ']' must follow
    while True:
        char = cursor.peek()
        if char == "":
            raise DataFormatError(
                path,
                "the JSON array is not closed (file truncated?)",
                cursor.line,
                hint="re-create or re-download the file",
            )
        if char == "]":
            return
        if after_element:
            if char == ",":
                cursor.advance(cursor.pos + 1)
                after_element = False
                continue
            invalid.handle(
                DataFormatError(
                    path, f"expected ',' or ']' after an array element, found {char!r}", cursor.line, hint=SKIP_HINT
                )
            )
            if not cursor.resync():
                return
            after_element = False
            continue
        start_line = cursor.line
        try:
            record, end = _decode_element(decoder, cursor)
        except json.JSONDecodeError as error:
            bad_line = start_line + cursor.buffer.count("\n", cursor.pos, error.pos)
            invalid.handle(
                DataFormatError(path, f"invalid JSON in an array element ({error.msg})", bad_line, hint=SKIP_HINT)
            )
            cursor.advance(max(cursor.pos, min(error.pos, len(cursor.buffer)) - 1))
            if not cursor.resync():
                return
            continue
        cursor.advance(end)
        after_element = True
        if isinstance(record, dict):
            yield start_line, record
        else:
            invalid.handle(
                DataFormatError(
                    path,
                    f"expected a JSON object as array element, got {type(record).__name__}",
                    start_line,
                    hint=SKIP_HINT,
                )
            )


def _decode_element(decoder: json.JSONDecoder, cursor: _ArrayCursor):
    """Decode the element at the cursor, reading more text while it is cut by the end of the buffer."""
    while True:
        try:
            return decoder.raw_decode(cursor.buffer, cursor.pos)
        except json.JSONDecodeError as error:
            # an element cut by the chunk boundary fails near the buffer's end, or leaves a string open
            truncated = error.pos >= len(cursor.buffer) - 16 or error.msg.startswith("Unterminated string")
            if truncated and cursor.fill():
                continue
            raise


def detect_json_layout(path: str | Path) -> str:
    """'array' when the first non-blank character of a JSON file is '[', else 'lines'."""
    with _open_binary(Path(path)) as handle:
        head = handle.read(4096)
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return "array" if text.startswith("[") else "lines"


def iter_json_records(path: str | Path, invalid: InvalidRecords | None = None) -> Iterator[tuple[int, dict]]:
    """Objects of a `.json` / `.jsonl` file (optionally `.gz`): a JSON array or JSON lines, whatever the suffix
    says (a JSON-lines record is an object, so a file that starts with `[` is an array)."""
    if detect_json_layout(path) == "lines":
        return iter_jsonl(path, invalid)
    return iter_json_array(path, invalid)


def iter_delimited(path: str | Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield `(line_number, fields)` of a TSV (no quoting: fields may contain quotes) or CSV file.

    The first yielded row is the header. Line numbers are those where each record starts.
    """
    path = Path(path)
    if delimiter == "\t":
        for number, text in iter_lines(path):
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, text.split("\t")
        return
    lines = (text for _, text in iter_lines(path))
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    try:
        for fields in reader:
            if any(field.strip() for field in fields):
                yield start, fields
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataFormatError(
            path, f"malformed CSV ({error})", reader.line_num, hint="check the quoting of that record"
        ) from None


def mixed_type_columns(records) -> dict[str, list[str]]:
    """Columns whose values (None aside) have more than one JSON type: Arrow cannot store them as one column.

    >>> mixed_type_columns([{"label": 1, "id": "a"}, {"label": "1", "id": "b"}, {"label": None, "id": "c"}])
    {'label': ['int', 'str']}
    """
    types: dict[str, set[str]] = {}
    for record in records:
        for column, value in record.items():
            if value is not None:
                types.setdefault(column, set()).add(type(value).__name__)
    return {column: sorted(kinds) for column, kinds in types.items() if len(kinds) > 1 and kinds != {"int", "float"}}


def text_format(path: str | Path) -> str:
    """'tsv', 'csv' or 'json' from the file name (`.gz` ignored); raises for anything else."""
    name = Path(path).name.lower().removesuffix(".gz")
    for suffix, kind in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "json"), (".json", "json")):
        if name.endswith(suffix):
            return kind
    raise DataFormatError(path, "unknown file type", hint="use .tsv, .csv, .jsonl or .json (optionally .gz)")


__all__ = [
    "SKIP_HINT",
    "DataFormatError",
    "InvalidRecords",
    "check_utf8",
    "detect_json_layout",
    "iter_delimited",
    "iter_json_array",
    "iter_json_records",
    "iter_jsonl",
    "iter_lines",
    "mixed_type_columns",
    "text_format",
]
