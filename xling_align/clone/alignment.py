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

`base` and `control` are the two pretrained checkpoints (no alignment run).

Example:
    >>> sorted(ARMS)
    ['afp', 'afp_entity', 'afp_layers', 'afp_mean', 'afp_mid', 'afp_words', 'cif', 'cpt_align', 'mcl']
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
        default=1, metadata={"help": "hidden_states index pooled for MCL, or a list (the term is averaged)"})
    contrastive_pooling: str = field(default="last", metadata={"help": "'last' or 'mean' pooling for MCL"})
    contrastive_temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature"})
    entity_share: float = field(default=0.0, metadata={"help": "share of entity dictionary rows in the data"})
    method: str = field(default="afp", metadata={"help": "'afp' (AFPTrainer) or 'continued_pretraining'"})

    def to_dict(self) -> dict:
        return asdict(self)


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
}
# the continued pretraining of `cpt_align`: the base's own pretraining corpus (read from its checkpoint) plus
# these fields of `xling_align.clone.pretrain.PretrainConfig` (the control's alignment and code-switching)
CONTINUED_PRETRAINING = {"word_alignment_weight": 1.0, "code_switch_share": 0.5, "steps": 300,
                         "learning_rate": 1e-3, "warmup_steps": 30}
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
}


@dataclass
class AlignmentSettings:
    """Optimisation shared by every alignment arm (one setting for all, chosen on the dev split)."""

    steps: int = field(default=400, metadata={"help": "optimizer steps per alignment run"})
    batch_size: int = field(default=16, metadata={"help": "rows (instruction + translation pair) per step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (cosine schedule; chosen on the dev split)"})


def arm_settings(arm: str, layer: int | None = None, entity_share: float | None = None,
                 layers: list[int] | None = None, word_share: float | None = None) -> ArmSettings:
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
    return settings


def contrastive_layers(settings: ArmSettings) -> list[int]:
    layer = settings.contrastive_layer
    return list(layer) if isinstance(layer, (list, tuple)) else [layer]


def continue_pretraining(base_model_dir: str | Path, output_dir: str | Path, seed: int = 0,
                         optimisation: AlignmentSettings | None = None, progress: bool = True):
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
    config = replace(PretrainConfig(**{k: v for k, v in recorded.items() if k in known}), **settings,
                     init_from=str(base_model_dir), corpus_seed=_CONTINUED_CORPUS_SEED + seed)
    folder = pretrain(config, output_dir, progress=progress, description="continued pretraining (cpt_align)")
    model, _, _ = load_checkpoint(folder)
    return model


class _StepBarOnly(ProgressCallback):
    """The trainer's progress bar without the printed log dictionaries (the demo prints its own table)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


def align(base_model_dir: str | Path, tokenizer, rows: list[dict], settings: ArmSettings,
          optimisation: AlignmentSettings, output_dir: str | Path, seed: int = 0, progress: bool = True):
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
    from xling_align.model_parts import normalize_layer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32)
    for layer in contrastive_layers(settings):
        normalize_layer(model, layer, "contrastive_layer")
    args = AFPConfig(
        output_dir=str(output_dir),
        max_steps=optimisation.steps,
        per_device_train_batch_size=optimisation.batch_size,
        learning_rate=optimisation.learning_rate,
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
    )
    trainer = AFPTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    if progress:
        # keep the step bar, drop the end-of-training metrics line it would print
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_StepBarOnly)
    trainer.train()
    trained = trainer.model
    trained.eval()
    return trained
