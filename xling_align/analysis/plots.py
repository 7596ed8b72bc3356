"""PNG plots of an alignment analysis: metrics versus layer, and 2-D projections coloured by language.

matplotlib runs with the Agg backend (no display needed). Each model keeps one colour across panels and
each language pair one line style, so "base" and "compare" of the same pair sit side by side on one chart.
The projection is PCA (fitted per model: the two models' spaces are unrelated) or, if scikit-learn is
installed, t-SNE.

Example:
    >>> # plot_metrics_by_layer([base_alignment, compare_alignment], "out/retrieval.png", ["retrieval_accuracy"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot's import
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from xling_align.analysis.analyzer import ModelAlignment  # noqa: E402

METRIC_TITLES = {
    "retrieval_accuracy": "Translation retrieval top-1 (mean of both directions)",
    "mexa_alignment": "MEXA alignment score",
    "cosine_margin": "Cosine margin (true pairs - random pairs)",
    "cosine_true_pairs": "Mean cosine of translation pairs",
    "language_probe_accuracy": "Language probe accuracy (held out; 0.5 = mixed)",
    "language_silhouette": "Language silhouette (cosine; 0 = mixed)",
}
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def _lines(ax, alignments: Sequence[ModelAlignment], metric: str) -> None:
    for model_index, alignment in enumerate(alignments):
        for pair_index, (name, by_layer) in enumerate(alignment.metrics.items()):
            layers = sorted(layer for layer in by_layer if metric in by_layer[layer])
            if not layers:
                continue
            ax.plot(
                layers,
                [by_layer[layer][metric] for layer in layers],
                color=f"C{model_index}",
                linestyle=LINE_STYLES[pair_index % len(LINE_STYLES)],
                marker=MARKERS[pair_index % len(MARKERS)],
                markersize=4,
                label=f"{alignment.label}: {os.path.basename(alignment.model.rstrip('/'))} ({name})",
            )
    if metric == "retrieval_accuracy" and alignments:
        chance = {
            values["chance_retrieval_accuracy"]
            for a in alignments
            for pair in a.metrics.values()
            for values in pair.values()
        }
        if len(chance) == 1:
            ax.axhline(chance.pop(), color="grey", linewidth=0.8, linestyle=":", label="chance (1 / pairs)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (hidden_states index; 0 = embeddings)")
    ax.set_ylabel(metric)
    ax.set_title(METRIC_TITLES.get(metric, metric), fontsize=9)
    ax.grid(alpha=0.3)


def plot_metrics_by_layer(
    alignments: Sequence[ModelAlignment], path: str | os.PathLike, metrics: Sequence[str], columns: int = 2
) -> str:
    """One panel per metric, x = layer, one line per (model, language pair); saves a PNG.

    Args:
        alignments: the analysed models (base first, then the compared one).
        path: the PNG to write.
        metrics: metric names of `ModelAlignment.metrics` to draw.
        columns: panels per row.

    Returns:
        The path written.
    """
    figure = metrics_figure(alignments, metrics, columns)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


def metrics_figure(alignments: Sequence[ModelAlignment], metrics: Sequence[str], columns: int = 2) -> plt.Figure:
    """The figure of `plot_metrics_by_layer`, not saved (the caller closes it)."""
    rows = (len(metrics) + columns - 1) // columns
    columns = min(columns, len(metrics))
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        _lines(ax, alignments, metric)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    figure.tight_layout()
    return figure


def _pca_2d(points: np.ndarray) -> np.ndarray:
    centred = torch.from_numpy(points).double()
    centred = centred - centred.mean(dim=0)
    # right singular vectors = principal axes; exact SVD is fine for a few thousand points
    _, _, right = torch.linalg.svd(centred, full_matrices=False)
    return (centred @ right[:2].T).numpy()


def _tsne_2d(points: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = max(2.0, min(30.0, (len(points) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(points)


def projection_points(
    alignment: ModelAlignment, layer: int, max_per_language: int = 500, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """Sentence vectors at `layer` of every pair side (subsampled), and the language of each row."""
    generator = np.random.default_rng(seed)
    chunks, languages = [], []
    for (name, side), by_layer in alignment.vectors.items():
        vectors = by_layer[layer]
        rows = np.sort(generator.permutation(len(vectors))[:max_per_language])
        chunks.append(np.asarray(vectors[rows], dtype=np.float64))
        languages += [alignment.languages[name][side]] * len(rows)
    return np.concatenate(chunks), languages


def plot_projection(
    alignments: Sequence[ModelAlignment],
    layer: int,
    path: str | os.PathLike,
    method: str = "pca",
    max_per_language: int = 500,
    seed: int = 0,
) -> str:
    """Side-by-side 2-D projections (one panel per model) of sentence vectors at `layer`, coloured by language.

    Args:
        alignments: the analysed models (before / after).
        layer: the `hidden_states` index to project.
        path: the PNG to write.
        method: `"pca"` or `"tsne"` (needs scikit-learn).
        max_per_language: points per pair side at most.
        seed: subsample / t-SNE seed.

    Returns:
        The path written.
    """
    figure = projection_figure(alignments, layer, method, max_per_language, seed)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return str(path)


def projection_figure(
    alignments: Sequence[ModelAlignment], layer: int, method: str = "pca", max_per_language: int = 500, seed: int = 0
) -> plt.Figure:
    """The figure of `plot_projection`, not saved (the caller closes it)."""
    if method not in {"pca", "tsne"}:
        raise ValueError(f"projection method {method!r} is not supported; use 'pca' or 'tsne'.")
    figure, axes = plt.subplots(1, len(alignments), figsize=(5.5 * len(alignments), 5), squeeze=False)
    colours: dict[str, str] = {}
    for ax, alignment in zip(axes.flat, alignments):
        points, languages = projection_points(alignment, layer, max_per_language, seed)
        projected = _pca_2d(points) if method == "pca" else _tsne_2d(points, seed)
        for language in dict.fromkeys(languages):
            colours.setdefault(language, f"C{len(colours)}")
            mask = np.array([lang == language for lang in languages])
            ax.scatter(projected[mask, 0], projected[mask, 1], s=8, alpha=0.6, color=colours[language], label=language)
        axis = "PC" if method == "pca" else "t-SNE"
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
        ax.set_title(f"{alignment.label}: {os.path.basename(alignment.model.rstrip('/'))}, layer {layer}", fontsize=9)
        ax.legend(title="language", fontsize=8)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure
