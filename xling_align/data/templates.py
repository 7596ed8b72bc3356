"""Prompt templates: the text of cross-lingual instruction rows (CIF) and translation rows.

Reference CIF text (METHOD.md): `"{instruction} {input} Answer in {Language}: {output}"`, without
`{input}` when it is empty, the target language named in English. We split it into

    prompt     = "{instruction} {input} Answer in {Language}:"
    completion = " {output}"

The space sits at the start of the completion, not at the end of the prompt, because TRL tokenizes
`prompt + completion` as one string and starts the loss where its ids diverge from the prompt's ids: with
BPE/SentencePiece tokenizers " word" is one token, so a prompt ending in ":" stays a token-level prefix,
while a prompt ending in ": " would not (the trailing space merges into the answer's first token).

Template fields (Python `str.format`): `{instruction}`, `{input}`, `{answer_in}` (the "Answer in X"
phrase: English by default, in the target language with `answer_in_target_language=True`),
`{language}` (English name of the answer language), `{language_code}`, `{source_language}`,
`{source_language_code}`. When `input` is empty, `{input}` and one space next to it are removed.

Example:
    >>> template = InstructionTemplate()
    >>> template.render("Name a colour.", "", "Rot.", "en", "de")
    ('Name a colour. Answer in German:', ' Rot.')
    >>> InstructionTemplate(answer_in_target_language=True).render("Q?", "ctx", "A.", "en", "de")[0]
    'Q? ctx Antworte auf Deutsch:'
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass

from xling_align.languages import answer_phrase, get_language, is_known

REFERENCE_INSTRUCTION_TEMPLATE = "{instruction} {input} {answer_in}:"
TRANSLATION_TEMPLATES = {
    # the two layouts of the reference implementation's translation samples
    "translate": "{source} Translate into {language}:",
    "equals": "{source} =",
}
INSTRUCTION_FIELDS = {
    "instruction", "input", "answer_in", "language", "language_code", "source_language", "source_language_code",
}  # fmt: skip
TRANSLATION_FIELDS = {"source", "language", "language_code", "source_language", "source_language_code"}


@functools.lru_cache(maxsize=1024)  # called for every row: cache the registry look-ups
def _language_name(code: str) -> str:
    # unregistered codes (e.g. a synthetic language) are named by their code
    return get_language(code).name if is_known(code) else code


@functools.lru_cache(maxsize=1024)
def _answer_in(code: str, in_target_language: bool) -> str:
    return answer_phrase(code, in_target_language) if is_known(code) else f"Answer in {code}"


def _check_fields(template: str, allowed: set[str], what: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(
            f"{what} {template!r} is not a valid format string ({error}); escape braces as {{{{ }}}}"
        ) from None
    unknown = names - allowed
    if unknown:
        raise ValueError(
            f"{what} {template!r} uses unknown field(s) {sorted(unknown)}; allowed fields: {sorted(allowed)}"
        )


@dataclass(frozen=True)
class InstructionTemplate:
    """How a cross-lingual instruction row is written.

    Args:
        prompt: format string of the prompt (fields in the module docstring).
        answer_in_target_language: write "Answer in X" in X itself (table in `xling_align.languages`;
            English where the table has no phrase) instead of naming X in English.
    """

    prompt: str = REFERENCE_INSTRUCTION_TEMPLATE
    answer_in_target_language: bool = False

    def __post_init__(self):
        _check_fields(self.prompt, INSTRUCTION_FIELDS, "instruction template")

    def render(self, instruction: str, input: str, output: str, source_lang: str, target_lang: str) -> tuple[str, str]:
        """(prompt, completion) for an instruction in `source_lang` answered in `target_lang`."""
        template = self.prompt
        if not input:
            template = (
                template.replace(" {input}", "{input}", 1)
                if " {input}" in template
                else template.replace("{input} ", "{input}", 1)
            )
        answer_in = _answer_in(target_lang, self.answer_in_target_language)
        prompt = template.format(
            instruction=instruction,
            input=input,
            answer_in=answer_in,
            language=_language_name(target_lang),
            language_code=target_lang,
            source_language=_language_name(source_lang),
            source_language_code=source_lang,
        )
        return prompt, " " + output


@dataclass(frozen=True)
class TranslationTemplate:
    """How a translation row is written: prompt from the source sentence, completion " {target}".

    Args:
        prompt: "translate", "equals" (the reference layouts) or a format string with fields
            `{source}`, `{language}`, `{language_code}`, `{source_language}`, `{source_language_code}`.
    """

    prompt: str = "translate"

    def __post_init__(self):
        _check_fields(self.format_string, TRANSLATION_FIELDS, "translation template")

    @property
    def format_string(self) -> str:
        return TRANSLATION_TEMPLATES.get(self.prompt, self.prompt)

    def render(self, source: str, target: str, source_lang: str, target_lang: str) -> tuple[str, str]:
        """(prompt, completion) asking to translate `source` into `target_lang`."""
        prompt = self.format_string.format(
            source=source,
            language=_language_name(target_lang),
            language_code=target_lang,
            source_language=_language_name(source_lang),
            source_language_code=source_lang,
        )
        return prompt, " " + target
