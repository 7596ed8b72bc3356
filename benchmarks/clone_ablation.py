"""Every arm of the cloned-language testbed over several alignment seeds: means, spreads, paired differences.

    python benchmarks/clone_ablation.py --output clone_ablation                 # all arms, seeds 0 1 2
    python benchmarks/clone_ablation.py --output clone_lr --dev-grid lr --seeds 0   # shared lr, dev split only
    python benchmarks/clone_ablation.py --output clone_dev --dev-grid variants      # variant settings, dev only
    python benchmarks/clone_ablation.py --ship-arms cif mcl cpt_align --arms-dir xling_align/resources/clone_arms
    python benchmarks/clone_ablation.py --output clone_v3 --arms-set v3                   # testbed v3's test run
    python benchmarks/clone_ablation.py --output clone_v3_layers --dev-grid layers --arms-set v3 --seeds 0
    python benchmarks/clone_ablation.py --output clone_v3_words --dev-grid words --arms-set v3 --seeds 0
    python benchmarks/clone_ablation.py --output clone_v4 --arms-set v4                   # v4: forgetting arms
    python benchmarks/clone_ablation.py --output clone_v4_combined --arms-set v4-combined --replay-share S
    python benchmarks/clone_ablation.py --output merged --merge run_seed0 run_seed1 run_seed2   # one seed per process

`--arms-set v2` (the default) runs on the v2 checkpoints (`clone_base`, `clone_control`), `--arms-set v3` on the
shipped v3 ones the demo uses (`clone_v3_base`, `clone_v3_control`); `--ship-arms` trains from the v3 base.

Default mode: for each seed, every alignment arm is trained live from the shipped base with AFPTrainer and
every arm (base and control included) is scored on all `xling_clone_*` tasks, with layer-wise retrieval;
it prints and writes (`ablation.md`, `ablation.json`) the mean and sample standard deviation over seeds of
each figure, and the paired differences (same seed) of each arm against the base and of AFP against its
parts and variants.

`--dev-grid lr|variants`: the pre-registered selections on the dev split of held-out entities (the shared
peak learning rate, for `afp`; then the variants' free settings: contrastive layer of `afp_mid`, entity
share of `afp_entity`, and `afp_mean`); only dev tasks and the bilingual ceiling are scored, so test
figures are never seen while choosing.

`--ship-arms`: train the named arms at seed 0 with the default settings and save them as the shipped
checkpoints the demo loads (float16, manifest, `alignment.json`). Not a test: the default mode takes about
one demo's time per seed and arm group.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from xling_align.clone.alignment import ARMS, BEST_VARIANT, AlignmentSettings
from xling_align.clone.experiment import ExperimentError, ExperimentPlan, run_experiment

ALL_ARMS = ["base", "control", "cif", "mcl", "afp", "afp_mean", "afp_mid", "afp_entity"]
# testbed v3's arms (xling_align/clone/README.md, "Testbed v3"): `--arms-set v3`
V3_ARMS = ["base", "afp", "afp_layers", "afp_words", "cpt_align"]
# testbed v4 (the README's v4 part): AFP that keeps the base's abilities; the combined arms run second, with the
# replay share chosen on the dev figures of the first run
ARMS_SETS = {
    "v3": V3_ARMS,
    "v4": ["base", "afp_replay25", "afp_replay50", "afp_lora", "afp_lowlr"],
    "v4-combined": ["base", "afp_words_replay", "replay_words"],
}
# retention: what an arm keeps of the base's L1 abilities (arm / base, same seed), next to its transfer
RETENTION_FIGURES = ["icl_l1", "l1_heldout"]
# the shipped base and control are v3's; v2's arms-set runs on the v2 checkpoints, which stay in the package
_RESOURCES = Path(__file__).resolve().parent.parent / "xling_align" / "resources"
V2_CHECKPOINTS = {"base": _RESOURCES / "clone_base", "control": _RESOURCES / "clone_control"}
FIGURES = ["l1_heldout", "l2_bilingual", "l2_heldout", "l2_heldout_l1demo", "icl_l1", "icl_l2", "icl_l2_l1demo"]
DEV_FIGURES = ["l1_heldout_dev", "l2_bilingual", "l2_heldout_dev", "l2_heldout_dev_l1demo"]
DEV_TASKS = [
    "xling_clone_l1_heldout_dev",
    "xling_clone_l2_bilingual",
    "xling_clone_l2_heldout_dev",
    "xling_clone_l2_heldout_dev_l1demo",
]
PAIRED_FIGURES = ["l2_heldout", "l2_heldout_l1demo", "icl_l2_l1demo"]
# the settings searched on the dev split (pre-registered in xling_align/clone/README.md)
DEV_GRIDS = {
    "lr": {"afp": ("learning_rate", (1e-4, 3e-4, 1e-3))},
    "variants": {
        "afp_mean": (None, (None,)),
        "afp_mid": ("middle_layer", (2, 3)),
        "afp_entity": ("entity_share", (0.25, 0.5)),
    },
    # v3, run in this order (afp_words uses the layers chosen for afp_layers, set in ARMS before its grid)
    "layers": {"afp_layers": ("layers", ([1, 2], [1, 2, 3], [1, 2, 3, 4]))},
    "words": {"afp_words": ("word_share", (0.5, 1.0))},
}


def mean_and_spread(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def best_layer_value(by_layer: dict) -> float:
    return max(by_layer.values())


def figure_table(runs: list[dict], arms: list[str], figures: list[str], retrieval: bool = True) -> list[str]:
    kinds = ("sentence_retrieval", "sentence_retrieval_last", "entity_retrieval")
    titles = figures + ([f"{k.replace('_', ' ')} (best layer)" for k in kinds] if retrieval else [])
    lines = ["| arm | " + " | ".join(titles) + " |", "|" + "---|" * (len(titles) + 1)]
    for arm in arms:
        cells = [mean_and_spread([run[arm][f] for run in runs]) for f in figures]
        if retrieval:
            cells += [mean_and_spread([best_layer_value(run[arm][k]) for run in runs]) for k in kinds]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def paired_table(runs: list[dict], pairs: list[tuple[str, str]]) -> list[str]:
    lines = [
        "| difference (same seed) | " + " | ".join(PAIRED_FIGURES) + " |",
        "|" + "---|" * (len(PAIRED_FIGURES) + 1),
    ]
    for left, right in pairs:
        cells = [mean_and_spread([run[left][f] - run[right][f] for run in runs]) for f in PAIRED_FIGURES]
        lines.append(f"| {left} - {right} | " + " | ".join(cells) + " |")
    return lines


def retention_table(runs: list[dict], arms: list[str]) -> list[str]:
    lines = [
        "| arm | " + " | ".join(f"{f} / base" for f in RETENTION_FIGURES) + " | l2_heldout - base |",
        "|" + "---|" * (len(RETENTION_FIGURES) + 2),
    ]
    for arm in arms:
        if arm == "base":
            continue
        cells = [mean_and_spread([run[arm][f] / max(run["base"][f], 1e-9) for run in runs]) for f in RETENTION_FIGURES]
        cells.append(mean_and_spread([run[arm]["l2_heldout"] - run["base"]["l2_heldout"] for run in runs]))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def layer_table(runs: list[dict], arms: list[str]) -> list[str]:
    lines = ["| arm | sentence, last token | entity words |", "|---|---|---|"]
    for arm in arms:
        cells = []
        for kind in ("sentence_retrieval_last", "entity_retrieval"):
            layers = sorted(runs[0][arm][kind], key=int)
            cells.append(" ".join(f"{statistics.mean(run[arm][kind][layer] for run in runs):.2f}" for layer in layers))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def run_seeds(args, arms: list[str], output: Path, **plan_fields) -> list[dict]:
    runs = []
    v2 = args.arms_set == "v2"
    base_dir = args.base_checkpoint or (V2_CHECKPOINTS["base"] if v2 else None)
    control_dir = args.control_checkpoint or (V2_CHECKPOINTS["control"] if v2 else None)
    for seed in args.seeds:
        plan = ExperimentPlan(
            arms=arms,
            live=tuple(ARMS),
            seed=seed,
            optimisation=_optimisation(args),
            base_dir=Path(base_dir) if base_dir else None,
            control_dir=Path(control_dir) if control_dir else None,
            **plan_fields,
        )
        runs.append(run_experiment(plan, output / f"seed_{seed}"))
    return runs


def _optimisation(args) -> AlignmentSettings:
    settings = AlignmentSettings()
    if args.steps is not None:
        settings.steps = args.steps
    if args.learning_rate is not None:
        settings.learning_rate = args.learning_rate
    return settings


def ablation(args) -> str:
    output = Path(args.output)
    arms = args.arms or ARMS_SETS.get(args.arms_set, ALL_ARMS)
    if args.merge:
        # runs of the same arms made by separate processes (e.g. one seed each), read back from their ablation.json
        runs, seeds = [], []
        for folder in args.merge:
            record = json.loads((Path(folder) / "ablation.json").read_text())
            runs += record["runs"]
            seeds += record["seeds"]
        args.seeds = seeds
        output.mkdir(parents=True, exist_ok=True)
        return _ablation_text(args, arms, runs, output)
    runs = run_seeds(
        args,
        arms,
        output,
        middle_layer=args.layer,
        entity_share=args.entity_share,
        **({"replay_share": args.replay_share} if args.replay_share is not None else {}),
        **({"layers": args.layers} if args.layers and {"afp_layers", "afp_words"} & set(arms) else {}),
        **({"word_share": args.word_share} if args.word_share is not None else {}),
    )
    return _ablation_text(args, arms, runs, output)


def _ablation_text(args, arms: list[str], runs: list[dict], output: Path) -> str:
    pairs = [(arm, "base") for arm in arms if arm != "base" and "base" in arms]
    pairs += [("afp", other) for other in arms if other not in ("base", "control", "afp") and "afp" in arms]
    lines = [
        f"# Clone ablation over alignment seeds {args.seeds}",
        "",
        "Test split of held-out entities; mean ± sample standard deviation over seeds (chance 0.200):",
        "",
        *figure_table(runs, arms, FIGURES),
        "",
        "Paired differences (same seed), mean ± sd:",
        "",
        *paired_table(runs, pairs),
        "",
        *(
            ["Retention (arm / base, same seed), mean ± sd:", "", *retention_table(runs, arms), ""]
            if "base" in arms
            else []
        ),
        "Retrieval by layer (mean over seeds; hidden_states 0..depth):",
        "",
        *layer_table(runs, arms),
        "",
        "Dev split (selection only):",
        "",
        *figure_table(runs, arms, DEV_FIGURES, retrieval=False),
        "",
    ]
    (output / "ablation.json").write_text(json.dumps({"seeds": args.seeds, "runs": runs}, indent=2) + "\n")
    return "\n".join(lines)


def dev_grid(args) -> str:
    output = Path(args.output)
    lines = [
        f"# Dev-split selection ({args.dev_grid}) over alignment seeds {args.seeds} (test tasks not scored)",
        "",
        "| arm | setting | " + " | ".join(DEV_FIGURES) + " | sentence retrieval at layer 1 | entity retrieval (best) |",
        "|" + "---|" * (len(DEV_FIGURES) + 4),
    ]
    record = {}
    for arm, (name, values) in DEV_GRIDS[args.dev_grid].items():
        for value in values:
            setting = "-" if name is None else f"{name}={value}".replace(" ", "")
            if name == "learning_rate":
                args.learning_rate = value
                fields = {}
            else:
                fields = {} if name is None else {name: value}
            runs = run_seeds(args, [arm], output / f"{arm}_{setting}", tasks=DEV_TASKS, **fields)
            record[f"{arm} {setting}"] = runs
            cells = [mean_and_spread([run[arm][f] for run in runs]) for f in DEV_FIGURES]
            cells.append(mean_and_spread([run[arm]["sentence_retrieval"]["1"] for run in runs]))
            cells.append(mean_and_spread([best_layer_value(run[arm]["entity_retrieval"]) for run in runs]))
            lines.append(f"| {arm} | {setting} | " + " | ".join(cells) + " |")
    (output / "dev_grid.json").write_text(json.dumps(record, indent=2) + "\n")
    return "\n".join(lines)


def ship_arms(args) -> str:
    from xling_align.clone.checkpoints import ARMS_DIR

    target = Path(args.arms_dir) if args.arms_dir else ARMS_DIR
    plan = ExperimentPlan(
        arms=list(args.ship_arms),
        live=tuple(args.ship_arms),
        seed=0,
        optimisation=_optimisation(args),
        tasks=["xling_clone_l2_bilingual"],
        limit=1,
        heldout_pairs=2,
        save_arms_to=target,
    )
    run_experiment(plan, Path(args.output) / "ship_arms")
    return f"saved {', '.join(args.ship_arms)} to {target}"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="clone_ablation", help="folder for one demo folder per seed + summary")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="alignment seeds (default: 0 1 2)")
    parser.add_argument("--arms", nargs="+", default=None, help=f"arms (default: {' '.join(ALL_ARMS)})")
    parser.add_argument("--steps", type=int, default=None, help="alignment steps per run (default: the demo's)")
    parser.add_argument("--learning-rate", type=float, default=None, help="alignment peak lr (default: the demo's)")
    parser.add_argument("--layer", type=int, default=None, help="afp_mid's layer (default: the chosen one)")
    parser.add_argument("--entity-share", type=float, default=None, help="afp_entity's share (default: the chosen one)")
    parser.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=None,
        help="afp_layers' and afp_words' contrastive layers (default: the chosen ones)",
    )
    parser.add_argument("--word-share", type=float, default=None, help="afp_words' share (default: the chosen one)")
    parser.add_argument(
        "--arms-set",
        choices=("v2", "v3", "v4", "v4-combined"),
        default="v2",
        help="v2: v2's arms on the v2 checkpoints (clone_base, clone_control); v3 (what the demo "
        "uses): v3's arms on clone_v3_base; v4 / v4-combined: the forgetting arms, on v3's base",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="no run: the tables of the ablation.json files in these folders together (same arms)",
    )
    parser.add_argument(
        "--replay-share",
        type=float,
        default=None,
        help="replay share of afp_words_replay and replay_words (default: the chosen one)",
    )
    parser.add_argument("--base-checkpoint", default=None, help="base checkpoint folder (default: per --arms-set)")
    parser.add_argument(
        "--control-checkpoint", default=None, help="control checkpoint folder (default: the shipped one)"
    )
    parser.add_argument(
        "--dev-grid",
        choices=sorted(DEV_GRIDS),
        default=None,
        help="run a pre-registered dev-split selection: 'lr' (shared learning rate), 'variants' (v2), "
        "'layers' then 'words' (v3)",
    )
    parser.add_argument(
        "--ship-arms", nargs="+", default=None, help=f"train and save shipped arms (e.g. cif mcl {BEST_VARIANT})"
    )
    parser.add_argument("--arms-dir", default=None, help="where --ship-arms saves (default: the package's clone_arms/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    torch.set_num_threads(1)
    try:
        if args.ship_arms:
            text = ship_arms(args)
        elif args.dev_grid:
            text = dev_grid(args)
        else:
            text = ablation(args)
    except ExperimentError as error:
        print(f"clone_ablation: error: {error}", file=sys.stderr)
        return 2
    Path(args.output).mkdir(parents=True, exist_ok=True)
    (Path(args.output) / ("dev_grid.md" if args.dev_grid else "ablation.md")).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
