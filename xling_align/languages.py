"""Language registry: codes, English names, and "Answer in <Language>" written in the language itself.

Canonical codes are ISO 639-1 (`en`, `zh`, `sw`) where one exists, else the FLORES-200 code (`ceb_Latn`,
`hin_Latn`, `zho_Hant`). Every language is also reachable through its FLORES-200 code (what Belebele uses,
e.g. `zho_Hans` -> `zh`) and through a few benchmark aliases (`jp` is XWinograd's code for Japanese).
Look-ups ignore case and accept `-` for `_`.

Covered: the 52 Bactrian-X languages, every language of lm-eval's XNLI, XCOPA, XStoryCloze, XWinograd,
PAWS-X and the 122 Belebele languages of lm-eval 0.4.13.

The in-language "Answer in X" phrases were written by the developers for the languages they could check;
`answer_phrase(code, in_target_language=True)` falls back to the English phrase for the others
(`Language.answer_in is None`, see `languages_without_native_phrase()`).

Example:
    >>> from xling_align.languages import get_language, answer_phrase
    >>> get_language("zho_Hans").code, get_language("de").name
    ('zh', 'German')
    >>> answer_phrase("de"), answer_phrase("de", in_target_language=True)
    ('Answer in German', 'Antworte auf Deutsch')
"""

from __future__ import annotations

from dataclasses import dataclass

from xling_align.errors import XlingAlignError


@dataclass(frozen=True)
class Language:
    """One registered language.

    Args:
        code: canonical code (ISO 639-1, else FLORES-200).
        name: English name, as used in the reference prompt "Answer in {name}".
        flores: FLORES-200 code (language_Script), or None when FLORES-200 has none.
        answer_in: "Answer in <this language>" written in this language, or None (falls back to English).
    """

    code: str
    name: str
    flores: str | None = None
    answer_in: str | None = None


class UnknownLanguageError(XlingAlignError, KeyError, ValueError):
    """A language code that the registry does not know; the message lists the known codes."""

    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes
        return str(self.args[0]) if self.args else ""


