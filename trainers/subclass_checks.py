"""Checks of what a subclass of `AFPTrainer` returns from the hooks it overrides, and of what it keeps on itself.

The hooks (`tokenize_pair`, `encode_pairs`, `compute_contrastive_loss`) are called by the trainer, and what they
return is checked where it is used: type, shape and, in training, a gradient. A mistake then stops with an error
naming the method and what it must return, instead of failing deep inside the loss or, worse, training nothing
without a word. A module with trainable parameters kept on the trainer outside the model (e.g. `self.proj` used
in an overridden `encode_pairs`) would get gradients but never be optimised nor saved: it is refused, named.
Each check returns the value it was given (cleaned where stated) or raises; `method` is the name shown in the
error, e.g. `"MyTrainer.encode_pairs"`.
"""

from __future__ import annotations

import torch

from xling_align.alignment.contrastive_loss import ContrastiveOutput
from xling_align.trainers import pair_head as pair_heads
from xling_align.trainers.engine_checks import UnsupportedSetupError


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checked_pair_ids(result, method: str, index: int, dataset_name: str) -> tuple[list[int], list[int]]:
    """What `tokenize_pair` returned for row `index`, as two lists of ints, or an error naming the method."""
    expected = (
        "two lists of token ids (source, target), e.g. "
        "`return tokenizer(source)['input_ids'], tokenizer(target)['input_ids']`"
    )
    if not isinstance(result, (tuple, list)) or len(result) != 2 or all(isinstance(x, int) for x in result):
        raise TypeError(
            f"{method} returned {type(result).__name__} {_short(result)} for row {index} of the "
            f"{dataset_name} dataset; it must return {expected}."
        )
    checked = []
    for ids in result:
        if isinstance(ids, torch.Tensor) and ids.dim() == 1:
            ids = ids.tolist()  # one row of ids: the same thing in another container
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError(
                f"{method} returned {type(ids).__name__} {_short(ids)} as one side of row {index} of "
                f"the {dataset_name} dataset; it must return {expected}."
            )
        checked.append(list(ids))
    return checked[0], checked[1]


def checked_pair_vectors(vectors, method: str, rows: int, layers: int, mode: str) -> torch.Tensor:
    """What `encode_pairs` returned for `rows` sentences (sources then targets) and `layers` contrastive layers."""
    shape = f"({rows}, dim)" if layers == 1 else f"({layers}, {rows}, dim), one (2 * pairs, dim) slice per layer"
    if not isinstance(vectors, torch.Tensor):
        raise TypeError(
            f"{method} returned a {type(vectors).__name__}; it must return one tensor of shape "
            f"{shape}: the sources' vectors, then the targets'."
        )
    wanted = (rows,) if layers == 1 else (layers, rows)
    if vectors.dim() != len(wanted) + 1 or tuple(vectors.shape[:-1]) != wanted:
        raise ValueError(
            f"{method} returned shape {tuple(vectors.shape)} for {rows} sentences ({rows // 2} pairs, "
            f"sources then targets) and {layers} contrastive layer(s); it must return {shape}: one "
            "pooled vector per sentence (pool over the tokens, keep both halves)."
        )
    if mode == "train" and torch.is_grad_enabled() and not vectors.requires_grad:
        raise RuntimeError(
            f"{method} returned vectors without a gradient, so the contrastive loss would train "
            "nothing: they were detached or computed under torch.no_grad(), or no trainable weight "
            "lies below them (e.g. LoRA with contrastive_layer=0, the frozen embeddings). Compute "
            "them with gradients from trainable weights, or set contrastive_weight=0."
        )
    return vectors


def checked_contrastive_output(output, method: str, vectors, mode: str) -> ContrastiveOutput:
    """What `compute_contrastive_loss` returned for `vectors` (the pair vectors it was computed from, or None)."""
    fields = ("loss", "num_correct", "num_sources", "num_pairs")
    if not all(hasattr(output, name) for name in fields):
        raise TypeError(
            f"{method} returned a {type(output).__name__}; it must return a "
            "xling_align.alignment.contrastive_loss.ContrastiveOutput(loss, num_correct, num_sources, "
            "num_pairs) with loss a 0-dim tensor (or None to skip the batch), e.g. "
            "`ContrastiveOutput(loss, num_correct=0, num_sources=len(source), num_pairs=len(source))`."
        )
    loss = output.loss
    if loss is not None and (not isinstance(loss, torch.Tensor) or loss.numel() != 1):
        shown = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else f"a {type(loss).__name__}"
        raise TypeError(
            f"{method} returned a loss of {shown}; ContrastiveOutput.loss must be a 0-dim tensor "
            "(reduce it, e.g. .mean(); a Python number carries no gradient), or None to skip the batch."
        )
    if (
        loss is not None
        and mode == "train"
        and torch.is_grad_enabled()
        and vectors is not None
        and vectors.requires_grad
        and not loss.requires_grad
    ):
        raise RuntimeError(
            f"{method} returned a loss without a gradient (detached, or computed from .item() "
            "values), so the contrastive term would train nothing. Compute it from the vectors "
            "it receives, with gradients."
        )
    return output


def refuse_modules_outside_the_model(trainer, model) -> None:
    """Stop when `trainer` keeps a module with trainable parameters that are not the model's (see above)."""
    found = pair_heads.modules_outside_the_model(trainer, model)
    if not found:
        return
    name, module = found[0]
    count = pair_heads.trainable_parameter_count(module)
    trainer_name = type(trainer).__name__
    raise UnsupportedSetupError(
        f"{trainer_name}.{name} is a {type(module).__name__} with {count:,} trainable parameters outside the "
        "model: the optimizer is built from the model's parameters, so it would get gradients but never change, "
        f"and it would not be saved. For a projection head on the pair vectors pass it as "
        f"{trainer_name}(..., pair_head={name}) (trained with the model, saved as pair_head.safetensors "
        "next to it, reloaded with xling_align.trainers.pair_head.load_pair_head); otherwise attach it to the "
        "model, or freeze it with requires_grad_(False)."
    )
