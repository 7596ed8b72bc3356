"""A projection head on the pair vectors: attached to the model, trained, saved next to it, reloaded.

`AFPTrainer(..., pair_head=head)` applies `head` to the pooled pair vectors before the contrastive loss.
The head becomes a submodule of the model (`xling_pair_head`, attached after PEFT wrapping, so it stays
trainable under LoRA), so the optimizer, gradient clipping, DDP/FSDP gradient reduction and device moves
treat it like any other weight, and it runs inside the model's forward (through the engine's wrapper). It is
kept out of the model's own weights file (a transformers `from_pretrained` would not know it) and written
to `pair_head.safetensors` in every checkpoint and in the saved model or adapter folder; the trainer restores it
on `resume_from_checkpoint` and `load_best_model_at_end`, and `load_pair_head(head, folder)` reloads it. A
module with trainable parameters kept on the trainer outside the model is refused instead
(`modules_outside_the_model`; `trainers/subclass_checks.py`): it would get gradients but never be optimised nor
saved.

Example:
    >>> import tempfile
    >>> from torch import nn
    >>> head = nn.Linear(4, 2)
    >>> folder = tempfile.mkdtemp()
    >>> save_pair_head({"weight": head.weight.detach(), "bias": head.bias.detach()}, folder)
    >>> fresh = load_pair_head(nn.Linear(4, 2), folder)
    >>> bool((fresh.weight == head.weight).all())
    True
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
from torch import nn

PAIR_HEAD_ATTRIBUTE = "xling_pair_head"
PAIR_HEAD_FILE = "pair_head.safetensors"


def split_pair_head_state(state_dict: dict) -> tuple[dict, dict]:
    """`(model state without the head, head state with its own key names)` from a model state dict."""
    marker = PAIR_HEAD_ATTRIBUTE + "."
    model_state, head_state = {}, {}
    for key, value in state_dict.items():
        if marker in key and (key.startswith(marker) or f".{marker}" in key):
            head_state[key.split(marker, 1)[1]] = value
        else:
            model_state[key] = value
    return model_state, head_state


def save_pair_head(head_state: dict, directory: str | os.PathLike) -> str:
    """Write the head's weights to `directory/pair_head.safetensors`; returns the path."""
    from safetensors.torch import save_file

    path = os.path.join(directory, PAIR_HEAD_FILE)
    os.makedirs(directory, exist_ok=True)
    save_file({key: value.detach().contiguous().cpu() for key, value in head_state.items()}, path)
    return path


def load_pair_head(head: nn.Module, directory: str | os.PathLike) -> nn.Module:
    """Load `directory/pair_head.safetensors` (written by AFPTrainer) into `head` (same architecture); returns it.

    Raises FileNotFoundError naming the folder when it holds no head, and ValueError when the weights do not
    fit `head` (missing or unexpected names, other shapes).
    """
    from safetensors.torch import load_file

    path = os.path.join(directory, PAIR_HEAD_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{directory!s} holds no {PAIR_HEAD_FILE}: it was not saved by an AFPTrainer with a pair_head (the model "
            "or adapter alone is there). Train with AFPTrainer(..., pair_head=head) to get one."
        )
    state = load_file(path)
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"the weights in {path} do not fit {type(head).__name__}: {error}") from None
    return head


def trainable_parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def modules_outside_the_model(owner, model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Attributes of `owner` that are modules with trainable parameters none of which belong to `model`.

    Such a module (e.g. a projection head a subclass keeps on the trainer) gets gradients but is not in the
    optimizer (built from the model's parameters) and is not saved: it would never change, silently.
    """
    model_parameters = {id(p) for p in model.parameters()}
    found = []
    for name, value in vars(owner).items():
        if not isinstance(value, nn.Module) or value is model:
            continue
        trainable = [p for p in value.parameters() if p.requires_grad]
        if trainable and not any(id(p) in model_parameters for p in trainable):
            found.append((name, value))
    return found


def attach_pair_head(model: nn.Module, head: nn.Module) -> None:
    """Make `head` the submodule `xling_pair_head` of `model` (the transformers model inside any wrapper)."""
    existing = getattr(model, PAIR_HEAD_ATTRIBUTE, None)
    if existing is not None and existing is not head:
        raise ValueError(
            f"the model already carries another {PAIR_HEAD_ATTRIBUTE} ({type(existing).__name__}); pass that one as "
            "pair_head, or a fresh model."
        )
    reference = next(model.parameters(), None)
    if reference is not None:
        head.to(reference.device)
    head.requires_grad_(True)
    model.add_module(PAIR_HEAD_ATTRIBUTE, head)


def head_input_dtype(head: nn.Module) -> torch.dtype | None:
    """The floating dtype of the head's first parameter (pooled vectors are cast to it), or None."""
    for parameter in head.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return None


@contextmanager
def pair_head_detached(model: nn.Module):
    """`model` (the transformers model inside any wrapper) without its `xling_pair_head` inside the block, for the
    model's own weights file (a transformers class knows no head); the head is back afterwards."""
    head = model._modules.pop(PAIR_HEAD_ATTRIBUTE, None)
    try:
        yield
    finally:
        if head is not None:
            model._modules[PAIR_HEAD_ATTRIBUTE] = head
