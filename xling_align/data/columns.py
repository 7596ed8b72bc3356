"""The column names of AFP rows, and the one check of which column groups a dataset has.

Every module that writes or reads an AFP row names its columns from here: the data builders (`rows.make_row`,
`replay_rows`), the parallel-file reader (AFP rows as a pair source), `xling-align train`'s data loading
(`pipeline/training_data.py`) and the trainer (`trainers/afp_dataset.py`, `afp_packing.py`, `afp_collator.py`).
Pure Python: importing it loads neither torch nor datasets.

Columns of a built row (`ROW_COLUMNS`, in their canonical order; "" means absent):
- `prompt`, `completion`: an instruction or translation prompt and its answer (the loss is on the answer);
- `source_sentence`, `target_sentence`: a translation pair for the contrastive term;
- `source_lang`, `target_lang`: the row's direction;
- `kind`: what the row carries (`rows.KINDS`, or "replay").
A build with replay rows adds `replay_text` (the document of a replay row, "" on the others).

Columns the trainer adds while preparing a dataset: the pairs' token ids (`PAIR_TOKEN_COLUMNS`) and the flag
of drawn replay rows (`REPLAY_FLAG`).
"""

from __future__ import annotations

from typing import NamedTuple

from xling_align.errors import XlingAlignError

PROMPT = "prompt"
COMPLETION = "completion"
SOURCE_SENTENCE = "source_sentence"
TARGET_SENTENCE = "target_sentence"
SOURCE_LANG = "source_lang"
TARGET_LANG = "target_lang"
KIND = "kind"
REPLAY_TEXT = "replay_text"

INSTRUCTION_COLUMNS = (PROMPT, COMPLETION)
PAIR_COLUMNS = (SOURCE_SENTENCE, TARGET_SENTENCE)
LANGUAGE_COLUMNS = (SOURCE_LANG, TARGET_LANG)
ROW_COLUMNS = (*INSTRUCTION_COLUMNS, *PAIR_COLUMNS, *LANGUAGE_COLUMNS, KIND)
# the columns that must hold strings ("" for absent)
TEXT_COLUMNS = (*INSTRUCTION_COLUMNS, *PAIR_COLUMNS, *LANGUAGE_COLUMNS)

SOURCE_INPUT_IDS = "source_input_ids"
TARGET_INPUT_IDS = "target_input_ids"
PAIR_TOKEN_COLUMNS = (SOURCE_INPUT_IDS, TARGET_INPUT_IDS)
REPLAY_FLAG = "afp_replay"

# other instruction formats SFTTrainer reads; AFPTrainer accepts a row in one of them as an instruction
OTHER_SFT_COLUMNS = ("text", "messages", "input_ids")

_GROUP_NAMES = {INSTRUCTION_COLUMNS: "cross-lingual instructions", PAIR_COLUMNS: "translation pairs"}


class TrainingColumnsError(XlingAlignError, ValueError):
    """A dataset whose columns hold no usable AFP row; the message names the dataset, its columns and the fix."""


class ColumnGroups(NamedTuple):
    """Which kinds of training data a dataset's columns hold."""

    instructions: bool  # prompt + completion
    pairs: bool  # source_sentence + target_sentence
    other_formats: tuple[str, ...]  # OTHER_SFT_COLUMNS present (only where they are accepted)


def training_column_groups(columns, where: str, accept_other_formats: bool = False) -> ColumnGroups:
    """The column groups of a dataset with `columns`; `where` names it in errors ("the train dataset").

    Refuses half a group (`prompt` without `completion`, `source_sentence` without `target_sentence`) and a
    dataset with no group at all. `accept_other_formats`: SFTTrainer's `text` / `messages` / `input_ids`
    count as instructions (AFPTrainer accepts them; `xling-align train` reads AFP rows only).
    """
    columns = list(columns)
    complete = {}
    for group in (PAIR_COLUMNS, INSTRUCTION_COLUMNS):
        present = [name for name in group if name in columns]
        if len(present) == 1:
            missing = next(name for name in group if name not in columns)
            raise TrainingColumnsError(
                f"{where} has column {present[0]!r} but not {missing!r} (columns found: {sorted(columns)}); "
                f"{group[0]!r} and {group[1]!r} go together."
            )
        complete[group] = len(present) == 2
    others = tuple(name for name in OTHER_SFT_COLUMNS if name in columns) if accept_other_formats else ()
    groups = ColumnGroups(complete[INSTRUCTION_COLUMNS], complete[PAIR_COLUMNS], others)
    if not (groups.instructions or groups.pairs or groups.other_formats):
        needed = " and/or ".join(f"{' + '.join(group)} ({name})" for group, name in _GROUP_NAMES.items())
        other = (
            f", or instructions in another format SFTTrainer reads ({', '.join(OTHER_SFT_COLUMNS)})"
            if accept_other_formats
            else ""
        )
        raise TrainingColumnsError(
            f"{where} has columns {sorted(columns)}, but AFP training needs {needed}{other}. Build AFP rows with "
            "`xling-align data build`, or rename the columns."
        )
    return groups
