"""`xling_align.data` builders through the Python API: sampling, templates, cleaning, sources, writers."""

import json
import math

import pytest

from xling_align.data import load_parallel_pairs
from xling_align.data.builders import DataBuildConfig, build_dataset, iter_rows
from xling_align.data.rows import ROW_COLUMNS
from xling_align.data.stats import BuildStats
from xling_align.data.templates import InstructionTemplate, TranslationTemplate
from xling_align.data.writer import save_rows_to_disk, write_jsonl, write_pairs


def make_folder(tmp_path, languages=("en", "de"), n=600, missing=()):
    folder = tmp_path / "bx"
    folder.mkdir()
    for language in languages:
        items = [
            {
                "id": f"q{i}",
                "instruction": f"{language} instruction {i}",
                "input": f"{language} ctx {i}" if i % 3 == 0 else "",
                "output": f"{language} answer {i}",
            }
            for i in range(n)
            if (language, i) not in missing
        ]
        (folder / f"{language}.json").write_text(json.dumps(items), encoding="utf-8")
    return folder


@pytest.mark.parametrize("p", [0.3, 0.8])
def test_fraction_of_cross_rows_is_within_sampling_error(tmp_path, p):
    folder = make_folder(tmp_path)
    rows = list(
        iter_rows(DataBuildConfig(languages=["en", "de"], input_dir=str(folder), cross_probability=p, repeat=2, seed=1))
    )
    instruction_rows = [row for row in rows if row["prompt"]]
    draws = len(instruction_rows)
    assert draws == 600 * 2
    cross = sum(row["source_lang"] != row["target_lang"] for row in instruction_rows) / draws
    assert abs(cross - p) < 4 * math.sqrt(p * (1 - p) / draws)
    english_sources = sum(row["source_lang"] == "en" for row in instruction_rows) / draws
    assert abs(english_sources - 0.5) < 4 * math.sqrt(0.25 / draws)
    # every item and round gives exactly one MCL pair, always cross-lingual
    pairs = [row for row in rows if row["source_sentence"]]
    assert len(pairs) == draws and all(row["source_lang"] != row["target_lang"] for row in pairs)


def test_extreme_probabilities_and_row_contents(tmp_path):
    folder = make_folder(tmp_path, n=20)
    never = list(
        iter_rows(DataBuildConfig(languages=["en", "de"], input_dir=str(folder), cross_probability=0.0, repeat=1))
    )
    assert {row["kind"] for row in never} == {"instruction", "pair"}
    assert all(row["source_lang"] == row["target_lang"] for row in never if row["kind"] == "instruction")
    always = list(
        iter_rows(DataBuildConfig(languages=["en", "de"], input_dir=str(folder), cross_probability=1.0, repeat=1))
    )
    assert len(always) == 20 and {row["kind"] for row in always} == {"instruction+pair"}
    row = next(r for r in always if r["source_sentence"] == "en instruction 3")
    assert row == {
        "prompt": "en instruction 3 en ctx 3 Answer in German:",
        "completion": " de answer 3",
        "source_sentence": "en instruction 3",
        "target_sentence": "de instruction 3",
        "source_lang": "en",
        "target_lang": "de",
        "kind": "instruction+pair",
    }


def test_pivot_mode_joins_ids_and_counts_missing(tmp_path):
    folder = make_folder(tmp_path, languages=("en", "de", "sw"), n=10, missing={("de", 2), ("sw", 5), ("en", 7)})
    stats = BuildStats()
    rows = list(
        iter_rows(DataBuildConfig(languages=["en", "de", "sw"], mode="pivot", input_dir=str(folder), repeat=1), stats)
    )
    assert stats.skipped["missing-in:de"] == 1 and stats.skipped["missing-in:sw"] == 1
    assert stats.skipped["id-not-in-en:de"] == 1 and stats.skipped["id-not-in-en:sw"] == 1
    pair_rows = [row for row in rows if row["source_sentence"]]
    assert len(pair_rows) == 8 + 8
    assert all("en" in (row["source_lang"], row["target_lang"]) for row in pair_rows)
    for row in pair_rows:  # the two sentences are the same item
        assert row["source_sentence"].split()[-1] == row["target_sentence"].split()[-1]


