"""`xling-align export-data`: copy the benchmark data from the hub once into the offline layout.

Writes `<output>/<benchmark>/<lang>/<split>.jsonl` (the hub's columns and split names) for the splits the
`xling_*` tasks read: the scored split and the demonstration split of every language, and for the
`xling_afp_*` tasks (the paper's protocol) the test split and the dev split their demonstrations come from.
Afterwards the tasks run offline with `XLING_DATA_DIR=<output>` or `lm_eval ... --metadata '{"data_dir": "<output>"}'`.

`xling-align export-data --from-release DIR` reads the benchmarks' own release files instead of the hub (PAWS-X's
`x-final/<lang>/*.tsv`, XCOPA's `data/<lang>/*.jsonl`, XNLI's `xnli.{dev,test}.tsv`, XStoryCloze's TSV files;
`xling_align.evaluation.release_import` says which) and writes the same layout, with the hub's fields and types.

Example:
    xling-align export-data --output ~/xling-data --benchmarks pawsx xnli --languages en de zh
    xling-align export-data --from-release ~/Downloads/x-final --output ~/xling-data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xling_align.commands.options import ListOption, add_deprecated_alias
from xling_align.errors import XlingAlignError
from xling_align.evaluation.benchmark_table import BENCHMARKS, HubSplit, benchmark
from xling_align.evaluation.paper_protocol import PROTOCOLS
from xling_align.evaluation.release_import import import_release, write_jsonl
from xling_align.lm_eval_tasks.data_loader import DATA_DIR_ENV, load_hub_split, local_path


def planned_files(benchmarks: list[str], languages: list[str] | None) -> list[tuple[str, str, HubSplit]]:
    """`(benchmark, lang, hub split)` for every file to write; `languages=None` means all of them."""
    planned = []
    for name in benchmarks:
        table = benchmark(name)
        wanted = table.languages if languages is None else [lang for lang in languages if lang in table.languages]
        for lang in wanted:
            sources = [table.scored(lang), table.demonstrations(lang)]
            if name in PROTOCOLS:
                sources += PROTOCOLS[name].splits_read(lang)
            planned += [(name, lang, source) for source in dict.fromkeys(sources) if source is not None]
    if languages is not None:
        all_known = {lang for name in benchmarks for lang in benchmark(name).languages}
        unknown = [lang for lang in languages if lang not in all_known]
        if unknown:
            raise ValueError(
                f"language(s) {', '.join(unknown)} are in none of {', '.join(benchmarks)}; the codes are the "
                "benchmarks' own (e.g. `de` for xnli, `deu_Latn` for belebele): "
                "see lm_eval_tasks/<benchmark>/README.md."
            )
    return planned


def export(out: Path, benchmarks: list[str], languages: list[str] | None, overwrite: bool = False) -> list[Path]:
    """Download and write every planned split; returns the paths written (existing ones are kept)."""
    written = []
    for name, lang, source in planned_files(benchmarks, languages):
        path = local_path(out, name, lang, source.split)
        if path.exists() and not overwrite:
            print(f"kept {path} (exists; --overwrite to replace)", file=sys.stderr)
            continue
        dataset = load_hub_split(name, source)
        write_jsonl(path, dataset)
        written.append(path)
        print(f"wrote {path} ({len(dataset)} rows from {source.path} {source.name} {source.split})", file=sys.stderr)
    return written


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xling-align export-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, help=f"the data folder (later: ${DATA_DIR_ENV}); required")
    add_deprecated_alias(parser, "--out", "--output", dest="output", type=Path)
    parser.add_argument(
        "--benchmarks",
        nargs="+",
        action=ListOption,
        default=list(BENCHMARKS),
        metavar="BENCHMARK",
        help="benchmarks, separated by spaces (default: all: %(default)s)",
    )
    parser.add_argument(
        "--languages",
        nargs="+",
        action=ListOption,
        metavar="LANGUAGE",
        help="language codes, separated by spaces (default: every language)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    parser.add_argument(
        "--from-release",
        type=Path,
        metavar="DIR",
        help="read the benchmarks' release files under DIR (no hub): PAWS-X x-final/<lang>/*.tsv, "
        "XCOPA data/<lang>/*.jsonl, XNLI xnli.{dev,test}.tsv, XStoryCloze *.tsv",
    )
    parser.add_argument(
        "--dev-as-demonstrations",
        action="store_true",
        help="with --from-release: where the release has no demonstration split (PAWS-X without its "
        "training files), write the dev split under that name too, for few-shot runs",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.output is None:  # not `required=True`: the old spelling --out may give it
        parser.error("the following arguments are required: --output")
    if args.dev_as_demonstrations and args.from_release is None:
        parser.error("--dev-as-demonstrations goes with --from-release (the hub has every demonstration split)")
    try:
        if args.from_release is not None:
            written = import_release(
                args.from_release,
                args.output,
                args.benchmarks,
                args.languages,
                args.overwrite,
                report=lambda line: print(line, file=sys.stderr),
                dev_as_demonstrations=args.dev_as_demonstrations,
            )
        else:
            written = export(args.output, args.benchmarks, args.languages, args.overwrite)
    except (XlingAlignError, ValueError) as err:
        print(f"xling-align export-data: {err}", file=sys.stderr)
        return 2
    print(f"{len(written)} file(s) written under {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
