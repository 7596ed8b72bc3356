"""Parallel sentences for an alignment analysis: read with the data module, checked, de-duplicated.

Any parallel format of `xling_align.data` works (a TSV with a header row naming its two languages is the
simplest). Retrieval needs distinct candidates: a sentence that occurs twice on one side ties with itself
and can never be the strict nearest neighbour, so pairs whose sentence on either side was already seen
are dropped. A pair with an empty side is no translation and is left out too; both counts are reported
(stderr, metrics.json, summary.md), never dropped silently. A file where most pairs have the same text on
both sides (one column written twice) is refused: retrieval would be perfect and meaningless.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = path.write_text("en\\tde\\nGood morning.\\tGuten Morgen.\\nThank you.\\tDanke.\\n", encoding="utf-8")
    >>> load_analysis_pairs(path).pairs
    {('en', 'de'): [('Good morning.', 'Guten Morgen.'), ('Thank you.', 'Danke.')]}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from xling_align.data import load_parallel_pairs
from xling_align.data.parallel import same_language


@dataclass
class AnalysisPairs:
    """Checked translation pairs grouped by language pair.

    Attributes:
        pairs: `{(lang_a, lang_b): [(sentence_a, sentence_b), ...]}`.
        dropped_duplicates: pairs left out per language pair because a sentence repeated.
        truncated: pairs left out per language pair because of `max_pairs`.
    """

    pairs: dict[tuple[str, str], list[tuple[str, str]]]
    dropped_duplicates: dict[tuple[str, str], int] = field(default_factory=dict)
    truncated: dict[tuple[str, str], int] = field(default_factory=dict)
    dropped_empty: int = 0
    skipped_invalid: int = 0

    def notes(self) -> list[str]:
        """One line per kind of pair left out, for the user (empty when nothing was left out)."""
        notes = []
        if self.dropped_empty:
            notes.append(f"left out {self.dropped_empty} pair(s) with an empty side")
        if self.skipped_invalid:
            notes.append(f"skipped {self.skipped_invalid} malformed record(s) (--skip-invalid)")
        for languages, count in self.dropped_duplicates.items():
            notes.append(f"{pair_name(languages)}: left out {count} pair(s) repeating a sentence already seen")
        return notes


def pair_name(languages: tuple[str, str]) -> str:
    """`('en', 'de') -> 'en-de'`, the key used in metrics.json and the report."""
    return f"{languages[0]}-{languages[1]}"


def _distinct(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    kept = []
    for sentence_a, sentence_b in pairs:
        if sentence_a in seen_a or sentence_b in seen_b:
            continue
        seen_a.add(sentence_a)
        seen_b.add(sentence_b)
        kept.append((sentence_a, sentence_b))
    return kept


def load_analysis_pairs(
    path: str | Path,
    max_pairs: int | None = None,
    skip_invalid: bool = False,
    languages: tuple[str, str] | None = None,
) -> AnalysisPairs:
    """Read, check and de-duplicate the pairs of a parallel file.

    Args:
        path: a parallel file in any format of `xling_align.data.load_parallel_pairs`.
        max_pairs: keep at most this many pairs per language pair (the first ones); None keeps all.
        skip_invalid: skip malformed records (counted) instead of raising `DataFormatError`.
        languages: the two language columns/keys to read, for a file with more than two.

    Raises:
        ValueError: the file has no pairs, pairs a language with itself, a language pair has fewer than
            2 distinct pairs, or most of its pairs have the same text on both sides.
    """
    if max_pairs is not None and (isinstance(max_pairs, bool) or max_pairs < 2):
        raise ValueError(
            f"max_pairs (--max-pairs) is {max_pairs}: retrieval needs at least 2 pairs per language pair "
            "(hundreds for stable numbers); give a larger number, or leave it unset to use all pairs."
        )
    counts = Counter()
    grouped = load_parallel_pairs(path, skip_invalid=skip_invalid, languages=languages, counts=counts)
    if not grouped:
        left_out = (
            f" ({counts['empty']} with an empty side, {counts['invalid']} malformed left out)"
            if sum(counts.values())
            else ""
        )
        raise ValueError(
            f"{path}: no translation pairs found{left_out}; the analysis needs sentences in two languages, e.g. a "
            "TSV whose header names the languages (en<TAB>de) followed by one pair per line."
        )
    result = AnalysisPairs(pairs={}, dropped_empty=counts["empty"], skipped_invalid=counts["invalid"])
    for (lang_a, lang_b), pairs in grouped.items():
        if same_language(lang_a, lang_b):
            raise ValueError(
                f"{path}: pairs {lang_a!r}-{lang_b!r} have a single language on both sides; alignment is measured "
                "between two languages, so give a file whose two columns (or keys) are different languages."
            )
        distinct = _distinct(pairs)
        if len(distinct) < 2:
            raise ValueError(
                f"{path}: language pair {lang_a}-{lang_b} has {len(distinct)} distinct translation pair(s); "
                "retrieval and separability need at least 2 (hundreds for stable numbers). Add more pairs."
            )
        copies = [pair for pair in distinct if pair[0].strip() == pair[1].strip()]
        if 2 * len(copies) > len(distinct):  # a few (names, numbers) are real; most means one column twice
            raise ValueError(
                f"{path}: {len(copies)} of the {len(distinct)} {lang_a}-{lang_b} pairs have the same text on both "
                "sides "
                f"(e.g. {copies[0][0]!r}); such a pair is found trivially, so retrieval would measure nothing. Is one "
                "language's column written twice? Give the translations in the second column."
            )
        if len(distinct) < len(pairs):
            result.dropped_duplicates[(lang_a, lang_b)] = len(pairs) - len(distinct)
        if max_pairs is not None and len(distinct) > max_pairs:
            result.truncated[(lang_a, lang_b)] = len(distinct) - max_pairs
            distinct = distinct[:max_pairs]
        result.pairs[(lang_a, lang_b)] = distinct
    return result
