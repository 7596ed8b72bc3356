"""Guard the output directory of `xling-align train`: never mix two different runs in one folder.

`xling-align train` writes `xling_align_run.json` (`run_signature`: the settings that define the run: model,
data, method and optimisation hyperparameters) into its output directory. A later call with the same directory is
allowed only when it is the same run resumed (`--resume_from_checkpoint`), or when the user asks to start over
(`--overwrite_output_dir`). Settings that may change between an interrupted run and its resumption
(`max_steps`, logging and saving cadence, `report_to`, ...) are not part of the signature.

Example:
    >>> import tempfile
    >>> from xling_align.pipeline.run_directory import check_output_dir, write_run_signature
    >>> folder = tempfile.mkdtemp()
    >>> check_output_dir(folder, {"learning_rate": 1e-5}, resuming=False, overwrite=False)  # empty: fine
    >>> write_run_signature(folder, {"learning_rate": 1e-5})
    >>> check_output_dir(folder, {"learning_rate": 1e-3}, resuming=True, overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xling_align.pipeline.run_directory.OutputDirError: ...
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig

from xling_align.errors import XlingAlignError

SIGNATURE_FILE = "xling_align_run.json"
_CHECKPOINT_PREFIX = "checkpoint-"

# TrainingArguments that define what is trained (resuming with a change here would mix two runs);
# everything else (max_steps, logging/saving/eval cadence, report_to, ...) may change on resume.
_RUN_DEFINING_TRAINING_ARGS = (
    "seed",
    "data_seed",
    "learning_rate",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "optim",
    "max_grad_norm",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "packing",
    "completion_only_loss",
    "bf16",
    "fp16",
)

# evaluation data and machine settings may change when a run is resumed
_NOT_RUN_DEFINING_SCRIPT_ARGS = {"overwrite_output_dir", "cpu_threads", "eval_dataset_path", "max_eval_samples"}


class OutputDirError(XlingAlignError, ValueError):
    """The output directory holds something this run must not write over."""


def run_signature(script_args, training_args, model_args) -> dict:
    """The settings that define a run (the three dataclasses of `xling-align train`), JSON-serialisable.

    Every field of the script and model arguments except machine settings and evaluation data; the method's
    own fields (those AFPConfig adds to TRL's SFTConfig) and the optimisation settings of the training arguments.
    """
    own_fields = set(type(training_args).__dataclass_fields__) - set(SFTConfig.__dataclass_fields__)
    signature = {
        f"script.{key}": value for key, value in asdict(script_args).items() if key not in _NOT_RUN_DEFINING_SCRIPT_ARGS
    }
    signature.update({f"model.{key}": value for key, value in asdict(model_args).items()})
    for key in sorted(own_fields - {"alignment_eval_file"}) + list(_RUN_DEFINING_TRAINING_ARGS):
        if hasattr(training_args, key):
            signature[f"training.{key}"] = getattr(training_args, key)
    return signature


def resume_checkpoint(resume_from_checkpoint, output_dir: str) -> str | None:
    """`resume_from_checkpoint` as `Trainer.train` wants it: None, or the checkpoint folder to continue from.

    `true`/`yes`/`last` pick the last `checkpoint-*` folder of `output_dir`; `false`/`no`/unset give None.
    """
    value = resume_from_checkpoint
    if value is None or str(value).lower() in {"false", "no", ""}:
        return None
    if str(value).lower() in {"true", "yes", "last"}:
        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise OutputDirError(
                f"resume_from_checkpoint={value}: output_dir {output_dir!r} holds no checkpoint-* folder; "
                "drop the flag to start a new run, or name a checkpoint folder"
            )
        return last
    if not os.path.isdir(value):
        raise OutputDirError(f"resume_from_checkpoint {value!r} is not a checkpoint folder")
    return value


def _normalise(signature: dict) -> dict:
    # a JSON round trip so that tuples/lists and numbers compare the same before and after saving
    return json.loads(json.dumps(signature, sort_keys=True, default=str))


def read_run_signature(output_dir: str | os.PathLike) -> dict | None:
    """The signature saved by an earlier run in `output_dir`, or None when there is none."""
    path = Path(output_dir) / SIGNATURE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_run_signature(output_dir: str | os.PathLike, signature: dict) -> None:
    """Record `signature` in `output_dir` (created if needed), replacing the file atomically."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{SIGNATURE_FILE}.tmp"
    temporary.write_text(json.dumps(_normalise(signature), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, folder / SIGNATURE_FILE)


def _differences(old: dict, new: dict, limit: int = 6) -> str:
    keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    shown = [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys[:limit]]
    more = f" (and {len(keys) - limit} more)" if len(keys) > limit else ""
    return "; ".join(shown) + more


def check_output_dir(output_dir: str | os.PathLike, signature: dict, resuming: bool, overwrite: bool) -> None:
    """Refuse to train into a directory that holds another run, or this run without `--resume_from_checkpoint`.

    Args:
        output_dir: the run's output directory (it may not exist yet).
        signature: the settings that define this run (JSON-serialisable values).
        resuming: the user asked to continue from a checkpoint.
        overwrite: the user asked to start over (`--overwrite_output_dir`); stale `checkpoint-*` folders
            and the old signature are removed so that a later `--resume_from_checkpoint` cannot pick them up.

    Raises:
        OutputDirError: naming the directory, what it holds and the flag that resolves it.
    """
    folder = Path(output_dir)
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if overwrite:
        for child in folder.iterdir():
            if child.is_dir() and child.name.startswith(_CHECKPOINT_PREFIX):
                shutil.rmtree(child)
        (folder / SIGNATURE_FILE).unlink(missing_ok=True)
        return
    previous = read_run_signature(folder)
    if previous is None:
        if resuming:
            return  # e.g. a checkpoint written by plain TRL: nothing to compare against
        raise OutputDirError(
            f"output_dir {str(folder)!r} is not empty and was not written by `xling-align train` (no "
            f"{SIGNATURE_FILE}); choose a new --output_dir, or pass --overwrite_output_dir to write into it anyway"
        )
    if _normalise(previous) != _normalise(signature):
        raise OutputDirError(
            f"output_dir {str(folder)!r} holds a different run "
            f"({_differences(_normalise(previous), _normalise(signature))}); "
            "choose a new --output_dir, or pass --overwrite_output_dir to discard its checkpoints and start over"
        )
    if not resuming:
        raise OutputDirError(
            f"output_dir {str(folder)!r} already holds this run; pass --resume_from_checkpoint true to continue "
            "from its last checkpoint, or --overwrite_output_dir to start over"
        )
