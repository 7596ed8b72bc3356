"""One run of the cloned-language experiment: get every arm's model, score it with lm-eval, measure retrieval.

Used by `xling-align demo` and `benchmarks/clone_ablation.py`. For each arm:
1. the model: `base` / `control` are the pretrained checkpoints; an alignment arm is trained live from the
   base with `AFPTrainer`, or loaded from its shipped checkpoint when it is not asked live and the shipped
   one was trained with the same settings and seed;
2. lm-eval on the `xling_clone_*` tasks -> `results_clone_<arm>.json` (the summary reads these files);
3. layer-wise L1 -> L2 retrieval for sentences and for entity words.

Example:
    >>> plan = ExperimentPlan(arms=["base", "afp"])
    >>> plan.live
    ('afp',)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xling_align.clone.alignment import (
    ARMS,
    COMBINED_REPLAY_ARMS,
    PRETRAINED_ARMS,
    AlignmentSettings,
    align,
    arm_settings,
    continue_pretraining,
    contrastive_layers,
)
from xling_align.clone.checkpoints import (
    PRETRAINED_DIRS,
    read_alignment_record,
    save_arm,
    shipped_arm_dir,
    verify,
)
from xling_align.errors import XlingAlignError

DEFAULT_ARMS = ("base", "control", "cif", "mcl", "afp")


class ExperimentError(XlingAlignError, ValueError):
    """Bad input to the experiment (unknown arm, impossible layer, unusable checkpoint)."""


@dataclass
class ExperimentPlan:
    """What to run (defaults = the demo)."""

    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    live: tuple[str, ...] = ("afp",)
    base_dir: Path | None = None
    control_dir: Path | None = None
    optimisation: AlignmentSettings = field(default_factory=AlignmentSettings)
    middle_layer: int | None = None
    entity_share: float | None = None
    layers: list[int] | None = None
    word_share: float | None = None
    replay_share: float | None = None
    seed: int = 0
    limit: int | None = None
    tasks: list[str] | None = None
    heldout_pairs: int = 200
    save_arms_to: Path | None = None

    def __post_init__(self):
        known = PRETRAINED_ARMS + tuple(ARMS)
        unknown = [a for a in self.arms if a not in known]
        if unknown:
            raise ExperimentError(f"unknown arm(s) {unknown}; the arms are {list(known)}.")
        if len(set(self.arms)) != len(self.arms):
            raise ExperimentError(f"arms {self.arms} name an arm twice; list each once.")
        for name, arms in (
            ("middle_layer", ("afp_mid",)),
            ("entity_share", ("afp_entity",)),
            ("layers", ("afp_layers", "afp_words")),
            ("word_share", ("afp_words",)),
            ("replay_share", COMBINED_REPLAY_ARMS),
        ):
            if getattr(self, name) is not None and not any(arm in self.arms for arm in arms):
                named = " or ".join(repr(arm) for arm in arms)
                raise ExperimentError(
                    f"{name}={getattr(self, name)} applies to the {named} arm only, which is not "
                    f"among the arms {self.arms}; add {arms[0]} or drop the setting."
                )
        self.live = tuple(a for a in self.live if a in self.arms and a in ARMS)
        if self.optimisation.steps < 1 or self.optimisation.batch_size < 1:
            raise ExperimentError(
                f"alignment steps={self.optimisation.steps} and batch size="
                f"{self.optimisation.batch_size} must be at least 1."
            )
        if self.limit is not None and self.limit < 1:
            raise ExperimentError(f"limit={self.limit} must be at least 1 document per task.")
        if self.heldout_pairs < 2:
            raise ExperimentError(f"heldout_pairs={self.heldout_pairs}: retrieval needs at least 2 pairs.")

    def checkpoint(self, arm: str) -> Path:
        given = self.base_dir if arm == "base" else self.control_dir
        return Path(given).resolve() if given else PRETRAINED_DIRS[arm]

    def record(self, arm: str) -> dict:
        """What identifies an alignment arm's training (compared with a shipped arm's `alignment.json`)."""
        return {
            "arm": arm,
            "settings": self.settings(arm).to_dict(),
            "optimisation": asdict(self.optimisation),
            "seed": self.seed,
        }

    def settings(self, arm: str):
        return arm_settings(arm, self.middle_layer, self.entity_share, self.layers, self.word_share, self.replay_share)


def _load_pretrained(plan: ExperimentPlan, arm: str):
    from xling_align.clone.checksum import ChecksumError
    from xling_align.clone.pretrain import load_checkpoint

    folder = plan.checkpoint(arm)
    try:
        verify(folder, arm)
        return load_checkpoint(folder, verify=False)
    except ChecksumError as error:
        raise ExperimentError(str(error)) from None
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise ExperimentError(f"{folder} is not a usable clone checkpoint for arm {arm!r}: {error}") from None


def _shipped_arm(plan: ExperimentPlan, arm: str):
    """The shipped checkpoint of `arm` if it matches the plan (verified), else None."""
    from transformers import AutoModelForCausalLM

    from xling_align.clone.checksum import ChecksumError

    folder = shipped_arm_dir(arm)
    record = read_alignment_record(folder)
    if plan.base_dir is not None or record is None:
        return None
    if {k: record.get(k) for k in ("arm", "settings", "optimisation", "seed")} != plan.record(arm):
        return None
    try:
        verify(folder, arm)
    except ChecksumError as error:
        raise ExperimentError(str(error)) from None
    import torch

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def run_experiment(
    plan: ExperimentPlan, output: str | Path, log: Callable[[str], None] = print, progress: bool = True
) -> dict:
    """Run the plan; write results files, `retrieval.json` and return `{arm: figures}` (see `summary`)."""
    from xling_align.alignment.model_parts import normalize_layer, num_decoder_layers
    from xling_align.clone.alignment_data import alignment_rows, heldout_pairs
    from xling_align.clone.evaluation import clone_task_names, evaluate_clone_tasks
    from xling_align.clone.pretrain import WORLD_FILE
    from xling_align.clone.retrieval import entity_retrieval, layerwise_retrieval
    from xling_align.clone.summary import arm_figures

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    base_model, tokenizer, world = _load_pretrained(plan, "base")
    depth = num_decoder_layers(base_model)
    for arm in plan.arms:
        if arm in ARMS:
            layers = contrastive_layers(plan.settings(arm))
            try:
                for layer in layers:
                    normalize_layer(base_model, layer)
            except ValueError:
                raise ExperimentError(
                    f"arm {arm!r} asks for contrastive layer {layer}, but the base model has "
                    f"{depth} decoder layers (hidden_states 0..{depth}); pass a layer in "
                    f"1..{depth}."
                ) from None
    log(
        f"[1/4] checkpoints verified (SHA-256): base {plan.checkpoint('base')}"
        + (f", control {plan.checkpoint('control')}" if "control" in plan.arms else "")
    )

    models = {}
    world_config = world.config.to_dict()
    for arm in plan.arms:
        if arm == "base":
            models[arm] = base_model
        elif arm == "control":
            control, _, control_world = _load_pretrained(plan, "control")
            if control_world.config != world.config:
                raise ExperimentError(
                    f"the control checkpoint's world {control_world.config} differs from the "
                    f"base's {world.config}; both must come from the same world."
                )
            models[arm] = control
        elif arm not in plan.live and (shipped := _shipped_arm(plan, arm)) is not None:
            models[arm] = shipped
            log(f"      {arm}: shipped checkpoint {shipped_arm_dir(arm)} (same settings and seed)")
    to_train = [a for a in plan.arms if a not in models]
    if to_train:
        opt = plan.optimisation
        log(
            f"[2/4] alignment with AFPTrainer from the base: {', '.join(to_train)} "
            f"({opt.steps} steps x {opt.batch_size} rows, peak lr {opt.learning_rate:g}, seed {plan.seed})"
        )
    for arm in to_train:
        settings = plan.settings(arm)
        if settings.method == "continued_pretraining":
            models[arm] = continue_pretraining(
                plan.checkpoint("base"),
                output / "runs" / arm,
                seed=plan.seed,
                optimisation=plan.optimisation,
                progress=progress,
            )
        else:
            rows = alignment_rows(
                world,
                plan.optimisation.steps * plan.optimisation.batch_size,
                seed=plan.seed,
                entity_share=settings.entity_share,
            )
            models[arm] = align(
                plan.checkpoint("base"),
                tokenizer,
                rows,
                settings,
                plan.optimisation,
                output / "runs" / arm,
                seed=plan.seed,
                progress=progress,
            )
        if plan.save_arms_to is not None:
            save_arm(
                models[arm],
                tokenizer,
                Path(plan.save_arms_to) / arm,
                plan.record(arm),
                plan.checkpoint("base") / WORLD_FILE,
            )

    tasks = plan.tasks or clone_task_names()
    log(
        f"[3/4] lm-eval on {len(tasks)} clone tasks for {len(plan.arms)} arms"
        + (f" (limit {plan.limit})" if plan.limit else "")
    )
    results_files = {}
    for arm in _bar(plan.arms, "lm-eval", progress):
        results_files[arm] = output / f"results_clone_{arm}.json"
        evaluate_clone_tasks(
            models[arm],
            tokenizer,
            results_files[arm],
            tasks=tasks,
            limit=plan.limit,
            seed=plan.seed,
            world_config=world_config,
        )

    pairs = heldout_pairs(world, plan.heldout_pairs, seed=plan.seed)
    log(
        f"[4/4] layer-wise retrieval: {len(pairs)} held-out sentence pairs, "
        f"{len(world.entities) - len(world.anchors)} entity words"
    )
    sources = [r["source_sentence"] for r in pairs]
    targets = [r["target_sentence"] for r in pairs]
    retrieval = {}
    for arm in _bar(plan.arms, "retrieval", progress):
        retrieval[arm] = {
            "sentence_retrieval": layerwise_retrieval(models[arm], tokenizer, sources, targets, pooling="mean"),
            # the pooling AFP trains with; added after the pre-registration, which names the mean-pooled one
            "sentence_retrieval_last": layerwise_retrieval(models[arm], tokenizer, sources, targets, pooling="last"),
            "entity_retrieval": entity_retrieval(models[arm], tokenizer, world),
        }
    (output / "retrieval.json").write_text(
        json.dumps(
            {
                arm: {k: {str(layer): v for layer, v in by.items()} for k, by in kinds.items()}
                for arm, kinds in retrieval.items()
            },
            indent=2,
        )
        + "\n"
    )
    return {arm: arm_figures(results_files[arm], retrieval[arm]) for arm in plan.arms}


def _bar(items, description: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, disable=not progress)
