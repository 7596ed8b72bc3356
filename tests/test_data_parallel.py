"""Parallel files: TSV/CSV/JSONL layouts, `load_parallel_pairs`, and errors that name file and line."""

import gzip
import json

import pytest

from xling_align.data import DataFormatError, load_parallel_pairs
from xling_align.data.parallel import iter_parallel_file


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_header_names_languages(tmp_path):
    path = write(tmp_path / "p.tsv", 'en\tde\nGood morning.\tGuten Morgen.\n"Quoted\t„Zitiert"\n\n')
    assert load_parallel_pairs(path) == {("en", "de"): [("Good morning.", "Guten Morgen."), ('"Quoted', '„Zitiert"')]}


def test_csv_with_id_column_and_quoted_newline(tmp_path):
    path = write(tmp_path / "p.csv", 'id,en,fr\n1,"Hello, you","Bonjour, toi"\n2,"two\nlines",deux\n')
    assert load_parallel_pairs(path) == {("en", "fr"): [("Hello, you", "Bonjour, toi"), ("two\nlines", "deux")]}


def test_jsonl_layouts_grouped_by_direction(tmp_path):
    rows = [
        {"en": "a", "zh": "甲"},
        {"translation": {"en": "b", "zh": "乙"}},
        {
            "source_lang": "zh",
            "target_lang": "en",
            "source_sentence": "丙",
            "target_sentence": "c",
            "prompt": "",
            "completion": "",
            "kind": "pair",
        },
        {
            "source_lang": "en",
            "target_lang": "zh",
            "source_sentence": "",
            "target_sentence": "",
            "prompt": "p",
            "completion": " q",
            "kind": "instruction",
        },
    ]
    path = write(tmp_path / "p.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    assert load_parallel_pairs(path) == {("en", "zh"): [("a", "甲"), ("b", "乙")], ("zh", "en"): [("丙", "c")]}


def test_gzip_and_empty_sides_skipped(tmp_path):
    path = tmp_path / "p.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("en\tsw\nwater\tmaji\n\tempty\n")
    assert load_parallel_pairs(path) == {("en", "sw"): [("water", "maji")]}


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.tsv", "en\tde\nyes\tja\nonly one column\nno\tnein\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsv, line 3: expected 2 columns"):
        load_parallel_pairs(path)
    assert load_parallel_pairs(path, skip_invalid=True) == {("en", "de"): [("yes", "ja"), ("no", "nein")]}


def test_invalid_json_line_names_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"en": "a", "de": "b"}\n{"en": "a", \n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl, line 2: invalid JSON"):
        load_parallel_pairs(path)


def test_non_utf8_names_byte_offset(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"en\tde\n" + "Grüße\tGrüße\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1\.tsv, line 2, byte offset 8: the file is not valid UTF-8"):
        load_parallel_pairs(path)


def test_ambiguous_header_asks_for_languages(tmp_path):
    path = write(tmp_path / "three.tsv", "en\tde\tfr\na\tb\tc\n")
    with pytest.raises(DataFormatError, match="which two"):
        load_parallel_pairs(path)
    pairs = list(iter_parallel_file(path, languages=("fra_Latn", "en")))
    assert [(p.source_lang, p.target_lang, p.source, p.target) for p in pairs] == [("fr", "en", "c", "a")]


def test_unknown_suffix_is_rejected(tmp_path):
    with pytest.raises(DataFormatError, match="unknown file type"):
        load_parallel_pairs(write(tmp_path / "p.txt", "x"))


def test_user_named_columns_are_labelled_with_languages(tmp_path):
    path = write(tmp_path / "named.csv", "english,german,score\nHello.,Hallo.,0.9\n")
    pairs = list(iter_parallel_file(path, languages=("en", "de"), columns=("english", "german")))
    assert [(p.source_lang, p.target_lang, p.source, p.target, p.line) for p in pairs] == [
        ("en", "de", "Hello.", "Hallo.", 2)
    ]
    with pytest.raises(DataFormatError, match="no column for 'en'"):
        list(iter_parallel_file(path, languages=("en", "de")))
