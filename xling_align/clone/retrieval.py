"""Layer-wise L1 -> L2 retrieval: for sentences (held-out translation pairs) and for entity words.

- sentence retrieval: mean-pooled hidden states of held-out filler sentences and their clones (sentence-
  level alignment, what MCL trains);
- entity retrieval: the hidden state at the entity token of `"the fox"` and of its L2 clone, for every
  entity with a distinct L2 name (word-level alignment, what fact transfer needs: a fact is looked up
  from the entity's representation).

Both use the analysis module's layer embeddings and retrieval metric (`xling_align.analysis`), so the
numbers are the ones `xling-align analyze` reports for the same pairs and pooling.

Example:
    >>> from xling_align.clone.retrieval import layerwise_retrieval  # doctest: +SKIP
    >>> layerwise_retrieval(model, tokenizer, ["the fox walks"], ["te vobi sadu"])  # doctest: +SKIP
    {0: 1.0, 1: 1.0, ...}
"""

from __future__ import annotations

from collections.abc import Sequence

from xling_align.clone.alignment_data import entity_pairs
from xling_align.clone.world import World


def layerwise_retrieval(
    model, tokenizer, sources: Sequence[str], targets: Sequence[str], pooling: str = "mean"
) -> dict[int, float]:
    """`{hidden_states index: top-1 retrieval accuracy of each source's translation among all targets}`."""
    from xling_align.analysis.layer_embeddings import embed_layers
    from xling_align.analysis.metrics import retrieval_accuracy

    if len(sources) != len(targets) or len(sources) < 2:
        raise ValueError(
            f"got {len(sources)} sources and {len(targets)} targets; retrieval needs the same number "
            "of each, at least 2."
        )
    source_vectors = embed_layers(model, tokenizer, list(sources), pooling=pooling)
    target_vectors = embed_layers(model, tokenizer, list(targets), pooling=pooling)
    return {layer: retrieval_accuracy(source_vectors[layer], target_vectors[layer]) for layer in sorted(source_vectors)}


def entity_retrieval(model, tokenizer, world: World) -> dict[int, float]:
    """Word-level alignment by layer: retrieve each entity's L2 name among all distinct L2 entity names."""
    _, sources, targets = entity_pairs(world)
    return layerwise_retrieval(model, tokenizer, sources, targets, pooling="last")
