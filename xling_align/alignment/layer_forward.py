"""Hidden states at chosen layers of a causal LM, computed through the engine's wrapper, stopping after the deepest.

A sentence vector needs `hidden_states[K]`, usually of an early block (AFP pools the first block's output), so
running the whole model and its LM head would waste most of the compute. But the model being trained is
wrapped by engines whose forward does real work: FSDP2's root hooks gather the sharded embeddings, DDP and
DeepSpeed prepare the gradient reduction, accelerate's mixed-precision wrapper opens the autocast context.
Calling the inner backbone directly skips all of that (under FSDP2 it fails with "mixed torch.Tensor and
DTensor"). So the pass here always enters through the outermost module, and only the forward of the module
that holds the decoder blocks (the backbone; OPT's `decoder`) is redirected, for that one call (the idea of
TRL's `_ForwardRedirection`, applied one level down so that every wrapper above runs):

    engine wrapper (DDP / DeepSpeed / FSDP2 hooks)  ->  PEFT  ->  causal LM forward (autocast, TRL's wrapper)
      ->  holder.__call__ (its engine hooks)  ->  redirected forward: the holder's real forward with capture
          hooks on the blocks, stopped after the deepest wanted block  ->  returns the captured states
      ->  the LM head runs on a 0-token slice (nothing to compute)  ->  every wrapper finishes normally.

Stopping early: a forward hook on the deepest wanted block (appended last, after every engine hook on that
block, so FSDP2 has already resharded it and DeepSpeed ZeRO-3 released it) raises an exception that the
redirected forward catches. It unwinds only the holder's own forward code and none of the engine hooks,
which sit on `__call__` (around the redirected forward, or inside the finished blocks). Blocks after it never
run, so their hooks never start. The one thing an early stop would skip is an instance-level wrapper of the
holder's forward (accelerate's `device_map` hooks); with one, the whole backbone runs (never the LM head) and
the states are captured on the way: slower, never wrong (see `early_stop_blockers`). `hidden_states[0]` is
captured by a pre-hook prepended on block 0, so a pass that stops there starts no hook of block 0.
Tested on CPU with two gloo processes: no engine, PEFT, DDP and FSDP2 (`fully_shard` per block and at the
root); see the DeepSpeed note in `xling_align.trainers.engine_checks`.

`torch.compile`: the pair pass enters through `OptimizedModule._orig_mod` (eager), so the compiled graph is
neither traced through the redirection nor invalidated by it.

Example:
    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64,
    ...                                      num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2))
    >>> ids, mask = torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long)
    >>> states = hidden_states_at_layers(model, ids, mask, layers=[0, 1])   # blocks 2 and 3 never run
    >>> full = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    >>> all(torch.allclose(states[k], full[k]) for k in (0, 1))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from xling_align.alignment.model_parts import decoder_blocks, normalize_layer, normalize_layers, num_decoder_layers


class _StopForward(Exception):
    """Raised by a block's forward hook once every wanted hidden state has been captured."""


def early_stop_blockers(model: nn.Module) -> list[str]:
    """Why the forward of `model` cannot stop after a block without leaving a module half-run (empty: it can).

    The early stop unwinds only the forward of the module that holds the block list (the backbone, or OPT's
    `decoder`); engine hooks around that module run outside the unwound frame. What would be skipped is an
    instance-level forward wrapper of that module (accelerate's `device_map` hooks put one there).
    """
    holder = decoder_blocks(model).ancestors[-1]
    wrapper = vars(holder).get("forward")
    if wrapper is None:
        return []
    kind = "an accelerate hook" if hasattr(holder, "_hf_hook") else type(wrapper).__name__
    return [
        f"{type(holder).__name__}, the module holding the decoder blocks, has an instance-level forward "
        f"wrapper ({kind}) whose end an early stop would skip"
    ]


def hidden_states_at_layers(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: Sequence[int],
    stop_early: bool | None = None,
) -> dict[int, torch.Tensor]:
    """`hidden_states[k]` for each requested `k`, through the model's wrappers, without the LM head.

    Equal to `model(..., output_hidden_states=True).hidden_states[k]`; gradients flow as in a normal forward.
    Under torch.distributed engines this is a collective like any forward: every process must call it.

    Args:
        model: a transformers causal LM (XGLM, BLOOM, Llama, Qwen2, GPT-2, OPT, ...), as the trainer holds it:
            bare, PEFT-wrapped, DDP- or DeepSpeed-wrapped, `fully_shard`-ed (FSDP2), compiled.
        input_ids: `(batch, seq_len)` token ids.
        attention_mask: `(batch, seq_len)` 1/0 mask.
        layers: `hidden_states` indices (0 = embedding output, -1 = last block); duplicates are fine.
        stop_early: None (default): stop after the deepest wanted block unless `early_stop_blockers` finds a
            reason not to; False: run the whole backbone (the reference design; benchmarks compare both).

    Returns:
        `{non-negative index: (batch, seq_len, hidden) tensor}`.
    """
    indices = normalize_layers(model, layers)
    states = _forward_through_wrappers(
        model,
        input_ids,
        attention_mask,
        indices,
        stop_early,
        finish=lambda captured: tuple(captured[k] for k in indices),
    )
    return dict(zip(indices, states, strict=True))


