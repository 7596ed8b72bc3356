"""Sentence vectors at many layers from one forward pass per batch.

`xling_align.alignment.pooling.embed_sentences` gives one layer per call; an analysis over all layers would pay one
forward per layer. Here each batch goes through the model once (through its wrappers, stopping after the
deepest requested layer) and every requested layer is pooled from that pass: the same path as
`embed_sentences` (`xling_align.alignment.pooling.iter_sentence_vectors`), so a vector here equals
`embed_sentences(..., layer=k)` up to float rounding.

Sentences are processed in length order (less padding) and handed out batch by batch with their original
row indices, so the caller decides where vectors go (a dict of tensors, or memory-mapped files for
10,000+ sentences; see `embeddings_cache`). Memory is one batch of hidden states at a time.

Example:
    >>> from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM
    >>> config = LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    ...                      num_attention_heads=4, num_key_value_heads=2)
    >>> vectors = embed_layers(LlamaForCausalLM(config), ByT5Tokenizer(), ["Hello", "Hallo"], layers=[0, 2])
    >>> sorted(vectors), tuple(vectors[2].shape)
    ([0, 2], (2, 32))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xling_align.alignment.model_parts import layer_index, normalize_layers
from xling_align.alignment.pooling import iter_sentence_vectors


def resolve_layers(spec: str | Sequence[int] | None, depth: int, model_name: str = "the model") -> list[int]:
    """Turn a layer selection into sorted, unique, non-negative `hidden_states` indices.

    Args:
        spec: `"all"` / None (every index 0..depth), a comma-separated string (`"1,6,-1"`) or a list of ints.
            0 is the embedding output, `depth` (or -1) the last decoder block.
        depth: number of decoder layers of the model.
        model_name: how the model is named in error messages.

    Example:
        >>> resolve_layers("1,-1", depth=4)
        [1, 4]
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return list(range(depth + 1))
    if isinstance(spec, str):
        try:
            requested = [int(part) for part in spec.split(",") if part.strip()]
        except ValueError:
            raise ValueError(
                f"--layers {spec!r} is not 'all' nor a comma-separated list of integers (e.g. '1,6,12' or '-1')."
            ) from None
    else:
        requested = [int(layer) for layer in spec]
    if not requested:
        raise ValueError(f"the layer selection {spec!r} names no layer; use 'all' or e.g. '1,6,12'.")
    indices, out_of_range = set(), []
    for layer in requested:
        try:
            indices.add(layer_index(layer, depth, "--layers", model_name))
        except ValueError:
            out_of_range.append(layer)
    if out_of_range:  # all of them in one message
        raise ValueError(
            f"layer(s) {out_of_range} out of range: {model_name} has {depth} decoder layers, so hidden-state "
            f"indices go from 0 (embedding output) to {depth} (last block), or -{depth + 1} to -1 from the end."
        )
    return sorted(indices)


def embed_layers(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[str],
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    batch_size: int = 32,
    max_length: int | None = None,
) -> dict[int, torch.Tensor]:
    """Pooled sentence vectors at each requested layer, in memory.

    Args:
        model: a transformers causal LM, possibly PEFT-wrapped.
        tokenizer: its tokenizer.
        sentences: non-empty strings.
        layers: `hidden_states` indices; None means all (0 .. depth).
        pooling: `"mean"` or `"last"`.
        batch_size: sentences per forward pass.
        max_length: truncate sentences to this many tokens (None: keep them whole).

    Returns:
        `{layer (non-negative index): (len(sentences), hidden) float32 CPU tensor}`.
    """
    layers = normalize_layers(model, layers)
    result: dict[int, torch.Tensor] = {}
    for rows, pooled in iter_sentence_vectors(model, tokenizer, sentences, layers, pooling, batch_size, max_length):
        for layer, vectors in pooled.items():
            if layer not in result:
                result[layer] = torch.empty(len(sentences), vectors.shape[1])
            result[layer][rows] = vectors
    return result
