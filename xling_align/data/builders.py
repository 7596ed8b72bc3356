"""Turn instruction sets and parallel corpora into AFP training rows (`rows.ROW_COLUMNS`): `RowBuilder`.

One job per module, read top to bottom:
- `config.py`: `DataBuildConfig`, what to build;
- `instruction_rows.py`: instruction sets joined by id, the bilingual and pivot modes (METHOD.md);
- `translation_rows.py`: parallel corpora and the `translation_file` of an instruction build;
- `filters.py`: duplicates and length limits;
- `choices.py`: the seeded random choices (a hash of (seed, language pair, item id, round), so the output
  is identical run to run and does not shift when a malformed record is skipped).
This module runs them in order and counts everything in a `BuildStats`.

Example:
    >>> import json, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for lang, words in {"en": ["Say hi.", "Hi."], "de": ["Sag hallo.", "Hallo."]}.items():
    ...     item = {"id": "1", "instruction": words[0], "input": "", "output": words[1]}
    ...     _ = (folder / f"{lang}.json").write_text(json.dumps([item]), encoding="utf-8")
    >>> config = DataBuildConfig(languages=["en", "de"], input_dir=str(folder), cross_probability=1.0, repeat=1)
    >>> rows = list(iter_rows(config))
    >>> (rows[0]["prompt"], rows[0]["completion"], rows[0]["kind"]) in {
    ...     ("Say hi. Answer in German:", " Hallo.", "instruction+pair"),
    ...     ("Sag hallo. Answer in English:", " Hi.", "instruction+pair")}
    True
"""

from __future__ import annotations

from collections.abc import Iterator

from xling_align.data.config import MODES, SOURCES, DataBuildConfig
from xling_align.data.filters import RowFilter
from xling_align.data.instruction_rows import iter_instruction_set_rows
from xling_align.data.readers import InvalidRecords
from xling_align.data.stats import BuildStats
from xling_align.data.translation_rows import iter_parallel_rows, iter_translation_file_rows


class RowBuilder:
    """Produces the rows of a `DataBuildConfig` lazily, with statistics and held-out pairs.

    Args:
        config: what to build.
        stats: receives the counters (a fresh `BuildStats` by default).

    After iterating `rows()`, `heldout` holds `(source_lang, target_lang, source, target)` tuples that
    were kept out of the rows.
    """

    def __init__(self, config: DataBuildConfig, stats: BuildStats | None = None):
        self.config = config
        self.stats = stats if stats is not None else BuildStats()
        self.invalid = InvalidRecords(skip=config.skip_invalid)
        self.heldout: list[tuple[str, str, str, str]] = []
        self._filter = RowFilter(config, self.stats)

    def rows(self) -> Iterator[dict]:
        """All rows after cleaning (duplicates, length filters), counted in `stats`."""
        try:
            for row in self._raw_rows():
                kept, tokens = self._filter.keep(row)
                if kept:
                    self.stats.add_row(row, tokens)
                    yield row
        finally:
            if self.invalid.count:
                self.stats.skipped["invalid"] = self.invalid.count
            self.stats.invalid_examples = list(self.invalid.examples)

    def _raw_rows(self) -> Iterator[dict]:
        config = self.config
        if config.source == "parallel":
            yield from iter_parallel_rows(config, self.invalid, self.stats, self.heldout)
            return
        yield from iter_instruction_set_rows(config, self.invalid, self.stats, self.heldout)
        if config.translation_file:
            yield from iter_translation_file_rows(config, self.invalid, self.stats)


def iter_rows(config: DataBuildConfig, stats: BuildStats | None = None) -> Iterator[dict]:
    """Lazily yield the rows of `config` (see the module docstring); counters go to `stats`."""
    yield from RowBuilder(config, stats).rows()


def build_dataset(config: DataBuildConfig | None = None, stats: BuildStats | None = None, **fields):
    """Build the rows as a `datasets.Dataset` (seven string columns).

    Args:
        config: what to build; or pass its fields as keyword arguments.
        stats: receives the counters.

    The rows are held in memory; for the full Bactrian-X use the CLI (`xling-align data build`), which
    streams them to disk.
    """
    from datasets import Dataset

    from xling_align.data.rows import ROW_COLUMNS
    from xling_align.data.writer import row_features

    config = config if config is not None else DataBuildConfig(**fields)
    rows = list(iter_rows(config, stats))
    return Dataset.from_dict({name: [row[name] for row in rows] for name in ROW_COLUMNS}, features=row_features())


__all__ = ["MODES", "SOURCES", "DataBuildConfig", "RowBuilder", "build_dataset", "iter_rows"]
