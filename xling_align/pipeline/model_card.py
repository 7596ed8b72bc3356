"""The model card of an `xling-align train` run: TRL's card plus what AFP needs a reader to know.

TRL's `create_model_card` (driven by `AFPTrainer._name`, `_paper`, `_tag_names`) writes the framework
versions, tags and the AFP citation. `write_model_card` completes it with the method, the paper, the base
model (and whether a LoRA adapter or the full model was trained), the languages, the training and held-out
data and the AFP settings, and puts the languages into the card's metadata (`language:`).
"""

from __future__ import annotations

import os

from xling_align.tiny_models import is_tiny_model_id

METHOD_NAME = "AFP (Align aFter Pre-training): multilingual contrastive learning + cross-lingual instruction following"
_AFP_FIELDS = (
    "contrastive_weight",
    "sft_weight",
    "contrastive_temperature",
    "contrastive_layer",
    "contrastive_pooling",
)


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not os.path.exists(name) and ":" not in name and not name.startswith((".", "/"))


def write_model_card(
    trainer, base_model: str, use_peft: bool, languages: list[str], training_data: str, heldout_data: str | None = None
) -> None:
    """Write `README.md` into the trainer's output directory (main process only).

    Args:
        trainer: the trained `AFPTrainer`.
        base_model: `model_name_or_path` of the run.
        use_peft: whether a LoRA adapter (not the full model) was trained.
        languages: language codes of the run (card metadata and text).
        training_data: where the training rows came from (a path, or `source: input`).
        heldout_data: the evaluation data used for checkpoint selection, if any.
    """
    from huggingface_hub import ModelCard

    if not trainer.is_world_process_zero():
        return
    output_dir = trainer.args.output_dir
    # TRL's card links datasets to the hub: only a hub id belongs there; a local file is described below
    hub_dataset = training_data if _looks_like_hub_id(training_data) else None
    trainer.create_model_card(model_name=os.path.basename(os.path.normpath(output_dir)), dataset_name=hub_dataset)
    path = os.path.join(output_dir, "README.md")
    card = ModelCard.load(path)
    # TRL's template assumes a hub base model and a hub repository; name the local ones instead of "None"
    card.text = card.text.replace("[None](https://huggingface.co/None)", f"`{base_model}`")
    card.text = card.text.replace('model="None"', f'model="{output_dir}"')
    card.data.language = languages or None

    args = trainer.args
    test_model = (
        " (a random test model built by xling-align, not a pretrained model)" if is_tiny_model_id(base_model) else ""
    )
    training = " with a LoRA adapter" if use_peft else ", full fine-tuning"
    heldout = f"; held-out data for checkpoint selection: `{heldout_data}`" if heldout_data else ""
    lines = [
        "",
        "## Cross-lingual alignment (xling-align)",
        "",
        f"- Method: {METHOD_NAME}.",
        f"- Paper: Li et al., {trainer._paper['title']}, NAACL 2024 (arXiv:{trainer._paper['id']}).",
        f"- Base model: `{base_model}`{test_model}{training}.",
        f"- Languages: {', '.join(languages) if languages else 'not recorded'}.",
        f"- Training data: `{training_data}`{heldout}.",
    ]
    settings = [f"{name}={getattr(args, name)}" for name in _AFP_FIELDS if hasattr(args, name)]
    if settings:
        lines.append("- AFP settings: " + ", ".join(settings) + ".")
    lines.append(f"- Steps: {trainer.state.global_step}, learning rate {args.learning_rate}, seed {args.seed}.")
    if args.metric_for_best_model and trainer.state.best_model_checkpoint:
        lines.append(
            f"- Best checkpoint by `{args.metric_for_best_model}`: {trainer.state.best_metric:.4g} "
            f"(`{os.path.basename(trainer.state.best_model_checkpoint)}`)."
        )
    card.text = card.text.rstrip() + "\n" + "\n".join(lines) + "\n"
    card.save(path)
