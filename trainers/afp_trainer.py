"""`AFPTrainer`: TRL's SFTTrainer plus AFP's multilingual contrastive term on translation pairs.

The trainer keeps the method: the pair pass (`encode_pairs`), the alignment objective (`compute_contrastive_loss`),
the combined loss with its replay term, the metrics, and the pair head in checkpoints. Its helpers, one job each:
`afp_dataset.py` (dataset preparation and row checks), `afp_collator.py` (the batches), `afp_packing.py`,
`afp_replay.py`, `subclass_checks.py` (what overridden hooks return), `pair_head.py`, `padding_free.py`,
`engine_checks.py`, `accelerators.py`, and `trl_workarounds.py` (every place TRL / transformers is worked around).

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

from __future__ import annotations

import textwrap
from contextlib import nullcontext

import torch
from datasets import Dataset
from torch import nn
from trl import SFTTrainer

from xling_align.alignment.contrastive_loss import CITATION, ContrastiveOutput, contrastive_loss_and_accuracy
from xling_align.alignment.layer_forward import compute_inside_forward
from xling_align.alignment.model_parts import (
    decoder_blocks,
    hidden_size,
    normalize_layer,
    num_decoder_layers,
    tied_parameter_names,
    unwrap_model,
)
from xling_align.alignment.pooling import pool_hidden_states, sentence_token_ids
from xling_align.data.columns import PAIR_TOKEN_COLUMNS, REPLAY_FLAG
from xling_align.trainers import pair_head as pair_heads

from . import subclass_checks, trl_workarounds
from .afp_collator import AFPDataCollator
from .afp_config import AFPConfig
from .afp_dataset import TrainerHooks, prepare_afp_dataset
from .afp_replay import REPLAY_PREFIX, replay_source
from .engine_checks import UnsupportedSetupError, check_pair_pass_support, check_requested_engine_runs
from .padding_free import refuse_inexact_padding_free

__all__ = ["AFPDataCollator", "AFPTrainer"]


class AFPTrainer(SFTTrainer):
    """Trainer for AFP (Align aFter Pre-training, Li et al., NAACL 2024): SFT plus a contrastive term on pairs.

    Rows carry a cross-lingual instruction (`prompt`, `completion`; loss on the completion) and/or a translation
    pair (`source_sentence`, `target_sentence`); "" means absent (`trainers/afp_dataset.py`). The loss of a batch is

        sft_weight * SFT + contrastive_weight * InfoNCE(pooled source vectors, pooled target vectors)
        (+ replay_weight * replay LM loss, with replay rows: `trainers/afp_replay.py`)

    where the pair vectors are `hidden_states[contrastive_layer]` pooled with `contrastive_pooling`, computed by a
    forward that stops after that block. The terms keep their weights under gradient accumulation; a batch with
    fewer than 2 pairs skips the contrastive term (counted in `contrastive_skipped`). Logged: `contrastive_loss`,
    `contrastive_accuracy`, `contrastive_skipped`, `replay_loss` (with replay), plus SFTTrainer's;
    `eval_alignment_retrieval_accuracy` with `alignment_eval_file`.
    Engine setups the pair pass cannot serve raise `UnsupportedSetupError` (`trainers/engine_checks.py`).

    Hooks for subclasses (what they return is checked, `trainers/subclass_checks.py`):
        - `encode_pairs(model, input_ids, attention_mask)`: stacked sources and targets -> one vector per sentence.
        - `compute_contrastive_loss(source_embeddings, target_embeddings)` -> `ContrastiveOutput`.
        - `tokenize_pair(source, target, max_length)` -> two lists of token ids.
        Put trainable parameters in a `pair_head`, not on the trainer (a module kept there is refused).

    Args:
        model: model id, `PreTrainedModel` or `PeftModel`, as for SFTTrainer.
        args: an `AFPConfig` (an `SFTConfig` or `TrainingArguments` is converted with AFP's defaults).
        pair_head: optional `nn.Module` applied to the pooled pair vectors, trained inside the model and saved as
            `pair_head.safetensors` (`trainers/pair_head.py`; reload with `load_pair_head`).
        replay_dataset: optional `datasets.Dataset` with a `text` column to draw replay rows from (instead of
            `AFPConfig.replay_file`; needs `replay_share` > 0).
        All other arguments are SFTTrainer's; a custom `data_collator` is wrapped like the default one.
    """

    _tag_names = ["trl", "sft", "afp", "xling-align", "cross-lingual-alignment"]
    _name = "AFP"
    _paper = {
        "title": "Improving In-context Learning of Multilingual Generative Language Models with Cross-lingual "
        "Alignment",
        "id": "2311.08089",
        "citation": textwrap.dedent(CITATION),
    }

    def __init__(
        self,
        model,
        args: AFPConfig | None = None,
        *positional,
        pair_head: nn.Module | None = None,
        replay_dataset: Dataset | None = None,
        **kwargs,
    ):
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
                    "pair_head with ddp_find_unused_parameters=True: the head is used only by the pair forward, so "
                    "DDP's search for unused parameters (which looks at the last forward of a step, the instruction "
                    "pass) would count it unused and then fail when its gradient arrives. Leave "
                    "ddp_find_unused_parameters unset: with a pair_head AFPTrainer sets it to False (every parameter "
                    "gets a gradient each step)."
                )
        self.contrastive_skipped_batches = 0
        self._replay_source = replay_source(args, replay_dataset)  # documents to draw replay rows from, or None
        self._replay_enabled = False  # set when a prepared dataset holds replay rows
        self._replay_items_in_window: torch.Tensor | None = None
        self._pending_pair_metrics: dict[str, list[torch.Tensor]] = {}  # per mode: (loss, accuracy) tensors per step
        self.pair_head: nn.Module | None = None
        self._pair_pooling = args.contrastive_pooling
        with trl_workarounds.padding_free_length_check_passed(self, args):
            super().__init__(model, args, *positional, **kwargs)
        refuse_inexact_padding_free(self.model, args)
        if self._replay_source is not None and not self._replay_enabled:
            # SFTTrainer skips _prepare_dataset with skip_prepare_dataset: the replay rows were never added
            raise ValueError(
                "replay_share / replay_file (or replay_dataset=) were given but the training dataset "
                "was not prepared (dataset_kwargs={'skip_prepare_dataset': True}), so no replay row "
                "was added. Let AFPTrainer prepare the dataset, or add the replay rows yourself."
            )
        try:
            self._pair_layers = [
                normalize_layer(self.model, layer, "contrastive_layer") for layer in args.contrastive_layers
            ]
        except ValueError as error:
            raise UnsupportedSetupError(f"AFPConfig.contrastive_layer: {error}") from None
        if len(set(self._pair_layers)) != len(self._pair_layers):
            raise UnsupportedSetupError(
                f"AFPConfig.contrastive_layer={args.contrastive_layer!r} names the same hidden state twice on this "
                f"model (as indices 0..{num_decoder_layers(self.model)}: {self._pair_layers}); list each layer once."
            )
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
        self.data_collator = AFPDataCollator(
            self.data_collator, pad_token_id=self._tokenizer.pad_token_id, replay=self._replay_enabled, eos_id=eos_id
        )
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

    # ---- data: SFTTrainer calls these; the work is in afp_dataset.py -------------------------------------------

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        # the columns dataset preparation adds must survive `remove_unused_columns`
        self._signature_columns = list(self._signature_columns) + [
            c for c in (*PAIR_TOKEN_COLUMNS, REPLAY_FLAG) if c not in self._signature_columns
        ]

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        trl_workarounds.give_back_max_length(self, args)
        hooks = TrainerHooks(
            sft_prepare=super()._prepare_dataset,
            tokenize_pair=self.tokenize_pair,
            trainer_name=type(self).__name__,
            tokenizer=self._tokenizer,
            replay_source=self._replay_source,
        )
        with trl_workarounds.quiet_about_appended_eos(self._tokenizer):
            prepared, with_replay = prepare_afp_dataset(
                hooks, dataset, processing_class, args, packing, formatting_func, dataset_name
            )
        self._replay_enabled = self._replay_enabled or with_replay
        return prepared

    def tokenize_pair(self, source: str, target: str, max_length: int | None) -> tuple[list[int], list[int]]:
        """Token ids of the two sentences of a pair, special tokens as the tokenizer adds them, each truncated
        to `max_length` tokens (`AFPConfig.contrastive_max_length`; None: no truncation); with `last` pooling
        without trailing special tokens (`xling_align.alignment.pooling.sentence_token_ids`)."""
        # called while SFTTrainer.__init__ prepares the datasets, before Trainer sets self.args
        pooling = self._pair_pooling
        return (
            sentence_token_ids(self._tokenizer, source, pooling, max_length),
            sentence_token_ids(self._tokenizer, target, pooling, max_length),
        )

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

        Override for another representation: use `xling_align.alignment.layer_forward.compute_inside_forward` so the
        engines see the forward, and a `pair_head` (not a module of your own on the trainer) for trainable weights.
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
        """The alignment objective on the pair vectors (InfoNCE of `xling_align.alignment.contrastive_loss` by
        default); returns a `ContrastiveOutput`. Under DDP it is called on every process, also with `(0, dim)`
        tensors (a process without pairs in its batch)."""
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
        replay_inputs = {
            key[len(REPLAY_PREFIX) :]: inputs.pop(key) for key in list(inputs) if key.startswith(REPLAY_PREFIX)
        }
        replay = self._replay_term(model, replay_inputs, num_items_in_batch, mode) if replay_inputs else None
        # the instruction forward runs even with sft_weight=0: under DDP it is the pass that synchronises gradients
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
            subclass_checks.refuse_modules_outside_the_model(self, self.model)
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
            torch.stack([token_loss_sum.detach().float(), count.float()]).reshape(1, 2)
        )
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
                self.encode_pairs(model, stand_in, torch.ones_like(stand_in)), stand_in, mode
            )[..., :0, :]
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
        local = torch.stack(
            [
                output.loss.detach().float().reshape(()),
                torch.as_tensor(output.num_correct, device=device).float().reshape(()),
                torch.full((), float(output.num_sources), device=device),
            ]
        )
        gathered = self.accelerator.gather_for_metrics(local.reshape(1, 3))
        self._pending_pair_metrics.setdefault(mode, []).append(
            torch.stack([gathered[:, 0].mean(), gathered[:, 1].sum() / gathered[:, 2].sum().clamp(min=1)])
        )
        if vectors is not None and output.num_sources == 0:
            return output.loss + vectors.sum() * 0.0  # the stand-in pass joins the graph (zero gradients)
        return output.loss

    def _layers_contrastive_output(self, source_vectors, target_vectors, vectors, mode: str) -> ContrastiveOutput:
        """`compute_contrastive_loss` on one layer's vectors, or its mean over several layers' (see AFPConfig)."""
        if source_vectors.dim() == 2:
            return self._checked_contrastive_output(
                self.compute_contrastive_loss(source_vectors, target_vectors), vectors, mode
            )
        outputs = [
            self._checked_contrastive_output(self.compute_contrastive_loss(source, target), vectors, mode)
            for source, target in zip(source_vectors, target_vectors, strict=True)
        ]
        if any(output.loss is None for output in outputs):
            return ContrastiveOutput(loss=None, num_correct=0, num_sources=0, num_pairs=outputs[0].num_pairs)
        # correct and sources summed over layers: the logged accuracy is the mean of the layers' accuracies
        return ContrastiveOutput(
            loss=torch.stack([output.loss.reshape(()) for output in outputs]).mean(),
            num_correct=sum(output.num_correct for output in outputs),
            num_sources=sum(output.num_sources for output in outputs),
            num_pairs=outputs[0].num_pairs,
        )

    # an override's result, checked where it is used (trainers/subclass_checks.py)
    def _checked_pair_vectors(self, vectors, input_ids: torch.Tensor, mode: str) -> torch.Tensor:
        return subclass_checks.checked_pair_vectors(
            vectors, f"{type(self).__name__}.encode_pairs", input_ids.shape[0], len(self._pair_layers), mode
        )

    def _checked_contrastive_output(self, output, vectors, mode: str) -> ContrastiveOutput:
        return subclass_checks.checked_contrastive_output(
            output, f"{type(self).__name__}.compute_contrastive_loss", vectors, mode
        )

    def _issue_warnings_after_load(self, load_result) -> None:
        super()._issue_warnings_after_load(
            trl_workarounds.without_tied_missing_keys(load_result, tied_parameter_names(self.model))
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # the steps' contrastive metrics become numbers here, with one device read per log instead of one per step
        mode = "train" if self.model.training else "eval"
        pending = self._pending_pair_metrics.pop(mode, [])
        if pending:
            for loss_value, accuracy in torch.stack(pending).tolist():
                self._metrics[mode]["contrastive_loss"].append(loss_value)
                self._metrics[mode]["contrastive_accuracy"].append(accuracy)
        super().log(logs, start_time)

    # ---- the pair head in checkpoints (trainers/pair_head.py) -------------------------------------------------

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        subclass_checks.refuse_modules_outside_the_model(self, self.model)
        return optimizer

    def _pair_head_detached(self):
        """The model without its pair head, for the model's own weights file (a transformers class knows no head)."""
        return pair_heads.pair_head_detached(unwrap_model(self.model)) if self.pair_head is not None else nullcontext()

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
