"""Write an alignment analysis: `metrics.json` (everything, machine-readable) and a Markdown summary.

metrics.json layout:

    {
      "format_version": 1,
      "settings": {...AnalysisSettings...},
      "pairs": {"en-de": {"languages": ["en", "de"], "n_pairs": 1000, "dropped_duplicates": 0, ...}},
      "pairs_left_out": {"empty_side": 0, "malformed_skipped": 0},
      "models": {
        "base":    {"model": PATH, "depth": 24, "layers": [0, ..., 24],
                    "metrics": {"en-de": {"0": {"retrieval_accuracy": ..., "retrieval_accuracy_en_to_de": ...,
                                                "retrieval_accuracy_de_to_en": ..., "mexa_alignment": ...,
                                                "cosine_true_pairs": ..., "cosine_random_pairs": ...,
                                                "cosine_margin": ..., "language_probe_accuracy": ...,
                                                "language_silhouette": ..., "n_pairs": ...,
                                                "chance_retrieval_accuracy": ...}, ...}},
                    "summary": {"en-de": {"best_layer": 12, "best_retrieval_accuracy": ...,
                                          "mexa_alignment_mean_over_layers": ..., "mexa_alignment_max_over_layers": ...}}},
        "compare": {...same, when --compare is given...}
      },
      "plots": ["retrieval_accuracy_by_layer.png", ...],
      "perplexity": {"base": {"en": {"perplexity": ..., "mean_nll": ..., "tokens": ..., "texts": ...}, "de": ...},
                     "compare": {...}}   (held-out sentences of each language; absent with --no-perplexity)
    }
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from xling_align.analysis.analyzer import AnalysisSettings, ModelAlignment, settings_to_json
from xling_align.analysis.pairs import AnalysisPairs, pair_name

FORMAT_VERSION = 1

METRIC_EXPLANATIONS = """\
## What the numbers mean

- **retrieval a→b / b→a**: for each sentence, is its translation the strictly most cosine-similar sentence
  among all candidates of the other language? Chance level is 1 / (number of pairs); ties count as misses.
- **MEXA**: the alignment score of MEXA (Kargaran et al., 2024): the fraction of pairs whose similarity beats
  every other entry of its row *and* its column of the similarity matrix, i.e. pairs retrieved correctly in
  both directions at once. It is therefore at most the lower of the two retrieval accuracies. MEXA
  aggregates it over layers (mean or max, both in metrics.json) and finds that it correlates with
  downstream multilingual scores.
- **cos true / cos random / margin**: mean cosine of translation pairs, of non-translation pairs, and the
  difference. The margin, not the raw cosine, is comparable across models (hidden states of LMs are
  anisotropic: all cosines can be high).
- **probe**: held-out accuracy of a logistic-regression language classifier (0.5 = languages mixed,
  1.0 = linearly separable). Language identity usually stays decodable even in aligned models.
- **silhouette**: how well the two languages form separate clusters under cosine distance (1 = separate
  islands, 0 = mixed).
