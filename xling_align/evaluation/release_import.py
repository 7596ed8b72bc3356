"""Benchmark files as their authors release them, turned into the local layout the `xling_*` tasks read.

`xling-align export-data --from-release DIR --output OUT` reads the release files under DIR and writes
`OUT/<benchmark>/<lang>/<split>.jsonl` with the hub's column names, types and split names (what
`datasets.load_dataset` gives for the same benchmark), so the tasks run on them with `XLING_DATA_DIR=OUT`.

Release layouts read (DIR may be the release's own folder, the folder above it, or a folder holding
`pawsx/`, `xcopa/`, ... as `../shared/data` does):

| benchmark | release files | splits written |
|---|---|---|
| PAWS-X | `x-final/<lang>/{dev_2k,test_2k}.tsv`, `translated_train.tsv` (`en`: `train.tsv`) | validation, test, train |
| XCOPA | `data/<lang>/{val,test}.<lang>.jsonl` | validation, test |
| XNLI | `XNLI-1.0/xnli.{dev,test}.tsv` (every language); `XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv` | all 3 |
| XStoryCloze | `spring2016.val.<lang>.tsv.split_20_80_{train,eval}.tsv` | train, eval |

What each reader does to the fields is what the hub's loading script did (PAWS-X: tab-separated without quoting,
`id` and `label` integers; XNLI: `sentence1`/`sentence2` are `premise`/`hypothesis`, `gold_label` names become
0/1/2, MT training labels `contradictory` are `contradiction`; XStoryCloze: eight tab-separated columns by
position, header skipped, `answer_right_ending` an integer). Every file is checked as it is read: its encoding,
header, number of fields and label values; an error names the file, the line, what is wrong and what to do.
PAWS-X's machine-translated training files hold a few rows without a valid label (the hub sets them to -1):
they are left out of `train`, with one line saying how many.

XWinograd (whose original release is one TSV of token lists, not documented well enough here to convert) and
Belebele are not read: use `xling-align export-data` from the hub, or write their files by hand.

Example:
    >>> from xling_align.evaluation.release_import import find_release_files
    >>> find_release_files("../shared/data", ["pawsx"], ["de"])  # doctest: +SKIP
    [ReleaseFile(benchmark='pawsx', lang='de', split='validation', path=...), ...]
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xling_align.data.readers import DataFormatError, iter_delimited, iter_jsonl, iter_lines
from xling_align.errors import XlingAlignError
from xling_align.evaluation.benchmark_table import SCRIPT_REPOSITORIES, benchmark

RELEASE_BENCHMARKS = ("pawsx", "xcopa", "xnli", "xstorycloze")


class ReleaseFormatError(XlingAlignError, ValueError):
    """A release file that does not read as its release documents it; the message names file, line and fix."""


@dataclass(frozen=True)
class ReleaseFile:
    """One release file and the local split it becomes (`path` may hold several languages: XNLI)."""

    benchmark: str
    lang: str
    split: str
    path: Path


# ------------------------------------------------------------------------------------------ finding files
def _folders(root: Path, names: tuple[str, ...]) -> list[Path]:
    """`root` and the folders below it named in `names` (one or two levels), those that exist."""
    found = [root] + [root / name for name in names] + [root / a / b for a in names for b in names]
    return [folder for folder in dict.fromkeys(found) if folder.is_dir()]


def _pawsx_files(root: Path) -> Iterator[ReleaseFile]:
    for base in _folders(root, ("pawsx", "paws-x", "x-final")):
        for lang in benchmark("pawsx").languages:
            folder = base / lang
            names = {
                "dev_2k.tsv": "validation",
                "test_2k.tsv": "test",
                ("train.tsv" if lang == "en" else "translated_train.tsv"): "train",
            }
            for name, split in names.items():
                if (folder / name).is_file():
                    yield ReleaseFile("pawsx", lang, split, folder / name)


def _xcopa_files(root: Path) -> Iterator[ReleaseFile]:
    for base in _folders(root, ("xcopa", "data")):
        if base.name not in ("xcopa", "data"):
            continue  # a language folder at the top would be PAWS-X's as much as XCOPA's
        for lang in benchmark("xcopa").languages:
            for name, split in ((f"val.{lang}.jsonl", "validation"), (f"test.{lang}.jsonl", "test")):
                if (base / lang / name).is_file():
                    yield ReleaseFile("xcopa", lang, split, base / lang / name)


def _xnli_files(root: Path) -> Iterator[ReleaseFile]:
    for base in _folders(root, ("xnli", "XNLI-1.0")):
        for name, split in (("xnli.dev.tsv", "validation"), ("xnli.test.tsv", "test")):
            if (base / name).is_file():
                yield ReleaseFile("xnli", "*", split, base / name)  # every language in one file
    for base in _folders(root, ("xnli", "XNLI-MT-1.0", "multinli")):
        for lang in benchmark("xnli").languages:
            if (base / f"multinli.train.{lang}.tsv").is_file():
                yield ReleaseFile("xnli", lang, "train", base / f"multinli.train.{lang}.tsv")


def _xstorycloze_files(root: Path) -> Iterator[ReleaseFile]:
    for base in _folders(root, ("xstorycloze", "xstory_cloze")):
        for lang in benchmark("xstorycloze").languages:
            for split in ("train", "eval"):
                path = base / f"spring2016.val.{lang}.tsv.split_20_80_{split}.tsv"
                if path.is_file():
                    yield ReleaseFile("xstorycloze", lang, split, path)


_FINDERS = {"pawsx": _pawsx_files, "xcopa": _xcopa_files, "xnli": _xnli_files, "xstorycloze": _xstorycloze_files}


def find_release_files(root: str | Path, benchmarks: list[str], languages: list[str] | None) -> list[ReleaseFile]:
    """The release files under `root` of `benchmarks` (those the importer reads), for `languages` (None: all).

    Raises `ReleaseFormatError` when `root` is not a folder or holds none of them.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ReleaseFormatError(f"--from-release {root}: not a folder. Give the folder you unpacked the release into.")
    wanted = [name for name in benchmarks if name in _FINDERS]
    found = list(dict.fromkeys(file for name in wanted for file in _FINDERS[name](root)))
    if languages is not None:
        found = [file for file in found if file.lang == "*" or file.lang in languages]
    # one file per (benchmark, language, split): the first layout that has it
    unique: dict[tuple[str, str, str], ReleaseFile] = {}
    for file in found:
        unique.setdefault((file.benchmark, file.lang, file.split), file)
    if not unique:
        raise ReleaseFormatError(
            f"--from-release {root}: no release files of {', '.join(wanted) or 'the benchmarks asked for'} found. "
            "Expected e.g. x-final/<lang>/dev_2k.tsv (PAWS-X), data/<lang>/test.<lang>.jsonl (XCOPA), "
            "XNLI-1.0/xnli.test.tsv (XNLI), spring2016.val.<lang>.tsv.split_20_80_eval.tsv (XStoryCloze), "
            f"or pawsx/<lang>/..., xcopa/<lang>/... below it. The importer reads {', '.join(RELEASE_BENCHMARKS)}."
        )
    return list(unique.values())


# ------------------------------------------------------------------------------------------ reading files
def _error(path: Path, line: int | None, problem: str, fix: str) -> ReleaseFormatError:
    where = f"{path}" + (f", line {line}" if line is not None else "")
    return ReleaseFormatError(f"{where}: {problem}. {fix}")


def _tsv_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """`(line, fields)` of a tab-separated file read without quoting (quotes are text), blank lines skipped."""
    try:
        yield from iter_delimited(path, "\t")
    except DataFormatError as error:
        raise _error(
            path, error.line, error.problem, "Convert it to UTF-8 (the release's encoding) and import it again."
        ) from None


def _header(path: Path, lines: Iterator[tuple[int, list[str]]], needed: tuple[str, ...]) -> list[str]:
    first = next(lines, None)
    if first is None:
        raise _error(path, None, "the file is empty", "Unpack the release file again.")
    header = [name.strip().lstrip("\ufeff") for name in first[1]]
    missing = [name for name in needed if name not in header]
    if missing:
        raise _error(
            path,
            first[0],
            f"the header lacks {', '.join(missing)} (it has: {', '.join(header)})",
            f"This is not the release's file; its header names {', '.join(needed)}.",
        )
    return header


def _integer(text: str, allowed: tuple[int, ...] | None = None) -> int | None:
    """`text` as an integer (one of `allowed`), or None."""
    value = text.strip()
    if value.lstrip("-").isdigit() and (allowed is None or int(value) in allowed):
        return int(value)
    return None


