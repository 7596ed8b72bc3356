"""Alignment of one model, per layer and language pair: embeds (through the disk cache) and measures.

For every language pair and every requested layer this computes the similarity metrics of
`metrics.alignment_metrics` (retrieval both ways, MEXA score, cosine of true / random pairs and margin)
and the separability measures of `separability` (linear language probe, silhouette). Vectors of one layer
of one pair are read from the cache at a time, so memory stays at two `(n, hidden)` matrices.

Example:
    >>> import tempfile
    >>> from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM
    >>> config = LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    ...                      num_attention_heads=4, num_key_value_heads=2)
    >>> source = ModelSource.from_loaded(LlamaForCausalLM(config), ByT5Tokenizer(), name="tiny")
    >>> pairs = AnalysisPairs({("en", "de"): [("Good morning.", "Guten Morgen."), ("Thanks.", "Danke.")]})
    >>> result = analyze_model(source, pairs, AnalysisSettings(layers="1,2"), tempfile.mkdtemp())
    >>> sorted(result.metrics["en-de"]), "retrieval_accuracy" in result.metrics["en-de"][1]
    ([1, 2], True)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from xling_align.alignment.pooling import check_pooling
from xling_align.analysis.embeddings_cache import EmbeddingCache
from xling_align.analysis.layer_embeddings import resolve_layers
from xling_align.analysis.metrics import DEFAULT_CHUNK_SIZE, alignment_metrics
from xling_align.analysis.model_loading import ModelSource
from xling_align.analysis.pairs import AnalysisPairs, pair_name
from xling_align.analysis.separability import DEFAULT_MAX_PER_LANGUAGE, language_probe_accuracy, silhouette_score


@dataclass
class AnalysisSettings:
    """How sentences are embedded and which measures are computed."""

    layers: str | list[int] | None = field(
        default="all",
        metadata={"help": "hidden-state indices to analyse: 'all', '1,6,12' or a list (0 = embeddings, -1 = last)."},
    )
    pooling: str = field(default="mean", metadata={"help": "sentence vector: 'mean' over tokens or 'last' token."})
    batch_size: int = field(default=32, metadata={"help": "sentences per forward pass."})
    max_length: int | None = field(default=512, metadata={"help": "truncate sentences to this many tokens."})
    chunk_size: int = field(
        default=DEFAULT_CHUNK_SIZE, metadata={"help": "rows of the similarity matrix held in memory at once."}
    )
    separability: bool = field(
        default=True, metadata={"help": "also fit the language probe and compute the silhouette per layer."}
    )
    separability_max_per_language: int = field(
        default=DEFAULT_MAX_PER_LANGUAGE, metadata={"help": "sentences per language used for separability at most."}
    )
    seed: int = field(default=0, metadata={"help": "seed of the probe's split and of subsamples."})

    def __post_init__(self):
        check_pooling(self.pooling, "AnalysisSettings.pooling")
        for name in ("batch_size", "chunk_size", "separability_max_per_language"):
            if getattr(self, name) < 1:
                raise ValueError(f"AnalysisSettings.{name}={getattr(self, name)} must be at least 1.")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(
                f"AnalysisSettings.max_length={self.max_length} must be at least 1 (or None: no truncation)."
            )


@dataclass
class ModelAlignment:
    """Metrics of one model.

    Attributes:
        label: role in the report ("base", "compare").
        model: the model's path or name.
        depth: number of decoder layers.
        layers: analysed `hidden_states` indices.
        metrics: `{pair name: {layer: {metric: value}}}`.
        languages: `{pair name: (lang_a, lang_b)}`.
        vectors: `{(pair name, side 0/1): {layer: (n, hidden) array}}` (memory-mapped), for projections.
    """

    label: str
    model: str
    depth: int
    layers: list[int]
    metrics: dict[str, dict[int, dict[str, float]]]
    languages: dict[str, tuple[str, str]] = field(default_factory=dict)
    vectors: dict[tuple[str, int], dict[int, np.ndarray]] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per pair: the best retrieval layer and value, and MEXA's mean / max over the analysed layers."""
        result = {}
        for name, by_layer in self.metrics.items():
            best_layer = max(by_layer, key=lambda layer: (by_layer[layer]["retrieval_accuracy"], -layer))
            mexa = [values["mexa_alignment"] for values in by_layer.values()]
            result[name] = {
                "best_layer": best_layer,
                "best_retrieval_accuracy": by_layer[best_layer]["retrieval_accuracy"],
                "mexa_alignment_mean_over_layers": float(np.mean(mexa)),
                "mexa_alignment_max_over_layers": float(np.max(mexa)),
            }
        return result

    def to_json(self) -> dict:
        """The JSON-ready part (no vectors); layer keys become strings."""
        return {
            "model": self.model,
            "depth": self.depth,
            "layers": self.layers,
            "metrics": {name: {str(k): v for k, v in by_layer.items()} for name, by_layer in self.metrics.items()},
            "summary": self.summary(),
        }


def layer_metrics(a: torch.Tensor, b: torch.Tensor, languages: tuple[str, str], settings: AnalysisSettings) -> dict:
    """All metrics of one language pair at one layer, as a flat dict."""
    values = alignment_metrics(a, b, chunk_size=settings.chunk_size).to_dict(*languages)
    if settings.separability:
        limit, seed = settings.separability_max_per_language, settings.seed
        values["language_probe_accuracy"] = language_probe_accuracy(a, b, max_per_language=limit, seed=seed)
        values["language_silhouette"] = silhouette_score(a, b, max_per_language=limit, seed=seed)
    return values


def analyze_model(
    source: ModelSource,
    pairs: AnalysisPairs,
    settings: AnalysisSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    label: str = "base",
) -> ModelAlignment:
    """Measure the cross-lingual alignment of one model at each requested layer.

    Args:
        source: the model (`ModelSource(path)` or `ModelSource.from_loaded(model, tokenizer)`).
        pairs: checked pairs from `load_analysis_pairs`.
        settings: embedding and metric settings.
        cache_dir: folder of the embeddings cache (required: vectors are kept on disk, not in memory).
        label: the model's role in the report.

    Returns:
        A `ModelAlignment` with metrics per pair and layer.
    """
    settings = settings or AnalysisSettings()
    if cache_dir is None:
        raise ValueError("analyze_model needs a cache_dir: sentence vectors are stored there, one file per layer.")
    layers = resolve_layers(settings.layers, source.depth, model_name=f"model {source.path!r}")
    cache = EmbeddingCache(cache_dir, settings.pooling, settings.batch_size, settings.max_length)
    result = ModelAlignment(label=label, model=source.path, depth=source.depth, layers=layers, metrics={})
    for languages, sentence_pairs in pairs.pairs.items():
        name = pair_name(languages)
        result.languages[name] = languages
        sides = []
        for side in (0, 1):
            sentences = [pair[side] for pair in sentence_pairs]
            sides.append(cache.layer_vectors(source.load, source.fingerprint, sentences, layers))
            result.vectors[(name, side)] = sides[side]
        result.metrics[name] = {
            # np.array copies one layer out of the read-only memory map: two (n, hidden) matrices in memory
            layer: layer_metrics(
                torch.from_numpy(np.array(sides[0][layer])),
                torch.from_numpy(np.array(sides[1][layer])),
                languages,
                settings,
            )
            for layer in layers
        }
    return result


def settings_to_json(settings: AnalysisSettings) -> dict:
    """The settings as stored in metrics.json."""
    return asdict(settings)
