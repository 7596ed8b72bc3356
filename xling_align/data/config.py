"""`DataBuildConfig`: what `xling-align data build` (and `build_dataset`) builds; every field is a flag.

`xling-align data build` generates its flags from these fields and their help (`--input-dir` for
`input_dir`), so a new setting is one new field here. Invalid combinations fail at construction, naming the
field to fix.

Example:
    >>> DataBuildConfig(languages=["en", "de"], input_dir="bactrian/").repeat  # 3 rounds for instruction sets
    3
    >>> DataBuildConfig(languages=["en", "de", "fr"])
    Traceback (most recent call last):
    ...
    ValueError: languages=['en', 'de', 'fr']: bilingual mode takes exactly two languages; use mode='pivot' (the first language is the pivot) for more
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

from __future__ import annotations

from dataclasses import dataclass, field

from xling_align.data.templates import REFERENCE_INSTRUCTION_TEMPLATE, InstructionTemplate, TranslationTemplate
from xling_align.languages import is_known, normalize_code

SOURCES = ("bactrian-x", "parallel", "instructions")
MODES = ("bilingual", "pivot")


@dataclass
class DataBuildConfig:
    """What to build. Invalid combinations fail at construction with the field to fix.

    Sources
        source, languages, input_dir, input, columns, hub_dataset, hub_config, split, language_column, id_column,
        instruction_column, input_column, output_column
    Sampling
        mode, cross_probability, repeat, seed, translation_file, translation_prompts
    Text
        template, answer_in_target_language, translation_template
    Cleaning
        skip_invalid, remove_duplicates, min_chars, max_chars, min_tokens, max_tokens, tokenizer
    Held-out pairs
        heldout_size
    Languages
        allow_unregistered_languages
    """

    languages: list[str] = field(metadata={"help": "Language codes; the first is the pivot in pivot mode."})
    source: str = field(default="bactrian-x", metadata={"help": f"Kind of input, one of {', '.join(SOURCES)}."})
    input_dir: str | None = field(
        default=None,
        metadata={"help": "Local Bactrian-X folder (<lang>.json, .json.gz, .jsonl); unset: read the hub."},
    )
    input: str | None = field(
        default=None,
        metadata={
            "help": "Parallel file (.tsv/.csv with a header naming the languages, .jsonl) or, for source "
            "instructions, a multilingual instruction file."
        },
    )
    hub_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset id: Bactrian-X layout for bactrian-x (default MBZUAI/Bactrian-X), "
            "a `translation` column for parallel."
        },
    )
    columns: list[str] | None = field(
        default=None,
        metadata={
            "help": "Parallel source: the text columns of the two languages, when the header does not name "
            "them by language code.",
            "metavar": "COLUMN",
        },
    )
    hub_config: str | None = field(
        default=None, metadata={"help": "Config of a hub parallel dataset (default 'LANG1-LANG2')."}
    )
    split: str = field(default="train", metadata={"help": "Hub split to read."})
    language_column: str = field(default="language", metadata={"help": "Language column of an instruction file."})
    id_column: str = field(default="id", metadata={"help": "Id column aligning an item's translations."})
    instruction_column: str = field(default="instruction", metadata={"help": "Instruction field name."})
    input_column: str = field(default="input", metadata={"help": "Input (context) field name."})
    output_column: str = field(default="output", metadata={"help": "Output (answer) field name."})
    mode: str = field(
        default="bilingual",
        metadata={"help": "bilingual (two languages) or pivot (the first language and several others)."},
    )
    cross_probability: float = field(
        default=0.5, metadata={"help": "Probability that an instruction is answered in the other language."}
    )
    repeat: int | None = field(
        default=None, metadata={"help": "Rounds over the items with fresh random choices (default 3; 1 for parallel)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of every random choice; same seed, same rows."})
    translation_file: str | None = field(
        default=None,
        metadata={"help": "Parallel file whose pairs become translation rows (instruction sources)."},
    )
    translation_prompts: bool = field(
        default=True,
        metadata={
            "help": "Parallel source: translation+pair rows (true) or pair rows only, without translation "
            "prompts (false)."
        },
    )
    template: str = field(
        default=REFERENCE_INSTRUCTION_TEMPLATE,
        metadata={
            "help": "Instruction prompt format string; fields {instruction} {input} {answer_in} {language} "
            "{language_code} {source_language} {source_language_code}; the completion is ' {output}'."
        },
    )
    answer_in_target_language: bool = field(
        default=False, metadata={"help": "Write 'Answer in X' in language X itself instead of in English."}
    )
    translation_template: str = field(
        default="translate",
        metadata={
            "help": "'translate' ('{source} Translate into {language}:'), 'equals' ('{source} =') or a "
            "format string with {source} and {language}."
        },
    )
    skip_invalid: bool = field(default=False, metadata={"help": "Skip malformed records and report the count."})
    remove_duplicates: bool = field(
        default=False, metadata={"help": "Drop rows identical to an earlier row.", "aliases": ["--dedup"]}
    )
    min_chars: int | None = field(
        default=None,
        metadata={"help": "Drop rows with a text (prompt+completion or a sentence) shorter than this."},
    )
    max_chars: int | None = field(default=None, metadata={"help": "Drop rows with a text longer than this."})
    min_tokens: int | None = field(default=None, metadata={"help": "Like min_chars, in tokens of `tokenizer`."})
    max_tokens: int | None = field(default=None, metadata={"help": "Like max_chars, in tokens of `tokenizer`."})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "Tokenizer for token counts and filters: a local folder, a hub name, or 'byt5' (no files)."},
    )
    heldout_size: int = field(
        default=0,
        metadata={
            "help": "Items whose translation pairs are held out of training for checkpoint selection "
            "(command line: 200 when --heldout-output is given)."
        },
    )
    allow_unregistered_languages: bool = field(
        default=False,
        metadata={
            "help": "Accept codes outside xling_align.languages (e.g. a synthetic language), named by their code."
        },
    )

    def __post_init__(self):
        self.languages = [str(code).strip() for code in self.languages]
        if self.source not in SOURCES:
            raise ValueError(f"source={self.source!r}: choose one of {SOURCES}")
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: choose one of {MODES}")
        # registered codes are written in their canonical form; others (synthetic languages) only on request
        if not self.allow_unregistered_languages:
            for code in self.languages:
                normalize_code(code)  # raises UnknownLanguageError listing the known codes
        self.languages = [normalize_code(code) if is_known(code) else code for code in self.languages]
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages={self.languages}: a language is listed twice")
        if self.source == "parallel":
            if len(self.languages) != 2:
                raise ValueError(f"languages={self.languages}: a parallel corpus needs exactly two languages")
            if self.columns is not None and len(self.columns) != 2:
                raise ValueError(
                    f"columns={self.columns}: name exactly two text columns (first language, second language)"
                )
            if (self.input is None) == (self.hub_dataset is None):
                raise ValueError("source='parallel' needs exactly one of input (a TSV/CSV/JSONL file) or hub_dataset")
        else:
            if len(self.languages) < 2:
                raise ValueError(f"languages={self.languages}: give at least two languages")
            if self.mode == "bilingual" and len(self.languages) != 2:
                raise ValueError(
                    f"languages={self.languages}: bilingual mode takes exactly two languages; "
                    "use mode='pivot' (the first language is the pivot) for more"
                )
            if self.source == "instructions" and self.input is None:
                raise ValueError("source='instructions' needs input (a JSON/JSONL/CSV/TSV file with a language column)")
            if self.source == "bactrian-x" and self.input is not None:
                raise ValueError("source='bactrian-x' reads input_dir (a folder) or the hub, not input; use input_dir")
        if not 0.0 <= self.cross_probability <= 1.0:
            raise ValueError(f"cross_probability={self.cross_probability}: must be within [0, 1]")
        if self.repeat is None:
            self.repeat = 1 if self.source == "parallel" else 3
        if self.repeat < 1:
            raise ValueError(f"repeat={self.repeat}: must be at least 1")
        if self.heldout_size < 0:
            raise ValueError(f"heldout_size={self.heldout_size}: must be >= 0")
        for low, high in (("min_chars", "max_chars"), ("min_tokens", "max_tokens")):
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value is not None and high_value is not None and low_value > high_value:
                raise ValueError(f"{low}={low_value} is above {high}={high_value}")
        if (self.min_tokens is not None or self.max_tokens is not None) and not self.tokenizer:
            raise ValueError("min_tokens/max_tokens need a tokenizer (tokenizer='byt5' or a local tokenizer path)")
        # fail now, not after an hour of reading, on a bad template
        InstructionTemplate(self.template, self.answer_in_target_language)
        TranslationTemplate(self.translation_template)
