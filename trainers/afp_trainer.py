"""`AFPTrainer`: TRL's SFTTrainer plus AFP's multilingual contrastive term on translation pairs."""

from __future__ import annotations

import logging as std_logging
import textwrap
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset, IterableDataset, concatenate_datasets
from torch import nn
from transformers.utils import logging
from trl import SFTTrainer

from xling_align.trainers import pair_head as pair_heads
from xling_align.alignment.contrastive_loss import CITATION, ContrastiveOutput, contrastive_loss_and_accuracy
from xling_align.data.replay_rows import REPLAY_TEXT_COLUMN
from xling_align.trainers.engine_checks import UnsupportedSetupError, check_pair_pass_support, check_requested_engine_runs
from xling_align.alignment.layer_forward import compute_inside_forward
from xling_align.alignment.model_parts import (decoder_blocks, hidden_size, normalize_layer, num_decoder_layers,
                                     tied_parameter_names, unwrap_model)
from xling_align.trainers.padding_free import padding_free_mismatch
from xling_align.alignment.pooling import pad_right, pool_hidden_states, sentence_token_ids

from .afp_config import AFPConfig
from .afp_packing import pack_rows_with_pairs, pair_lists_of_batch
from .afp_replay import (REPLAY_FLAG, REPLAY_PREFIX, drawn_replay_texts, load_replay_texts,
                         merged_with_replay, packed_replay_rows, replay_row_count, replay_texts_of, stand_in_feature,
                         tokenize_replay_rows)

logger = logging.get_logger(__name__)

INSTRUCTION_COLUMNS = ("prompt", "completion")
PAIR_COLUMNS = ("source_sentence", "target_sentence")
# tokenized pair columns added by dataset preparation; they must survive `remove_unused_columns`
PAIR_TOKEN_COLUMNS = ("source_input_ids", "target_input_ids")
# other instruction formats SFTTrainer accepts; a row using one of them counts as having an instruction
OTHER_SFT_COLUMNS = ("text", "messages", "input_ids")