def read_pawsx(file: ReleaseFile) -> tuple[list[dict], str | None]:
    """PAWS-X rows `id, sentence1, sentence2, label` (integers as the hub), and a note on rows left out."""
    lines = _tsv_lines(file.path)
    header = _header(file.path, lines, ("id", "sentence1", "sentence2", "label"))
    rows, unlabelled = [], []
    for line, fields in lines:
        if len(fields) != len(header):
            if file.split == "train":
                unlabelled.append(line)
                continue
            raise _error(
                file.path,
                line,
                f"{len(fields)} tab-separated fields, the header has {len(header)}",
                "Each line is id, sentence1, sentence2, label separated by tabs; was the file edited?",
            )
        record = dict(zip(header, fields))
        item_id = _integer(record["id"])
        label = _integer(record["label"], (0, 1))
        if item_id is None:
            raise _error(file.path, line, f"id {record['id']!r} is not an integer", "PAWS-X ids are integers.")
        if label is None:
            if file.split == "train":  # machine-translated training pairs: a few have no label (the hub: -1)
                unlabelled.append(line)
                continue
            raise _error(
                file.path,
                line,
                f"label {record['label']!r} is not 0 or 1",
                "PAWS-X labels are 0 (not a paraphrase) or 1 (paraphrase).",
            )
        rows.append({"id": item_id, "sentence1": record["sentence1"], "sentence2": record["sentence2"], "label": label})
    note = None
    if unlabelled:
        note = (
            f"{len(unlabelled)} row(s) without a valid label or with a wrong number of fields left out (first "
            f"at line {unlabelled[0]}; the hub gives them the label -1, which no task can score)"
        )
    return rows, note


_XCOPA_COLUMNS = ("premise", "choice1", "choice2", "question", "label", "idx", "changed")


def read_xcopa(file: ReleaseFile) -> tuple[list[dict], str | None]:
    """XCOPA rows with the release's (= the hub's) fields: premise, choice1, choice2, question, label, idx, changed."""
    rows = []
    try:
        records = list(iter_jsonl(file.path))
    except DataFormatError as error:
        raise _error(
            file.path,
            error.line,
            error.problem,
            "Each line of an XCOPA file is one JSON object; unpack the release file again.",
        ) from None
    for line, record in records:
        missing = [column for column in _XCOPA_COLUMNS if column not in record]
        if missing:
            raise _error(
                file.path,
                line,
                f"missing field(s) {', '.join(missing)}",
                f"XCOPA rows have {', '.join(_XCOPA_COLUMNS)}.",
            )
        label = record["label"]
        if isinstance(label, bool) or label not in (0, 1):
            raise _error(
                file.path, line, f"label {label!r} is not 0 or 1", "XCOPA labels are 0 (choice1) or 1 (choice2)."
            )
        if record["question"] not in ("cause", "effect"):
            raise _error(
                file.path,
                line,
                f"question {record['question']!r} is not 'cause' or 'effect'",
                "Fix that row (XCOPA asks for a cause or an effect).",
            )
        if not all(isinstance(record[column], str) for column in ("premise", "choice1", "choice2")):
            raise _error(file.path, line, "premise, choice1 and choice2 must be text", "Fix that row.")
        if isinstance(record["idx"], bool) or not isinstance(record["idx"], int):
            raise _error(file.path, line, f"idx {record['idx']!r} is not an integer", "Fix that row.")
        rows.append({column: record[column] for column in _XCOPA_COLUMNS} | {"changed": bool(record["changed"])})
    return rows, None


_XNLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2, "contradictory": 2}


def read_xnli(file: ReleaseFile) -> dict[str, list[dict]]:
    """XNLI rows `premise, hypothesis, label` by language (dev/test files hold every language)."""
    lines = _tsv_lines(file.path)
    train = file.split == "train"
    needed = ("premise", "hypo", "label") if train else ("language", "gold_label", "sentence1", "sentence2")
    header = _header(file.path, lines, needed)
    by_lang: dict[str, list[dict]] = {}
    for line, fields in lines:
        if len(fields) != len(header):
            raise _error(
                file.path,
                line,
                f"{len(fields)} tab-separated fields, the header has {len(header)}",
                "Was the file edited? XNLI's files are tab-separated without quoting.",
            )
        record = dict(zip(header, fields))
        gold = record["label" if train else "gold_label"].strip()
        if gold not in _XNLI_LABELS:
            raise _error(
                file.path, line, f"label {gold!r} is not entailment, neutral or contradiction", "Fix that row."
            )
        lang = file.lang if train else record["language"].strip()
        by_lang.setdefault(lang, []).append(
            {
                "premise": record["premise" if train else "sentence1"],
                "hypothesis": record["hypo" if train else "sentence2"],
                "label": _XNLI_LABELS[gold],
            }
        )
    return by_lang


