"""Cross-lingual training data for AFP: readers, row builders, writer and statistics.

- `load_parallel_pairs(path)`: translation pairs of a TSV/CSV/JSONL file grouped by language pair.
- `DataBuildConfig` + `build_dataset` / `iter_rows`: AFP training rows (`ROW_COLUMNS`) from Bactrian-X
  (local folder or hub), a parallel corpus or a multilingual instruction file; `xling-align data build`
  is the same from the command line, streamed to JSONL or a `save_to_disk` folder.

Importing this package is cheap: `datasets` and `transformers` are imported only by the functions that
need them.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = path.write_text("en\\tde\\nThank you.\\tDanke.\\n", encoding="utf-8")
    >>> rows = list(iter_rows(DataBuildConfig(languages=["en", "de"], source="parallel", input=str(path))))
    >>> [(row["prompt"], row["completion"], row["kind"]) for row in rows]
    [('Thank you. Translate into German:', ' Danke.', 'translation+pair'), ('Danke. Translate into English:', ' Thank you.', 'translation+pair')]
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

from xling_align.data.builders import RowBuilder, build_dataset, iter_rows
from xling_align.data.config import DataBuildConfig
from xling_align.data.parallel import ParallelPair, iter_parallel_file, load_parallel_pairs
from xling_align.data.readers import DataFormatError, InvalidRecords
from xling_align.data.rows import KINDS, ROW_COLUMNS
from xling_align.data.stats import BuildStats
from xling_align.data.templates import InstructionTemplate, TranslationTemplate
from xling_align.data.writer import save_rows_to_disk, write_jsonl, write_pairs

__all__ = [
    "KINDS",
    "ROW_COLUMNS",
    "BuildStats",
    "DataBuildConfig",
    "DataFormatError",
    "InstructionTemplate",
    "InvalidRecords",
    "ParallelPair",
    "RowBuilder",
    "TranslationTemplate",
    "build_dataset",
    "iter_parallel_file",
    "iter_rows",
    "load_parallel_pairs",
    "save_rows_to_disk",
    "write_jsonl",
    "write_pairs",
]