def test_templates_user_format_and_in_language():
    assert InstructionTemplate().render("Q", "", "A", "en", "zh") == ("Q Answer in Chinese:", " A")
    assert InstructionTemplate(answer_in_target_language=True).render("Q", "", "A", "en", "zh")[0] == "Q 用中文回答:"
    custom = InstructionTemplate("Instruction: {instruction}\nInput: {input}\n{answer_in} ({language_code}):")
    assert custom.render("Q", "", "A", "de", "fr")[0] == "Instruction: Q\nInput:\nAnswer in French (fr):"
    with pytest.raises(ValueError, match="unknown field"):
        InstructionTemplate("{instruction} {lang}")
    assert TranslationTemplate("equals").render("Hallo", "Hello", "de", "en") == ("Hallo =", " Hello")


def test_config_rejects_bad_combinations(tmp_path):
    with pytest.raises(ValueError, match="cross_probability"):
        DataBuildConfig(languages=["en", "de"], cross_probability=1.5)
    with pytest.raises(ValueError, match="exactly two"):
        DataBuildConfig(languages=["en", "de", "fr"], source="parallel", input="x.tsv")
    with pytest.raises(ValueError, match="need a tokenizer"):
        DataBuildConfig(languages=["en", "de"], max_tokens=10)
    with pytest.raises(ValueError, match="unknown language code"):
        DataBuildConfig(languages=["en", "qq"])
    assert DataBuildConfig(languages=["en", "qq"], allow_unregistered_languages=True).languages == ["en", "qq"]


