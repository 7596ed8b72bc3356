"""Sentence vectors from a decoder's hidden states: pooling names, tokenisation, pooling, `embed_sentences`.

The one home of sentence-vector plumbing. AFP represents a sentence by pooling `hidden_states[K]` of the
language model (index 0 is the embedding output, 1 the output of the first decoder block, -1 the last).
The trainer's pair pass, `embed_sentences`, the analysis (`xling_align.analysis.layer_embeddings`) and the
alignment callback all tokenise with `sentence_token_ids`, run `xling_align.alignment.layer_forward` (through the
engine's wrapper, stopping after the deepest wanted block, never building logits) and pool here; model
parts and layer indices come from `xling_align.alignment.model_parts`.

Pooling (`POOLING_METHODS`, checked by `check_pooling`):
- `"mean"`: the mean over every token the model sees (special tokens included, as in the reference);
- `"last"`: the last token that is not a special token. Both are computed from the attention mask, so they
  are right for left and right padding alike (the reference implementation indexes `mask.sum() - 1`, the
  wrong token under left padding, e.g. for BLOOM's tokenizer).

Why `last` skips a trailing special token: a tokenizer that appends EOS to every text (ByT5, T5, Llama with
`add_eos_token=True`) would make every sentence pool the same EOS token: at layer 0 all sentences would get
one identical vector, and deeper, a token the model never predicts from. `sentence_token_ids` therefore
drops such trailing special tokens when pooling `last`; a causal LM's state at a position does not depend on
later tokens, so this equals pooling the last real token with the EOS present. The reference's models
(XGLM, BLOOM) append no EOS, so for them nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from xling_align.alignment.layer_forward import hidden_states_at_layers, layer_hidden_states
from xling_align.alignment.model_parts import (
    backbone,
    hidden_size,
    normalize_layer,
    normalize_layers,
    num_decoder_layers,
)

POOLING_METHODS = ("mean", "last")

__all__ = [
    "POOLING_METHODS",
    "check_pooling",
    "pool_hidden_states",
    "sentence_token_ids",
    "pad_right",
    "iter_sentence_vectors",
    "embed_sentences",
    # re-exported: the model-part helpers and the partial forward that sentence vectors use
    "backbone",
    "hidden_size",
    "num_decoder_layers",
    "normalize_layer",
    "layer_hidden_states",
]


def check_pooling(pooling: str, name: str = "pooling") -> str:
    """Return `pooling` if it is one of `POOLING_METHODS`, else raise a ValueError naming `name`."""
    if pooling not in POOLING_METHODS:
        raise ValueError(f"{name}={pooling!r} is not supported; use one of {POOLING_METHODS}.")
    return pooling


def pool_hidden_states(
    hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "mean", check_empty_rows: bool = True
) -> torch.Tensor:
    """Pool token vectors into one vector per sequence, ignoring padding on either side.

    Args:
        hidden: `(batch, seq_len, hidden)` token vectors.
        attention_mask: `(batch, seq_len)`, 1 for real tokens and 0 for padding (left, right or both).
        pooling: `"mean"` (mean over real tokens) or `"last"` (the last real token).
        check_empty_rows: raise on a row without a real token. The check reads a value from the device, so on a
            GPU the host waits for everything queued before it; callers whose rows were checked on the host
            (AFPTrainer checks every pair when it tokenizes the dataset) pass False.

    Returns:
        `(batch, hidden)` tensor in the dtype of `hidden`.

    Example:
        >>> import torch
        >>> hidden = torch.arange(6.0).view(1, 3, 2)
        >>> pool_hidden_states(hidden, torch.tensor([[0, 1, 1]]), "last").tolist()  # left padding
        [[4.0, 5.0]]
        >>> pool_hidden_states(hidden, torch.tensor([[0, 1, 1]]), "mean").tolist()
        [[3.0, 4.0]]
    """
    check_pooling(pooling)
    if hidden.dim() != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden has shape {tuple(hidden.shape)} and attention_mask {tuple(attention_mask.shape)}; expected "
            "(batch, seq_len, hidden) and (batch, seq_len)."
        )
    mask = attention_mask.to(torch.long)
    lengths = mask.sum(dim=1)
    if check_empty_rows and (lengths == 0).any():  # reading the answer waits for the device: a host sync
        empty = (lengths == 0).nonzero().flatten().tolist()
        raise ValueError(f"rows {empty} of attention_mask have no real token; every sentence needs at least one token.")
    if pooling == "last":
        # position of the last 1 in each row: argmax of position * mask (ties impossible, positions differ)
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (positions * mask).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / lengths.to(hidden.dtype).unsqueeze(-1)


def sentence_token_ids(tokenizer, sentence: str, pooling: str, max_length: int | None = None) -> list[int]:
    """Token ids of one sentence for a sentence vector: the tokenizer's own special tokens, truncated to
    `max_length` (None: whole), and, for `"last"` pooling, without trailing special tokens (see the module
    docstring: an appended EOS would otherwise be the pooled token of every sentence).

    Example:
        >>> from transformers import ByT5Tokenizer   # appends EOS (id 1); bytes are ids 3..258
        >>> tokenizer = ByT5Tokenizer()
        >>> sentence_token_ids(tokenizer, "Hi", "mean"), sentence_token_ids(tokenizer, "Hi", "last")
        ([75, 108, 1], [75, 108])
    """
    check_pooling(pooling)
    kwargs = {"truncation": True, "max_length": max_length} if max_length is not None else {}
    ids = list(tokenizer(sentence, **kwargs)["input_ids"])
    if pooling == "last":
        special = set(getattr(tokenizer, "all_special_ids", None) or [])
        while len(ids) > 1 and ids[-1] in special:
            ids.pop()
    return ids


def pad_right(token_ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists of token ids into `(input_ids, attention_mask)` long tensors.

    Right padding keeps every real token at the position it has alone, whatever the model's position scheme.
    """
    longest = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), longest), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def iter_sentence_vectors(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[str],
    layers: Sequence[int],
    pooling: str = "mean",
    batch_size: int = 32,
    max_length: int | None = None,
) -> Iterator[tuple[torch.Tensor, dict[int, torch.Tensor]]]:
    """Pooled vectors at several layers, one forward per batch: yields `(row_indices, {layer: vectors})`.

    Sentences go through in length order (less padding), each batch right-padded, so a sentence's vector does
    not depend on the other sentences of its batch (up to float rounding). The forward stops after the
    deepest requested layer. The model is put in eval mode for the call (its mode is restored afterwards) and
    no gradient is kept. Under FSDP or DeepSpeed ZeRO-3 this is a collective: every process must call it with
    as many sentences.

    Args:
        model: a transformers causal LM, possibly wrapped (PEFT, DDP, FSDP2, DeepSpeed).
        tokenizer: its tokenizer; needs no pad token.
        sentences: non-empty strings.
        layers: `hidden_states` indices (0 = embedding output, -1 = last block).
        pooling: `"mean"` or `"last"`.
        batch_size: sentences per forward pass.
        max_length: truncate each sentence to this many tokens (None: keep it whole).

    Yields:
        `(row_indices, {non-negative layer: (rows, hidden) float32 CPU tensor})`.
    """
    check_pooling(pooling)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1.")
    indices = normalize_layers(model, layers)
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings, not one string; wrap it: [sentence].")
    bad = [i for i, s in enumerate(sentences) if not isinstance(s, str) or not s.strip()]
    if bad:
        raise ValueError(f"sentences {bad[:10]} are empty or not strings; every sentence needs some text.")

    token_ids = [sentence_token_ids(tokenizer, s, pooling, max_length) for s in sentences]
    order = sorted(range(len(token_ids)), key=lambda row: len(token_ids[row]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                input_ids, attention_mask = pad_right([token_ids[row] for row in rows], pad_id)
                attention_mask = attention_mask.to(device)
                states = hidden_states_at_layers(model, input_ids.to(device), attention_mask, indices)
                pooled = {k: pool_hidden_states(states[k].float(), attention_mask, pooling).cpu() for k in indices}
                yield torch.tensor(rows, dtype=torch.long), pooled
    finally:
        model.train(was_training)


def embed_sentences(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[str],
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 32,
) -> torch.Tensor:
    """Embed sentences with a causal LM: pooled `hidden_states[layer]`, one row per sentence, in input order.

    See `iter_sentence_vectors` (the same path, one layer).

    Args:
        model: a transformers causal LM, possibly wrapped (PEFT, DDP, FSDP2, DeepSpeed).
        tokenizer: its tokenizer; needs no pad token.
        sentences: the sentences (non-empty strings).
        layer: index into `hidden_states`: 0 = embedding output, 1 = first block, -1 = last block.
        pooling: `"mean"` over tokens or `"last"` non-special token.
        batch_size: sentences per forward pass.

    Returns:
        `(len(sentences), hidden)` float32 tensor on the CPU.

    Example:
        >>> from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM
        >>> config = LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        ...                      num_attention_heads=4, num_key_value_heads=2)
        >>> vectors = embed_sentences(LlamaForCausalLM(config), ByT5Tokenizer(), ["Hello", "Hallo"], layer=1)
        >>> tuple(vectors.shape)
        (2, 32)
    """
    index = normalize_layer(model, layer)
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings, not one string; wrap it: [sentence].")
    result = torch.zeros(len(sentences), hidden_size(model))
    for rows, pooled in iter_sentence_vectors(model, tokenizer, sentences, [index], pooling, batch_size):
        result[rows] = pooled[index]
    return result
