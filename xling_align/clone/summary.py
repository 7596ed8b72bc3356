"""The demo's summary: `summary.json`, a Markdown table and PNG plots, built from the lm-eval results files.

`summary.json` is `{"chance": float, "arms": {arm: {figure: value}}, "testbed": "v3", "best_variant": arm,
"minus_base": {arm: {figure: arm - base}}, "retention": {arm: {figure: arm / base}}}` (`testbed`,
`best_variant`, `minus_base` added with v3, `retention` with v4; `minus_base` for the transfer figures
`PAIRED_FIGURES`, `retention` for what the base could already do, `RETENTION_FIGURES`: in-context learning in
L1 and L1 facts; both only when the base was scored); an arm's figures are the clone
tasks' accuracies under their short names (`l1_heldout`, `l2_bilingual`, `l2_heldout`,
`l2_heldout_l1demo`, the `_dev` ones, `icl_*`), read back from `results_clone_<arm>.json`, plus the
layer-wise retrieval (`sentence_retrieval` with mean pooling, `sentence_retrieval_last` with last-token
pooling, `entity_retrieval`: `{layer: accuracy}`).

Example:
    >>> short_name("xling_clone_l2_heldout")
    'l2_heldout'
    >>> arms = {"base": {"l1_heldout": 1.0, "l2_bilingual": 0.9, "l2_heldout": 0.2, "l2_heldout_l1demo": 0.2}}
    >>> print(accuracy_table(arms).splitlines()[0])  # doctest: +ELLIPSIS
    | arm | L1 held-out (ceiling) | L2 bilingual (ceiling) | L2 held-out | ...
"""

from __future__ import annotations

import json
from pathlib import Path

from xling_align.clone.evaluation import read_accuracies
from xling_align.clone.world import CATEGORIES, COLORS, LABELS

TASK_PREFIX = "xling_clone_"
# figure -> column title, in table order (test split and in-context part)
MAIN_COLUMNS = {
    "l1_heldout": "L1 held-out (ceiling)",
    "l2_bilingual": "L2 bilingual (ceiling)",
    "l2_heldout": "L2 held-out",
    "l2_heldout_l1demo": "L2 held-out, 5 L1 demos",
    "icl_l1": "ICL L1",
    "icl_l2": "ICL L2",
    "icl_l2_l1demo": "ICL L2 query, L1 demos",
}
DEV_COLUMNS = {
    "l1_heldout_dev": "L1 dev",
    "l2_heldout_dev": "L2 dev",
    "l2_heldout_dev_l1demo": "L2 dev, 5 L1 demos",
}
RETRIEVAL_KEYS = {
    "sentence_retrieval": "sentence (mean)",
    "sentence_retrieval_last": "sentence (last token)",
    "entity_retrieval": "entity",
}


def chance_level() -> float:
    """Accuracy of a uniform guess: every clone task has five choices (categories, colours, labels)."""
    sizes = {len(CATEGORIES), len(COLORS), len(LABELS)}
    if len(sizes) != 1:
        raise ValueError(
            f"the clone tasks have different numbers of choices {sorted(sizes)}; one chance level "
            "no longer describes them."
        )
    return 1.0 / sizes.pop()


def short_name(task: str) -> str:
    return task.removeprefix(TASK_PREFIX)


def arm_figures(results_file: str | Path, retrieval: dict[str, dict[int, float]] | None = None) -> dict:
    """One arm's figures: accuracies read from its lm-eval results file, plus its retrieval by layer."""
    figures: dict = {short_name(t): acc for t, acc in read_accuracies(results_file).items()}
    for key, by_layer in (retrieval or {}).items():
        figures[key] = {str(layer): value for layer, value in sorted(by_layer.items())}
    return figures


TESTBED_VERSION = "v3"
# transfer figures whose difference to the base (same seed) the summary adds
PAIRED_FIGURES = ("l2_heldout", "l2_heldout_l1demo", "icl_l2_l1demo")
# what the base could do before alignment; an arm's figure over the base's = the share it kept (forgetting)
RETENTION_FIGURES = {"icl_l1": "ICL L1 kept", "l1_heldout": "L1 facts kept"}


def retention(arms: dict[str, dict]) -> dict[str, dict[str, float]]:
    """`{arm: {figure: arm / base}}` for `RETENTION_FIGURES` (1.0 = nothing forgotten); empty without a base."""
    base = arms.get("base", {})
    return {
        arm: {f: round(figures[f] / base[f], 6) for f in RETENTION_FIGURES if f in figures and base.get(f)}
        for arm, figures in arms.items()
        if arm != "base" and base
    }


def retention_table(arms: dict[str, dict]) -> str:
    """Markdown: per arm, what it kept of the base's L1 abilities next to its transfer (L2 held-out - base)."""
    kept = retention(arms)
    base = arms.get("base", {})
    titles = list(RETENTION_FIGURES.values()) + ["L2 held-out gain (transfer)"]
    lines = ["| arm | " + " | ".join(titles) + " |", "|" + "---|" * (len(titles) + 1)]
    for arm, ratios in kept.items():
        cells = [f"{ratios[f]:.2f}" if f in ratios else "-" for f in RETENTION_FIGURES]
        gain = arms[arm].get("l2_heldout")
        cells.append(f"{gain - base['l2_heldout']:+.3f}" if gain is not None and "l2_heldout" in base else "-")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summary_json(arms: dict[str, dict], output_file: str | Path) -> dict:
    from xling_align.clone.alignment import BEST_VARIANT

    summary = {"chance": chance_level(), "arms": arms, "testbed": TESTBED_VERSION, "best_variant": BEST_VARIANT}
    base = arms.get("base", {})
    summary["minus_base"] = {
        arm: {f: round(figures[f] - base[f], 6) for f in PAIRED_FIGURES if f in figures and f in base}
        for arm, figures in arms.items()
        if arm != "base" and base
    }
    summary["retention"] = retention(arms)
    Path(output_file).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _best(by_layer: dict) -> str:
    if not by_layer:
        return "-"
    layer = max(by_layer, key=lambda k: (by_layer[k], -int(k)))
    return f"{by_layer[layer]:.3f} (layer {layer})"


