"""`run_analysis`: the whole `xling-align analyze` as one Python call (models -> metrics, plots, report).

Example:
    >>> # from xling_align.analysis import run_analysis
    >>> # files = run_analysis("xglm-564M", "heldout.en-de.tsv", "analysis/", compare="xglm-564M-afp")
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from xling_align.analysis.analyzer import AnalysisSettings, ModelAlignment, analyze_model
from xling_align.analysis.layer_embeddings import resolve_layers
from xling_align.analysis.model_loading import ModelSource
from xling_align.analysis.pairs import load_analysis_pairs, pair_name

BY_LAYER_METRICS = ("retrieval_accuracy", "mexa_alignment", "cosine_margin", "cosine_true_pairs")
SEPARABILITY_METRICS = ("language_probe_accuracy", "language_silhouette")


def choose_projection_layer(alignments: Sequence[ModelAlignment], requested: int | None = None) -> int:
    """The layer of the 2-D projection: `requested`, or where the last model (the aligned one) retrieves best."""
    common = sorted(set.intersection(*(set(a.layers) for a in alignments)))
    if not common:
        raise ValueError("the compared models share no analysed layer, so there is no layer to project; pass --layers.")
    if requested is not None:
        depth = alignments[0].depth
        layer = requested % (depth + 1) if -(depth + 1) <= requested <= depth else requested
        if layer not in common:
            raise ValueError(
                f"projection layer {requested} is not among the analysed layers {common}; add it to --layers."
            )
        return layer
    last = alignments[-1]

    def mean_retrieval(layer: int) -> float:
        return sum(by_layer[layer]["retrieval_accuracy"] for by_layer in last.metrics.values()) / len(last.metrics)

    return max(common, key=lambda layer: (mean_retrieval(layer), -layer))


def run_analysis(
    model: str,
    pairs_file: str | os.PathLike,
    output: str | os.PathLike,
    compare: str | None = None,
    settings: AnalysisSettings | None = None,
    max_pairs: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    projection_layer: int | None = None,
    tsne: bool = False,
    device: str | None = None,
    dtype: str = "float32",
    verbose: bool = True,
    skip_invalid: bool = False,
    languages: tuple[str, str] | None = None,
    perplexity: bool = True,
) -> list[str]:
    """Analyse one model (and optionally a second on the same charts); write metrics.json, summary.md, PNGs.

    Args:
        model: folder, LoRA adapter folder or cached hub id of the base model.
        pairs_file: parallel file (any format of `xling_align.data.load_parallel_pairs`).
        output: folder for the results (created).
        compare: a second model, e.g. the AFP-aligned checkpoint.
        settings: layers, pooling, batch size, ... (`AnalysisSettings`).
        max_pairs: at most this many pairs per language pair.
        cache_dir: embeddings cache; None: `output/embeddings_cache`; "" (empty): a temporary folder.
        projection_layer: layer of the PCA plot (None: best retrieval layer of the last model).
        tsne: also draw a t-SNE projection (needs scikit-learn).
        device: torch device for the models (None: CUDA when available).
        dtype: weights dtype name.
        verbose: print a progress line per model to stderr.
        skip_invalid: skip malformed records of `pairs_file` (counted and reported) instead of stopping.
        languages: the two language columns/keys of `pairs_file` to read, for a file with more than two.
        perplexity: also score the held-out sentences of each language (`xling_align.analysis.perplexity`),
            per model: with `compare`, the change shows what alignment cost each language (forgetting).

    Returns:
        Paths written: metrics.json, summary.md, then the PNGs.
    """
    from xling_align.analysis.plots import plot_metrics_by_layer, plot_projection  # matplotlib only when needed
    from xling_align.analysis.summary_files import write_markdown_summary, write_metrics_json

    if tsne:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise ValueError(
                "t-SNE needs scikit-learn (pip install scikit-learn); leave it out to draw PCA only."
            ) from None
    settings = settings or AnalysisSettings()
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"output {output} is a file; give a folder (it is created if missing).")
    pairs = load_analysis_pairs(pairs_file, max_pairs=max_pairs, skip_invalid=skip_invalid, languages=languages)
    for note in pairs.notes():  # never a silent drop
        print(f"[analyze] {pairs_file}: {note}", file=sys.stderr)
    sources = [("base", ModelSource(model, device, dtype))]
    if compare:
        sources.append(("compare", ModelSource(compare, device, dtype)))
    for _, source in sources:  # a bad layer selection fails before any model is loaded
        resolve_layers(settings.layers, source.depth, model_name=f"model {source.path!r}")
    output.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="xling-analyze-") as temporary:
        cache = temporary if cache_dir == "" else (cache_dir or output / "embeddings_cache")
        alignments = []
        for label, source in sources:
            if verbose:
                described = ", ".join(f"{pair_name(key)} ({len(p)} pairs)" for key, p in pairs.pairs.items())
                print(f"[analyze] {label}: {source.path} ({source.depth} layers) on {described}", file=sys.stderr)
            alignments.append(analyze_model(source, pairs, settings, cache, label=label))
        perplexities = {}
        if perplexity:
            from xling_align.analysis.perplexity import language_perplexities

            for label, source in sources:
                model_, tokenizer = source.load()
                perplexities[label] = language_perplexities(
                    model_, tokenizer, pairs.pairs, settings.batch_size, settings.max_length
                )

        metrics = BY_LAYER_METRICS + (SEPARABILITY_METRICS if settings.separability else ())
        plots = [
            plot_metrics_by_layer(
                alignments, output / "retrieval_accuracy_by_layer.png", ["retrieval_accuracy"], columns=1
            ),
            plot_metrics_by_layer(alignments, output / "alignment_metrics_by_layer.png", metrics),
        ]
        layer = choose_projection_layer(alignments, projection_layer)
        plots.append(plot_projection(alignments, layer, output / f"pca_layer{layer}.png", "pca", seed=settings.seed))
        if tsne:
            plots.append(
                plot_projection(alignments, layer, output / f"tsne_layer{layer}.png", "tsne", seed=settings.seed)
            )
    written = [
        write_metrics_json(output / "metrics.json", alignments, pairs, settings, plots, perplexities),
        write_markdown_summary(output / "summary.md", alignments, pairs, settings, plots, perplexities),
    ]
    return written + plots
