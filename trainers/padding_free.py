"""Whether a model computes the same thing on a padding-free (flattened) batch as on a padded one.

TRL's padding-free collation (`padding_free=True`, and packing with the `bfd` strategies, which turns it on)
concatenates the rows of a batch into one sequence of shape `(1, total_tokens)`, with `position_ids` restarting
at 0 for each row and no `attention_mask`. That is exact only when the model keeps the rows apart from the
`position_ids` alone, which depends on the architecture and the attention implementation, not on TRL:

- flash-attention kernels read the row boundaries from `position_ids` (or TRL's `cu_seq_lens_*`);
- in transformers 5, a model that hands `position_ids` to `create_causal_mask` (Llama, Qwen2, GPT-2, Mistral,
  ...) gets a block-diagonal mask for `sdpa`, `eager` and `flex_attention` too;
- a model that builds its mask without them (XGLM, and BLOOM, whose ALiBi bias comes from the attention mask)
  lets every row attend to the rows before it in the flattened sequence: training runs, silently wrong.

So the answer is measured rather than looked up: `padding_free_mismatch(model)` runs the model on two short rows,
padded and flattened, and compares the logits. It is a forward on 8 tokens under `torch.no_grad()`.
`refuse_inexact_padding_free(model, args)` stops AFPTrainer where a run would use padding-free batches
(`uses_padding_free`) on a model that mixes their rows.

Example:
    >>> from xling_align.tiny_models import build_tiny_model
    >>> padding_free_mismatch(build_tiny_model("xling-align/tiny-random-llama")[0]) is None
    True
    >>> padding_free_mismatch(build_tiny_model("xling-align/tiny-random-xglm")[0]) is not None
    True
"""

from __future__ import annotations

import torch
from torch import nn

from xling_align.alignment.model_parts import unwrap_model
from xling_align.trainers.engine_checks import UnsupportedSetupError

# rows of different lengths, so that the second row would see the first one in a flattened sequence
_PROBE_LENGTHS = (5, 3)


def attention_implementation(model: nn.Module) -> str:
    """The attention implementation the model's config names (`eager` when it names none)."""
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "eager")


def padding_free_mismatch(model: nn.Module) -> str | None:
    """None when `model` gives the same logits on a padding-free batch as on a padded one; otherwise why not.

    Two checks on short random rows: the logits of a row in a flattened batch do not change when the row before
    it changes (the rows are kept apart), and they match the padded batch's (the positions restart per row),
    each within a tolerance for the model's precision.
    The model is put in eval mode for the probe (no dropout) and given back in the mode it was in.
    """
    parameter = next(model.parameters())
    device = parameter.device
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    generator = torch.Generator().manual_seed(0)
    first, other_first, second = (
        torch.randint(3, max(vocab, 4), (length,), generator=generator)
        for length in (_PROBE_LENGTHS[0], _PROBE_LENGTHS[0], _PROBE_LENGTHS[1])
    )
    positions = torch.cat([torch.arange(len(first)), torch.arange(len(second))])[None].to(device)
    padded_ids = torch.zeros(2, len(first), dtype=torch.long)
    padded_mask = torch.zeros(2, len(first), dtype=torch.long)
    for index, row in enumerate((first, second)):
        padded_ids[index, : len(row)], padded_mask[index, : len(row)] = row, 1

    def flat_logits(leading: torch.Tensor) -> torch.Tensor:
        ids = torch.cat([leading, second])[None].to(device)
        return model(input_ids=ids, position_ids=positions, use_cache=False).logits[0].float()

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = model(
                input_ids=padded_ids.to(device), attention_mask=padded_mask.to(device), use_cache=False
            ).logits.float()
            flat, flat_other = flat_logits(first), flat_logits(other_first)
    finally:
        model.train(was_training)
    where = f"{type(model).__name__} with attn_implementation={attention_implementation(model)!r}"
    scale = max(padded.abs().max().item(), 1.0)
    # rows kept apart give the same values for the second row (masked keys weigh exactly 0); the half-precision
    # allowance only covers kernels that tile differently, far below what attending to another row changes
    full_precision = parameter.dtype == torch.float32
    leak = (flat[len(first) :] - flat_other[len(first) :]).abs().max().item()
    if leak > (1e-6 if full_precision else 1e-3) * scale:
        return (
            f"{where} lets a row of a padding-free batch attend to the row before it (its logits change by "
            f"{leak:.3g} when that row changes): its attention does not keep the flattened rows apart by "
            "position_ids"
        )
    expected = torch.cat([padded[0, : len(first)], padded[1, : len(second)]])
    tolerance = 1e-4 if full_precision else 5e-2
    difference = (flat - expected).abs().max().item()
    if difference > tolerance * scale:
        return (
            f"{where} gives other logits on a padding-free batch than on a padded one (largest difference "
            f"{difference:.3g}): it does not read the restarting position_ids"
        )
    return None


def uses_padding_free(args) -> bool:
    """Whether TRL collates the instructions padding-free: asked for, or implied by packing with a `bfd` strategy
    (TRL 1.16's rule in SFTTrainer.__init__)."""
    return bool(args.padding_free or (args.packing and args.packing_strategy in {"bfd", "bfd_split"}))


def refuse_inexact_padding_free(model: nn.Module, args) -> None:
    """Padding-free batches are exact only where the attention keeps the flattened rows apart; elsewhere each row
    would silently attend to the rows before it, so the trainer stops, naming the fix."""
    if not uses_padding_free(args):
        return
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        return  # the weights are partitioned until the engine runs: no forward to probe outside it
    mismatch = padding_free_mismatch(unwrap_model(model))
    if mismatch is None:
        return
    asked = "padding_free=True" if args.padding_free else f"packing=True (packing_strategy={args.packing_strategy!r})"
    raise UnsupportedSetupError(
        f"{asked} needs an attention that keeps the rows of a flattened batch apart, but {mismatch}. Set "
        "padding_free=False and packing=False, or use an attn_implementation that reads position_ids "
        "(flash_attention_2, or sdpa on a model that hands position_ids to its mask, such as Llama, Qwen2, GPT-2)."
    )
