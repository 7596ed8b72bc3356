"""AFP's dataset preparation: rows checked, pairs tokenized, pair-only and replay rows added to SFTTrainer's rows.

`AFPTrainer._prepare_dataset` (which SFTTrainer calls for the train and eval datasets) hands its work here:

1. Replay rows a built dataset carries (`replay_text`) are split off; for the train dataset, the rows drawn
   from `AFPConfig.replay_file` / `replay_dataset=` join them (`trainers/afp_replay.py`).
2. The columns are checked (`xling_align.data.columns.training_column_groups`: `prompt` + `completion` and/or
   `source_sentence` + `target_sentence`, or another SFTTrainer format) and so is every row: a row needs an
   instruction or a pair, a pair both its sentences, a prompt its completion.
3. The pairs are tokenized here, once, with the trainer's `tokenize_pair` (checked, `trainers/subclass_checks.py`),
   into `source_input_ids` / `target_input_ids`: the result is cached with the dataset, and a bad row fails
   before training starts instead of at some step.
4. Rows with an instruction go through SFTTrainer's own preparation (tokens, completion mask, truncation).
   SFTTrainer would drop a row without instruction tokens (it has no label), so rows with only a pair bypass it
   and are appended as one EOS token without label (the SFT term of a batch without instructions is exactly 0:
   TRL's token-count normalisation is clamped at 1); with `contrastive_weight=0` they are dropped. Rows that
   SFTTrainer drops because their prompt fills `max_length` are counted and reported.
5. With packing, the instructions are packed with their pairs (`trainers/afp_packing.py`); replay rows are
   packed among themselves.

Streaming (`IterableDataset`) is refused: pair-only rows are split from the instructions and appended, which a
stream cannot do without reading it to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, IterableDataset, concatenate_datasets
from transformers.utils import logging

from xling_align.data.columns import (
    COMPLETION,
    PAIR_TOKEN_COLUMNS,
    PROMPT,
    REPLAY_TEXT,
    SOURCE_INPUT_IDS,
    SOURCE_SENTENCE,
    TARGET_INPUT_IDS,
    TARGET_SENTENCE,
    training_column_groups,
)

from .afp_packing import pack_rows_with_pairs
from .afp_replay import (
    drawn_replay_texts,
    merged_with_replay,
    packed_replay_rows,
    replay_row_count,
    tokenize_replay_rows,
)
from .subclass_checks import checked_pair_ids
from .trl_workarounds import untruncated

logger = logging.get_logger(__name__)

_HAS_INSTRUCTION = "has_instruction"  # a column that lives only during preparation


@dataclass
class TrainerHooks:
    """What the preparation needs from the trainer.

    Attributes:
        sft_prepare: SFTTrainer's `_prepare_dataset` (bound), for the instruction rows.
        tokenize_pair: the trainer's `tokenize_pair(source, target, max_length)`, perhaps overridden.
        trainer_name: the trainer's class name, for errors about its `tokenize_pair`.
        tokenizer: the trainer's tokenizer (EOS of the stand-in rows, replay rows).
        replay_source: documents to draw the train dataset's replay rows from, or None.
    """

    sft_prepare: Callable[..., Any]
    tokenize_pair: Callable[[str, str, int | None], Any]
    trainer_name: str
    tokenizer: Any
    replay_source: list[str] | None

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0


def prepare_afp_dataset(
    hooks: TrainerHooks, dataset, processing_class, args, packing: bool, formatting_func, dataset_name: str
) -> tuple[Dataset | IterableDataset, bool]:
    """`(prepared dataset, whether it holds replay rows)`; the arguments are SFTTrainer's `_prepare_dataset`'s."""
    dataset, replay_texts = _replay_texts_split_off(dataset, dataset_name, hooks.replay_source)
    if dataset_name == "train" and hooks.replay_source is not None:
        count = replay_row_count(len(dataset), args.replay_share)
        replay_texts = replay_texts + drawn_replay_texts(hooks.replay_source, count, args.seed)
    prepared = _prepare_rows(hooks, dataset, processing_class, args, packing, formatting_func, dataset_name)
    if not replay_texts:
        return prepared, False
    if not isinstance(prepared, Dataset):
        raise ValueError(f"replay rows need a map-style {dataset_name} dataset; load it with streaming=False.")
    keep_overflow = packing and args.packing_strategy in {"bfd_split", "wrapped"}
    replay = tokenize_replay_rows(replay_texts, hooks.tokenizer, None if keep_overflow else args.max_length)
    if packing:
        replay = packed_replay_rows(replay, args.max_length, args.packing_strategy)
    merged = merged_with_replay(prepared, replay)
    return (merged.shuffle(seed=args.seed) if args.shuffle_dataset else merged), True


def _column_names(dataset) -> list[str]:
    return list(dataset.column_names or [])


def _replay_texts_split_off(dataset, dataset_name: str, replay_source):
    """The dataset without its `replay_text` rows, and their texts (the rows `xling-align data build` adds)."""
    if REPLAY_TEXT not in _column_names(dataset):
        return dataset, []
    if isinstance(dataset, IterableDataset):
        raise ValueError(
            f"the {dataset_name} dataset is an IterableDataset (streaming); AFPTrainer needs a "
            "map-style datasets.Dataset. Load it with streaming=False."
        )
    if replay_source is not None and dataset_name == "train":
        raise ValueError(
            f"the {dataset_name} dataset already holds replay rows (column {REPLAY_TEXT!r}) "
            "and replay_share/replay_file (or replay_dataset=) asks for more: use one of the two. "
            "Set replay_share=0 to train on the dataset's own replay rows."
        )
    texts = [text for text in dataset[REPLAY_TEXT] if isinstance(text, str) and text.strip()]
    rest = dataset.filter(lambda example: not (example[REPLAY_TEXT] or "").strip())
    rest = rest.remove_columns(REPLAY_TEXT)
    if len(rest) == 0:
        raise ValueError(
            f"the {dataset_name} dataset holds only replay rows (column {REPLAY_TEXT!r}); "
            "AFP needs instruction and/or translation-pair rows beside them."
        )
    return rest, texts


def _prepare_rows(hooks: TrainerHooks, dataset, processing_class, args, packing, formatting_func, dataset_name):
    """Instruction and pair rows prepared: SFTTrainer's rows for the instructions, pair-only rows appended."""
    dataset = _with_pair_columns(hooks, dataset, args, dataset_name)
    with_instruction = dataset.filter(lambda example: example[_HAS_INSTRUCTION])
    pair_only = dataset.filter(lambda example: not example[_HAS_INSTRUCTION])
    if args.contrastive_weight == 0 and len(with_instruction) == 0:
        raise ValueError(
            f"the {dataset_name} dataset has no instruction rows and contrastive_weight=0: nothing to train. "
            "Add prompt/completion rows or set contrastive_weight > 0."
        )
    if packing and args.contrastive_weight > 0:
        return _packed_with_pairs(
            hooks, with_instruction, pair_only, processing_class, args, formatting_func, dataset_name
        )
    instruction_rows = with_instruction.remove_columns(_HAS_INSTRUCTION)
    if args.contrastive_weight == 0 or len(pair_only) == 0:
        prepared = hooks.sft_prepare(instruction_rows, processing_class, args, packing, formatting_func, dataset_name)
        return _instruction_rows_kept(with_instruction, prepared, args, packing, dataset_name)

    keep = ["input_ids", "labels", *PAIR_TOKEN_COLUMNS]
    eos_id = hooks.eos_id
    pair_only = pair_only.map(lambda example: {"input_ids": [eos_id], "labels": [-100]})
    pair_only = pair_only.select_columns(keep)
    if len(with_instruction) == 0:
        return pair_only
    prepared = hooks.sft_prepare(instruction_rows, processing_class, args, packing, formatting_func, dataset_name)
    prepared = _instruction_rows_kept(
        with_instruction, prepared, args, packing, dataset_name, pairs_left=len(pair_only)
    )
    prepared = prepared.select_columns(keep)
    if isinstance(prepared, Dataset):
        pair_only = pair_only.cast(prepared.features)
    merged = concatenate_datasets([prepared, pair_only])
    return merged.shuffle(seed=args.seed) if args.shuffle_dataset else merged


