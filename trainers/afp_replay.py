"""Replay rows for AFP: plain text mixed into the training batches against forgetting.

A replay row is a document of plain language-modelling text (the base's pretraining-style data, or monolingual
text per language). It carries `replay_text` in the dataset the user gives (`xling-align data build
--replay-file` writes such rows), or it is drawn by the trainer from `AFPConfig.replay_file` / the
`replay_dataset=` argument (a `text` column) so that `replay_share` of the training rows are replay rows.

Tokenized, a replay row has `input_ids` (the document, EOS appended) and `labels` equal to them except the first
token (-100: nothing precedes it, and in a flattened padding-free batch it would otherwise be predicted from the
row before). It keeps a row flag `afp_replay`; `AFPDataCollator` splits the flagged rows of each batch into their
own sub-batch (`replay_*` keys, collated as the instructions are: padded or padding-free), which the trainer
scores in a separate forward, so the replay term has its own token count and weight.

In `AFPTrainer.compute_loss` the replay forward runs after the pair pass and before the instruction pass, on every
process (on a one-token stand-in when a batch has no replay row); the loss gains `replay_weight * replay_loss`,
the replay rows' token loss summed and divided by the replay tokens of the accumulation window (of every
process), as the SFT term is by its own tokens.
"""

from __future__ import annotations

import os

from datasets import Dataset, Sequence, Value, concatenate_datasets, load_dataset
from trl import pack_dataset

from xling_align.data.columns import REPLAY_FLAG
from xling_align.data.replay_rows import seeded_order, text_file_documents

REPLAY_PREFIX = "replay_"  # the keys of the replay sub-batch in a collated batch
_TEXT_SUFFIXES = (".txt", ".text")
_DATASET_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def replay_source(args, replay_dataset) -> list[str] | None:
    """The documents the trainer draws replay rows from (`replay_dataset=` or `AFPConfig.replay_file`), or None."""
    share = getattr(args, "replay_share", 0.0)
    if replay_dataset is not None and getattr(args, "replay_file", None):
        raise ValueError("AFPTrainer got both replay_dataset= and AFPConfig.replay_file; give one of them.")
    if replay_dataset is None and not getattr(args, "replay_file", None):
        if share > 0:
            raise ValueError(
                f"replay_share={share} but no replay text: set AFPConfig.replay_file (a .txt file, one "
                "document per line, or a file with a 'text' column) or pass replay_dataset=."
            )
        return None
    if share == 0:
        raise ValueError(
            "AFPTrainer got replay_dataset= but replay_share=0, so none of it would be used; set "
            "AFPConfig.replay_share (e.g. 0.25)."
        )
    if replay_dataset is not None:
        texts = replay_texts_of(replay_dataset, "replay_dataset")
        if not texts:
            raise ValueError("replay_dataset holds no non-empty 'text'; fill it or leave replay_dataset out.")
        return texts
    return load_replay_texts(args.replay_file)


def load_replay_texts(path: str) -> list[str]:
    """The documents of a replay file: a `.txt` file (one document per non-empty line) or a json / jsonl /
    parquet / csv file with a `text` column."""
    if not os.path.isfile(path):
        raise ValueError(
            f"replay_file={path!r} does not exist; give a .txt file (one document per line) "
            "or a json/jsonl/parquet/csv file with a 'text' column."
        )
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _TEXT_SUFFIXES:
        texts = text_file_documents(path)
    elif suffix in _DATASET_SUFFIXES:
        dataset = load_dataset(_DATASET_SUFFIXES[suffix], data_files=path, split="train")
        texts = replay_texts_of(dataset, f"replay_file {path!r}")
    else:
        raise ValueError(
            f"replay_file={path!r} has suffix {suffix!r}; use .txt (one document per line) or "
            ".json/.jsonl/.parquet/.csv with a 'text' column."
        )
    if not texts:
        raise ValueError(f"replay_file={path!r} holds no non-empty text; fill it or drop replay_file.")
    return texts


def replay_texts_of(dataset, name: str) -> list[str]:
    """The non-empty `text` values of a replay dataset."""
    columns = list(dataset.column_names or [])
    if "text" not in columns:
        raise ValueError(f"the {name} has columns {columns}; a replay dataset needs a 'text' column of plain text.")
    return [text for text in dataset["text"] if isinstance(text, str) and text.strip()]


def replay_row_count(training_rows: int, share: float) -> int:
    """How many replay rows make `share` of a dataset that holds `training_rows` other rows."""
    return round(share * training_rows / (1.0 - share))


def drawn_replay_texts(texts: list[str], count: int, seed: int) -> list[str]:
    """`count` documents from `texts`: a seeded permutation, repeated when more are needed than there are."""
    order = seeded_order(len(texts), seed)
    return [texts[order[index % len(order)]] for index in range(count)]


def tokenize_replay_rows(texts: list[str], tokenizer, max_length: int | None) -> Dataset:
    """Replay documents -> rows of `input_ids`, `labels` (all tokens but the first), the `afp_replay` flag."""
    eos = tokenizer.eos_token_id
    input_ids, labels = [], []
    for text in texts:
        ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
        if eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        if max_length is not None:
            ids = ids[:max_length]
        input_ids.append(ids)
        labels.append([-100] + ids[1:])
    return Dataset.from_dict(
        {"input_ids": input_ids, "labels": labels, REPLAY_FLAG: [True] * len(texts)}, features=_row_features()
    )


def packed_replay_rows(rows: Dataset, max_length: int, strategy: str) -> Dataset:
    """Replay rows packed among themselves (never with instructions, so a packed row is wholly one kind)."""
    packed = pack_dataset(rows.select_columns(["input_ids", "labels"]), max_length, strategy)
    return packed.add_column(REPLAY_FLAG, [True] * len(packed))


def with_replay_flag(rows, flag: bool):
    """Rows with the `afp_replay` column (False for instruction / pair rows)."""
    if REPLAY_FLAG in (rows.column_names or []):
        return rows
    return rows.add_column(REPLAY_FLAG, [flag] * len(rows))


def merged_with_replay(prepared: Dataset, replay: Dataset) -> Dataset:
    """Prepared instruction/pair rows and replay rows in one dataset (missing columns filled empty)."""
    prepared = with_replay_flag(prepared, False)
    for name, feature in prepared.features.items():
        if name not in replay.column_names:
            replay = replay.add_column(name, [_empty_like(feature)] * len(replay))
    replay = replay.select_columns(list(prepared.column_names)).cast(prepared.features)
    return concatenate_datasets([prepared, replay])


def _empty_like(feature):
    if isinstance(feature, (Sequence, list)):
        return []
    if isinstance(feature, Value) and feature.dtype == "bool":
        return False
    return None


def _row_features():
    from datasets import Features

    return Features(
        {"input_ids": Sequence(Value("int64")), "labels": Sequence(Value("int64")), REPLAY_FLAG: Value("bool")}
    )


def stand_in_feature(eos_id: int, packed: bool) -> dict:
    """One EOS token without label: the sub-batch of a kind that a batch lacks (every process runs both
    forwards, as distributed engines require, and the term of an empty kind is exactly 0)."""
    feature = {"input_ids": [eos_id], "labels": [-100]}
    if packed:
        feature["seq_lengths"] = [1]
    return feature
