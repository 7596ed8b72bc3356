"""`xling-align report`: Markdown tables (and a bar chart) from lm-eval result files.

One table per benchmark and setting (in-language demonstrations, `_endemo`: English demonstrations, or the
paper's protocol: `xling_afp_*` with the English prompt, `xling_afp_*_native` with the in-language prompt),
one row per language, one column per run (accuracy x 100); then the mean over languages, the mean over
the non-English ones, and the English-minus-rest gap (how much better English is than the rest: AFP
should shrink it). With two or more runs a last column gives the difference last minus first
(e.g. after alignment minus before).

Both the `xling_*` tasks and lm-eval's built-in `xnli_de`, `paws_de`, `xcopa_et`, `xstorycloze_ar`,
`xwinograd_fr`, `belebele_deu_Latn` are recognised.

Only like is compared with like (`check_comparable`): results with different numbers of demonstrations
(lm-eval's `n-shot`) go into separate tables (`pawsx — in-language demonstrations, 5-shot`) and are never
subtracted; runs that scored different numbers of documents of the same task (another `lm_eval --limit`) are
refused (exit status 2), since their scores are not comparable; a table scored on an `lm_eval --limit` subset
says so; averages
are taken over the languages every run has, and a table says which ones it left out.

Example:
    xling-align report before/results.json after/results.json --labels base,afp --plot gap.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xling_align.evaluation.score_tables import build_tables, check_comparable, load_scores, plot


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xling-align report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        help="lm-eval results JSON files (or lm_eval --output_path folders), e.g. before then after",
    )
    parser.add_argument("--labels", help="comma-separated column names, one per file (default: file names)")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="also draw a bar chart to this PNG")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    labels = (
        args.labels.split(",") if args.labels else [path.stem if path.is_file() else path.name for path in args.results]
    )
    if len(labels) != len(args.results):
        print(
            f"xling-align report: --labels has {len(labels)} names for {len(args.results)} files; give one per file.",
            file=sys.stderr,
        )
        return 2
    if len(set(labels)) != len(labels):
        labels = [f"{index + 1}:{label}" for index, label in enumerate(labels)]
    try:
        runs = [load_scores(path) for path in args.results]
        notes = check_comparable(runs, labels)
    except (FileNotFoundError, ValueError) as err:
        print(f"xling-align report: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"xling-align report: note: {note}", file=sys.stderr)
    print(build_tables(runs, labels))
    if args.plot:
        plot(runs, labels, args.plot)
        print(f"bar chart written to {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