def accuracy_table(arms: dict[str, dict], columns: dict[str, str] | None = None, retrieval: bool = True) -> str:
    """Markdown table: one row per arm, the chosen figures, and the best-layer retrieval accuracies."""
    columns = columns or MAIN_COLUMNS
    present = [(key, title) for key, title in columns.items() if any(key in figures for figures in arms.values())]
    titles = [title for _, title in present]
    if retrieval:
        titles += [f"{name} retrieval (best layer)" for name in RETRIEVAL_KEYS.values()]
    lines = ["| arm | " + " | ".join(titles) + " |", "|" + "---|" * (len(titles) + 1)]
    for arm, figures in arms.items():
        cells = [f"{figures[key]:.3f}" if key in figures else "-" for key, _ in present]
        if retrieval:
            cells += [_best(figures.get(key, {})) for key in RETRIEVAL_KEYS]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def retrieval_table(arms: dict[str, dict], key: str) -> str:
    """Markdown table of one retrieval kind per layer (rows: arms, columns: hidden_states index)."""
    layers = sorted({int(layer) for figures in arms.values() for layer in figures.get(key, {})})
    lines = ["| arm | " + " | ".join(f"layer {k}" for k in layers) + " |", "|" + "---|" * (len(layers) + 1)]
    for arm, figures in arms.items():
        by_layer = figures.get(key, {})
        lines.append(
            f"| {arm} | " + " | ".join(f"{by_layer[str(k)]:.3f}" if str(k) in by_layer else "-" for k in layers) + " |"
        )
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracies(arms: dict[str, dict], chance: float, output_file: str | Path) -> Path:
    """Bars: the transfer figures per arm; markers: each arm's two ceilings; dashed line: chance."""
    plt = _pyplot()
    bars = [
        ("l2_heldout", "L2 held-out (0-shot)"),
        ("l2_heldout_l1demo", "L2 held-out, 5 L1 demos"),
        ("icl_l2_l1demo", "ICL: L2 query, L1 demos"),
    ]
    names = list(arms)
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(max(6.5, 1.3 * len(names) + 2), 5.0))
    for i, (key, label) in enumerate(bars):
        xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [arms[n].get(key, 0.0) for n in names], width=width, label=label)
    for key, label, marker in (
        ("l1_heldout", "ceiling: L1 held-out", "^"),
        ("l2_bilingual", "ceiling: L2 bilingual", "v"),
    ):
        ax.scatter(
            range(len(names)),
            [arms[n].get(key, float("nan")) for n in names],
            marker=marker,
            color="black",
            zorder=3,
            label=label,
        )
    ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance ({chance:.2f})")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=9)
    ax.set_ylabel("accuracy (lm-eval acc, test split)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Cloned-language testbed: transfer of L1-only facts to L2, by arm")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    fig.savefig(output_file, dpi=110)
    plt.close(fig)
    return Path(output_file)


def plot_retrieval(arms: dict[str, dict], output_file: str | Path) -> Path:
    """One panel per retrieval kind (sentence mean / last token, entity) against the layer, one line per arm."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(RETRIEVAL_KEYS), figsize=(4.6 * len(RETRIEVAL_KEYS), 4.0), sharey=True)
    for ax, (key, name) in zip(axes, RETRIEVAL_KEYS.items()):
        for arm, figures in arms.items():
            by_layer = figures.get(key, {})
            layers = sorted(int(k) for k in by_layer)
            ax.plot(layers, [by_layer[str(k)] for k in layers], marker="o", label=arm)
            ax.set_xticks(layers)
        ax.set_xlabel("hidden_states index (0 = embeddings)")
        ax.set_title(f"{name} retrieval L1 -> L2")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("top-1 retrieval accuracy")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output_file, dpi=110)
    plt.close(fig)
    return Path(output_file)


def plot_retention(arms: dict[str, dict], output_file: str | Path) -> Path | None:
    """Forgetting against transfer: x = L2 held-out gain over the base, y = share of the base's L1 in-context
    accuracy (circles) and L1 fact accuracy (squares) the arm kept; None without a scored base."""
    kept = retention(arms)
    base = arms.get("base", {})
    if not kept or "l2_heldout" not in base:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for index, (arm, ratios) in enumerate(kept.items()):
        gain = arms[arm].get("l2_heldout", float("nan")) - base["l2_heldout"]
        color = f"C{index % 10}"
        for figure, marker in (("icl_l1", "o"), ("l1_heldout", "s")):
            if figure in ratios:
                ax.scatter([gain], [ratios[figure]], marker=marker, color=color, s=50, zorder=3)
        ax.annotate(
            arm,
            (gain, ratios.get("icl_l1", ratios.get("l1_heldout", 0))),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
    ax.scatter([], [], marker="o", color="black", label="ICL L1 kept (arm / base)")
    ax.scatter([], [], marker="s", color="black", label="L1 facts kept (arm / base)")
    ax.set_xlabel("transfer: L2 held-out accuracy - base (test split)")
    ax.set_ylabel("retention: arm / base")
    ax.set_ylim(0, 1.15)
    ax.set_title("What each arm kept of the base (forgetting) against what it transferred")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(output_file, dpi=110)
    plt.close(fig)
    return Path(output_file)