def compute_inside_forward(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: Sequence[int],
    compute: Callable[[dict[int, torch.Tensor]], torch.Tensor],
    stop_early: bool | None = None,
) -> torch.Tensor:
    """Run `compute({layer: hidden_states[layer]})` inside the model's forward and return its result.

    Like `hidden_states_at_layers`, but whatever `compute` does (pooling, a projection head that is a submodule
    of the model) happens within the engine's forward: the head's parameters are gathered by FSDP2 / ZeRO-3
    like the rest, and DDP counts them as used by this forward.
    """
    indices = normalize_layers(model, layers)
    (result,) = _forward_through_wrappers(
        model, input_ids, attention_mask, indices, stop_early, finish=lambda captured: (compute(dict(captured)),)
    )
    return result


def layer_hidden_states(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int, stop_early: bool | None = None
) -> torch.Tensor:
    """`hidden_states[layer]` of a causal LM; see `hidden_states_at_layers` (same arguments, one layer)."""
    index = normalize_layer(model, layer)
    return hidden_states_at_layers(model, input_ids, attention_mask, [index], stop_early)[index]


def _forward_through_wrappers(model, input_ids, attention_mask, indices, stop_early, finish) -> tuple:
    """Capture `hidden_states[indices]` in a forward through the wrappers; return `finish(captured)` from inside it."""
    depth = num_decoder_layers(model)
    deepest = max(indices)
    if stop_early is None:
        stop_early = not early_stop_blockers(model)
    stop_early = stop_early and deepest < depth
    parts = decoder_blocks(model)
    holder, blocks = parts.ancestors[-1], parts.blocks
    captured: dict[int, torch.Tensor] = {}

    def run_blocks(original_forward, args, kwargs) -> tuple:
        handles = []
        if 0 in indices:
            # hidden_states[0] is what enters the first block (embeddings + positions, after dropout); prepended,
            # so when it ends the pass, no engine hook of block 0 has started (FSDP2 would gather it for nothing)
            def grab_input(module, hook_args, hook_kwargs):
                captured[0] = hook_args[0] if hook_args else hook_kwargs["hidden_states"]
                if stop_early and deepest == 0:
                    raise _StopForward

            handles.append(blocks[0].register_forward_pre_hook(grab_input, with_kwargs=True, prepend=True))
        for index in indices:
            if 0 < index < depth:
                stop_here = stop_early and index == deepest
                handles.append(blocks[index - 1].register_forward_hook(_grabber(captured, index, stop_here)))
        try:
            output = original_forward(*args, **kwargs)
            if depth in indices:
                # the last entry of hidden_states is the output of the blocks' holder (after the final norm)
                captured[depth] = output[0]
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [index for index in indices if index not in captured]
        if missing:
            raise RuntimeError(
                f"the forward of {type(holder).__name__} never reached decoder block(s) {missing}; cannot read "
                f"hidden_states{missing} from it."
            )
        # an empty slice of a real hidden state: what the causal LM's head gets as `last_hidden_state`
        return tuple(finish(captured)), captured[deepest][:, :0]

    return _call_through_wrappers(model, holder, input_ids, attention_mask, run_blocks)


def _grabber(captured: dict[int, torch.Tensor], index: int, stop: bool):
    def grab_output(module, args, output):
        captured[index] = output[0] if isinstance(output, (tuple, list)) else output
        if stop:
            raise _StopForward

    return grab_output


def _entry_module(model: nn.Module) -> nn.Module:
    """The outermost module to call: the model itself, or the eager module inside `torch.compile`."""
    while isinstance(getattr(model, "_orig_mod", None), nn.Module):
        model = model._orig_mod
    return model


def _call_through_wrappers(model: nn.Module, holder: nn.Module, input_ids, attention_mask, run_blocks):
    """Call the outermost module with `holder.forward` redirected, for this one call, to `run_blocks`.

    Returns the `hidden_states` of the model's output: the captured states after every wrapper has seen them
    (DDP may replace output tensors, accelerate's mixed precision casts them to float32).
    """
    from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions

    own_forward = vars(holder).get("forward")  # an instance-level wrapper (accelerate hooks): kept and called
    original_forward = own_forward if own_forward is not None else holder.forward
    calls = []

    def restore() -> None:
        if own_forward is not None:
            holder.forward = own_forward
        else:
            vars(holder).pop("forward", None)

    def redirected_forward(*args, **kwargs):
        restore()  # first: the holder's real forward runs inside, and nothing else may see the redirection
        results, empty_states = run_blocks(original_forward, args, kwargs)
        calls.append(results)
        # the causal LM applies its LM head to `last_hidden_state`: an empty slice costs nothing. The results travel
        # in `hidden_states`, so the wrappers see them (FSDP2 registers its pre-backward hook on them, DDP finds the
        # parameters they used, accelerate's mixed precision casts them to float32)
        return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=empty_states, hidden_states=results)

    holder.forward = redirected_forward
    try:
        output = _entry_module(model)(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True
        )
    finally:
        restore()
    if not calls:  # pragma: no cover - a model whose forward skips its backbone
        raise RuntimeError(
            f"the forward of {type(_entry_module(model)).__name__} never called {type(holder).__name__}, the module "
            "that holds the decoder blocks, so their hidden states could not be read; this model's forward is not "
            "supported for sentence vectors."
        )
    returned = getattr(output, "hidden_states", None)
    if isinstance(returned, (tuple, list)) and len(returned) == len(calls[0]):
        return tuple(returned)
    # a causal LM whose forward does not pass hidden_states on: the results as computed (same values)
    return calls[0]
