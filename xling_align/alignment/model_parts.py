"""Where the parts of a decoder-only causal LM are, behind any wrapper: backbone, decoder blocks, depth, width.

Every module that needs a sentence vector (the trainer's pair pass, `embed_sentences`, the analysis, the
alignment callback) finds the model's parts here, and normalises `hidden_states` indices here, so a model
that is not supported, or a layer that does not exist, gets the same message everywhere.

Wrappers looked through: DDP and DeepSpeed engines (`.module`), FSDP1 (`.module`), `torch.compile`
(`._orig_mod`), PEFT (`.get_base_model()`). FSDP2's `fully_shard` wraps nothing (it changes the module's
class in place), so there is nothing to look through.

Example:
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64,
    ...                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    >>> type(backbone(model)).__name__, num_decoder_layers(model), hidden_size(model)
    ('LlamaModel', 2, 32)
    >>> decoder_blocks(model).path, normalize_layer(model, -1)
    ('layers', 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import nn

# attribute paths of the decoder-block list inside a backbone, most common first: Llama/Qwen/XGLM/Mistral
# (`layers`), GPT-2/BLOOM/Falcon/GPT-J (`h`), MPT (`blocks`), OPT (`decoder.layers`)
BLOCK_LIST_PATHS = ("layers", "h", "blocks", "decoder.layers", "block")


class DecoderBlocks(NamedTuple):
    """The decoder blocks of a backbone and where they hang.

    Attributes:
        blocks: the `nn.ModuleList` of decoder blocks, in forward order.
        path: dotted attribute path of the list inside the backbone (e.g. `"layers"`, `"decoder.layers"`).
        ancestors: the modules whose forward is running while a block runs: the backbone and every module on
            the path down to the list (the list itself is never called).
    """

    blocks: nn.ModuleList
    path: str
    ancestors: tuple[nn.Module, ...]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model inside DDP / DeepSpeed / FSDP1 / `torch.compile` / PEFT wrappers."""
    while True:
        if isinstance(getattr(model, "module", None), nn.Module):  # DDP, DeepSpeedEngine, FSDP1
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        elif hasattr(model, "get_base_model"):  # peft.PeftModel
            model = model.get_base_model()
        else:
            return model


def text_config(model: nn.Module):
    """The config that holds the decoder's sizes (the text part of a multimodal config)."""
    inner = unwrap_model(model)
    config = getattr(inner, "config", None)
    if config is None:
        raise ValueError(
            f"{type(inner).__name__} has no `config`; sentence vectors need a transformers causal LM "
            "(a PreTrainedModel such as LlamaForCausalLM), possibly wrapped by PEFT, DDP, FSDP or DeepSpeed."
        )
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def num_decoder_layers(model: nn.Module) -> int:
    """Number of decoder blocks of a (possibly wrapped) causal LM, read from its config."""
    return int(text_config(model).num_hidden_layers)


def hidden_size(model: nn.Module) -> int:
    """Width of the hidden states (the size of a pooled sentence vector)."""
    return int(text_config(model).hidden_size)


def backbone(model: nn.Module) -> nn.Module:
    """The decoder without its LM head (`model.model`, `model.transformer`, ...), inside any wrapper."""
    inner = unwrap_model(model)
    prefix = getattr(inner, "base_model_prefix", "")
    found = getattr(inner, prefix, None) if prefix else None
    return found if isinstance(found, nn.Module) else inner


def decoder_blocks(model: nn.Module) -> DecoderBlocks:
    """The decoder blocks of a (possibly wrapped) causal LM: a `nn.ModuleList` of `num_hidden_layers` modules.

    Looks at the usual attribute paths first (`BLOCK_LIST_PATHS`), then at every `nn.ModuleList` of the
    backbone. Raises `ValueError` naming what was searched when no list of the right length exists.
    """
    body = backbone(model)
    depth = num_decoder_layers(model)
    candidates = [path for path in BLOCK_LIST_PATHS if _is_block_list(_attribute(body, path), depth)]
    if not candidates:
        candidates = [name for name, module in body.named_modules() if name and _is_block_list(module, depth)]
    if not candidates:
        lists = {name: len(module) for name, module in body.named_modules() if isinstance(module, nn.ModuleList)}
        found = ", ".join(f"{name} ({length})" for name, length in lists.items()) or "none"
        raise ValueError(
            f"cannot find the {depth} decoder blocks of {type(unwrap_model(model)).__name__}: searched its backbone "
            f"{type(body).__name__} for an nn.ModuleList of config.num_hidden_layers={depth} modules at "
            f"{', '.join(BLOCK_LIST_PATHS)} and anywhere inside it; ModuleLists found (length): {found}. Sentence "
            "vectors need a decoder-only transformers causal LM whose blocks form one such list."
        )
    path = candidates[0]
    ancestors = [body]
    parts = path.split(".")
    for depth_index in range(1, len(parts)):
        ancestors.append(_attribute(body, ".".join(parts[:depth_index])))
    return DecoderBlocks(blocks=_attribute(body, path), path=path, ancestors=tuple(ancestors))


def tied_parameter_names(model: nn.Module) -> set[str]:
    """Names of parameters that are the same tensor as another parameter of `model` (tied weights)."""
    names_by_tensor: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names_by_tensor.setdefault(id(parameter), []).append(name)
    return {name for names in names_by_tensor.values() if len(names) > 1 for name in names}


def layer_index(layer: int, depth: int, name: str = "layer", model_name: str = "the model") -> int:
    """Validate a `hidden_states` index against a depth; return it as a non-negative index.

    Valid indices are `-(depth + 1) .. depth`: 0 is the embedding output, 1 the first block, `depth` (or -1)
    the last block. `name` is how the value is called in the error (e.g. `"contrastive_layer"`).

    Example:
        >>> layer_index(-1, depth=12), layer_index(0, depth=12)
        (12, 0)
    """
    if not isinstance(layer, int) or isinstance(layer, bool) or not -(depth + 1) <= layer <= depth:
        raise ValueError(
            f"{name}={layer!r} is outside the model's hidden states: {model_name} has {depth} decoder layers, so "
            f"{name} must be an integer from {-(depth + 1)} to {depth} (0 = embedding output, 1 = first block, "
            "-1 = last block)."
        )
    return layer % (depth + 1)


def normalize_layer(model: nn.Module, layer: int, name: str = "layer") -> int:
    """`layer_index` against the depth of `model` (a possibly wrapped causal LM)."""
    return layer_index(layer, num_decoder_layers(model), name, type(unwrap_model(model)).__name__)


def normalize_layers(model: nn.Module, layers: Sequence[int] | None, name: str = "layers") -> list[int]:
    """Sorted unique non-negative `hidden_states` indices; None means all (0 .. depth)."""
    if layers is None:
        return list(range(num_decoder_layers(model) + 1))
    if isinstance(layers, (int, str)):
        raise TypeError(f"{name} must be a list of integers, got {layers!r}.")
    if not layers:
        raise ValueError(f"{name} is empty; name at least one hidden_states index (0 = embeddings, -1 = last).")
    return sorted({normalize_layer(model, layer, name) for layer in layers})


def _attribute(module: nn.Module, path: str):
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _is_block_list(module, depth: int) -> bool:
    return isinstance(module, nn.ModuleList) and len(module) == depth and depth > 0
