"""`AFPConfig`: the training arguments of AFP (Align aFter Pre-training), on top of TRL's `SFTConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers.utils import is_torch_bf16_gpu_available
from trl import SFTConfig

from xling_align.alignment.pooling import POOLING_METHODS, check_pooling
from xling_align.trainers.accelerators import has_accelerator


@dataclass
class AFPConfig(SFTConfig):
    r"""Configuration of [`AFPTrainer`]: every `SFTConfig` / `TrainingArguments` field plus the AFP ones below.

    The defaults reproduce the reference scripts of Li et al. (NAACL 2024): InfoNCE on the last token of the
    first decoder block's output, temperature 0.05, one direction, negatives from the global batch, total loss
    `1.0 * contrastive + 1.5 * SFT`.

    Parameters:
        > Parameters of the loss

        contrastive_weight (`float`, defaults to `1.0`):
            Weight of the multilingual contrastive (InfoNCE) term on translation pairs. 0 turns it off.
        sft_weight (`float`, defaults to `1.5`):
            Weight of the cross-lingual instruction (SFT, completion-only) term.
        contrastive_temperature (`float`, defaults to `0.05`):
            Cosine similarities are divided by it. Must be > 0.
        contrastive_symmetric (`bool`, defaults to `False`):
            Average the source -> target and target -> source directions (the reference uses one direction).
        gather_across_processes (`bool`, defaults to `True`):
            Under several processes, take negatives from the global batch (differentiable all-gather).

        > Parameters of the sentence representation

        contrastive_layer (`int` or `list[int]`, defaults to `1`):
            Index into `hidden_states` whose pooled vector represents a sentence: 0 = embedding output, 1 = first
            decoder block, -1 = last block. The pair forward stops at this layer. Checked against the model's depth
            when the trainer is built. Several indices (`[1, 2, 3]` in Python or a recipe, `--contrastive_layer 1
            2 3` on the command line, or the string `"1,2,3"`): one InfoNCE term per layer on that layer's pooled
            vectors, **averaged** over the layers (not summed, so `contrastive_weight` keeps its meaning whatever
            the number of layers, and a one-layer list is exactly the one-layer loss); the logged
            `contrastive_loss` / `contrastive_accuracy` are the means over the layers. The pair forward stops
            after the deepest one (one forward for all of them). A one-element list is stored as its integer;
            `contrastive_layers` is always the list.
        contrastive_pooling (`str`, defaults to `"last"`):
            `"last"` (last non-pad token that is not a special token: an EOS appended by the tokenizer is not
            pooled) or `"mean"` (mean over non-pad tokens). See `xling_align.alignment.pooling`.
        contrastive_max_length (`int` or `None`, defaults to `128`):
            Sentences of a pair are truncated to this many tokens. `None`: no truncation.

        > Parameters of replay (plain text against forgetting)

        replay_share (`float`, defaults to `0.0`):
            Share of the training rows that are replay rows: documents of plain text drawn from `replay_file` (or
            the trainer's `replay_dataset=` argument), `round(share * n / (1 - share))` of them for `n` other rows
            (repeated when the source holds fewer), shuffled in with the rest, so a batch of `B` rows holds about
            `share * B` of them; at a fixed number of steps the model then sees `1 - share` as many instructions.
            In `[0, 1)`; 0 turns replay off. Rows that already carry `replay_text` (written by
            `xling-align data build --replay-file`) are replay rows whatever this value (set it 0 then).
        replay_file (`str` or `None`, defaults to `None`):
            Plain text to replay: a `.txt` file (one document per line) or a json/jsonl/parquet/csv file with a
            `text` column (the base's pretraining-style data, or monolingual text per language).
        replay_weight (`float`, defaults to `1.0`):
            Weight of the replay term: the language-modelling loss on all tokens of the replay rows (each
            document's first token excepted: nothing precedes it), averaged over the replay tokens of the
            gradient-accumulation window, as the SFT term is over its completion tokens, so the two weights
            compare per token. Logged as `replay_loss` (the unweighted mean).

        > Parameters of evaluation

        alignment_eval_file (`str` or `None`, defaults to `None`):
            A parallel file of held-out translation pairs. When set, the trainer adds
            `xling_align.analysis.callback.AlignmentEvalCallback`, which logs `eval_alignment_retrieval_accuracy`
            at every evaluation (usable as `metric_for_best_model`: select on held-out pairs, not on a test set).

    Padding-free and packing: `padding_free=True` and `packing=True` work with the contrastive term (packing
    carries each instruction's pair in its packed row: `xling_align.trainers.afp_packing`); both (packing through
    TRL's BFD strategies, which are padding-free) are refused when the trainer is built if the model's attention
    would let the rows of a flattened batch see each other (`xling_align.trainers.padding_free`: XGLM, BLOOM).

    Differences from `SFTConfig`'s defaults:
        `bf16` defaults to True only where a GPU supports it (SFTConfig's `bf16=True` default fails on a CPU-only
        machine); reentrant gradient checkpointing is refused (two forwards per step break it under DDP).
        Activation checkpointing stays on by default, as in SFTConfig, but is set through its current name
        `activation_checkpointing` (SFTConfig's default sets the deprecated `gradient_checkpointing`, which makes
        transformers print a FutureWarning for every config); `dataloader_pin_memory` is switched off where no
        accelerator exists (`trainers/accelerators.py`: pinned memory has no use there and torch warns about it).
    """

    contrastive_weight: float = field(
        default=1.0, metadata={"help": "Weight of the multilingual contrastive (InfoNCE) loss on translation pairs."}
    )
    sft_weight: float = field(
        default=1.5, metadata={"help": "Weight of the cross-lingual instruction (SFT) loss; 1.5 as in the AFP scripts."}
    )
    contrastive_temperature: float = field(
        default=0.05, metadata={"help": "Temperature dividing the cosine similarities of the InfoNCE loss (> 0)."}
    )
    # `| str`: transformers' argument parser accepts a Union only with str in it; it then parses a list of ints
    # (`--contrastive_layer 1 2 3`), and a default_factory is how it learns the default of a list-typed field
    contrastive_layer: int | list[int] | str = field(
        default_factory=lambda: 1,
        metadata={
            "help": "hidden_states index pooled into a sentence vector: 0 = embeddings, 1 = first block, -1 = last. "
            "The pair forward stops there. Several (e.g. 1 2 3): the InfoNCE term is averaged over those layers."
        },
    )
    contrastive_pooling: str = field(
        default="last",
        metadata={
            "help": "Sentence pooling: 'last' (last non-pad, non-special token) or 'mean' (mean over non-pad tokens).",
            "choices": list(POOLING_METHODS),
        },
    )
    contrastive_symmetric: bool = field(
        default=False, metadata={"help": "Average both directions (source->target and target->source) of InfoNCE."}
    )
    gather_across_processes: bool = field(
        default=True, metadata={"help": "Take contrastive negatives from the batches of all processes."}
    )
    contrastive_max_length: int | None = field(
        default=128,
        metadata={"help": "Truncate each sentence of a translation pair to this many tokens (None: keep all)."},
    )
    replay_share: float = field(
        default=0.0,
        metadata={
            "help": "Share of the training rows that are replay rows of plain text (0 <= share < 1; "
            "drawn from replay_file)."
        },
    )
    replay_file: str | None = field(
        default=None,
        metadata={
            "help": "Plain text to replay: .txt (one document per line) or json/jsonl/parquet/csv with a 'text' column."
        },
    )
    replay_weight: float = field(
        default=1.0, metadata={"help": "Weight of the replay term (mean token loss on the replay rows)."}
    )
    alignment_eval_file: str | None = field(
        default=None,
        metadata={
            "help": "Parallel file of held-out pairs; adds AlignmentEvalCallback, which logs "
            "eval_alignment_retrieval_accuracy at each evaluation."
        },
    )

    # SFTConfig (TRL 1.16) defaults the deprecated alias to True; None here lets __post_init__ set the new name
    gradient_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Deprecated alias of activation_checkpointing (on by default, as in SFTConfig)."},
    )

    def __post_init__(self):
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True  # SFTConfig's default, without the deprecated name's warning
        if self.dataloader_pin_memory and (self.use_cpu or not has_accelerator()):
            self.dataloader_pin_memory = False
        if self.bf16 is None:
            # SFTConfig turns bf16 on whenever fp16 is off, which TrainingArguments rejects on a CPU-only machine
            self.bf16 = not self.fp16 and is_torch_bf16_gpu_available()
        self._check_afp_fields()
        super().__post_init__()
        kwargs = self.activation_checkpointing_kwargs or {}
        if self.activation_checkpointing and isinstance(kwargs, dict) and kwargs.get("use_reentrant"):
            raise ValueError(
                "activation_checkpointing_kwargs (gradient_checkpointing_kwargs) has use_reentrant=True; AFPTrainer "
                "runs two forward passes per step (pairs and instructions), which reentrant checkpointing does not "
                "support under DDP. Remove use_reentrant or set it to False."
            )

    def _check_afp_fields(self) -> None:
        for name in ("contrastive_weight", "sft_weight", "replay_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ValueError(f"{name}={value!r} must be a number >= 0.")
        if self.contrastive_weight == 0 and self.sft_weight == 0:
            raise ValueError("contrastive_weight and sft_weight are both 0: nothing to train. Set one of them > 0.")
        if not self.contrastive_temperature > 0 or self.contrastive_temperature == float("inf"):
            raise ValueError(
                f"contrastive_temperature={self.contrastive_temperature!r} must be a positive finite number "
                "(AFP uses 0.05)."
            )
        share = self.replay_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
            raise ValueError(
                f"replay_share={share!r} must be a number in [0, 1): the share of training rows that are "
                "replay rows (0: no replay)."
            )
        if self.replay_file and share == 0:
            raise ValueError(
                f"replay_file={self.replay_file!r} is set but replay_share=0, so none of it would be "
                "used. Set replay_share (e.g. 0.25) or drop replay_file."
            )
        layers = _layer_list(self.contrastive_layer)
        self.contrastive_layer = layers[0] if len(layers) == 1 else layers
        check_pooling(self.contrastive_pooling, "contrastive_pooling")
        if self.contrastive_max_length is not None and self.contrastive_max_length < 1:
            raise ValueError(
                f"contrastive_max_length={self.contrastive_max_length!r} must be a positive number of tokens or None."
            )
        # TrainingArguments takes 0 or a negative number here, and torch's sampler then fails at the first step
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer.")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length={self.max_length!r} must be a positive number of tokens or None.")

    @property
    def contrastive_layers(self) -> list[int]:
        """`contrastive_layer` as a list (one element for a single layer)."""
        layer = self.contrastive_layer
        return list(layer) if isinstance(layer, (list, tuple)) else [layer]


def _layer_list(value) -> list[int]:
    """`contrastive_layer` as given (an int, a list of ints, "1,2,3" or "1 2 3") -> a non-empty list of ints."""
    expected = (
        "must be a hidden_states index (1 = first block) or a list of them, e.g. 1 or [1, 2, 3] "
        "(on the command line: --contrastive_layer 1 2 3)"
    )
    items = value
    if isinstance(value, str):
        items = value.replace(",", " ").split()
        try:
            items = [int(item) for item in items]
        except ValueError:
            raise ValueError(f"contrastive_layer={value!r} {expected}.") from None
    elif not isinstance(value, (list, tuple)):
        items = [value]
    if not items or not all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        raise ValueError(f"contrastive_layer={value!r} {expected}.")
    if len(set(items)) != len(items):
        raise ValueError(f"contrastive_layer={value!r} names a layer twice; list each hidden_states index once.")
    return list(items)