def test_duplicates_and_length_filters(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text(
        "en\tde\nHi.\tHallo.\nHi.\tHallo.\nA much longer English sentence.\tEin viel längerer Satz.\n", encoding="utf-8"
    )
    base = dict(languages=["en", "de"], source="parallel", input=str(path), translation_prompts=False)
    assert len(list(iter_rows(DataBuildConfig(**base)))) == 6
    stats = BuildStats()
    assert len(list(iter_rows(DataBuildConfig(**base, remove_duplicates=True), stats))) == 4
    assert stats.skipped["duplicate-row"] == 2
    short = list(iter_rows(DataBuildConfig(**base, max_chars=10)))
    assert {row["source_sentence"] for row in short} == {"Hi.", "Hallo."}
    stats = BuildStats()
    long = list(iter_rows(DataBuildConfig(**base, min_tokens=10, tokenizer="byt5"), stats))  # ByT5: one token per byte
    assert len(long) == 2 and stats.skipped["too-short"] == 4
    assert stats.total_tokens == 2 * (len("A much longer English sentence.") + len("Ein viel längerer Satz.".encode()))


def test_instruction_file_source_aligned_by_id(tmp_path):
    path = tmp_path / "set.csv"
    path.write_text(
        "uid,lang,instruction,input,output\n1,en,Say yes.,,Yes.\n1,fr,Dis oui.,,Oui.\n2,en,Say no.,,No.\n",
        encoding="utf-8",
    )
    config = DataBuildConfig(
        languages=["en", "fr"],
        source="instructions",
        input=str(path),
        id_column="uid",
        language_column="lang",
        cross_probability=1.0,
        repeat=1,
    )
    rows = list(iter_rows(config))
    assert len(rows) == 1 and rows[0]["completion"] in {" Oui.", " Yes."}


def test_hub_sources_through_a_local_stand_in(monkeypatch, tmp_path):
    """Bactrian-X from a folder laid out like its hub repository (script included), WMT through a stand-in."""
    import gzip

    import datasets

    from xling_align.data import hub_data

    bactrian = {
        "en": [{"id": "1", "instruction": "Count to two.", "input": "", "output": "One, two."}],
        "de": [{"id": "1", "instruction": "Zähle bis zwei.", "input": "", "output": "Eins, zwei."}],
    }
    repository = tmp_path / "MBZUAI" / "Bactrian-X"
    (repository / "data").mkdir(parents=True)
    (repository / "Bactrian-X.py").write_text("raise RuntimeError('the loading script ran')\n", encoding="utf-8")
    for lang, records in bactrian.items():
        with gzip.open(repository / "data" / f"{lang}.json.gz", "wt", encoding="utf-8") as handle:
            json.dump(records, handle)
    monkeypatch.setattr(hub_data, "HUB_FILES", str(tmp_path) + "/{repo}")
    wmt = [{"translation": {"de": "Guten Tag.", "en": "Good day."}}]
    calls = []
    real_load_dataset = datasets.load_dataset

    def fake_load_dataset(name, config=None, split=None, streaming=False, **kwargs):
        calls.append((name, config, split, streaming))
        if name in ("json", "csv"):  # datasets' own builders on the repository's files
            return real_load_dataset(name, config, split=split, streaming=streaming, **kwargs)
        assert name != "MBZUAI/Bactrian-X", "the script repository was handed to load_dataset"
        return iter(wmt)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = list(iter_rows(DataBuildConfig(languages=["en", "de"], cross_probability=1.0, repeat=1)))
    assert len(rows) == 1 and rows[0]["kind"] == "instruction+pair"
    pairs = list(iter_rows(DataBuildConfig(languages=["en", "de"], source="parallel", hub_dataset="wmt/wmt14")))
    assert {(row["source_lang"], row["source_sentence"]) for row in pairs} == {
        ("en", "Good day."),
        ("de", "Guten Tag."),
    }
    assert ("wmt/wmt14", "en-de", "train", True) in calls
    assert all(streaming for *_, streaming in calls)


def test_writers_are_atomic_and_readable(tmp_path):
    target = tmp_path / "rows.jsonl"
    target.write_text("old\n", encoding="utf-8")

    def failing_rows():
        yield {"prompt": "a"}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(failing_rows(), target)
    assert target.read_text(encoding="utf-8") == "old\n" and [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]
    folder = make_folder(tmp_path, n=5)
    rows = list(iter_rows(DataBuildConfig(languages=["en", "de"], input_dir=str(folder), repeat=1)))
    assert save_rows_to_disk(iter(rows), tmp_path / "ds") == len(rows)
    from datasets import load_from_disk

    loaded = load_from_disk(str(tmp_path / "ds"))
    assert loaded.column_names == list(ROW_COLUMNS) and loaded.to_list() == rows
    dataset = build_dataset(languages=["en", "de"], input_dir=str(folder), repeat=1)
    assert dataset.to_list() == rows
    write_pairs([("en", "de", "Hi.", "Hallo.")], tmp_path / "held.tsv")
    assert load_parallel_pairs(tmp_path / "held.tsv") == {("en", "de"): [("Hi.", "Hallo.")]}
    with pytest.raises(ValueError, match="jsonl"):
        write_pairs([("en", "de", "a", "b"), ("en", "fr", "a", "c")], tmp_path / "held2.tsv")


def test_local_tokenizer_folder_counts_tokens(tmp_path, monkeypatch):
    from transformers import ByT5Tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ByT5Tokenizer().save_pretrained(tmp_path / "tok")
    path = tmp_path / "p.tsv"
    path.write_text("en\tde\nHi.\tHallo.\n", encoding="utf-8")
    stats = BuildStats()
    config = DataBuildConfig(
        languages=["en", "de"], source="parallel", input=str(path), tokenizer=str(tmp_path / "tok")
    )
    rows = list(iter_rows(config, stats))
    expected = sum(
        len((row["prompt"] + row["completion"]).encode())
        + len(row["source_sentence"].encode())
        + len(row["target_sentence"].encode())
        for row in rows
    )
    assert stats.total_tokens == expected
    assert "per mille" in stats.format(pretraining_tokens=10**6)


def test_parallel_heldout_pairs_are_left_out_and_seeded(tmp_path):
    from xling_align.data import RowBuilder

    path = tmp_path / "p.tsv"
    path.write_text("en\tfr\n" + "".join(f"sentence {i}\tphrase {i}\n" for i in range(20)), encoding="utf-8")
    config = dict(languages=["en", "fr"], source="parallel", input=str(path), heldout_size=5)
    builder = RowBuilder(DataBuildConfig(**config, seed=2))
    rows = list(builder.rows())
    held = {source for _, _, source, _ in builder.heldout}
    assert len(held) == 5 and len(rows) == 2 * 15
    assert not held & {row["source_sentence"] for row in rows} and not held & {row["target_sentence"] for row in rows}
    assert {(s, t) for s, t, _, _ in builder.heldout} == {("en", "fr")}
    again = RowBuilder(DataBuildConfig(**config, seed=2))
    list(again.rows())
    other = RowBuilder(DataBuildConfig(**config, seed=3))
    list(other.rows())
    assert again.heldout == builder.heldout != other.heldout