def _packed_with_pairs(
    hooks: TrainerHooks, with_instruction, pair_only, processing_class, args, formatting_func, dataset_name
):
    """Instructions tokenized as without packing, then packed with their pairs (`trainers/afp_packing.py`)."""
    if args.max_length is None:
        raise ValueError("packing=True needs max_length (the length of a packed row); it is None. Set max_length.")
    rows = with_instruction.remove_columns(_HAS_INSTRUCTION)
    if len(rows):
        # bfd_split keeps a long row's overflow in another packed row: no truncation before packing then
        with untruncated(args, keep_overflow=args.packing_strategy == "bfd_split"):
            prepared = hooks.sft_prepare(rows, processing_class, args, False, formatting_func, dataset_name)
        rows = _instruction_rows_kept(rows, prepared, args, False, dataset_name, pairs_left=len(pair_only))
    packed = pack_rows_with_pairs(rows, pair_only, args.max_length, args.packing_strategy, hooks.eos_id)
    return packed.shuffle(seed=args.seed) if args.shuffle_dataset else packed


def _instruction_rows_kept(rows, prepared, args, packing, dataset_name: str, pairs_left: int = 0):
    """SFTTrainer drops a row whose completion lies wholly beyond `max_length` (no token left to learn), with
    its translation pair, and says nothing: say it, and refuse a dataset left with nothing to train on."""
    if packing or not isinstance(rows, Dataset) or not isinstance(prepared, Dataset):
        return prepared  # packed rows are not one per example; streamed ones cannot be counted
    dropped = len(rows) - len(prepared)
    if dropped <= 0:
        return prepared
    why = (
        f"their prompt fills max_length={args.max_length} tokens, so no completion token is left to learn "
        "(SFTTrainer drops such rows, with their translation pairs)"
    )
    if dropped == len(rows) and pairs_left == 0:
        raise ValueError(
            f"all {len(rows)} instruction rows of the {dataset_name} dataset were dropped: {why}. "
            "Raise max_length, or shorten the prompts."
        )
    logger.warning(
        f"{dropped} of {len(rows)} instruction rows of the {dataset_name} dataset were dropped: {why}. "
        "Raise max_length to keep them."
    )
    return prepared