# (code, English name, FLORES-200 code, "Answer in X" in X or None)
_TABLE: list[tuple[str, str, str | None, str | None]] = [
    # --- the 52 Bactrian-X languages ---
    ("af", "Afrikaans", "afr_Latn", "Antwoord in Afrikaans"),
    ("ar", "Arabic", "arb_Arab", "أجب باللغة العربية"),
    ("az", "Azerbaijani", "azj_Latn", "Azərbaycan dilində cavab ver"),
    ("bn", "Bengali", "ben_Beng", "বাংলায় উত্তর দিন"),
    ("cs", "Czech", "ces_Latn", "Odpověz česky"),
    ("de", "German", "deu_Latn", "Antworte auf Deutsch"),
    ("en", "English", "eng_Latn", "Answer in English"),
    ("es", "Spanish", "spa_Latn", "Responde en español"),
    ("et", "Estonian", "est_Latn", "Vasta eesti keeles"),
    ("fa", "Persian", "pes_Arab", "به فارسی پاسخ بده"),
    ("fi", "Finnish", "fin_Latn", "Vastaa suomeksi"),
    ("fr", "French", "fra_Latn", "Réponds en français"),
    ("gl", "Galician", "glg_Latn", "Responde en galego"),
    ("gu", "Gujarati", "guj_Gujr", None),
    ("he", "Hebrew", "heb_Hebr", "ענה בעברית"),
    ("hi", "Hindi", "hin_Deva", "हिंदी में उत्तर दें"),
    ("hr", "Croatian", "hrv_Latn", "Odgovori na hrvatskom"),
    ("id", "Indonesian", "ind_Latn", "Jawab dalam bahasa Indonesia"),
    ("it", "Italian", "ita_Latn", "Rispondi in italiano"),
    ("ja", "Japanese", "jpn_Jpan", "日本語で答えてください"),
    ("ka", "Georgian", "kat_Geor", None),
    ("kk", "Kazakh", "kaz_Cyrl", "Қазақ тілінде жауап бер"),
    ("km", "Khmer", "khm_Khmr", None),
    ("ko", "Korean", "kor_Hang", "한국어로 답하세요"),
    ("lt", "Lithuanian", "lit_Latn", "Atsakyk lietuviškai"),
    ("lv", "Latvian", "lvs_Latn", "Atbildi latviešu valodā"),
    ("mk", "Macedonian", "mkd_Cyrl", "Одговори на македонски"),
    ("ml", "Malayalam", "mal_Mlym", None),
    ("mn", "Mongolian", "khk_Cyrl", None),
    ("mr", "Marathi", "mar_Deva", "मराठीत उत्तर द्या"),
    ("my", "Burmese", "mya_Mymr", None),
    ("ne", "Nepali", "npi_Deva", "नेपालीमा जवाफ दिनुहोस्"),
    ("nl", "Dutch", "nld_Latn", "Antwoord in het Nederlands"),
    ("pl", "Polish", "pol_Latn", "Odpowiedz po polsku"),
    ("ps", "Pashto", "pbt_Arab", None),
    ("pt", "Portuguese", "por_Latn", "Responda em português"),
    ("ro", "Romanian", "ron_Latn", "Răspunde în limba română"),
    ("ru", "Russian", "rus_Cyrl", "Ответь на русском языке"),
    ("si", "Sinhala", "sin_Sinh", None),
    ("sl", "Slovenian", "slv_Latn", "Odgovori v slovenščini"),
    ("sv", "Swedish", "swe_Latn", "Svara på svenska"),
    ("sw", "Swahili", "swh_Latn", "Jibu kwa Kiswahili"),
    ("ta", "Tamil", "tam_Taml", None),
    ("te", "Telugu", "tel_Telu", None),
    ("th", "Thai", "tha_Thai", "ตอบเป็นภาษาไทย"),
    ("tl", "Tagalog", "tgl_Latn", "Sumagot sa Tagalog"),
    ("tr", "Turkish", "tur_Latn", "Türkçe cevap ver"),
    ("uk", "Ukrainian", "ukr_Cyrl", "Відповідай українською мовою"),
    ("ur", "Urdu", "urd_Arab", "اردو میں جواب دیں"),
    ("vi", "Vietnamese", "vie_Latn", "Trả lời bằng tiếng Việt"),
    ("xh", "Xhosa", "xho_Latn", None),
    ("zh", "Chinese", "zho_Hans", "用中文回答"),
    # --- benchmark languages not in Bactrian-X (XNLI, XCOPA, XStoryCloze) ---
    ("bg", "Bulgarian", "bul_Cyrl", "Отговори на български"),
    ("el", "Greek", "ell_Grek", "Απάντησε στα ελληνικά"),
    ("eu", "Basque", "eus_Latn", "Erantzun euskaraz"),
    ("ht", "Haitian Creole", "hat_Latn", None),
    ("qu", "Quechua", "quy_Latn", None),
    # --- the other Belebele languages (lm-eval 0.4.13), ISO 639-1 where one exists ---
    ("am", "Amharic", "amh_Ethi", None),
    ("as", "Assamese", "asm_Beng", None),
    ("bm", "Bambara", "bam_Latn", None),
    ("bo", "Tibetan", "bod_Tibt", None),
    ("ca", "Catalan", "cat_Latn", "Respon en català"),
    ("da", "Danish", "dan_Latn", "Svar på dansk"),
    ("ff", "Nigerian Fulfulde", "fuv_Latn", None),
    ("gn", "Guarani", "grn_Latn", None),
    ("ha", "Hausa", "hau_Latn", None),
    ("hu", "Hungarian", "hun_Latn", "Válaszolj magyarul"),
    ("hy", "Armenian", "hye_Armn", None),
    ("ig", "Igbo", "ibo_Latn", None),
    ("is", "Icelandic", "isl_Latn", None),
    ("jv", "Javanese", "jav_Latn", None),
    ("kn", "Kannada", "kan_Knda", None),
    ("ky", "Kyrgyz", "kir_Cyrl", None),
    ("lg", "Ganda", "lug_Latn", None),
    ("ln", "Lingala", "lin_Latn", None),
    ("lo", "Lao", "lao_Laoo", None),
    ("mg", "Malagasy", "plt_Latn", None),
    ("mi", "Maori", "mri_Latn", None),
    ("ms", "Malay", "zsm_Latn", "Jawab dalam bahasa Melayu"),
    ("mt", "Maltese", "mlt_Latn", None),
    ("nb", "Norwegian Bokmål", "nob_Latn", "Svar på norsk"),
    ("ny", "Nyanja", "nya_Latn", None),
    ("om", "Oromo", "gaz_Latn", None),
    ("or", "Odia", "ory_Orya", None),
    ("pa", "Punjabi", "pan_Guru", None),
    ("rw", "Kinyarwanda", "kin_Latn", None),
    ("sd", "Sindhi", "snd_Arab", None),
    ("sk", "Slovak", "slk_Latn", "Odpovedz po slovensky"),
    ("sn", "Shona", "sna_Latn", None),
    ("so", "Somali", "som_Latn", None),
    ("sq", "Albanian", "als_Latn", None),
    ("sr", "Serbian", "srp_Cyrl", "Одговори на српском"),
    ("ss", "Swati", "ssw_Latn", None),
    ("st", "Southern Sotho", "sot_Latn", None),
    ("su", "Sundanese", "sun_Latn", None),
    ("tg", "Tajik", "tgk_Cyrl", None),
    ("ti", "Tigrinya", "tir_Ethi", None),
    ("tn", "Tswana", "tsn_Latn", None),
    ("ts", "Tsonga", "tso_Latn", None),
    ("uz", "Uzbek", "uzn_Latn", None),
    ("wo", "Wolof", "wol_Latn", None),
    ("yo", "Yoruba", "yor_Latn", None),
    ("zu", "Zulu", "zul_Latn", None),
    # Belebele languages without an ISO 639-1 code, or a second script / variety of one that has it:
    # their FLORES-200 code is their canonical code.
    ("acm_Arab", "Mesopotamian Arabic", "acm_Arab", None),
    ("apc_Arab", "North Levantine Arabic", "apc_Arab", None),
    ("arb_Latn", "Arabic (Latin script)", "arb_Latn", None),
    ("ars_Arab", "Najdi Arabic", "ars_Arab", None),
    ("ary_Arab", "Moroccan Arabic", "ary_Arab", None),
    ("arz_Arab", "Egyptian Arabic", "arz_Arab", None),
    ("ben_Latn", "Bengali (Latin script)", "ben_Latn", None),
    ("ceb_Latn", "Cebuano", "ceb_Latn", None),
    ("ckb_Arab", "Central Kurdish", "ckb_Arab", None),
    ("hin_Latn", "Hindi (Latin script)", "hin_Latn", None),
    ("ilo_Latn", "Ilocano", "ilo_Latn", None),
    ("kac_Latn", "Jingpho", "kac_Latn", None),
    ("kea_Latn", "Kabuverdianu", "kea_Latn", None),
    ("luo_Latn", "Luo", "luo_Latn", None),
    ("npi_Latn", "Nepali (Latin script)", "npi_Latn", None),
    ("nso_Latn", "Northern Sotho", "nso_Latn", None),
    ("shn_Mymr", "Shan", "shn_Mymr", None),
    ("sin_Latn", "Sinhala (Latin script)", "sin_Latn", None),
    ("urd_Latn", "Urdu (Latin script)", "urd_Latn", None),
    ("war_Latn", "Waray", "war_Latn", None),
    ("zho_Hant", "Chinese (Traditional)", "zho_Hant", "用中文回答"),
]

