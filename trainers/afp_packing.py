"""Packing AFP rows: the instructions packed with TRL's strategies, each translation pair carried along.

TRL's packing keeps only `input_ids` and `labels` and concatenates rows, so the pair columns cannot travel
through it. Here every tokenized instruction row gets a `row_index` column (its index, once per token), the rows
are packed by `trl.pack_dataset` (BFD, BFD-split or wrapped), and each packed row then carries, as lists of
token-id lists, the pairs of the instruction rows it holds: an instruction and its pair stay in the same packed
row, so a step sees the pairs of the instructions it trains on, as without packing. A row split over several
packed rows (`bfd_split`, `wrapped`) gives its pair to the first of them only. Rows with a pair and no
instruction have no tokens to pack; their pairs are dealt out over the packed rows in turn (or, with no
instruction at all, each becomes one packed row of a single unlabelled EOS token). Every pair is used once per
epoch. With `bfd` every completion token is scored exactly once (a row beyond `max_length` is truncated, as the
unpacked path does); `bfd_split` keeps such a row's overflow in another packed row, and `wrapped` cuts rows
anywhere, so there the token after each cut starts a sequence and is not predicted (TRL's strategies, pairs or
not; `wrapped` rows also attend across documents).

`AFPDataCollator` reads the nested pair lists (`pair_lists_of_batch`); with TRL's BFD packing the instructions
are collated padding-free.
"""

from __future__ import annotations

from datasets import Dataset, Features, Sequence, Value
from trl import pack_dataset

from xling_align.data.columns import PAIR_TOKEN_COLUMNS

_ROW_INDEX = "afp_row_index"


def pack_rows_with_pairs(
    rows: Dataset,
    pair_only: Dataset | None,
    max_length: int,
    strategy: str,
    eos_id: int,
    map_kwargs: dict | None = None,
) -> Dataset:
    """Pack tokenized instruction `rows` (`input_ids`, `labels`, the pair token columns) into rows of at most
    `max_length` tokens and attach the pairs, as described in the module docstring.

    `pair_only`: rows with only the pair token columns (their pairs join the stream), or None.
    Returns a Dataset with `input_ids`, `labels`, `seq_lengths` (the BFD strategies) and the two pair columns as
    lists of token-id lists.
    """
    extra_pairs = _pairs_of(pair_only) if pair_only is not None and len(pair_only) else []
    if len(rows) == 0:
        return _pair_only_packs(extra_pairs, eos_id)
    sources, targets = rows[PAIR_TOKEN_COLUMNS[0]], rows[PAIR_TOKEN_COLUMNS[1]]
    indexed = rows.select_columns(["input_ids", "labels"]).map(
        lambda example, index: {_ROW_INDEX: [index] * len(example["input_ids"])},
        with_indices=True,
        **(map_kwargs or {}),
    )
    packed = pack_dataset(indexed, max_length, strategy, map_kwargs or {})
    # which packed row holds each instruction row first; its pair goes there
    taken: set[int] = set()
    packed_sources: list[list[list[int]]] = []
    packed_targets: list[list[list[int]]] = []
    for indices in packed[_ROW_INDEX]:
        own_sources, own_targets = [], []
        for index in dict.fromkeys(indices):  # the rows of this packed row, in order, each once
            if index in taken:
                continue
            taken.add(index)
            if sources[index]:
                own_sources.append(sources[index])
                own_targets.append(targets[index])
        packed_sources.append(own_sources)
        packed_targets.append(own_targets)
    for position, (source, target) in enumerate(extra_pairs):
        packed_sources[position % len(packed_sources)].append(source)
        packed_targets[position % len(packed_targets)].append(target)
    packed = packed.remove_columns(_ROW_INDEX)
    features = packed.features.copy()
    for name in PAIR_TOKEN_COLUMNS:
        features[name] = Sequence(Sequence(Value("int64")))
    return (
        packed.add_column(PAIR_TOKEN_COLUMNS[0], packed_sources)
        .add_column(PAIR_TOKEN_COLUMNS[1], packed_targets)
        .cast(features)
    )


def _pairs_of(rows: Dataset) -> list[tuple[list[int], list[int]]]:
    return [
        (source, target)
        for source, target in zip(rows[PAIR_TOKEN_COLUMNS[0]], rows[PAIR_TOKEN_COLUMNS[1]], strict=True)
        if source
    ]


def _pair_only_packs(pairs: list[tuple[list[int], list[int]]], eos_id: int) -> Dataset:
    features = Features(
        {
            "input_ids": Sequence(Value("int64")),
            "labels": Sequence(Value("int64")),
            "seq_lengths": Sequence(Value("int64")),
            **{name: Sequence(Sequence(Value("int64"))) for name in PAIR_TOKEN_COLUMNS},
        }
    )
    return Dataset.from_dict(
        {
            "input_ids": [[eos_id] for _ in pairs],
            "labels": [[-100] for _ in pairs],
            "seq_lengths": [[1] for _ in pairs],
            PAIR_TOKEN_COLUMNS[0]: [[source] for source, _ in pairs],
            PAIR_TOKEN_COLUMNS[1]: [[target] for _, target in pairs],
        },
        features=features,
    )


def pair_lists_of_batch(features: list[dict]) -> tuple[list[list[int]], list[list[int]]]:
    """The sources and targets of a batch's rows: one pair per unpacked row (a list of ids, empty: none), any
    number per packed row (a list of id lists)."""
    sources, targets = [], []
    for feature in features:
        source, target = feature.get(PAIR_TOKEN_COLUMNS[0]), feature.get(PAIR_TOKEN_COLUMNS[1])
        if not source:
            continue
        if isinstance(source[0], (list, tuple)):
            sources.extend(list(ids) for ids in source)
            targets.extend(list(ids) for ids in target)
        else:
            sources.append(source)
            targets.append(target)
    return sources, targets
