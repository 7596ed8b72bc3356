"""Cleaning of built rows: exact duplicates and length limits, in characters or in tokens of a tokenizer.

A row's texts are its prompt+completion and each of its two sentences; a length limit applies to every
text of the row. Dropped rows are counted in `BuildStats.skipped` (`duplicate-row`, `too-short`, `too-long`).
"""

from __future__ import annotations

import hashlib

from xling_align.data.config import DataBuildConfig
from xling_align.data.stats import BuildStats


class RowFilter:
    """The cleaning settings of a `DataBuildConfig` applied to one row at a time.

    Args:
        config: `remove_duplicates`, `min_chars`, `max_chars`, `min_tokens`, `max_tokens`, `tokenizer`.
        stats: receives the counts of dropped rows.
    """

    def __init__(self, config: DataBuildConfig, stats: BuildStats):
        self.config = config
        self.stats = stats
        self._tokenizer = load_tokenizer(config.tokenizer) if config.tokenizer else None
        self._seen: set[bytes] = set()

    def keep(self, row: dict) -> tuple[bool, int | None]:
        """`(whether the row is kept, its token count or None without a tokenizer)`."""
        if self.config.remove_duplicates:
            digest = hashlib.blake2b("\x1f".join(row.values()).encode("utf-8"), digest_size=12).digest()
            if digest in self._seen:
                self.stats.skipped["duplicate-row"] += 1
                return False, None
            self._seen.add(digest)
        return self._length_check(row)

    @staticmethod
    def _texts(row: dict) -> list[str]:
        texts = [row["prompt"] + row["completion"]] if row["prompt"] or row["completion"] else []
        return texts + [text for text in (row["source_sentence"], row["target_sentence"]) if text]

    def _length_check(self, row: dict) -> tuple[bool, int | None]:
        config = self.config
        texts = self._texts(row)
        lengths = [len(text) for text in texts]
        if config.min_chars is not None and min(lengths) < config.min_chars:
            self.stats.skipped["too-short"] += 1
            return False, None
        if config.max_chars is not None and max(lengths) > config.max_chars:
            self.stats.skipped["too-long"] += 1
            return False, None
        if self._tokenizer is None:
            return True, None
        counts = [len(self._tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]
        if config.min_tokens is not None and min(counts) < config.min_tokens:
            self.stats.skipped["too-short"] += 1
            return False, None
        if config.max_tokens is not None and max(counts) > config.max_tokens:
            self.stats.skipped["too-long"] += 1
            return False, None
        return True, sum(counts)


def load_tokenizer(name_or_path: str):
    """A tokenizer for token counts: 'byt5' (no files needed) or a path/name for AutoTokenizer."""
    if name_or_path.lower() == "byt5":
        from transformers import ByT5Tokenizer

        return ByT5Tokenizer()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"tokenizer {name_or_path!r} could not be loaded ({error}); give a local tokenizer folder or 'byt5'"
        ) from None