# the hub's fields in the order its loading script read them by position: the same rows as the hub's
XSTORYCLOZE_COLUMNS = SCRIPT_REPOSITORIES[benchmark("xstorycloze").hub_path].columns


def read_xstorycloze(file: ReleaseFile) -> tuple[list[dict], str | None]:
    """XStoryCloze rows: eight tab-separated columns by position (the header, named either way, is skipped)."""
    try:
        text_lines = [text for _, text in iter_lines(file.path)]
    except DataFormatError as error:
        raise _error(file.path, error.line, error.problem, "Convert it to UTF-8 and import it again.") from None
    reader = csv.reader(text_lines, delimiter="\t", quotechar='"', skipinitialspace=True)
    rows = []
    for index, fields in enumerate(reader):
        line = reader.line_num
        if index == 0 or not fields:
            continue  # the header (InputStoryid, ... in the release; story_id, ... on the hub)
        if len(fields) != len(XSTORYCLOZE_COLUMNS):
            raise _error(
                file.path,
                line,
                f"{len(fields)} fields, XStoryCloze rows have 8",
                "Each line is the story id, four sentences, two endings and the right ending (1 or 2).",
            )
        record = dict(zip(XSTORYCLOZE_COLUMNS, fields))
        answer = _integer(record["answer_right_ending"], (1, 2))
        if answer is None:
            raise _error(
                file.path, line, f"the right ending {record['answer_right_ending']!r} is not 1 or 2", "Fix that row."
            )
        rows.append(record | {"answer_right_ending": answer})
    return rows, None


# ------------------------------------------------------------------------------------------ writing
def write_jsonl(path: Path, rows) -> None:
    """Rows as JSON lines, written atomically (also `export-data`'s writer for hub splits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".jsonl.partial")  # a crash never leaves a truncated file behind
    with partial.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(path)


def import_release(
    root: str | Path,
    out: str | Path,
    benchmarks: list[str],
    languages: list[str] | None,
    overwrite: bool = False,
    report=print,
    dev_as_demonstrations: bool = False,
) -> list[Path]:
    """Read every release file under `root` (`find_release_files`) and write the local layout under `out`.

    `dev_as_demonstrations`: where the release files found have no demonstration split of a language (PAWS-X's
    training files are a separate, large download), the dev split is written under that name too, so the
    `xling_*` tasks can run few-shot (the data checks drop dev rows that are also test items, with a warning).
    Returns the files written; `report(line)` receives one line per file (written, kept, rows left out).
    """
    from xling_align.lm_eval_tasks.data_loader import local_path

    out = Path(out).expanduser()
    written = []
    for file in find_release_files(root, benchmarks, languages):
        if file.benchmark == "xnli" and file.split != "train":
            by_lang = read_xnli(file)
            tables = {
                lang: (rows, None)
                for lang, rows in by_lang.items()
                if lang in benchmark("xnli").languages and (languages is None or lang in languages)
            }
        elif file.benchmark == "xnli":
            tables = {file.lang: (read_xnli(file)[file.lang], None)}
        else:
            reader = {"pawsx": read_pawsx, "xcopa": read_xcopa, "xstorycloze": read_xstorycloze}[file.benchmark]
            tables = {file.lang: reader(file)}
        for lang, (rows, note) in tables.items():
            path = local_path(out, file.benchmark, lang, file.split)
            if path.exists() and not overwrite:
                report(f"kept {path} (exists; --overwrite to replace)")
                continue
            write_jsonl(path, rows)
            written.append(path)
            report(f"wrote {path} ({len(rows)} rows from {file.path})" + (f"; {note}" if note else ""))
            table = benchmark(file.benchmark)
            demos = table.demonstrations(lang)
            if (
                dev_as_demonstrations
                and file.split == table.dev_split
                and demos is not None
                and demos.split != file.split
                and (lang, "demonstrations") not in table.overrides
            ):
                demo_path = local_path(out, file.benchmark, lang, demos.split)
                if not _release_has(root, file.benchmark, lang, demos.split) and (overwrite or not demo_path.exists()):
                    write_jsonl(demo_path, rows)
                    written.append(demo_path)
                    report(
                        f"wrote {demo_path} (the {file.split} rows again, as the demonstration split: "
                        "--dev-as-demonstrations)"
                    )
    return written


def _release_has(root: str | Path, name: str, lang: str, split: str) -> bool:
    return any(file.lang in (lang, "*") and file.split == split for file in _FINDERS[name](Path(root).expanduser()))
