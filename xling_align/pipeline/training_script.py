"""The AFP training script behind `xling-align train`: a YAML recipe plus command-line overrides -> aligned model.

It follows the TRL script pattern (`trl/scripts/sft.py`): `make_parser()` builds a `TrlParser` (a
`RecipeParser`, which turns every mistake into one clear error) over (`ScriptArguments`, `AFPConfig`,
`ModelConfig`), so every field of the three dataclasses can be set in the recipe or on the command line
(command line wins), and `main(script_args, training_args, model_args)` loads the model and data, trains
`AFPTrainer`, and saves the model (or LoRA adapter) with a model card.

The data path runs one way: recipe -> `parse_recipe` (`ScriptArguments`, `pkg://` paths resolved) ->
`xling_align.pipeline.training_data.load_training_data` (one `TrainingData`: datasets, languages, sources) ->
`AFPTrainer` and the model card, used as they are.

    xling-align train --config tiny --output runs/tiny          # a shipped recipe, by name (any directory)
    xling-align train --config recipes/tiny.yaml --output runs/tiny   # the same file, in a checkout
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m xling_align train --config recipes/xglm-564m.yaml ...
    accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml -m xling_align train --config recipes/tiny.yaml

Example (Python, the same steps as the command line; run from the repository root):
    >>> from xling_align.pipeline.training_script import main, parse_recipe
    >>> script_args, training_args, model_args = parse_recipe(
    ...     ["--config", "recipes/tiny.yaml", "--output_dir", "/tmp/xling-tiny", "--max_steps", "4"])
    >>> training_args.contrastive_layer, model_args.model_name_or_path
    (1, 'xling-align/tiny-random-xglm')
    >>> trainer = main(script_args, training_args, model_args)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os

import torch
from accelerate import PartialState
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from trl import ModelConfig, get_peft_config

from xling_align.package_paths import missing_recipe_message, resolve_path, resolve_recipe
from xling_align.pipeline.model_card import write_model_card
from xling_align.pipeline.recipe_parser import RecipeError, RecipeParser
from xling_align.pipeline.run_directory import check_output_dir, resume_checkpoint, run_signature, write_run_signature
from xling_align.pipeline.script_arguments import ScriptArguments
from xling_align.pipeline.training_data import TrainingDataError, load_training_data
from xling_align.tiny_models import build_tiny_model, is_tiny_model_id
from xling_align.trainers.accelerators import has_accelerator
from xling_align.trainers.afp_config import AFPConfig
from xling_align.trainers.afp_trainer import AFPTrainer
from xling_align.trainers.engine_checks import check_requested_engine_runs

__all__ = [
    "RecipeError",
    "ScriptArguments",
    "check_model_available",
    "load_model_and_tokenizer",
    "main",
    "make_parser",
    "parse_recipe",
]

_WHERE_SETTINGS_COME_FROM = (
    "settings come from ScriptArguments, AFPConfig (and TRL's SFTConfig / transformers' TrainingArguments) and "
    "TRL's ModelConfig; `xling-align train --help` lists them"
)


def make_parser(prog: str | None = None) -> RecipeParser:
    """A `TrlParser` over (`ScriptArguments`, `AFPConfig`, `ModelConfig`): `--config recipe.yaml` + overrides."""
    parser = RecipeParser((ScriptArguments, AFPConfig, ModelConfig), settings_hint=_WHERE_SETTINGS_COME_FROM, prog=prog)
    # `--output` as in every other sub-command; `output_dir` stays the name of TRL's setting (and recipe key)
    parser.add_argument(
        "--output", dest="output_dir", default=argparse.SUPPRESS, metavar="OUTPUT_DIR", help="The same as --output_dir."
    )
    return parser


def parse_recipe(argv: list[str]):
    """Parse `--config RECIPE.yaml` and command-line overrides into (script_args, training_args, model_args).

    `--config` takes a path, a `pkg://` path or the name of a recipe shipped in the package (`tiny`).
    Unknown recipe keys and flags fail with the closest known name; `pkg://` paths are resolved; nothing is
    downloaded. Raises `RecipeError` (a `ValueError`) with a message meant for the user.
    """
    argv = _with_recipe_file(argv)
    parser = make_parser(prog="xling-align train")
    if _launched_without_accelerator():
        # several processes (torchrun / accelerate launch --multi_gpu) on a machine without GPUs: without
        # use_cpu each process would run alone and they would write over each other's output; the recipe or
        # the command line can still say otherwise
        parser.set_defaults_with_config(use_cpu=True)
    try:
        script_args, training_args, model_args = parser.parse(argv)
    except RecipeError as error:
        if "bf16" in str(error) and "use_cpu" in str(error):
            raise RecipeError(
                f"{error} (the recipe asks for bf16, which needs a GPU; on a CPU-only machine pass --bf16 false)"
            ) from error
        raise
    try:
        for name in ("dataset_path", "data_input", "eval_dataset_path"):
            setattr(script_args, name, resolve_path(getattr(script_args, name)))
        training_args.alignment_eval_file = resolve_path(training_args.alignment_eval_file)
        training_args.replay_file = resolve_path(training_args.replay_file)
    except FileNotFoundError as error:
        raise RecipeError(str(error)) from error
    if model_args.model_name_or_path is None:
        raise RecipeError("model_name_or_path is not set: name a model in the recipe or with --model_name_or_path")
    return script_args, training_args, model_args


def _with_recipe_file(argv: list[str]) -> list[str]:
    """`argv` with the `--config` value turned into a file: a path, a `pkg://` path or a shipped recipe's name."""
    argv = list(argv)
    for index, item in enumerate(argv):
        if item.startswith("--config="):
            argv[index : index + 1] = ["--config", item.split("=", 1)[1]]
            break
    if "--config" not in argv or argv.index("--config") + 1 >= len(argv):
        return argv
    position = argv.index("--config") + 1
    try:
        argv[position] = resolve_recipe(argv[position])
    except FileNotFoundError as error:
        raise RecipeError(str(error)) from error
    if not os.path.isfile(argv[position]):
        raise RecipeError(missing_recipe_message(argv[position]))
    return argv


