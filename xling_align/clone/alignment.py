"""Align the clone base model with `AFPTrainer`: the paper's arms and the variants a researcher tries next.

Arms (`ARMS`), all trained from the base checkpoint on the same optimisation settings:
- `cif`: cross-lingual instruction following only (`contrastive_weight=0`, `sft_weight=1.5`);
- `mcl`: multilingual contrastive learning only (`contrastive_weight=1`, `sft_weight=0`);
- `afp`: both, as the paper defines it: weights 1.0 / 1.5, `hidden_states[1]`, last-token pooling, tau 0.05;
- `afp_mean`: AFP with mean pooling;
- `afp_mid`: AFP with the contrastive term at a middle layer (`hidden_states[3]`, chosen on the dev split
  from {2, 3}; `--layer` overrides it);
- `afp_entity`: AFP whose data mixes in entity-bearing dictionary pairs (25% of rows, chosen on the dev
  split from {0.25, 0.5}).

Testbed v3 arms (what v2 found missing: alignment carried through the layers where facts are stored):
- `afp_layers`: AFP with the contrastive term averaged over several layers (`contrastive_layer` a list;
  chosen on the dev split from [1, 2], [1, 2, 3], [1, 2, 3, 4]);
- `afp_words`: the same layers, with word-level dictionary pairs: a share of the rows (chosen on the dev
  split from {0.5, 1.0}) are entity dictionary entries whose pair vector is the entity word's token;
- `cpt_align`: no AFPTrainer: a short continued pretraining of the base on its own mixed L1/L2 corpus plus
  the control's PreAlign-style word alignment at every layer and code-switching (`CONTINUED_PRETRAINING`),
  i.e. the control's recipe applied after pretraining instead of during it.

Testbed v4 arms (forgetting: AFP that keeps what the base could do; see the README's v4 part):
- `afp_replay25`, `afp_replay50`: AFP with replay rows of the base's own pretraining-style corpus
  (`replay_documents`: a fresh stream of its corpus mixture, 64-token documents), 25% / 50% of the rows;
- `afp_lora`: AFP training LoRA adapters (rank 8, alpha 16, every linear layer of the blocks) instead of
  every weight, merged before scoring;
- `afp_lowlr`: AFP at a peak learning rate of 3e-4 instead of 1e-3;
- `afp_words_replay`: `afp_words` plus replay (share chosen on the dev split from the two replay arms');
- `replay_words`: `cpt_align`'s idea inside AFPTrainer: word pairs at layers 1-4 plus replay of the corpus,
  no instructions (`sft_weight=0`; same share as `afp_words_replay`).

`base` and `control` are the two pretrained checkpoints (no alignment run).

Example:
    >>> sorted(ARMS)  # doctest: +NORMALIZE_WHITESPACE
    ['afp', 'afp_entity', 'afp_layers', 'afp_lora', 'afp_lowlr', 'afp_mean', 'afp_mid', 'afp_replay25',
     'afp_replay50', 'afp_words', 'afp_words_replay', 'cif', 'cpt_align', 'mcl', 'replay_words']
    >>> ARMS["afp"].contrastive_layer, ARMS["afp"].contrastive_pooling
    (1, 'last')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from transformers import ProgressCallback

PRETRAINED_ARMS = ("base", "control")


@dataclass(frozen=True)
class ArmSettings:
    """What one alignment arm trains (the paper's AFP defaults unless an arm changes them)."""

    contrastive_weight: float = field(default=1.0, metadata={"help": "weight of the MCL (InfoNCE) term"})
    sft_weight: float = field(default=1.5, metadata={"help": "weight of the CIF (SFT) term"})
    contrastive_layer: int | list[int] = field(
        default=1, metadata={"help": "hidden_states index pooled for MCL, or a list (the term is averaged)"}
    )
    contrastive_pooling: str = field(default="last", metadata={"help": "'last' or 'mean' pooling for MCL"})
    contrastive_temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature"})
    entity_share: float = field(default=0.0, metadata={"help": "share of entity dictionary rows in the data"})
    method: str = field(default="afp", metadata={"help": "'afp' (AFPTrainer) or 'continued_pretraining'"})
    replay_share: float = field(default=0.0, metadata={"help": "share of replay rows of the base's corpus"})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (merged afterwards), not every weight"})
    learning_rate: float | None = field(default=None, metadata={"help": "peak lr of this arm (None: the shared one)"})

    def to_dict(self) -> dict:
        # fields added for v4 only when set: the shipped arms' records (alignment.json) keep matching
        return {
            key: value for key, value in asdict(self).items() if key not in _V4_FIELDS or value != _V4_DEFAULTS[key]
        }


_V4_FIELDS = ("replay_share", "lora", "learning_rate")
_V4_DEFAULTS = {"replay_share": 0.0, "lora": False, "learning_rate": None}
# LoRA of `afp_lora` (pre-registered in the README's v4 part)
LORA = {"r": 8, "lora_alpha": 16, "target_modules": "all-linear", "lora_dropout": 0.0}
# words per replay document of the v4 arms (one row; the AFP rows are shorter, the pretraining blocks 128)
REPLAY_DOCUMENT_WORDS = 64
# the corpus stream of an alignment seed's replay documents (neither the base's nor cpt_align's stream)
_REPLAY_CORPUS_SEED = 60_000


ARMS: dict[str, ArmSettings] = {
    "cif": ArmSettings(contrastive_weight=0.0),
    "mcl": ArmSettings(sft_weight=0.0),
    "afp": ArmSettings(),
    "afp_mean": ArmSettings(contrastive_pooling="mean"),
    # free settings chosen on the dev split (benchmarks/clone_ablation.py --dev-grid variants)
    "afp_mid": ArmSettings(contrastive_layer=3),
    "afp_entity": ArmSettings(entity_share=0.25),
    # v3 (chosen on the dev split; see xling_align/clone/README.md)
    "afp_layers": ArmSettings(contrastive_layer=[1, 2, 3, 4]),
    "afp_words": ArmSettings(contrastive_layer=[1, 2, 3, 4], entity_share=1.0),
    "cpt_align": ArmSettings(contrastive_weight=0.0, sft_weight=0.0, method="continued_pretraining"),
    # v4 (see xling_align/clone/README.md); the combined arms use the replay share chosen on the dev split (0.25)
    "afp_replay25": ArmSettings(replay_share=0.25),
    "afp_replay50": ArmSettings(replay_share=0.5),
    "afp_lora": ArmSettings(lora=True),
    "afp_lowlr": ArmSettings(learning_rate=3e-4),
    "afp_words_replay": ArmSettings(contrastive_layer=[1, 2, 3, 4], entity_share=1.0, replay_share=0.25),
    "replay_words": ArmSettings(sft_weight=0.0, contrastive_layer=[1, 2, 3, 4], entity_share=1.0, replay_share=0.25),
}
# the continued pretraining of `cpt_align`: the base's own pretraining corpus (read from its checkpoint) plus
# these fields of `xling_align.clone.pretrain.PretrainConfig` (the control's alignment and code-switching)
CONTINUED_PRETRAINING = {
    "word_alignment_weight": 1.0,
    "code_switch_share": 0.5,
    "steps": 300,
    "learning_rate": 1e-3,
    "warmup_steps": 30,
}
# the corpus stream of an alignment seed's continued pretraining (never the base's own stream)
_CONTINUED_CORPUS_SEED = 50_000
# chosen on the dev split of held-out entities (see xling_align/clone/README.md); the demo scores it
BEST_VARIANT = "cpt_align"
ARM_TITLES = {
    "base": "base (no alignment)",
    "control": "control (PreAlign-style pretraining)",
    "cif": "CIF only",
    "mcl": "MCL only",
    "afp": "AFP (paper defaults)",
    "afp_mean": "AFP, mean pooling",
    "afp_mid": "AFP, middle layer",
    "afp_entity": "AFP + entity pairs",
    "afp_layers": "AFP, several layers",
    "afp_words": "AFP, word pairs at several layers",
    "cpt_align": "continued pretraining + word alignment",
    "afp_replay25": "AFP + 25% replay",
    "afp_replay50": "AFP + 50% replay",
    "afp_lora": "AFP with LoRA",
    "afp_lowlr": "AFP, lr 3e-4",
    "afp_words_replay": "AFP, word pairs + replay",
    "replay_words": "word pairs + replay, no CIF",
}


@dataclass
class AlignmentSettings:
    """Optimisation shared by every alignment arm (one setting for all, chosen on the dev split)."""

    steps: int = field(default=400, metadata={"help": "optimizer steps per alignment run"})
    batch_size: int = field(default=16, metadata={"help": "rows (instruction + translation pair) per step"})
    learning_rate: float = field(
        default=1e-3, metadata={"help": "peak learning rate (cosine schedule; chosen on the dev split)"}
    )


def arm_settings(
    arm: str,
    layer: int | None = None,
    entity_share: float | None = None,
    layers: list[int] | None = None,
    word_share: float | None = None,
    replay_share: float | None = None,
) -> ArmSettings:
    """The settings of `arm`, with the variant's free setting overridden when given (dev-split selection):
    `layer` for afp_mid, `entity_share` for afp_entity, `layers` for afp_layers and afp_words, `word_share` for
    afp_words."""
    if arm not in ARMS:
        known = sorted(PRETRAINED_ARMS + tuple(ARMS))
        raise ValueError(f"arm {arm!r} is not an alignment arm; use one of {known}.")
    settings = ARMS[arm]
    if layer is not None and arm == "afp_mid":
        settings = replace(settings, contrastive_layer=layer)
    if entity_share is not None and arm == "afp_entity":
        settings = replace(settings, entity_share=entity_share)
    if layers is not None and arm in ("afp_layers", "afp_words"):
        settings = replace(settings, contrastive_layer=list(layers))
    if word_share is not None and arm == "afp_words":
        settings = replace(settings, entity_share=word_share)
    if replay_share is not None and arm in COMBINED_REPLAY_ARMS:
        settings = replace(settings, replay_share=replay_share)
    return settings


# the v4 arms whose replay share is the one chosen on the dev split (`--replay-share` overrides it)
COMBINED_REPLAY_ARMS = ("afp_words_replay", "replay_words")


def replay_documents(base_model_dir: str | Path, count: int, seed: int = 0) -> list[str]:
    """`count` documents of the base's own pretraining-style text: units of its corpus mixture (read from its
    checkpoint) from a stream no other run uses, joined to about `REPLAY_DOCUMENT_WORDS` words each."""
    import json

    from xling_align.clone.corpus import unit_stream
    from xling_align.clone.pretrain import PRETRAIN_FILE, PretrainConfig, load_world

    recorded = json.loads((Path(base_model_dir) / PRETRAIN_FILE).read_text())
    known = set(PretrainConfig.__dataclass_fields__)
    config = PretrainConfig(**{k: v for k, v in recorded.items() if k in known})
    stream = unit_stream(load_world(base_model_dir), config.corpus_config(), _REPLAY_CORPUS_SEED + seed)
    documents = []
    while len(documents) < count:
        words: list[str] = []
        while len(words) < REPLAY_DOCUMENT_WORDS:
            words.extend(next(stream)[1].split() + ["."])
        documents.append(" ".join(words[:REPLAY_DOCUMENT_WORDS]))
    return documents


def contrastive_layers(settings: ArmSettings) -> list[int]:
    layer = settings.contrastive_layer
    return list(layer) if isinstance(layer, (list, tuple)) else [layer]


def continue_pretraining(
    base_model_dir: str | Path,
    output_dir: str | Path,
    seed: int = 0,
    optimisation: AlignmentSettings | None = None,
    progress: bool = True,
):
    """`cpt_align`: continue the base on its own corpus with word alignment and code-switching; return the model.

    The world and corpus mixture are the base's (its `clone_pretraining.json`); the fields of
    `CONTINUED_PRETRAINING` are set on top, and the alignment seed picks the corpus stream. Its steps scale with
    the AFP arms' (`optimisation.steps` / the default 400), so a short smoke run (`--steps 2`) stays short.
    """
    import json

    from xling_align.clone.pretrain import PRETRAIN_FILE, PretrainConfig, load_checkpoint, pretrain

    recorded = json.loads((Path(base_model_dir) / PRETRAIN_FILE).read_text())
    known = {f for f in PretrainConfig.__dataclass_fields__}
    settings = dict(CONTINUED_PRETRAINING)
    if optimisation is not None:
        scale = optimisation.steps / AlignmentSettings().steps
        settings["steps"] = max(1, round(settings["steps"] * scale))
        settings["warmup_steps"] = max(1, round(settings["warmup_steps"] * min(1.0, scale)))
    config = replace(
        PretrainConfig(**{k: v for k, v in recorded.items() if k in known}),
        **settings,
        init_from=str(base_model_dir),
        corpus_seed=_CONTINUED_CORPUS_SEED + seed,
    )
    folder = pretrain(config, output_dir, progress=progress, description="continued pretraining (cpt_align)")
    model, _, _ = load_checkpoint(folder)
    return model


class _StepBarOnly(ProgressCallback):
    """The trainer's progress bar without the printed log dictionaries (the demo prints its own table)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


def align(
    base_model_dir: str | Path,
    tokenizer,
    rows: list[dict],
    settings: ArmSettings,
    optimisation: AlignmentSettings,
    output_dir: str | Path,
    seed: int = 0,
    progress: bool = True,
):
    """Train one alignment arm from the base checkpoint with AFPTrainer and return the trained model (eval mode).

    Args:
        base_model_dir: the base checkpoint folder (float16 weights are trained in float32).
        tokenizer: its tokenizer.
        rows: AFP rows (`xling_align.clone.alignment_data.alignment_rows`).
        settings: the arm.
        optimisation: steps, batch size, learning rate.
        output_dir: the trainer's output folder (nothing is saved there unless the caller saves the model).
        seed: seed of data order and initialisation-free randomness.
        progress: show the trainer's progress bar.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from xling_align import AFPConfig, AFPTrainer
    from xling_align.alignment.model_parts import normalize_layer
    from xling_align.trainers.afp_replay import replay_row_count

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32)
    for layer in contrastive_layers(settings):
        normalize_layer(model, layer, "contrastive_layer")
    args = AFPConfig(
        output_dir=str(output_dir),
        max_steps=optimisation.steps,
        per_device_train_batch_size=optimisation.batch_size,
        learning_rate=settings.learning_rate or optimisation.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, optimisation.steps // 20),
        contrastive_weight=settings.contrastive_weight,
        sft_weight=settings.sft_weight,
        contrastive_layer=settings.contrastive_layer,
        contrastive_pooling=settings.contrastive_pooling,
        contrastive_temperature=settings.contrastive_temperature,
        bf16=False,
        activation_checkpointing=False,
        max_length=128,
        seed=seed,
        data_seed=seed,
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=not progress,
        replay_share=settings.replay_share,
    )
    replay = None
    if settings.replay_share > 0:
        count = replay_row_count(len(rows), settings.replay_share)
        replay = Dataset.from_dict({"text": replay_documents(base_model_dir, count, seed=seed)})
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **LORA)
    trainer = AFPTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        replay_dataset=replay,
        peft_config=peft_config,
    )
    if progress:
        # keep the step bar, drop the end-of-training metrics line it would print
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_StepBarOnly)
    trainer.train()
    trained = trainer.model
    if settings.lora:
        trained = trained.merge_and_unload()  # scored and saved as an ordinary model
    trained.eval()
    return trained
