"""`xling-align demo`: the offline cloned-language testbed (v3), end to end, in a few minutes on a CPU.

A small model was pretrained on an English-like language L1 and its clone L2 (same constructions, own
words), then (v3) continued on text with label-word episodes so that it also learns in context. Bilingual
entities have their facts stated in both languages; held-out entities only in L1. The
demo scores, on the `xling_clone_*` lm-eval tasks:
- `base`: the pretrained model, no alignment;
- `control`: the positive control (PreAlign-style word alignment + code-switching in pretraining);
- `cif`, `mcl`, `afp`: the paper's ablation (CIF only, MCL only, both), trained from the base with
  AFPTrainer (`afp` live; the others from shipped checkpoints when the settings match, else live);
- the best variant on the dev split (v3: `cpt_align`, continued pretraining with word alignment and
  code-switching; see `xling_align/clone/README.md`).

It writes `results_clone_<arm>.json` (lm-eval's result files), `summary.json` and `summary.md` (read back
from those files; with each arm's retention of the base's L1 abilities next to its transfer), `accuracy.png`,
`retrieval_by_layer.png` and `retention.png` (forgetting against transfer).

    xling-align demo --output demo_out
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def make_parser() -> argparse.ArgumentParser:
    from xling_align.clone.alignment import BEST_VARIANT, AlignmentSettings

    defaults = AlignmentSettings()
    parser = argparse.ArgumentParser(
        prog="xling-align demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output", default="xling_demo", help="folder for results, summary and plots (default: xling_demo)"
    )
    parser.add_argument(
        "--arms",
        default=f"base,control,cif,mcl,afp,{BEST_VARIANT}",
        help="comma-separated arms to score (default: %(default)s); also: afp_mean, afp_mid, afp_entity, "
        "afp_layers, afp_words, cpt_align",
    )
    parser.add_argument(
        "--live",
        default=None,
        help="comma-separated alignment arms always trained live (default: afp); 'all' trains every one",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the alignment data and training (default: 0)")
    parser.add_argument(
        "--steps", type=int, default=None, help=f"optimizer steps per alignment run (default: {defaults.steps})"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"peak learning rate of the alignment runs (default: {defaults.learning_rate:g})",
    )
    parser.add_argument(
        "--layer",
        type=int,
        default=None,
        help="contrastive layer of the afp_mid variant (hidden_states index; default: the chosen one)",
    )
    parser.add_argument("--limit", type=int, default=None, help="score only this many documents per task (smoke tests)")
    parser.add_argument("--tasks", default=None, help="comma-separated clone tasks (default: all xling_clone_* tasks)")
    parser.add_argument(
        "--heldout-pairs", type=int, default=200, help="held-out sentence pairs for retrieval accuracy (default: 200)"
    )
    parser.add_argument("--checkpoint", default=None, help="base checkpoint folder (default: the shipped one)")
    parser.add_argument(
        "--control-checkpoint", default=None, help="control checkpoint folder (default: the shipped one)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default: 1; the model is tiny, so more threads mostly add contention)",
    )
    return parser


def check_writable(output: Path) -> None:
    """Create `output` and prove it is writable, or raise a clear error."""
    from xling_align.clone.experiment import ExperimentError

    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".xling_write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise ExperimentError(
            f"cannot write to the output folder {output} ({error.strerror or error}); "
            "pass --output with a folder you can write to."
        ) from None


def plan_from_args(args: argparse.Namespace):
    from xling_align.clone.alignment import ARMS, AlignmentSettings
    from xling_align.clone.experiment import ExperimentError, ExperimentPlan

    optimisation = AlignmentSettings()
    if args.steps is not None:
        optimisation.steps = args.steps
    if args.learning_rate is not None:
        optimisation.learning_rate = args.learning_rate
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if args.live is None:
        live = ("afp",)
    elif args.live.strip() == "all":
        live = tuple(ARMS)
    else:
        live = tuple(a.strip() for a in args.live.split(",") if a.strip())
        stray = [a for a in live if a not in arms or a not in ARMS]
        if stray:
            raise ExperimentError(
                f"--live names {stray}, which are not alignment arms among --arms {arms}; "
                f"name arms from {[a for a in arms if a in ARMS]} or 'all'."
            )
    return ExperimentPlan(
        arms=arms,
        live=live,
        base_dir=Path(args.checkpoint) if args.checkpoint else None,
        control_dir=Path(args.control_checkpoint) if args.control_checkpoint else None,
        optimisation=optimisation,
        middle_layer=args.layer,
        seed=args.seed,
        limit=args.limit,
        tasks=[t.strip() for t in args.tasks.split(",")] if args.tasks else None,
        heldout_pairs=args.heldout_pairs,
    )


def run_demo(args: argparse.Namespace) -> dict:
    """The whole pipeline; returns `{"summary", "seconds", "output"}`. Raises `ExperimentError` on bad input."""
    plan = plan_from_args(args)
    output = Path(args.output).expanduser().resolve()
    check_writable(output)

    # heavy imports after argument checks, so --help and bad input answer at once
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    from xling_align.clone.experiment import run_experiment
    from xling_align.clone.outputs import write_report

    # a ~1M-parameter model gains nothing from intra-op threads; on a busy machine they cost up to 10x
    torch.set_num_threads(max(1, args.threads))
    datasets.disable_progress_bars()  # the trainer's dataset preparation would print a dozen bars per run
    datasets.logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" bars, once per checkpoint
    started = time.perf_counter()
    arms = run_experiment(plan, output)
    seconds = time.perf_counter() - started
    summary, table = write_report(arms, output, plan, seconds)
    print()
    print(table)
    print(
        f"\nwrote summary.json, summary.md, accuracy.png, retrieval_by_layer.png, retention.png and "
        f"results_clone_*.json to "
        f"{output} in {seconds:.0f} s"
    )
    return {"summary": summary, "seconds": seconds, "output": output}


def main(argv: list[str] | None = None) -> int:
    from xling_align.errors import XlingAlignError

    args = make_parser().parse_args(argv)
    try:
        run_demo(args)
    except XlingAlignError as error:
        print(f"xling-align demo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
