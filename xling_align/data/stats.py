"""Build statistics: rows per direction and kind, what was skipped and why, and token counts.

`BuildStats.format(pretraining_tokens=N)` adds the fraction of the pre-training tokens that the build
represents (the paper's budget is "less than 0.1 per mille").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class BuildStats:
    """Counters filled while rows are built.

    Attributes:
        rows: (source_lang, target_lang, kind) -> rows written.
        items_read: language -> valid instruction items read (or parallel pairs for parallel sources).
        skipped: reason -> count (`invalid`, `empty`, `duplicate-id:<lang>`, `id-not-in-pivot:<lang>`,
            `missing-in:<lang>`, `duplicate-row`, `too-short`, `too-long`, `other-languages`, ...).
        row_tokens: (source_lang, target_lang, kind) -> tokens of the rows written (with a tokenizer).
        heldout_pairs: translation pairs written aside.
        invalid_examples: messages of the first skipped malformed records.
    """

    rows: Counter = field(default_factory=Counter)
    items_read: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    row_tokens: Counter = field(default_factory=Counter)
    heldout_pairs: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_tokens(self) -> int:
        return sum(self.row_tokens.values())

    def cross_lingual_fraction(self, kind: str | None = None) -> float:
        """Fraction of rows (of `kind`, or all) whose source and target languages differ."""
        selected = [(key, n) for key, n in self.rows.items() if kind is None or key[2] == kind]
        total = sum(n for _, n in selected)
        return sum(n for (src, tgt, _), n in selected if src != tgt) / total if total else 0.0

    def format(self, pretraining_tokens: int | None = None) -> str:
        """A plain-text report."""
        lines = [f"rows written: {self.total_rows}"]
        if self.rows:
            lines.append(
                f"  {'direction':<16} {'kind':<18} {'rows':>10}" + (f" {'tokens':>12}" if self.row_tokens else "")
            )
            for key, count in sorted(self.rows.items()):
                src, tgt, kind = key
                line = f"  {src + ' -> ' + tgt:<16} {kind:<18} {count:>10}"
                if self.row_tokens:
                    line += f" {self.row_tokens[key]:>12}"
                lines.append(line)
        if self.items_read:
            lines.append("items read: " + ", ".join(f"{lang} {n}" for lang, n in sorted(self.items_read.items())))
        if self.skipped:
            skipped = sorted((reason, n) for reason, n in self.skipped.items() if n)
            lines.append("skipped: " + (", ".join(f"{reason} {n}" for reason, n in skipped) or "nothing"))
        for example in self.invalid_examples:
            lines.append(f"  e.g. {example}")
        if self.heldout_pairs:
            lines.append(f"held-out translation pairs written aside: {self.heldout_pairs}")
        if self.row_tokens:
            lines.append(f"tokens: {self.total_tokens}")
            if pretraining_tokens:
                ratio = self.total_tokens / pretraining_tokens
                lines.append(
                    f"fraction of the {pretraining_tokens} pre-training tokens: {ratio:.3g} "
                    f"({ratio * 1000:.4g} per mille; the paper stays below 0.1 per mille)"
                )
        elif pretraining_tokens:
            lines.append("fraction of pre-training tokens: unknown (give a tokenizer to count tokens)")
        return "\n".join(lines)

    def add_row(self, row: dict, tokens: int | None = None) -> None:
        """Count one written row (and its tokens)."""
        key = (row["source_lang"], row["target_lang"], row["kind"])
        self.rows[key] += 1
        if tokens is not None:
            self.row_tokens[key] += tokens
