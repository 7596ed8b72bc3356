"""Language registry: coverage of Bactrian-X and the benchmarks, look-ups, and the "Answer in X" table."""

import pytest

from xling_align import languages
from xling_align.evaluation.benchmark_table import BENCHMARKS
from xling_align.languages import (
    BACTRIAN_X_LANGUAGES,
    UnknownLanguageError,
    answer_phrase,
    get_language,
    language_name,
    normalize_code,
)


def test_bactrian_x_has_52_registered_languages():
    assert len(set(BACTRIAN_X_LANGUAGES)) == 52
    assert all(code in languages.LANGUAGES for code in BACTRIAN_X_LANGUAGES)


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
def test_every_benchmark_language_resolves(benchmark):
    for code in BENCHMARKS[benchmark].languages:
        assert get_language(code).name


@pytest.mark.parametrize(
    ("code", "canonical", "name"),
    [
        ("zho_Hans", "zh", "Chinese"),
        ("ZH", "zh", "Chinese"),
        ("jp", "ja", "Japanese"),
        ("swh_Latn", "sw", "Swahili"),
        ("zho-Hant", "zho_Hant", "Chinese (Traditional)"),
        ("pes_Arab", "fa", "Persian"),
    ],
)
def test_codes_flores_and_aliases_normalize(code, canonical, name):
    assert normalize_code(code) == canonical
    assert language_name(code) == name


def test_unknown_code_lists_known_codes():
    with pytest.raises(UnknownLanguageError) as caught:
        get_language("klingon")
    message = str(caught.value)
    assert "'klingon'" in message and "en, " in message and "zh" in message
    assert isinstance(caught.value, ValueError)


def test_answer_phrase_reference_and_in_language():
    assert answer_phrase("de") == "Answer in German"
    assert answer_phrase("de", in_target_language=True) == "Antworte auf Deutsch"
    assert answer_phrase("zh", in_target_language=True) == "用中文回答"


def test_missing_native_phrase_falls_back_to_english():
    fallback = languages.languages_without_native_phrase()
    assert "xh" in fallback and "de" not in fallback
    assert answer_phrase("xh", in_target_language=True) == "Answer in Xhosa"
