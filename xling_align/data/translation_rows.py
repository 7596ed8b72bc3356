"""Rows from translation pairs: a parallel corpus (`source="parallel"`) or the `translation_file` of an instruction
build.

- `source="parallel"`: every pair of the corpus in both directions, as `translation+pair` rows (or `pair`
  rows with `translation_prompts=False`); held-out pairs are a uniform sample of the file's records.
- `translation_file`: translation samples `"{src} Translate into {Target}: {tgt}"`, direction flipped with
  probability 1/2, as `translation+pair` rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from xling_align.data.choices import choose_heldout, uniforms
from xling_align.data.config import DataBuildConfig
from xling_align.data.parallel import ParallelPair, iter_hub_translation_pairs, iter_parallel_file, same_language
from xling_align.data.readers import InvalidRecords
from xling_align.data.rows import make_row
from xling_align.data.stats import BuildStats
from xling_align.data.templates import TranslationTemplate


def translation_rows(
    config: DataBuildConfig,
    template: TranslationTemplate | None,
    pair: ParallelPair,
    round_index: int,
    both_directions: bool,
) -> list[dict]:
    """Rows of one translation pair: both directions, or one direction flipped with probability 1/2.

    With a template the rows are `translation+pair` (prompt, completion and the pair); without, `pair`.
    """
    forward = (pair.source_lang, pair.target_lang, pair.source, pair.target)
    backward = (pair.target_lang, pair.source_lang, pair.target, pair.source)
    directions = [forward, backward]
    if not both_directions:
        flip, _ = uniforms(config.seed, "translation", pair.source_lang, pair.target_lang, pair.line, round_index)
        directions = [backward if flip < 0.5 else forward]
    rows = []
    for source_lang, target_lang, source, target in directions:
        if template is None:
            rows.append(make_row(source_lang, target_lang, "pair", source_sentence=source, target_sentence=target))
        else:
            prompt, completion = template.render(source, target, source_lang, target_lang)
            rows.append(make_row(source_lang, target_lang, "translation+pair", prompt, completion, source, target))
    return rows


def _canonical(code: str, languages: list[str]) -> str | None:
    """The build language that `code` names, or None."""
    return next((language for language in languages if same_language(code, language)), None)


def iter_translation_file_rows(config: DataBuildConfig, invalid: InvalidRecords, stats: BuildStats) -> Iterator[dict]:
    """The `translation_file` rows of an instruction build: one direction per pair and round."""
    template = TranslationTemplate(config.translation_template)
    counts = Counter()
    for pair in iter_parallel_file(config.translation_file, invalid=invalid, counts=counts):
        source_lang = _canonical(pair.source_lang, config.languages)
        target_lang = _canonical(pair.target_lang, config.languages)
        if source_lang is None or target_lang is None or source_lang == target_lang:
            stats.skipped["other-languages"] += 1
            continue
        pair = ParallelPair(source_lang, target_lang, pair.source, pair.target, pair.line)
        stats.items_read[f"{source_lang}-{target_lang} (translation file)"] += 1
        for round_index in range(config.repeat):
            yield from translation_rows(config, template, pair, round_index, both_directions=False)
    stats.skipped["empty"] += counts["empty"]


def _parallel_pairs(config: DataBuildConfig, invalid: InvalidRecords, counts: Counter) -> Iterator[ParallelPair]:
    languages = (config.languages[0], config.languages[1])
    if config.hub_dataset:
        pairs = iter_hub_translation_pairs(config.hub_dataset, languages, config.hub_config, config.split)
    else:
        columns = tuple(config.columns) if config.columns else None
        pairs = iter_parallel_file(config.input, languages=languages, invalid=invalid, counts=counts, columns=columns)
    for pair in pairs:
        # rows carry the build's codes, whatever the file calls its columns
        if same_language(pair.source_lang, languages[0]):
            yield ParallelPair(languages[0], languages[1], pair.source, pair.target, pair.line)
        else:
            yield ParallelPair(languages[1], languages[0], pair.source, pair.target, pair.line)


def iter_parallel_rows(
    config: DataBuildConfig, invalid: InvalidRecords, stats: BuildStats, heldout: list[tuple[str, str, str, str]]
) -> Iterator[dict]:
    """Rows of a parallel corpus, both directions per pair and round.

    The pairs of `config.heldout_size` records (a uniform sample of the file) are appended to `heldout` in
    the `languages` order instead of becoming rows.
    """
    template = TranslationTemplate(config.translation_template) if config.translation_prompts else None
    counts = Counter()
    heldout_lines: set[int] = set()
    if config.heldout_size:
        # a first pass counts the records, so held-out pairs are a uniform sample of the file; problems are
        # counted once, in the pass below
        total = sum(1 for _ in _parallel_pairs(config, InvalidRecords(skip=config.skip_invalid), Counter()))
        heldout_lines = choose_heldout(range(total), config.heldout_size, config.seed)
    for index, pair in enumerate(_parallel_pairs(config, invalid, counts)):
        stats.items_read[f"{pair.source_lang}-{pair.target_lang}"] += 1
        if index in heldout_lines:
            # one direction (the --languages order) so that a .tsv file can hold them
            if pair.source_lang == config.languages[0]:
                heldout.append((pair.source_lang, pair.target_lang, pair.source, pair.target))
            else:
                heldout.append((pair.target_lang, pair.source_lang, pair.target, pair.source))
            continue
        for round_index in range(config.repeat):
            yield from translation_rows(config, template, pair, round_index, both_directions=True)
    stats.heldout_pairs = len(heldout)
    if counts["empty"]:
        stats.skipped["empty"] += counts["empty"]
