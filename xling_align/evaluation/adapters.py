"""What a model argument names (checkpoint folder, adapter folder, hub id) and an adapter's base model.

Shared by the `xling` lm-eval model and `xling-align analyze`, so both resolve an adapter's base the same
way: `base_model_name_or_path` of `adapter_config.json` (or an explicit override), tried as a path as
given, relative to the adapter folder and to its parent; else taken as a hub id when the hub may be used.
`model_source_kind` tells a checkpoint folder from an adapter folder from a hub id, and refuses a path
that is neither (a missing folder, a folder without a model) with a message that says what is expected.
No heavy imports: this module is safe to import anywhere.

Example:
    >>> from xling_align.evaluation.adapters import is_adapter_folder, model_source_kind
    >>> is_adapter_folder("/nonexistent")
    False
    >>> model_source_kind("facebook/xglm-564M")  # no such local folder: a hub id
    'hub'
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from xling_align.errors import XlingAlignError

ADAPTER_CONFIG = "adapter_config.json"
MODEL_CONFIG = "config.json"
# what huggingface_hub accepts as a repo id: "name" or "namespace/name", word characters, "-" and "."
_HUB_ID = re.compile(r"[\w][\w.-]*(/[\w][\w.-]*)?")


class ModelFolderError(XlingAlignError, ValueError):
    """A model argument is a local path that holds no model (missing, a file, or a folder without one)."""


def looks_like_hub_id(name: str) -> bool:
    """Whether `name` has the form of a hub repo id (`name` or `org/name`), not of a local path."""
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name and not name.endswith(".")


_EXPECTED = (
    f"Expected a full checkpoint folder ({MODEL_CONFIG} + weights, as save_pretrained and AFPTrainer "
    f"write it) or an AFP/LoRA adapter folder ({ADAPTER_CONFIG}); a hub id has the form org/name"
)


def model_source_kind(pretrained: str | os.PathLike) -> str:
    """`"checkpoint"`, `"adapter"` or `"hub"` for a model argument (lm-eval's `pretrained=`).

    A local folder wins over a hub id of the same name, as in transformers. A name that is no local
    folder is a hub id only if it has a hub id's form (`name`, `org/name`) and `org` is no local folder.

    Raises:
        ModelFolderError: `pretrained` is a path that does not exist (and is no hub id), a file, or a
            folder without `config.json` or `adapter_config.json`; the message names the path, what was
            found and what is expected.
    """
    name = os.fspath(pretrained)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / ADAPTER_CONFIG).is_file():
            return "adapter"
        if (path / MODEL_CONFIG).is_file():
            return "checkpoint"
        checkpoints = sorted(
            (
                child
                for child in path.iterdir()
                if child.is_dir() and ((child / MODEL_CONFIG).is_file() or (child / ADAPTER_CONFIG).is_file())
            ),
            key=lambda child: (len(child.name), child.name),
        )
        hint = (
            f" It holds model folders ({', '.join(child.name for child in checkpoints[:3])}"
            f"{', ...' if len(checkpoints) > 3 else ''}): pass one of them, e.g. pretrained={checkpoints[-1]}."
            if checkpoints
            else ""
        )
        raise ModelFolderError(
            f"pretrained={name}: the folder {path.resolve()} holds no model (no {MODEL_CONFIG}, no "
            f"{ADAPTER_CONFIG}).{hint} {_EXPECTED}."
        )
    if path.exists():
        raise ModelFolderError(f"pretrained={name}: {path.resolve()} is a file, not a folder. {_EXPECTED}.")
    # "out/afp-run" has a hub id's form; when the folder "out" exists here, it is a mistyped local path
    if looks_like_hub_id(name) and not ("/" in name and path.parent.is_dir()):
        return "hub"
    why = (
        f"{name!r} is no hub id"
        if not looks_like_hub_id(name)
        else f"the folder {path.parent.absolute()} exists, so this is a local path, not a hub id"
    )
    raise ModelFolderError(f"pretrained={name}: there is no folder {path.absolute()} ({why}). {_EXPECTED}.")


def is_true(value) -> bool:
    """Truth of a flag given as text (environment variables, lm-eval's --model_args)."""
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def model_argument_flag(value, name: str) -> bool:
    """A true/false model argument (`merge_lora=True`); anything else is refused, not read as false.

    >>> model_argument_flag("True", "merge_lora"), model_argument_flag(False, "merge_lora")
    (True, False)
    """
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value}: expected True or False.")


def is_adapter_folder(path: str | os.PathLike) -> bool:
    return (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def find_base_model(adapter_dir: str | os.PathLike, base_model: str | None = None) -> str:
    """The base model of a PEFT adapter folder: a local folder if one exists, else a hub id.

    Args:
        adapter_dir: folder with `adapter_config.json`.
        base_model: explicit override (e.g. lm-eval's `base_model=` model argument).

    Raises:
        ValueError: the adapter config names no base model.
        FileNotFoundError: the base looks like a local path (or the hub is offline) and is nowhere,
            with the list of places tried.
    """
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    if base_model is None:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        base_model = config.get("base_model_name_or_path")
        if not base_model:
            raise ValueError(
                f"{config_path} has no `base_model_name_or_path`: add it (the base model's folder or hub id), "
                f"or pass the base model explicitly (lm-eval: --model_args pretrained={adapter_dir},"
                "base_model=PATH_OR_HUB_ID)."
            )
    # as given (from the working folder), then next to / inside the adapter; an absolute path is one place
    candidates = list(
        dict.fromkeys([Path(base_model).expanduser(), adapter_dir / base_model, adapter_dir.parent / base_model])
    )
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return str(candidate)
    looks_local = base_model.startswith((".", "/", "~")) or base_model.count("/") > 1
    offline = is_true(os.environ.get("HF_HUB_OFFLINE", "0"))
    if looks_local or offline:
        tried = ", ".join(str(candidate) for candidate in candidates)
        raise FileNotFoundError(
            f"The base model {base_model!r} of the adapter {adapter_dir} (from {config_path}) was not "
            f"found: no config.json in {tried}"
            + (" and the hub is offline (HF_HUB_OFFLINE=1)" if offline else "")
            + ". Fix base_model_name_or_path in the adapter config, or pass the base model explicitly "
            "(lm-eval: --model_args pretrained=ADAPTER,base_model=PATH_OR_HUB_ID)."
        )
    return base_model  # a hub id: transformers downloads or reads its cache