"""


def _pairs_json(pairs: AnalysisPairs) -> dict:
    return {
        pair_name(languages): {
            "languages": list(languages),
            "n_pairs": len(sentence_pairs),
            "dropped_duplicates": pairs.dropped_duplicates.get(languages, 0),
            "left_out_by_max_pairs": pairs.truncated.get(languages, 0),
        }
        for languages, sentence_pairs in pairs.pairs.items()
    }


def write_metrics_json(
    path: str | os.PathLike,
    alignments: Sequence[ModelAlignment],
    pairs: AnalysisPairs,
    settings: AnalysisSettings,
    plots: Sequence[str] = (),
    perplexity: dict | None = None,
) -> str:
    """Write metrics.json (see the module docstring for its layout); returns the path."""
    document = {
        "format_version": FORMAT_VERSION,
        "settings": settings_to_json(settings),
        "pairs": _pairs_json(pairs),
        "pairs_left_out": {"empty_side": pairs.dropped_empty, "malformed_skipped": pairs.skipped_invalid},
        "models": {alignment.label: alignment.to_json() for alignment in alignments},
        "plots": [os.path.basename(plot) for plot in plots],
    }
    if perplexity:
        document["perplexity"] = perplexity
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return str(path)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _layer_table(alignment: ModelAlignment, name: str) -> list[str]:
    lang_a, lang_b = alignment.languages[name]
    lines = [
        f"| layer | retrieval {lang_a}→{lang_b} | retrieval {lang_b}→{lang_a} | MEXA | cos true | cos random "
        "| margin | probe | silhouette |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for layer, values in sorted(alignment.metrics[name].items()):
        cells = [
            values[f"retrieval_accuracy_{lang_a}_to_{lang_b}"],
            values[f"retrieval_accuracy_{lang_b}_to_{lang_a}"],
            values["mexa_alignment"],
            values["cosine_true_pairs"],
            values["cosine_random_pairs"],
            values["cosine_margin"],
            values.get("language_probe_accuracy"),
            values.get("language_silhouette"),
        ]
        lines.append(f"| {layer} | " + " | ".join(_number(cell) for cell in cells) + " |")
    return lines


def _change_tables(base: ModelAlignment, other: ModelAlignment) -> list[str]:
    """Per pair and shared layer: retrieval accuracy and cosine margin of both models and the change."""
    lines = [f"## {base.label} → {other.label}", ""]
    for name in base.metrics:
        if name not in other.metrics:
            continue
        lines += [
            f"**{name}**",
            "",
            f"| layer | retrieval {base.label} | retrieval {other.label} | change "
            f"| margin {base.label} | margin {other.label} |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for layer in sorted(set(base.metrics[name]) & set(other.metrics[name])):
            before, after = base.metrics[name][layer], other.metrics[name][layer]
            change = after["retrieval_accuracy"] - before["retrieval_accuracy"]
            lines.append(
                f"| {layer} | {_number(before['retrieval_accuracy'])} | {_number(after['retrieval_accuracy'])} "
                f"| {change:+.3f} | {_number(before['cosine_margin'])} | {_number(after['cosine_margin'])} |"
            )
        lines.append("")
    return lines


def _perplexity_table(perplexity: dict) -> list[str]:
    """Held-out perplexity per language and model, and the relative change of the second model (forgetting)."""
    labels = list(perplexity)
    languages = list(perplexity[labels[0]])
    titles = [f"perplexity {label}" for label in labels] + (["change"] if len(labels) == 2 else [])
    lines = [
        "## Held-out perplexity (language modelling of the pairs' sentences; lower is better)",
        "",
        "| language | sentences | " + " | ".join(titles) + " |",
        "|---|---:|" + "---:|" * len(titles),
    ]
    for language in languages:
        values = [perplexity[label][language]["perplexity"] for label in labels]
        cells = [f"{value:.2f}" for value in values]
        if len(labels) == 2:
            cells.append(f"{(values[1] / values[0] - 1):+.1%}")
        lines.append(f"| {language} | {perplexity[labels[0]][language]['texts']} | " + " | ".join(cells) + " |")
    return lines + [""]


def write_markdown_summary(
    path: str | os.PathLike,
    alignments: Sequence[ModelAlignment],
    pairs: AnalysisPairs,
    settings: AnalysisSettings,
    plots: Sequence[str] = (),
    perplexity: dict | None = None,
) -> str:
    """Write a human-readable summary: overview table, per-layer tables, plots, metric definitions."""
    lines = ["# Cross-lingual alignment analysis", ""]
    for alignment in alignments:
        lines.append(f"- **{alignment.label}**: `{alignment.model}` ({alignment.depth} decoder layers)")
    lines += [
        f"- pooling: {settings.pooling}; layers: {', '.join(map(str, alignments[0].layers))}",
        "- pairs: " + ", ".join(f"{pair_name(lang)} ({len(p)})" for lang, p in pairs.pairs.items()),
        *(f"- {note}" for note in pairs.notes()),
        "",
        "## Overview",
        "",
        "| model | pair | best layer | retrieval there | chance | MEXA mean over layers | MEXA max |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for alignment in alignments:
        for name, summary in alignment.summary().items():
            chance = 1.0 / len(pairs.pairs[alignment.languages[name]])
            lines.append(
                f"| {alignment.label} | {name} | {summary['best_layer']} "
                f"| {_number(summary['best_retrieval_accuracy'])} "
                f"| {chance:.2g} | {_number(summary['mexa_alignment_mean_over_layers'])} "
                f"| {_number(summary['mexa_alignment_max_over_layers'])} |"
            )
    lines.append("")
    if perplexity:
        lines += _perplexity_table(perplexity)
    if len(alignments) == 2:
        lines += _change_tables(*alignments)
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(plot).stem}]({os.path.basename(plot)})" for plot in plots]
        lines.append("")
    for alignment in alignments:
        for name in alignment.metrics:
            lines += [f"## {alignment.label}: {name}", ""] + _layer_table(alignment, name) + [""]
    lines.append(METRIC_EXPLANATIONS)
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    return str(path)