class AFPTrainer(SFTTrainer):
    """Trainer for AFP (Align aFter Pre-training, Li et al., NAACL 2024).

    Each training row carries a cross-lingual instruction (`prompt`, `completion`; loss on the completion only)
    and/or a translation pair (`source_sentence`, `target_sentence`); empty strings mean absent. A row with
    neither is refused when the dataset is prepared. The loss of a batch is

        sft_weight * SFT(instructions) + contrastive_weight * InfoNCE(pooled source vectors, pooled target vectors)

    where the pair vectors are `hidden_states[contrastive_layer]` pooled with `contrastive_pooling` (with several
    layers, the InfoNCE term is the mean of the layers' terms). The pair forward runs the sources and targets of
    the batch together, stops after block `contrastive_layer` (the deepest one) and never builds logits. The
    InfoNCE term is divided by the gradient-accumulation steps exactly when TRL's SFT loss is
    normalised over the whole accumulation window, so both terms keep their weights under accumulation. A batch
    whose (global) number of pairs is below 2 has no negatives: its contrastive term is skipped and counted
    (`contrastive_skipped` metric, `self.contrastive_skipped_batches`). Rows with only a pair enter the
    instruction forward as one EOS token without label, so the SFT term of a batch without instructions is
    exactly 0 (TRL's token-count normalisation is clamped at 1); with `contrastive_weight=0` they are dropped.

    Replay (`AFPConfig.replay_share`, `replay_file` or `replay_dataset=`; rows with `replay_text`): plain-text rows
    mixed into the batches against forgetting (`trainers/afp_replay.py`). The collator splits them off into their
    own sub-batch, scored in a third forward (after the pair pass, before the instruction pass, on every process,
    a one-token stand-in when a batch has none); the loss gains `replay_weight * replay_loss`, the replay rows'
    token loss summed and divided by the replay tokens of the accumulation window (of every process), as the SFT
    term is by its own tokens.

    Logged metrics (train and `eval_` prefixed): `contrastive_loss`, `contrastive_accuracy` (in-batch top-1
    retrieval of the right translation), `contrastive_skipped`, `replay_loss` (with replay), plus SFTTrainer's. When
    `args.alignment_eval_file` is set, `AlignmentEvalCallback` adds `eval_alignment_retrieval_accuracy`.

    The instruction forward runs even with `sft_weight=0`: under DDP it is the pass that synchronises gradients.

    The pair pass enters through the model's wrapper (DDP, FSDP2, DeepSpeed, PEFT, accelerate's mixed precision;
    see `xling_align.alignment.layer_forward`), runs before the instruction pass (under DDP with `find_unused_parameters`
    the last forward decides which parameters count as used), and runs on every process of a distributed run,
    on a one-token stand-in when a process has no pair in its batch (sharded engines gather parameters in every
    forward; each process must join). Engine setups it cannot serve (FSDP or DeepSpeed requested on a machine
    without GPU, where accelerate would drop them silently; context / sequence / tensor parallelism; FSDP1)
    stop the constructor with `xling_align.trainers.engine_checks.UnsupportedSetupError`.

    Projection heads: pass `pair_head=` (any `nn.Module` from pooled vectors to vectors). It is applied to the
    pooled pair vectors inside the model's forward, attached to the model as the submodule `xling_pair_head`
    (after PEFT wrapping, so it trains under LoRA too), so the optimizer, gradient clipping and every engine
    treat it as a weight; it is saved as `pair_head.safetensors` in each checkpoint and in the saved model or
    adapter folder (not in the model's own weights file), restored on `resume_from_checkpoint` and
    `load_best_model_at_end`, and reloaded with `xling_align.trainers.pair_head.load_pair_head(head, folder)`. A module
    with trainable parameters kept on the trainer outside the model (e.g. `self.proj` used in an overridden
    `encode_pairs`) would get gradients but never be optimised nor saved: the trainer refuses it, naming it.

    Methods meant to be overridden by subclasses:
        - `encode_pairs(model, input_ids, attention_mask)`: token ids of the stacked sources and targets ->
          one vector per sentence (default: `hidden_states[contrastive_layer]` pooled, then `pair_head`). Override
          for another representation; use `xling_align.alignment.layer_forward.compute_inside_forward` so the engines see
          it, and a `pair_head` (not a module of your own on the trainer) for trainable parameters.
        - `compute_contrastive_loss(source_embeddings, target_embeddings)`: vectors -> `ContrastiveOutput`
          (default: InfoNCE of `xling_align.alignment.contrastive_loss`). Override for another alignment objective.
          Under DDP it is called on every process, also with `(0, hidden)` tensors.
        - `tokenize_pair(source, target, max_length)`: two sentences -> two lists of token ids (default:
          `xling_align.alignment.pooling.sentence_token_ids`: with `last` pooling, an EOS the tokenizer appends is dropped,
          so the pooled token is the sentence's last real token, not the same EOS for every sentence).
        What an override returns is checked where it is used (type, shape, and in training a gradient), so a
        mistake stops with an error naming the method instead of failing deep inside, or training nothing.

    Args:
        model: model id, `PreTrainedModel` or `PeftModel`, as for SFTTrainer.
        args: an `AFPConfig` (an `SFTConfig` or `TrainingArguments` is converted with AFP's defaults).
        pair_head: optional `nn.Module` applied to the pooled pair vectors (see above).
        replay_dataset: optional `datasets.Dataset` with a `text` column to draw replay rows from (instead of
            `AFPConfig.replay_file`; needs `replay_share` > 0).
        All other arguments are SFTTrainer's (`train_dataset`, `eval_dataset`, `processing_class`, `peft_config`,
        `callbacks`, ...). A custom `data_collator` is wrapped like the default one.

    Example:
        >>> from datasets import Dataset
        >>> from torch import nn
        >>> from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM
        >>> from xling_align import AFPConfig, AFPTrainer
        >>> from xling_align.trainers.pair_head import load_pair_head
        >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64,
        ...     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, eos_token_id=1))
        >>> rows = Dataset.from_dict({
        ...     "prompt": ["Say hello. Answer in German:", ""],
        ...     "completion": [" Hallo!", ""],
        ...     "source_sentence": ["Good morning", "Thank you"],
        ...     "target_sentence": ["Guten Morgen", "Danke"],
        ... })
        >>> args = AFPConfig(output_dir="/tmp/afp-doc", max_steps=1, per_device_train_batch_size=2,
        ...                  report_to="none", activation_checkpointing=False)
        >>> head = nn.Sequential(nn.Linear(32, 16), nn.Tanh())   # optional projection head
        >>> trainer = AFPTrainer(model=model, args=args, train_dataset=rows, processing_class=ByT5Tokenizer(),
        ...                      pair_head=head)
        >>> trainer.train().global_step  # doctest: +ELLIPSIS
        {...'contrastive_loss': ...}
        1
        >>> trainer.save_model("/tmp/afp-doc/final")   # model + pair_head.safetensors
        >>> reloaded = load_pair_head(nn.Sequential(nn.Linear(32, 16), nn.Tanh()), "/tmp/afp-doc/final")
    """

    _tag_names = ["trl", "sft", "afp", "xling-align", "cross-lingual-alignment"]
    _name = "AFP"
    _paper = {
        "title": "Improving In-context Learning of Multilingual Generative Language Models with Cross-lingual "
        "Alignment",
        "id": "2311.08089",
        "citation": textwrap.dedent(CITATION),
    }

    def __init__(self, model, args: AFPConfig | None = None, *positional, pair_head: nn.Module | None = None,
                 replay_dataset: Dataset | None = None, **kwargs):
        if args is None:
            model_name = model if isinstance(model, str) else model.config._name_or_path or "model"
            args = AFPConfig(f"{str(model_name).split('/')[-1]}-AFP")
        elif not isinstance(args, AFPConfig):
            values = args.to_dict()
            values["hub_token"] = args.hub_token  # to_dict hides it
            args = AFPConfig(**{k: v for k, v in values.items() if k in AFPConfig.__dataclass_fields__})
        # before any work: an FSDP / DeepSpeed request that accelerate would drop on a CPU
        check_requested_engine_runs(args)
        if pair_head is not None:
            if not isinstance(pair_head, nn.Module):
                raise TypeError(f"pair_head must be a torch nn.Module, got {type(pair_head).__name__}.")
            if args.ddp_find_unused_parameters:
                raise UnsupportedSetupError(
                    "pair_head with ddp_find_unused_parameters=True: the head is used only by the pair forward, so DDP's "
                    "search for unused parameters (which looks at the last forward of a step, the instruction pass) "
                    "would count it unused and then fail when its gradient arrives. Leave ddp_find_unused_parameters "
                    "unset: with a pair_head AFPTrainer sets it to False (every parameter gets a gradient each step)."
                )
        self.contrastive_skipped_batches = 0
        self._replay_source = _replay_source(args, replay_dataset)  # documents to draw replay rows from, or None
        self._replay_enabled = False  # set when a prepared dataset holds replay rows
        self._replay_items_in_window: torch.Tensor | None = None
        self._pending_pair_metrics: dict[str, list[torch.Tensor]] = {}  # per mode: (loss, accuracy) tensors per step
        self.pair_head: nn.Module | None = None
        self._pair_pooling = args.contrastive_pooling
        with _padding_free_length_check_passed(self, args):
            super().__init__(model, args, *positional, **kwargs)
        _refuse_inexact_padding_free(self.model, args)
        if self._replay_source is not None and not self._replay_enabled:
            # SFTTrainer skips _prepare_dataset with skip_prepare_dataset: the replay rows were never added
            raise ValueError("replay_share / replay_file (or replay_dataset=) were given but the training dataset "
                             "was not prepared (dataset_kwargs={'skip_prepare_dataset': True}), so no replay row "
                             "was added. Let AFPTrainer prepare the dataset, or add the replay rows yourself.")
        try:
            self._pair_layers = [normalize_layer(self.model, layer, "contrastive_layer")
                                 for layer in args.contrastive_layers]
        except ValueError as error:
            raise UnsupportedSetupError(f"AFPConfig.contrastive_layer: {error}") from None
        if len(set(self._pair_layers)) != len(self._pair_layers):
            raise UnsupportedSetupError(
                f"AFPConfig.contrastive_layer={args.contrastive_layer!r} names the same hidden state twice on this "
                f"model (as indices 0..{num_decoder_layers(self.model)}: {self._pair_layers}); list each layer once.")
        if args.contrastive_weight > 0 or args.alignment_eval_file:
            try:  # the pair pass (and the alignment callback) needs the decoder blocks: fail now, not at step 1
                decoder_blocks(self.model)
            except ValueError as error:
                raise UnsupportedSetupError(str(error)) from None
        check_pair_pass_support(self.accelerator)
        if pair_head is not None:
            pair_heads.attach_pair_head(unwrap_model(self.model), pair_head)
            self.pair_head = pair_head
            if args.ddp_find_unused_parameters is None:
                args.ddp_find_unused_parameters = False
        # wrapped after SFTTrainer.__init__, which sets the pad token only when it builds its own collator
        eos_id = self._tokenizer.eos_token_id if self._tokenizer.eos_token_id is not None else 0
        self.data_collator = AFPDataCollator(self.data_collator, pad_token_id=self._tokenizer.pad_token_id,
                                             replay=self._replay_enabled, eos_id=eos_id)
        if args.alignment_eval_file:
            from xling_align.analysis.callback import AlignmentEvalCallback

            self.add_callback(
                AlignmentEvalCallback(
                    args.alignment_eval_file,
                    layer=args.contrastive_layer,
                    pooling=args.contrastive_pooling,
                    trainer=self,  # so the metrics also reach the console, TensorBoard and W&B
                )
            )

    # ---- data ------------------------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(self._signature_columns) + [
            c for c in (*PAIR_TOKEN_COLUMNS, REPLAY_FLAG) if c not in self._signature_columns
        ]

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        with _quiet_about_appended_eos(self._tokenizer), _max_length_given_back(self, args):
            dataset, replay_texts = self._replay_texts_split_off(dataset, dataset_name)
            if dataset_name == "train" and self._replay_source is not None:
                count = replay_row_count(len(dataset), args.replay_share)
                replay_texts = replay_texts + drawn_replay_texts(self._replay_source, count, args.seed)
            prepared = self._prepare_afp_dataset(dataset, processing_class, args, packing, formatting_func,
                                                 dataset_name)
            if not replay_texts:
                return prepared
            if not isinstance(prepared, Dataset):
                raise ValueError(f"replay rows need a map-style {dataset_name} dataset; load it with streaming=False.")
            keep_overflow = packing and args.packing_strategy in {"bfd_split", "wrapped"}
            replay = tokenize_replay_rows(replay_texts, self._tokenizer, None if keep_overflow else args.max_length)
            if packing:
                replay = packed_replay_rows(replay, args.max_length, args.packing_strategy)
            self._replay_enabled = True
            merged = merged_with_replay(prepared, replay)
            return merged.shuffle(seed=args.seed) if args.shuffle_dataset else merged

    def _replay_texts_split_off(self, dataset, dataset_name: str):
        """The dataset without its `replay_text` rows, and their texts (the rows `xling-align data build` adds)."""
        if REPLAY_TEXT_COLUMN not in _column_names(dataset):
            return dataset, []
        if isinstance(dataset, IterableDataset):
            raise ValueError(f"the {dataset_name} dataset is an IterableDataset (streaming); AFPTrainer needs a "
                             "map-style datasets.Dataset. Load it with streaming=False.")
        if self._replay_source is not None and dataset_name == "train":
            raise ValueError(f"the {dataset_name} dataset already holds replay rows (column {REPLAY_TEXT_COLUMN!r}) "
                             "and replay_share/replay_file (or replay_dataset=) asks for more: use one of the two. "
                             "Set replay_share=0 to train on the dataset's own replay rows.")
        texts = [text for text in dataset[REPLAY_TEXT_COLUMN] if isinstance(text, str) and text.strip()]
        rest = dataset.filter(lambda example: not (example[REPLAY_TEXT_COLUMN] or "").strip())
        rest = rest.remove_columns(REPLAY_TEXT_COLUMN)
        if len(rest) == 0:
            raise ValueError(f"the {dataset_name} dataset holds only replay rows (column {REPLAY_TEXT_COLUMN!r}); "
                             "AFP needs instruction and/or translation-pair rows beside them.")
        return rest, texts

    def _prepare_afp_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        # Pairs are tokenized here, once, rather than in the collator: the result is cached with the dataset,
        # and bad rows fail before training starts instead of at some step.
        dataset = self._add_pair_columns(dataset, args, dataset_name)
        # SFTTrainer would drop a row without instruction tokens (it has no label), so rows that carry only a pair
        # bypass its preparation and are appended afterwards as one EOS token with no label
        with_instruction = dataset.filter(lambda example: example["has_instruction"])
        pair_only = dataset.filter(lambda example: not example["has_instruction"])
        if args.contrastive_weight == 0 and len(with_instruction) == 0:
            raise ValueError(
                f"the {dataset_name} dataset has no instruction rows and contrastive_weight=0: nothing to train. "
                "Add prompt/completion rows or set contrastive_weight > 0."
            )
        if packing and args.contrastive_weight > 0:
            return self._packed_with_pairs(with_instruction, pair_only, processing_class, args, formatting_func,
                                           dataset_name)
        if args.contrastive_weight == 0 or len(pair_only) == 0:
            return self._instruction_rows_kept(with_instruction, super()._prepare_dataset(
                with_instruction.remove_columns("has_instruction"),
                processing_class, args, packing, formatting_func, dataset_name,
            ), args, packing, dataset_name)

        eos_id = self._tokenizer.eos_token_id if self._tokenizer.eos_token_id is not None else 0
        keep = ["input_ids", "labels", *PAIR_TOKEN_COLUMNS]
        pair_only = pair_only.map(lambda example: {"input_ids": [eos_id], "labels": [-100]})
        pair_only = pair_only.select_columns(keep)
        if len(with_instruction) == 0:
            return pair_only
        prepared = self._instruction_rows_kept(with_instruction, super()._prepare_dataset(
            with_instruction.remove_columns("has_instruction"),
            processing_class, args, packing, formatting_func, dataset_name,
        ), args, packing, dataset_name, pairs_left=len(pair_only))
        prepared = prepared.select_columns(keep)
        if isinstance(prepared, Dataset):
            pair_only = pair_only.cast(prepared.features)
        merged = concatenate_datasets([prepared, pair_only])
        return merged.shuffle(seed=args.seed) if args.shuffle_dataset else merged

    def _packed_with_pairs(self, with_instruction, pair_only, processing_class, args, formatting_func, dataset_name):
        """Instructions tokenized as without packing, then packed with their pairs (`trainers/afp_packing.py`)."""
        if args.max_length is None:
            raise ValueError("packing=True needs max_length (the length of a packed row); it is None. Set max_length.")
        rows = with_instruction.remove_columns("has_instruction")
        if len(rows):
            # bfd_split keeps a long row's overflow in another packed row: no truncation before packing then
            keep_overflow = args.packing_strategy == "bfd_split"
            max_length, args.max_length = args.max_length, None if keep_overflow else args.max_length
            try:
                prepared = super()._prepare_dataset(rows, processing_class, args, False, formatting_func, dataset_name)
            finally:
                args.max_length = max_length
            rows = self._instruction_rows_kept(rows, prepared, args, False, dataset_name, pairs_left=len(pair_only))
        eos_id = self._tokenizer.eos_token_id if self._tokenizer.eos_token_id is not None else 0
        packed = pack_rows_with_pairs(rows, pair_only, args.max_length, args.packing_strategy, eos_id)
        return packed.shuffle(seed=args.seed) if args.shuffle_dataset else packed

    @staticmethod
    def _instruction_rows_kept(rows, prepared, args, packing, dataset_name: str, pairs_left: int = 0):
        """SFTTrainer drops a row whose completion lies wholly beyond `max_length` (no token left to learn), with
        its translation pair, and says nothing: say it, and refuse a dataset left with nothing to train on."""
        if packing or not isinstance(rows, Dataset) or not isinstance(prepared, Dataset):
            return prepared  # packed rows are not one per example; streamed ones cannot be counted
        dropped = len(rows) - len(prepared)
        if dropped <= 0:
            return prepared
        why = (f"their prompt fills max_length={args.max_length} tokens, so no completion token is left to learn "
               "(SFTTrainer drops such rows, with their translation pairs)")
        if dropped == len(rows) and pairs_left == 0:
            raise ValueError(f"all {len(rows)} instruction rows of the {dataset_name} dataset were dropped: {why}. "
                             "Raise max_length, or shorten the prompts.")
        logger.warning(f"{dropped} of {len(rows)} instruction rows of the {dataset_name} dataset were dropped: {why}. "
                       "Raise max_length to keep them.")
        return prepared

    def tokenize_pair(self, source: str, target: str, max_length: int | None) -> tuple[list[int], list[int]]:
        """Token ids of the two sentences of a pair, special tokens as the tokenizer adds them, each truncated
        to `max_length` tokens (`AFPConfig.contrastive_max_length`; None: no truncation); with `last` pooling
        without trailing special tokens (`xling_align.alignment.pooling.sentence_token_ids`)."""
        # called while SFTTrainer.__init__ prepares the datasets, before Trainer sets self.args
        pooling = self._pair_pooling
        return (sentence_token_ids(self._tokenizer, source, pooling, max_length),
                sentence_token_ids(self._tokenizer, target, pooling, max_length))

    def _checked_pair_ids(self, result, index: int, dataset_name: str) -> tuple[list[int], list[int]]:
        """What `tokenize_pair` (perhaps overridden) returned, as two lists of ints, or an error naming the method."""
        method = f"{type(self).__name__}.tokenize_pair"
        expected = ("two lists of token ids (source, target), e.g. "
                    "`return tokenizer(source)['input_ids'], tokenizer(target)['input_ids']`")
        if not isinstance(result, (tuple, list)) or len(result) != 2 or all(isinstance(x, int) for x in result):
            raise TypeError(f"{method} returned {type(result).__name__} {_short(result)} for row {index} of the "
                            f"{dataset_name} dataset; it must return {expected}.")
        checked = []
        for ids in result:
            if isinstance(ids, torch.Tensor) and ids.dim() == 1:
                ids = ids.tolist()  # one row of ids: the same thing in another container
            if not isinstance(ids, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise TypeError(f"{method} returned {type(ids).__name__} {_short(ids)} as one side of row {index} of "
                                f"the {dataset_name} dataset; it must return {expected}.")
            checked.append(list(ids))
        return checked[0], checked[1]

    def _add_pair_columns(self, dataset: Dataset | IterableDataset, args: AFPConfig, dataset_name: str):
        # called from SFTTrainer.__init__, before Trainer.__init__ sets self.args: read `args`
        if isinstance(dataset, IterableDataset):
            # rows with only a pair are split from the instructions and appended (see _prepare_dataset), which a
            # stream cannot do without reading it to the end
            raise ValueError(
                f"the {dataset_name} dataset is an IterableDataset (streaming); AFPTrainer needs a map-style "
                "datasets.Dataset. Load it with streaming=False (or Dataset.from_generator)."
            )
        columns = _column_names(dataset)
        has_pairs = _check_column_group(columns, PAIR_COLUMNS, dataset_name)
        has_instructions = _check_column_group(columns, INSTRUCTION_COLUMNS, dataset_name)
        other_sft = [c for c in OTHER_SFT_COLUMNS if c in columns]
        if not has_pairs and not has_instructions and not other_sft:
            raise ValueError(
                f"the {dataset_name} dataset has columns {columns}; AFPTrainer needs 'prompt' + 'completion' "
                "(cross-lingual instructions) and/or 'source_sentence' + 'target_sentence' (translation pairs). "
                "Rename the columns."
            )
        if not has_pairs and args.contrastive_weight > 0:
            raise ValueError(
                f"the {dataset_name} dataset has columns {columns} but no 'source_sentence' and 'target_sentence' "
                f"translation-pair columns, while contrastive_weight={args.contrastive_weight}. Add the pair "
                "columns (empty strings for rows without a pair) or set contrastive_weight=0."
            )
        if has_pairs and not has_instructions and not other_sft:
            # give the rows an (empty) instruction format; as pair-only rows they bypass SFT preparation
            dataset = dataset.map(lambda example: {"prompt": "", "completion": ""})
            if args.sft_weight > 0:
                logger.warning(
                    f"the {dataset_name} dataset has translation pairs only: the SFT term is 0 although "
                    f"sft_weight={args.sft_weight}."
                )

        def add_columns(example, index):
            instruction = _row_has_instruction(example, has_instructions, other_sft, index, dataset_name)
            source = example.get("source_sentence") or "" if has_pairs else ""
            target = example.get("target_sentence") or "" if has_pairs else ""
            if bool(source.strip()) != bool(target.strip()):
                empty = "source_sentence" if not source.strip() else "target_sentence"
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
                source_ids, target_ids = self._checked_pair_ids(
                    self.tokenize_pair(source, target, args.contrastive_max_length), index, dataset_name)
                if not source_ids or not target_ids:
                    empty = "source_sentence" if not source_ids else "target_sentence"
                    raise ValueError(
                        f"row {index} of the {dataset_name} dataset: its {empty} {(source if not source_ids else target)!r} "
                        "has no token after tokenization, so it has no sentence vector; fix or remove the row."
                    )
            return {"source_input_ids": source_ids, "target_input_ids": target_ids, "has_instruction": instruction}

        return dataset.map(add_columns, with_indices=True)

    # ---- loss ------------------------------------------------------------------------------------------------

    def encode_pairs(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence vectors of the stacked sources and targets: pooled `hidden_states[contrastive_layer]`,
        through `pair_head` when the trainer has one.

        Runs inside the model's forward (through the engine's wrapper) and only up to block `contrastive_layer`
        (the deepest one when several are set): no later block, no logits.

        Args:
            model: the model as `compute_loss` receives it (possibly DDP-, FSDP-, DeepSpeed- or PEFT-wrapped).
            input_ids: `(2 * pairs, seq_len)`, sources first, right-padded.
            attention_mask: `(2 * pairs, seq_len)`.

        Returns:
            `(2 * pairs, dim)` tensor (`dim` = the hidden size, or the head's output size); with several
            `contrastive_layer`s, `(layers, 2 * pairs, dim)`, in the order of `AFPConfig.contrastive_layers`.
        """
        layers, pooling, head = self._pair_layers, self.args.contrastive_pooling, self.pair_head

        def pooled(hidden: torch.Tensor) -> torch.Tensor:
            # no empty-row check here (a host sync in the middle of the step): every pair was checked when tokenized
            vectors = pool_hidden_states(hidden, attention_mask, pooling, check_empty_rows=False)
            if head is None:
                return vectors
            dtype = pair_heads.head_input_dtype(head)
            return head(vectors.to(dtype) if dtype is not None else vectors)

        def pooled_vectors(states: dict[int, torch.Tensor]) -> torch.Tensor:
            if len(layers) == 1:
                return pooled(states[layers[0]])
            return torch.stack([pooled(states[layer]) for layer in layers])

        return compute_inside_forward(model, input_ids, attention_mask, layers, pooled_vectors)

    def compute_contrastive_loss(
        self, source_embeddings: torch.Tensor, target_embeddings: torch.Tensor
    ) -> ContrastiveOutput:
        """The alignment objective on the pair vectors (InfoNCE by default); returns a `ContrastiveOutput`."""
        return contrastive_loss_and_accuracy(
            source_embeddings,
            target_embeddings,
            temperature=self.args.contrastive_temperature,
            symmetric=self.args.contrastive_symmetric,
            gather_across_processes=self.args.gather_across_processes,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        pair_input_ids = inputs.pop("pair_input_ids", None)
        pair_attention_mask = inputs.pop("pair_attention_mask", None)
        contrastive = None
        if self.args.contrastive_weight > 0:
            # the pair pass first: under DDP with find_unused_parameters, the LAST forward of a step decides which
            # parameters count as used, and the instruction pass uses them all
            contrastive = self._contrastive_term(model, pair_input_ids, pair_attention_mask, mode)
        replay_inputs = {key[len(REPLAY_PREFIX):]: inputs.pop(key) for key in list(inputs)
                         if key.startswith(REPLAY_PREFIX)}
        replay = self._replay_term(model, replay_inputs, num_items_in_batch, mode) if replay_inputs else None
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        sft_loss, outputs = result if return_outputs else (result, None)
        loss = self.args.sft_weight * sft_loss
        if contrastive is not None:
            # a per-micro-batch mean: when TRL normalises the SFT loss over the accumulation window
            # (num_items_in_batch given), Trainer no longer divides by the accumulation steps, so do it here
            steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            loss = loss + self.args.contrastive_weight * contrastive / steps
        if replay is not None:
            loss = loss + self.args.replay_weight * replay
        if mode == "train":
            self._refuse_modules_outside_the_model()
        return (loss, outputs) if return_outputs else loss

    def _replay_term(self, model, replay_inputs: dict, num_items_in_batch, mode: str) -> torch.Tensor:
        """Language-modelling loss on the replay rows: summed over their tokens, divided by the replay tokens of
        the accumulation window (of every process, as TRL counts the SFT tokens), or of the batch when the
        trainer gives no window count. Runs before the instruction pass, which stays the last forward."""
        outputs = model(**replay_inputs, use_cache=False, fused_lm_head=True)
        token_loss_sum = -outputs.log_probs.sum()
        count = outputs.label_mask.sum()
        window = self._replay_items_in_window if num_items_in_batch is not None else None
        if window is not None:
            term = token_loss_sum / torch.as_tensor(window).clamp(min=1)
            if self.args.average_tokens_across_devices:
                term = term * self.accelerator.num_processes  # DDP averages the gradients over the processes
        else:
            term = token_loss_sum / count.clamp(min=1)
        gathered = self.accelerator.gather_for_metrics(
            torch.stack([token_loss_sum.detach().float(), count.float()]).reshape(1, 2))
        total, tokens = gathered.sum(dim=0).tolist()
        if tokens > 0:  # a batch without replay rows says nothing about the replay loss
            self._metrics[mode]["replay_loss"].append(total / tokens)
        return term

    def _get_num_items_in_batch(self, batch_samples: list, device):
        # the replay tokens of the window, counted as Trainer counts the SFT labels (shifted, every process)
        self._replay_items_in_window = None
        if self._replay_enabled and batch_samples and REPLAY_PREFIX + "labels" in batch_samples[0]:
            count = sum(batch[REPLAY_PREFIX + "labels"][..., 1:].ne(-100).sum() for batch in batch_samples)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                count = self.accelerator.gather(count.to(device)).sum()
            self._replay_items_in_window = count.to(device)
        return super()._get_num_items_in_batch(batch_samples, device)

    def _contrastive_term(self, model, input_ids, attention_mask, mode: str) -> torch.Tensor | None:
        device = self.accelerator.device
        vectors = None
        if input_ids is not None and input_ids.numel() > 0:
            vectors = self._checked_pair_vectors(self.encode_pairs(model, input_ids, attention_mask), input_ids, mode)
            num_pairs = input_ids.shape[0] // 2
            source_vectors, target_vectors = vectors[..., :num_pairs, :], vectors[..., num_pairs:, :]
        elif self.accelerator.num_processes > 1:
            # no pair on this process: the others' pair forward is a collective (FSDP / ZeRO-3 gathers, DDP's buffer
            # broadcast), so join it with a one-token stand-in whose vector is then dropped
            stand_in = torch.full((1, 1), self._tokenizer.pad_token_id or 0, dtype=torch.long, device=device)
            vectors = self._checked_pair_vectors(
                self.encode_pairs(model, stand_in, torch.ones_like(stand_in)), stand_in, mode)[..., :0, :]
            source_vectors = target_vectors = vectors
        else:
            source_vectors = target_vectors = torch.zeros(0, hidden_size(model), device=device)
        output = self._layers_contrastive_output(source_vectors, target_vectors, vectors, mode)
        if output.loss is None:
            self.contrastive_skipped_batches += 1
            self._metrics[mode]["contrastive_skipped"].append(1.0)
            # no term, but the pair forward's parameters (a pair_head's above all) still get a (zero) gradient, as
            # DDP without find_unused_parameters expects of every parameter at every step
            return vectors.sum() * 0.0 if vectors is not None and vectors.requires_grad else None
        self._metrics[mode]["contrastive_skipped"].append(0.0)
        # (loss, correct, sources) of every process in one gather, kept on the device until the next log: reading
        # them now would make the host wait for the pair pass before it queues the instruction pass
        local = torch.stack([
            output.loss.detach().float().reshape(()),
            torch.as_tensor(output.num_correct, device=device).float().reshape(()),
            torch.full((), float(output.num_sources), device=device),
        ])
        gathered = self.accelerator.gather_for_metrics(local.reshape(1, 3))
        self._pending_pair_metrics.setdefault(mode, []).append(
            torch.stack([gathered[:, 0].mean(), gathered[:, 1].sum() / gathered[:, 2].sum().clamp(min=1)]))
        if vectors is not None and output.num_sources == 0:
            return output.loss + vectors.sum() * 0.0  # the stand-in pass joins the graph (zero gradients)
        return output.loss

    def _layers_contrastive_output(self, source_vectors, target_vectors, vectors, mode: str) -> ContrastiveOutput:
        """`compute_contrastive_loss` on one layer's vectors, or its mean over several layers' (see AFPConfig)."""
        if source_vectors.dim() == 2:
            return self._checked_contrastive_output(
                self.compute_contrastive_loss(source_vectors, target_vectors), vectors, mode)
        outputs = [self._checked_contrastive_output(self.compute_contrastive_loss(source, target), vectors, mode)
                   for source, target in zip(source_vectors, target_vectors, strict=True)]
        if any(output.loss is None for output in outputs):
            return ContrastiveOutput(loss=None, num_correct=0, num_sources=0, num_pairs=outputs[0].num_pairs)
        # correct and sources summed over layers: the logged accuracy is the mean of the layers' accuracies
        return ContrastiveOutput(
            loss=torch.stack([output.loss.reshape(()) for output in outputs]).mean(),
            num_correct=sum(output.num_correct for output in outputs),
            num_sources=sum(output.num_sources for output in outputs),
            num_pairs=outputs[0].num_pairs,
        )

    # an override's result, checked where it is used: a wrong shape or a vector without gradient would otherwise
    # fail deep inside the loss or, worse, train nothing without a word
    def _checked_pair_vectors(self, vectors, input_ids: torch.Tensor, mode: str) -> torch.Tensor:
        method = f"{type(self).__name__}.encode_pairs"
        rows = input_ids.shape[0]
        layers = len(self._pair_layers)
        shape = f"({rows}, dim)" if layers == 1 else f"({layers}, {rows}, dim), one (2 * pairs, dim) slice per layer"
        if not isinstance(vectors, torch.Tensor):
            raise TypeError(f"{method} returned a {type(vectors).__name__}; it must return one tensor of shape "
                            f"{shape}: the sources' vectors, then the targets'.")
        wanted = (rows,) if layers == 1 else (layers, rows)
        if vectors.dim() != len(wanted) + 1 or tuple(vectors.shape[:-1]) != wanted:
            raise ValueError(f"{method} returned shape {tuple(vectors.shape)} for {rows} sentences ({rows // 2} pairs, "
                             f"sources then targets) and {layers} contrastive layer(s); it must return {shape}: one "
                             "pooled vector per sentence (pool over the tokens, keep both halves).")
        if mode == "train" and torch.is_grad_enabled() and not vectors.requires_grad:
            raise RuntimeError(f"{method} returned vectors without a gradient, so the contrastive loss would train "
                               "nothing: they were detached or computed under torch.no_grad(), or no trainable weight "
                               "lies below them (e.g. LoRA with contrastive_layer=0, the frozen embeddings). Compute "
                               "them with gradients from trainable weights, or set contrastive_weight=0.")
        return vectors

    def _checked_contrastive_output(self, output, vectors, mode: str) -> ContrastiveOutput:
        method = f"{type(self).__name__}.compute_contrastive_loss"
        fields = ("loss", "num_correct", "num_sources", "num_pairs")
        if not all(hasattr(output, name) for name in fields):
            raise TypeError(f"{method} returned a {type(output).__name__}; it must return a "
                            "xling_align.alignment.contrastive_loss.ContrastiveOutput(loss, num_correct, num_sources, num_pairs) "
                            "with loss a 0-dim tensor (or None to skip the batch), e.g. "
                            "`ContrastiveOutput(loss, num_correct=0, num_sources=len(source), num_pairs=len(source))`.")
        loss = output.loss
        if loss is not None and (not isinstance(loss, torch.Tensor) or loss.numel() != 1):
            shown = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else f"a {type(loss).__name__}"
            raise TypeError(f"{method} returned a loss of {shown}; ContrastiveOutput.loss must be a 0-dim tensor "
                            "(reduce it, e.g. .mean(); a Python number carries no gradient), or None to skip the batch.")
        if (loss is not None and mode == "train" and torch.is_grad_enabled() and vectors is not None
                and vectors.requires_grad and not loss.requires_grad):
            raise RuntimeError(f"{method} returned a loss without a gradient (detached, or computed from .item() "
                               "values), so the contrastive term would train nothing. Compute it from the vectors "
                               "it receives, with gradients.")
        return output

    def _issue_warnings_after_load(self, load_result) -> None:
        # A checkpoint of a model with tied weights (the LM head is the embedding matrix) stores the matrix once,
        # so reloading it (load_best_model_at_end, resuming) reports the head as missing although the tie restores
        # it. Only such tied names are dropped; any other missing key is still reported by Trainer.
        tied = tied_parameter_names(self.model)
        missing = [key for key in load_result.missing_keys if key not in tied]
        if len(missing) != len(load_result.missing_keys):
            load_result = load_result._replace(missing_keys=missing)
        super()._issue_warnings_after_load(load_result)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # the steps' contrastive metrics become numbers here, with one device read per log instead of one per step
        mode = "train" if self.model.training else "eval"
        pending = self._pending_pair_metrics.pop(mode, [])
        if pending:
            for loss_value, accuracy in torch.stack(pending).tolist():
                self._metrics[mode]["contrastive_loss"].append(loss_value)
                self._metrics[mode]["contrastive_accuracy"].append(accuracy)
        super().log(logs, start_time)

    # ---- trainable modules outside the model; the pair head in checkpoints ------------------------------------

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        self._refuse_modules_outside_the_model()
        return optimizer

    def _refuse_modules_outside_the_model(self) -> None:
        found = pair_heads.modules_outside_the_model(self, self.model)
        if not found:
            return
        name, module = found[0]
        count = pair_heads.trainable_parameter_count(module)
        raise UnsupportedSetupError(
            f"{type(self).__name__}.{name} is a {type(module).__name__} with {count:,} trainable parameters outside the "
            "model: the optimizer is built from the model's parameters, so it would get gradients but never change, "
            f"and it would not be saved. For a projection head on the pair vectors pass it as "
            f"{type(self).__name__}(..., pair_head={name}) (trained with the model, saved as pair_head.safetensors "
            "next to it, reloaded with xling_align.trainers.pair_head.load_pair_head); otherwise attach it to the model, or "
            "freeze it with requires_grad_(False)."
        )

    @contextmanager
    def _pair_head_detached(self):
        """The model without its pair head, for the model's own weights file (a transformers class knows no head)."""
        inner = unwrap_model(self.model)
        head = inner._modules.pop(pair_heads.PAIR_HEAD_ATTRIBUTE, None) if self.pair_head is not None else None
        try:
            yield
        finally:
            if head is not None:
                inner._modules[pair_heads.PAIR_HEAD_ATTRIBUTE] = head

    def _save(self, output_dir: str | None = None, state_dict=None):
        if self.pair_head is None:
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if state_dict is None:
            state_dict = self.model.state_dict()
        model_state, head_state = pair_heads.split_pair_head_state(state_dict)
        with self._pair_head_detached():
            super()._save(output_dir, model_state)
        pair_heads.save_pair_head(head_state, output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        with self._pair_head_detached():
            super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self.pair_head is not None:
            pair_heads.load_pair_head(self.pair_head, resume_from_checkpoint)

    def _load_best_model(self):
        with self._pair_head_detached():
            super()._load_best_model()
        if self.pair_head is not None:
            pair_heads.load_pair_head(self.pair_head, self.state.best_model_checkpoint)


@dataclass
class AFPDataCollator:
    """Wraps SFTTrainer's collator: instructions as it collates them, plus the pairs of the batch.

    Adds `pair_input_ids` / `pair_attention_mask`: `(2 * pairs, seq_len)`, the sources of the rows that have a
    pair (all the pairs of a packed row), then their targets, right-padded (so positions match an unpadded
    forward for every architecture); `(0, 0)` when no row of the batch has a pair.
    """

    base_collator: Any
    pad_token_id: int
    replay: bool = False
    eos_id: int = 0

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        dropped = (*PAIR_TOKEN_COLUMNS, REPLAY_FLAG)
        instruction_features = [{k: v for k, v in f.items() if k not in dropped}
                                for f in features if not f.get(REPLAY_FLAG)]
        if not self.replay:
            return self._with_pairs(self.base_collator(instruction_features), features)
        replay_features = [{k: v for k, v in f.items() if k not in dropped} for f in features if f.get(REPLAY_FLAG)]
        packed = bool(features) and "seq_lengths" in features[0]
        # a batch lacking one kind gets a one-token unlabelled stand-in: both forwards run on every process
        batch = self.base_collator(instruction_features or [stand_in_feature(self.eos_id, packed)])
        replay_batch = self.base_collator(replay_features or [stand_in_feature(self.eos_id, packed)])
        batch.update({REPLAY_PREFIX + key: value for key, value in replay_batch.items()})
        return self._with_pairs(batch, features)

    def _with_pairs(self, batch: dict[str, Any], features: list[dict[str, Any]]) -> dict[str, Any]:
        sources, targets = pair_lists_of_batch(features)  # one pair per row, or a packed row's pairs
        if sources:
            batch["pair_input_ids"], batch["pair_attention_mask"] = pad_right(sources + targets, self.pad_token_id)
        else:
            batch["pair_input_ids"] = torch.zeros(0, 0, dtype=torch.long)
            batch["pair_attention_mask"] = torch.zeros(0, 0, dtype=torch.long)
        return batch


def _replay_source(args, replay_dataset) -> list[str] | None:
    """The documents the trainer draws replay rows from (`replay_dataset=` or `AFPConfig.replay_file`), or None."""
    share = getattr(args, "replay_share", 0.0)
    if replay_dataset is not None and getattr(args, "replay_file", None):
        raise ValueError("AFPTrainer got both replay_dataset= and AFPConfig.replay_file; give one of them.")
    if replay_dataset is None and not getattr(args, "replay_file", None):
        if share > 0:
            raise ValueError(f"replay_share={share} but no replay text: set AFPConfig.replay_file (a .txt file, one "
                             "document per line, or a file with a 'text' column) or pass replay_dataset=.")
        return None
    if share == 0:
        raise ValueError("AFPTrainer got replay_dataset= but replay_share=0, so none of it would be used; set "
                         "AFPConfig.replay_share (e.g. 0.25).")
    if replay_dataset is not None:
        texts = replay_texts_of(replay_dataset, "replay_dataset")
        if not texts:
            raise ValueError("replay_dataset holds no non-empty 'text'; fill it or leave replay_dataset out.")
        return texts
    return load_replay_texts(args.replay_file)


def _column_names(dataset) -> list[str]:
    return list(dataset.column_names or [])


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_column_group(columns: list[str], group: tuple[str, str], dataset_name: str) -> bool:
    present = [c for c in group if c in columns]
    if len(present) == 1:
        missing = next(c for c in group if c not in columns)
        raise ValueError(
            f"the {dataset_name} dataset has column {present[0]!r} but not {missing!r} (columns found: {columns}); "
            f"{group[0]!r} and {group[1]!r} go together."
        )
    return len(present) == 2


def _row_has_instruction(example, has_instructions, other_sft, index, dataset_name) -> bool:
    if has_instructions:
        prompt, completion = example["prompt"] or "", example["completion"] or ""
        if not isinstance(prompt, str):  # conversational prompt/completion: lists of messages
            return bool(completion)
        if prompt.strip() and not completion.strip():
            raise ValueError(
                f"row {index} of the {dataset_name} dataset has a prompt but an empty completion; the instruction "
                "loss is on the completion. Fill it, or empty the prompt too for a row with only a pair."
            )
        return bool(completion.strip())
    return any(bool(example.get(c)) for c in other_sft)


@contextmanager
def _quiet_about_appended_eos(tokenizer):
    """Silence the two warnings a tokenizer that appends EOS (ByT5, T5) causes in SFTTrainer's preparation, and only
    in that harmless case.

    TRL tokenizes a prompt alone and prompt + completion; with such a tokenizer the prompt alone ends with EOS, so
    TRL says the prompt is "not a prefix" and leaves that EOS out: exactly right, the completion follows the
    prompt without an EOS in between. TRL appends EOS to the completion text, then the tokenizer says the sequence
    "already has </s>" and adds none: also right. Any other mismatch still warns.
    """
    eos = getattr(tokenizer, "eos_token", None)
    trl_logger = std_logging.getLogger("trl.trainer.sft_trainer")

    def only_the_appended_eos(record: std_logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (eos and "The tokenized prompt is not a prefix" in message
                    and f": {eos!r}. The model" in message)

    trl_logger.addFilter(only_the_appended_eos)
    try:
        with warnings.catch_warnings():
            if eos:
                warnings.filterwarnings("ignore", message=f"This sequence already has {eos}", category=UserWarning)
            yield
    finally:
        trl_logger.removeFilter(only_the_appended_eos)


# ---- padding-free batches -------------------------------------------------------------------------------------


def uses_padding_free(args) -> bool:
    """Whether TRL collates the instructions padding-free: asked for, or implied by packing with a `bfd` strategy."""
    return bool(args.padding_free or (args.packing and args.packing_strategy in {"bfd", "bfd_split"}))


@contextmanager
def _padding_free_length_check_passed(trainer, args):
    """TRL 1.16 refuses `padding_free=True` without packing whenever `max_length` is set, saying max_length would
    not be enforced; but its dataset preparation truncates every row to max_length in that case too (the collator
    never truncated). So, for SFTTrainer.__init__ only, max_length is hidden from that check and handed back to
    the preparation (`_max_length_given_back`); a dataset that skips preparation keeps TRL's refusal."""
    skips_preparation = bool((args.dataset_kwargs or {}).get("skip_prepare_dataset"))
    hide = args.padding_free and not args.packing and args.max_length is not None and not skips_preparation
    trainer._hidden_max_length = args.max_length if hide else None
    if hide:
        args.max_length = None
    try:
        yield
    finally:
        if hide:
            args.max_length = trainer._hidden_max_length
            trainer._hidden_max_length = None


@contextmanager
def _max_length_given_back(trainer, args):
    hidden = getattr(trainer, "_hidden_max_length", None)
    if hidden is None:
        yield
        return
    args.max_length = hidden
    try:
        yield
    finally:
        args.max_length = None


def _refuse_inexact_padding_free(model, args) -> None:
    """Padding-free batches are exact only where the attention keeps the flattened rows apart; elsewhere each row
    would silently attend to the rows before it, so the trainer stops (see `xling_align.trainers.padding_free`)."""
    if not uses_padding_free(args):
        return
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        return  # the weights are partitioned until the engine runs: no forward to probe outside it
    mismatch = padding_free_mismatch(unwrap_model(model))
    if mismatch is None:
        return
    asked = "padding_free=True" if args.padding_free else f"packing=True (packing_strategy={args.packing_strategy!r})"
    raise UnsupportedSetupError(
        f"{asked} needs an attention that keeps the rows of a flattened batch apart, but {mismatch}. Set "
        "padding_free=False and packing=False, or use an attn_implementation that reads position_ids "
        "(flash_attention_2, or sdpa on a model that hands position_ids to its mask, such as Llama, Qwen2, GPT-2)."
    )
