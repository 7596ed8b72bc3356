"""The AFP training row: the seven columns every builder writes (names in `xling_align.data.columns`).

- `prompt`, `completion`: an instruction (CIF) or translation prompt and its answer (loss on the answer);
- `source_sentence`, `target_sentence`: a translation pair for the contrastive term (MCL), source in
  `source_lang`, target in `target_lang`;
- `source_lang`, `target_lang`: the direction of the row (the prompt's language -> the answer's language);
- `kind`: what the row carries, one of `KINDS`.

Empty string = absent. A row that has both parts uses one direction for both, so the pair of an
`instruction+pair` row is the `instruction` field of the same item in the prompt's and the answer's
language.
"""

from __future__ import annotations

from xling_align.data import columns
from xling_align.data.columns import ROW_COLUMNS

__all__ = ["KINDS", "ROW_COLUMNS", "make_row"]

KINDS = {
    "instruction": "a CIF prompt/completion only (monolingual instruction: no pair in that direction)",
    "pair": "a translation pair only (MCL)",
    "instruction+pair": "a cross-lingual instruction and the pair of its instruction fields",
    "translation": "a translation prompt/completion only",
    "translation+pair": "a translation prompt/completion and the same sentences as an MCL pair",
}


def make_row(
    source_lang: str,
    target_lang: str,
    kind: str,
    prompt: str = "",
    completion: str = "",
    source_sentence: str = "",
    target_sentence: str = "",
) -> dict[str, str]:
    """One row with the seven columns in their canonical order."""
    if kind not in KINDS:
        raise ValueError(f"unknown row kind {kind!r}; expected one of {sorted(KINDS)}")
    return {
        columns.PROMPT: prompt,
        columns.COMPLETION: completion,
        columns.SOURCE_SENTENCE: source_sentence,
        columns.TARGET_SENTENCE: target_sentence,
        columns.SOURCE_LANG: source_lang,
        columns.TARGET_LANG: target_lang,
        columns.KIND: kind,
    }