def _launched_without_accelerator() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    return not has_accelerator()


def _offline_hint() -> str:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set, so nothing is downloaded and the model must already be in the local cache"
    return "the Hugging Face hub could not be reached (set HF_HUB_OFFLINE=1 to work from the local cache only)"


def check_model_available(model_args, training_args) -> None:
    """Raise `RecipeError` unless `model_args.model_name_or_path` can be loaded here (nothing big is read).

    A tiny test model id must name a known architecture; anything else must be a local model folder or
    in the Hugging Face cache (its config is read; with `HF_HUB_OFFLINE=1` nothing is downloaded).
    """
    name = model_args.model_name_or_path
    if is_tiny_model_id(name):
        try:
            build_tiny_model(name, seed=training_args.seed)
        except ValueError as error:
            raise RecipeError(f"model_name_or_path: {error}") from error
        return
    try:
        AutoConfig.from_pretrained(
            name, revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise RecipeError(
            f"model_name_or_path {name!r} cannot be loaded: it is not a local model folder and not in the Hugging Face "
            f"cache; {_offline_hint()}. Download it once where the network is allowed (`hf download {name}`) or "
            f"point model_name_or_path to a local folder. ({type(error).__name__}: {str(error).splitlines()[0]})"
        ) from error


def load_model_and_tokenizer(model_args, training_args):
    """The model and tokenizer named by `model_args.model_name_or_path`, loaded for training.

    `xling-align/tiny-random-<arch>` builds a random test model without any file (see
    `xling_align.tiny_models`); anything else is a local folder or a hub id, loaded with
    `AutoModelForCausalLM` / `AutoTokenizer`. A model that cannot be found offline raises `RecipeError`.
    """
    name = model_args.model_name_or_path
    check_model_available(model_args, training_args)
    if is_tiny_model_id(name):
        return build_tiny_model(name, seed=training_args.seed)
    common = dict(revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code)
    dtype = model_args.dtype
    if dtype not in (None, "auto"):
        dtype = getattr(torch, dtype)
    model_kwargs = dict(common, dtype=dtype or "auto", attn_implementation=model_args.attn_implementation)
    model_kwargs.update(training_args.model_init_kwargs or {})
    model = AutoModelForCausalLM.from_pretrained(name, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(name, **common)
    return model, tokenizer


def main(script_args, training_args, model_args, callbacks=None):
    """Train AFP as the parsed recipe says and save the model (or adapter), tokenizer and model card.

    Args:
        script_args, training_args, model_args: the three dataclasses of `make_parser()`.
        callbacks: extra `transformers.TrainerCallback`s (tests use one to interrupt a run).

    Returns:
        The `AFPTrainer` after training (its `state.log_history` holds the logged metrics).
    """
    if script_args.cpu_threads is not None:
        torch.set_num_threads(script_args.cpu_threads)
    # an FSDP / DeepSpeed request that accelerate would drop: stop before loading data and model
    check_requested_engine_runs(training_args)
    resume_from = resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    signature = run_signature(script_args, training_args, model_args)
    state = PartialState()
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and state.num_processes != launched:
        raise RecipeError(
            f"{launched} processes were launched (WORLD_SIZE) but they did not join one process group "
            f"(distributed type {state.distributed_type}); on a machine without GPUs pass --use_cpu true"
        )
    # only rank 0 deletes on --overwrite_output_dir; every rank reads before rank 0 writes anything
    if state.is_main_process or not script_args.overwrite_output_dir:
        check_output_dir(
            training_args.output_dir,
            signature,
            resuming=resume_from is not None,
            overwrite=script_args.overwrite_output_dir,
        )
    state.wait_for_everyone()

    data = load_training_data(script_args, training_args.alignment_eval_file)
    if data.eval_dataset is None and training_args.eval_strategy != "no":
        raise RecipeError(
            f"eval_strategy={getattr(training_args.eval_strategy, 'value', training_args.eval_strategy)} but no "
            "evaluation data: set eval_dataset_path (held-out translation pairs or a dev split), or eval_strategy: 'no'"
        )
    metric = training_args.metric_for_best_model or ""
    if "alignment" in metric and not training_args.alignment_eval_file:
        # Trainer would stop with a KeyError at the first evaluation, after training up to it
        raise RecipeError(
            f"metric_for_best_model={metric} is logged only with alignment_eval_file: set "
            "alignment_eval_file (held-out translation pairs, e.g. heldout.en-de.tsv), or select on "
            "eval_contrastive_loss"
        )
    model, tokenizer = load_model_and_tokenizer(model_args, training_args)

    try:
        trainer = AFPTrainer(
            model=model,
            args=training_args,
            train_dataset=data.train_dataset,
            eval_dataset=data.eval_dataset,
            processing_class=tokenizer,
            peft_config=get_peft_config(model_args),
            callbacks=callbacks,
        )
    except ValueError as error:  # AFPTrainer and SFTTrainer check rows and settings here, before any step
        raise TrainingDataError(
            f"the trainer refused the data or settings (training data: {data.train_source}; "
            f"evaluation data: {data.eval_source}): {error}"
        ) from error
    if trainer.is_world_process_zero():
        write_run_signature(training_args.output_dir, signature)

    trainer.accelerator.print(
        f"xling-align train: {len(data.train_dataset)} training rows, languages {data.languages or 'unknown'}, "
        f"{trainer.accelerator.num_processes} process(es)"
    )
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json (log_history with contrastive_loss) next to the model
    write_model_card(
        trainer, model_args.model_name_or_path, model_args.use_peft, data.languages, data.train_source, data.eval_source
    )
    trainer.accelerator.print(f"xling-align train: model and model card saved to {training_args.output_dir}")
    return trainer