def _with_pair_columns(hooks: TrainerHooks, dataset, args, dataset_name: str):
    """The dataset checked, with its pairs' token ids and whether each row has an instruction."""
    if isinstance(dataset, IterableDataset):
        raise ValueError(
            f"the {dataset_name} dataset is an IterableDataset (streaming); AFPTrainer needs a map-style "
            "datasets.Dataset. Load it with streaming=False (or Dataset.from_generator)."
        )
    columns = _column_names(dataset)
    groups = training_column_groups(columns, f"the {dataset_name} dataset", accept_other_formats=True)
    has_pairs, has_instructions, other_sft = groups.pairs, groups.instructions, groups.other_formats
    if not has_pairs and args.contrastive_weight > 0:
        raise ValueError(
            f"the {dataset_name} dataset has columns {columns} but no {SOURCE_SENTENCE!r} and {TARGET_SENTENCE!r} "
            f"translation-pair columns, while contrastive_weight={args.contrastive_weight}. Add the pair "
            "columns (empty strings for rows without a pair) or set contrastive_weight=0."
        )
    if has_pairs and not has_instructions and not other_sft:
        # give the rows an (empty) instruction format; as pair-only rows they bypass SFT preparation
        dataset = dataset.map(lambda example: {PROMPT: "", COMPLETION: ""})
        if args.sft_weight > 0:
            logger.warning(
                f"the {dataset_name} dataset has translation pairs only: the SFT term is 0 although "
                f"sft_weight={args.sft_weight}."
            )
    method = f"{hooks.trainer_name}.tokenize_pair"

    def add_columns(example, index):
        instruction = _row_has_instruction(example, has_instructions, other_sft, index, dataset_name)
        source = example.get(SOURCE_SENTENCE) or "" if has_pairs else ""
        target = example.get(TARGET_SENTENCE) or "" if has_pairs else ""
        if bool(source.strip()) != bool(target.strip()):
            empty = SOURCE_SENTENCE if not source.strip() else TARGET_SENTENCE
            raise ValueError(
                f"row {index} of the {dataset_name} dataset has an empty {empty} but a non-empty other side "
                "of its translation pair; give both sentences, or leave both empty for a row without a pair."
            )
        if not instruction and not source.strip():
            raise ValueError(
                f"row {index} of the {dataset_name} dataset has neither an instruction (prompt/completion) "
                "nor a translation pair (source_sentence/target_sentence); remove it or fill it."
            )
        source_ids, target_ids = [], []
        if source.strip():
            source_ids, target_ids = checked_pair_ids(
                hooks.tokenize_pair(source, target, args.contrastive_max_length), method, index, dataset_name
            )
            if not source_ids or not target_ids:
                empty, text = (SOURCE_SENTENCE, source) if not source_ids else (TARGET_SENTENCE, target)
                raise ValueError(
                    f"row {index} of the {dataset_name} dataset: its {empty} {text!r} has no token after "
                    "tokenization, so it has no sentence vector; fix or remove the row."
                )
        return {SOURCE_INPUT_IDS: source_ids, TARGET_INPUT_IDS: target_ids, _HAS_INSTRUCTION: instruction}

    return dataset.map(add_columns, with_indices=True)


def _row_has_instruction(example, has_instructions, other_sft, index, dataset_name) -> bool:
    if has_instructions:
        prompt, completion = example[PROMPT] or "", example[COMPLETION] or ""
        if not isinstance(prompt, str):  # conversational prompt/completion: lists of messages
            return bool(completion)
        if prompt.strip() and not completion.strip():
            raise ValueError(
                f"row {index} of the {dataset_name} dataset has a prompt but an empty completion; the instruction "
                "loss is on the completion. Fill it, or empty the prompt too for a row with only a pair."
            )
        return bool(completion.strip())
    return any(bool(example.get(c)) for c in other_sft)
