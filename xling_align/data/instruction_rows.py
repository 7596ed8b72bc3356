"""Rows from an instruction set (Bactrian-X or a multilingual instruction file): the bilingual and pivot modes.

- `bilingual` (two languages A, B): for each item id present in both and each of `repeat` rounds, the
  source language is A or B with probability 1/2; with probability `cross_probability` the answer is in
  the other language (an `instruction+pair` row: CIF prompt in the source language, completion = the
  target language's `output` of the same id, pair = the two `instruction` fields), else in the same
  language (an `instruction` row, plus a `pair` row source -> other language, so every item and round
  still gives one MCL pair).
- `pivot` (first language P, others X1..Xn): the bilingual scheme for every pair (P, Xi); pairs are
  always P <-> Xi.

Memory: the first language (A / the pivot) is held as a dict of items; every other language is streamed
once, joined by id on the fly. A full 52-language Bactrian-X build holds one language (~67k items).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from xling_align.data.bactrian_x import (
    BACTRIAN_X_HUB_NAME,
    HubBactrianX,
    InstructionFile,
    InstructionItem,
    ItemFields,
    LocalBactrianX,
)
from xling_align.data.choices import choose_heldout, uniforms
from xling_align.data.config import DataBuildConfig
from xling_align.data.readers import InvalidRecords
from xling_align.data.rows import make_row
from xling_align.data.stats import BuildStats
from xling_align.data.templates import InstructionTemplate


def _item_fields(config: DataBuildConfig) -> ItemFields:
    return ItemFields(config.id_column, config.instruction_column, config.input_column, config.output_column)


def instruction_source(config: DataBuildConfig):
    """The item source a config reads from (local folder, hub, or one instruction file)."""
    fields = _item_fields(config)
    if config.source == "instructions":
        return InstructionFile(config.input, config.language_column, fields)
    if config.input_dir is not None:
        return LocalBactrianX(config.input_dir, fields)
    return HubBactrianX(config.hub_dataset or BACTRIAN_X_HUB_NAME, config.split, fields)


def iter_aligned_items(
    source, pivot: str, others: list[str], invalid: InvalidRecords, stats: BuildStats, on_pivot_loaded=None
) -> Iterator[tuple[str, InstructionItem, InstructionItem]]:
    """Yield `(other_language, pivot_item, other_item)` for every id present in the pivot and the other.

    The pivot's items are held in memory; each other language is streamed once. Ids missing on one
    side and repeated ids are skipped and counted in `stats.skipped`. `on_pivot_loaded(ids)` is called
    once the pivot is read (used to choose held-out ids before any row is produced).
    """
    pivot_items: dict[str, InstructionItem] = {}
    counts = Counter()
    for item in source.iter_items(pivot, invalid, counts):
        if item.id in pivot_items:
            stats.skipped[f"duplicate-id:{pivot}"] += 1
            continue
        pivot_items[item.id] = item
    stats.items_read[pivot] += len(pivot_items)
    if on_pivot_loaded is not None:
        on_pivot_loaded(list(pivot_items))
    for language in others:
        seen: set[str] = set()
        for item in source.iter_items(language, invalid, counts):
            if item.id in seen:
                stats.skipped[f"duplicate-id:{language}"] += 1
                continue
            seen.add(item.id)
            stats.items_read[language] += 1
            partner = pivot_items.get(item.id)
            if partner is None:
                stats.skipped[f"id-not-in-{pivot}:{language}"] += 1
                continue
            yield language, partner, item
        missing = sum(1 for item_id in pivot_items if item_id not in seen)
        if missing:
            stats.skipped[f"missing-in:{language}"] += missing
    if counts["empty"]:
        stats.skipped["empty"] += counts["empty"]


def instruction_rows(
    config: DataBuildConfig, template: InstructionTemplate, items: dict[str, InstructionItem], round_index: int
) -> list[dict]:
    """The rows of one aligned item (items: language -> item) for one round."""
    first, second = list(items)
    item_id = items[first].id
    pick_source, pick_cross = uniforms(config.seed, first, second, item_id, round_index)
    source_lang = first if pick_source < 0.5 else second
    other_lang = second if source_lang == first else first
    cross = pick_cross < config.cross_probability
    target_lang = other_lang if cross else source_lang
    source_item, target_item = items[source_lang], items[target_lang]
    prompt, completion = template.render(
        source_item.instruction, source_item.input, target_item.output, source_lang, target_lang
    )
    if cross:
        return [
            make_row(
                source_lang,
                target_lang,
                "instruction+pair",
                prompt,
                completion,
                source_item.instruction,
                target_item.instruction,
            )
        ]
    return [
        make_row(source_lang, source_lang, "instruction", prompt, completion),
        make_row(
            source_lang,
            other_lang,
            "pair",
            source_sentence=source_item.instruction,
            target_sentence=items[other_lang].instruction,
        ),
    ]


def iter_instruction_set_rows(
    config: DataBuildConfig, invalid: InvalidRecords, stats: BuildStats, heldout: list[tuple[str, str, str, str]]
) -> Iterator[dict]:
    """Rows of an instruction set joined by id (bilingual or pivot mode).

    The pairs of `config.heldout_size` items (chosen once the pivot is read) are appended to `heldout` as
    `(pivot, other language, pivot instruction, other instruction)` instead of becoming rows.
    """
    template = InstructionTemplate(config.template, config.answer_in_target_language)
    pivot, others = config.languages[0], config.languages[1:]
    heldout_ids: set[str] = set()
    heldout_by_language: dict[str, list] = {}

    def choose(ids):
        heldout_ids.update(choose_heldout(ids, config.heldout_size, config.seed))

    aligned = iter_aligned_items(instruction_source(config), pivot, others, invalid, stats, choose)
    for language, pivot_item, other_item in aligned:
        if pivot_item.id in heldout_ids:
            heldout_by_language.setdefault(language, []).append(
                (pivot, language, pivot_item.instruction, other_item.instruction)
            )
            continue
        items = {pivot: pivot_item, language: other_item}
        for round_index in range(config.repeat):
            yield from instruction_rows(config, template, items, round_index)
    for language in others:
        heldout.extend(heldout_by_language.get(language, []))
    stats.heldout_pairs = len(heldout)
