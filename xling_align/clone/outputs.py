"""Write the demo's outputs from an experiment's figures: `summary.json`, `summary.md` and the two plots.

Example:
    >>> from xling_align.clone.outputs import describe_arm
    >>> describe_arm("afp_mean")
    'AFP, mean pooling'
"""

from __future__ import annotations

from pathlib import Path

from xling_align.clone.alignment import ARM_TITLES
from xling_align.clone.summary import (
    DEV_COLUMNS,
    accuracy_table,
    plot_accuracies,
    plot_retention,
    plot_retrieval,
    retention_table,
    retrieval_table,
    write_summary_json,
)


def describe_arm(arm: str) -> str:
    return ARM_TITLES.get(arm, arm)


def write_report(arms: dict[str, dict], output: str | Path, plan, seconds: float) -> tuple[dict, str]:
    """Write summary.json / summary.md / accuracy.png / retrieval_by_layer.png; return (summary, main table)."""
    output = Path(output)
    summary = write_summary_json(arms, output / "summary.json")
    chance = summary["chance"]
    table = accuracy_table(arms)
    opt = plan.optimisation
    lines = [
        "# xling-align demo: cloned-language testbed (v3)",
        "",
        f"Base checkpoint `{plan.checkpoint('base')}`; alignment seed {plan.seed}; {opt.steps} steps x "
        f"{opt.batch_size} rows per alignment run, peak learning rate {opt.learning_rate:g}; "
        f"{'limit ' + str(plan.limit) + ' documents per task; ' if plan.limit else ''}wall time {seconds:.0f} s.",
        "",
        "Arms: " + "; ".join(f"`{arm}` = {describe_arm(arm)}" for arm in arms) + ".",
        "",
        f"Accuracy (lm-eval `acc`, read from `results_clone_<arm>.json`; chance = {chance:.3f} on every task). "
        "Held-out entities' facts are stated only in L1 pretraining text, so `L2 held-out` measures transfer; "
        "`L1 held-out` and `L2 bilingual` are its ceilings (the knowledge exists; the L2 question works). "
        "ICL: every document's label mapping is given only by its five demonstrations. Held-out figures are on "
        "the test split.",
        "",
        table,
        "",
        "Forgetting next to transfer: what each arm kept of the base's L1 abilities (arm / base; 1.00 = nothing "
        "forgotten) and its gain on L2 held-out facts:",
        "",
        retention_table(arms),
        "",
        "Dev split of held-out entities (used to choose variant settings, never the test split):",
        "",
        accuracy_table(arms, DEV_COLUMNS, retrieval=False),
        "",
        "Sentence retrieval L1 -> L2 per layer (held-out filler sentences, mean pooling; hidden_states index, "
        "0 = embeddings):",
        "",
        retrieval_table(arms, "sentence_retrieval"),
        "",
        "The same with last-token pooling (what AFP's contrastive term trains):",
        "",
        retrieval_table(arms, "sentence_retrieval_last"),
        "",
        "Entity-word retrieval L1 -> L2 per layer (`the X` and its clone, hidden state of the entity token, among "
        "all entities with a distinct L2 name):",
        "",
        retrieval_table(arms, "entity_retrieval"),
        "",
        "Plots: `accuracy.png`, `retrieval_by_layer.png`, `retention.png` (retention against transfer).",
        "",
    ]
    (output / "summary.md").write_text("\n".join(lines))
    plot_accuracies(arms, chance, output / "accuracy.png")
    plot_retrieval(arms, output / "retrieval_by_layer.png")
    plot_retention(arms, output / "retention.png")
    if "base" in arms:
        table = table + "\n\nForgetting next to transfer (arm / base):\n\n" + retention_table(arms)
    return summary, table
