"""`xling-align data build`: AFP training rows from Bactrian-X, a parallel corpus or an instruction set.

    xling-align data build --source bactrian-x --input-dir DIR --languages en zh [--mode bilingual|pivot]
        [--cross-probability 0.5] [--repeat 3] [--seed 0] [--translation-file FILE] [--skip-invalid]
        [--replay-file TEXT.txt --replay-share 0.25 [--replay-lang en]] --output OUT.jsonl
    xling-align data build --source parallel --input FILE.tsv --languages en de [--seed 0] --output OUT.jsonl

The build flags are the fields of `xling_align.data.DataBuildConfig` (help included; `--input-dir` and
`--input_dir` both work), so a new field is a new flag; `BuildOutput` adds where the rows go.
`--source bactrian-x` without `--input-dir` streams `MBZUAI/Bactrian-X` from the hub. An output path ending
in `.jsonl` gets JSON lines; any other path a `datasets.save_to_disk` folder. Statistics per direction and
kind are printed at the end. `--replay-file` interleaves documents of plain text (one per line) as replay
rows (`replay_text` column; `xling_align.data.replay_rows`), `--replay-share` of all rows, for AFPTrainer's
replay term. Exit status: 0 done, 1 bad input data, 2 bad options.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from transformers import HfArgumentParser

from xling_align.commands.options import add_deprecated_alias
from xling_align.data import DataBuildConfig, DataFormatError, RowBuilder, save_rows_to_disk, write_jsonl, write_pairs
from xling_align.data.replay_rows import ReplayInterleaver, read_replay_file
from xling_align.languages import UnknownLanguageError

DEFAULT_HELDOUT_SIZE = 200  # items held out when --heldout-output is given without --heldout-size


@dataclass
class BuildOutput:
    """Where `xling-align data build` writes the rows (options of the command, not of the rows)."""

    output: str = field(metadata={"help": "OUT.jsonl, or a folder for datasets.save_to_disk."})
    format: Literal["jsonl", "disk"] | None = field(
        default=None, metadata={"help": "Output format (default: from the --output suffix)."}
    )
    heldout_output: str | None = field(
        default=None,
        metadata={"help": "Write the held-out translation pairs here (.tsv for one language pair, or .jsonl)."},
    )
    pretraining_tokens: int | None = field(
        default=None, metadata={"help": "Print the built tokens as a fraction of this many pre-training tokens."}
    )
    replay_file: str | None = field(
        default=None,
        metadata={
            "help": "Plain text (one document per line) to add as replay rows (replay_text "
            "column), trained on all tokens by AFPTrainer's replay term. JSONL output only."
        },
    )
    replay_share: float = field(
        default=0.25, metadata={"help": "Share of all rows that are replay rows (0 < share < 1)."}
    )
    replay_lang: str = field(default="", metadata={"help": "Language code written as source_lang of replay rows."})


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xling-align data", description=__doc__, formatter_class=_HelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True, parser_class=HfArgumentParser)
    build = commands.add_parser(
        "build",
        help="build training rows",
        dataclass_types=(DataBuildConfig, BuildOutput),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.set_defaults(heldout_size=None)  # unset: DEFAULT_HELDOUT_SIZE with --heldout-output, else 0
    add_deprecated_alias(build, "--pairs-only", "--no-translation-prompts", dest="translation_prompts", const=False)
    return parser


def _from_namespace(dataclass_type, args: argparse.Namespace):
    return dataclass_type(**{item.name: getattr(args, item.name) for item in fields(dataclass_type) if item.init})


def _check_output_options(output: BuildOutput, config: DataBuildConfig) -> None:
    if config.heldout_size and not output.heldout_output:
        raise ValueError("--heldout-size needs --heldout-output (where to write the held-out pairs)")
    if output.heldout_output:
        name = output.heldout_output.lower()
        if not name.endswith((".tsv", ".jsonl")):
            raise ValueError(f"--heldout-output {output.heldout_output}: use a .tsv (one language pair) or .jsonl file")
        if name.endswith(".tsv") and (
            len(config.languages) > 2 or (config.source != "parallel" and config.translation_file)
        ):
            raise ValueError(f"--heldout-output {output.heldout_output}: several language pairs need a .jsonl file")
        if Path(output.output).resolve() == Path(output.heldout_output).resolve():
            raise ValueError("--output and --heldout-output must be different files")
    if output.replay_file and not output.output.lower().endswith(".jsonl"):
        raise ValueError(
            f"--replay-file adds a replay_text column, written to JSON lines only: give an --output "
            f"ending in .jsonl (got {output.output})"
        )
    if output.replay_file and not 0 < output.replay_share < 1:
        raise ValueError(f"--replay-share {output.replay_share}: give the share of replay rows, a number in (0, 1)")
    if output.pretraining_tokens is not None and output.pretraining_tokens <= 0:
        raise ValueError("--pretraining-tokens must be a positive number of tokens")


def _refuse_nothing(rows, builder: RowBuilder, config: DataBuildConfig):
    """Pass `rows` on; if there were none, raise (the writer then leaves the output untouched)."""
    built = 0
    for row in rows:
        built += 1
        yield row
    if built == 0 and builder.heldout:  # everything went to the held-out pairs: an empty training file is no use
        raise ValueError(
            f"every record was held out ({len(builder.heldout)} held-out pairs, --heldout-size "
            f"{config.heldout_size}), so no training row is left and nothing was written. Give a --heldout-size "
            f"below {len(builder.heldout)} (the default with --heldout-output is {DEFAULT_HELDOUT_SIZE})."
        )
    if built == 0:
        stats = builder.stats
        read = ", ".join(f"{lang} {n}" for lang, n in sorted(stats.items_read.items())) or "none"
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.skipped.items()) if n) or "nothing"
        source = config.input or config.input_dir or f"{config.source} from the hub"
        raise ValueError(
            f"no rows were built from {source} for languages {' '.join(config.languages)} (items read: {read}; "
            f"skipped: {skipped}), so nothing was written. Check that the input holds records (not only a header "
            "row) in the languages asked for."
        )


def build(args: argparse.Namespace) -> int:
    """Build the rows the parsed options describe and write them (and the held-out pairs)."""
    if args.heldout_size is None:
        args.heldout_size = DEFAULT_HELDOUT_SIZE if args.heldout_output else 0
    try:
        config = _from_namespace(DataBuildConfig, args)
        output = _from_namespace(BuildOutput, args)
        _check_output_options(output, config)
    except (ValueError, UnknownLanguageError) as error:
        print(f"xling-align data build: error: {error}", file=sys.stderr)
        return 2
    output_format = output.format or ("jsonl" if output.output.lower().endswith(".jsonl") else "disk")
    try:
        builder = RowBuilder(config)
        rows = _refuse_nothing(builder.rows(), builder, config)
        replay = None
        if output.replay_file:
            replay = ReplayInterleaver(
                read_replay_file(output.replay_file), output.replay_share, config.seed, output.replay_lang
            )
            rows = replay.rows(rows)
        count = write_jsonl(rows, output.output) if output_format == "jsonl" else save_rows_to_disk(rows, output.output)
        if output.heldout_output:
            write_pairs(builder.heldout, output.heldout_output)
    except (DataFormatError, FileNotFoundError, IsADirectoryError, ValueError) as error:  # the input: exit 2
        print(f"xling-align data build: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the machine or the network (hub connection, disk full): exit 1
        print(f"xling-align data build: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {count} rows to {output.output} ({output_format})")
    if replay is not None:
        print(f"of which {replay.added} replay rows from {output.replay_file} ({replay.added / max(count, 1):.1%})")
    if output.heldout_output:
        print(f"wrote {len(builder.heldout)} held-out pairs to {output.heldout_output}")
    print(builder.stats.format(output.pretraining_tokens))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return build(args)  # `build` is the only action (argparse requires one)


if __name__ == "__main__":
    raise SystemExit(main())