# Codes used by benchmarks that differ from the canonical one.
_ALIASES = {"jp": "ja"}

LANGUAGES: dict[str, Language] = {code: Language(code, name, flores, phrase) for code, name, flores, phrase in _TABLE}

BACTRIAN_X_LANGUAGES: tuple[str, ...] = (
    "af", "ar", "az", "bn", "cs", "de", "en", "es", "et", "fa", "fi", "fr", "gl", "gu", "he", "hi", "hr",
    "id", "it", "ja", "ka", "kk", "km", "ko", "lt", "lv", "mk", "ml", "mn", "mr", "my", "ne", "nl", "pl",
    "ps", "pt", "ro", "ru", "si", "sl", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "xh",
    "zh",
)  # fmt: skip

# lower-cased look-up key -> canonical code (canonical codes, FLORES codes, aliases)
_INDEX: dict[str, str] = {}
for _language in LANGUAGES.values():
    _INDEX[_language.code.lower()] = _language.code
    if _language.flores:
        _INDEX[_language.flores.lower()] = _language.code
for _alias, _code in _ALIASES.items():
    _INDEX[_alias] = _code


def known_codes() -> list[str]:
    """Canonical codes of every registered language, sorted."""
    return sorted(LANGUAGES)


def normalize_code(code: str) -> str:
    """The canonical code for `code` (canonical, FLORES-200 or alias; case and `-`/`_` ignored).

    Raises:
        UnknownLanguageError: `code` is not registered; the message lists the known codes.
    """
    key = str(code).strip().replace("-", "_").lower()
    if key in _INDEX:
        return _INDEX[key]
    raise UnknownLanguageError(
        f"unknown language code {code!r}. Use one of the registered codes (ISO 639-1 where one exists, "
        f"else FLORES-200; FLORES-200 codes such as 'zho_Hans' and the alias 'jp' are accepted too): "
        f"{', '.join(known_codes())}"
    )


def is_known(code: str) -> bool:
    """Whether `code` names a registered language."""
    return str(code).strip().replace("-", "_").lower() in _INDEX


def get_language(code: str) -> Language:
    """The registered `Language` for `code` (see `normalize_code` for what is accepted)."""
    return LANGUAGES[normalize_code(code)]


def language_name(code: str) -> str:
    """English name of the language, e.g. `language_name("zh") == "Chinese"`."""
    return get_language(code).name


def answer_phrase(code: str, in_target_language: bool = False) -> str:
    """The phrase that tells the model which language to answer in, without the final colon.

    Args:
        code: the answer language.
        in_target_language: False gives the reference "Answer in <English name>"; True gives the phrase in
            the answer language itself where the table has one, else the English phrase.
    """
    language = get_language(code)
    if in_target_language and language.answer_in:
        return language.answer_in
    return f"Answer in {language.name}"


def languages_without_native_phrase() -> list[str]:
    """Codes whose in-language "Answer in X" falls back to English."""
    return sorted(code for code, language in LANGUAGES.items() if not language.answer_in)
