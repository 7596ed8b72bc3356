"""Cross-lingual alignment analysis: per-layer metrics, plots, and a training callback.

- `metrics`: retrieval top-1 both ways, MEXA alignment score, cosine of true / random pairs (pure tensors).
- `separability`: language probe accuracy and silhouette.
- `layer_embeddings`: sentence vectors at many layers from one forward per batch.
- `embeddings_cache`: those vectors on disk (memory-mapped, keyed by model files, pooling, sentences).
- `analyzer`: one model, every layer and language pair; `summary_files` and `plots` write the results.
- `pipeline`: `run_analysis`, the whole `xling-align analyze` as one call.
- `callback`: `AlignmentEvalCallback`, retrieval accuracy on held-out pairs at each evaluation.

Names below are imported lazily so `import xling_align.analysis` does not import matplotlib or torch.
"""

from xling_align.lazy_names import lazy_names

_LAZY = {
    "alignment_metrics": "xling_align.analysis.metrics",
    "retrieval_accuracy": "xling_align.analysis.metrics",
    "PairAlignment": "xling_align.analysis.metrics",
    "language_probe_accuracy": "xling_align.analysis.separability",
    "silhouette_score": "xling_align.analysis.separability",
    "embed_layers": "xling_align.analysis.layer_embeddings",
    "EmbeddingCache": "xling_align.analysis.embeddings_cache",
    "ModelSource": "xling_align.analysis.model_loading",
    "load_analysis_pairs": "xling_align.analysis.pairs",
    "AnalysisSettings": "xling_align.analysis.analyzer",
    "analyze_model": "xling_align.analysis.analyzer",
    "run_analysis": "xling_align.analysis.pipeline",
    "AlignmentEvalCallback": "xling_align.analysis.callback",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
