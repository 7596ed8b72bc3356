"""`xling-align reproduce`: the AFP paper's experiment in one command, resumable stage by stage.

    xling-align reproduce --recipe xglm-564m --output runs/paper --data_input /data/bactrian-x
    xling-align reproduce --recipe tiny --output runs/check --limit 4 --benchmark_data_dir DATA

data build -> train (the recipe) -> evaluate the base and the aligned model on the paper's protocol
(`xling_afp_*` tasks, 0 and 5 shots, English and Chinese by default) -> `report.md` and `report.png`.
A second call with the same options skips every finished stage (`DIR/stages/*.json` record what each
stage was run with); after a change only the stages it affects run again; `--redo STAGE` forces one.

Options other than those listed below are settings of the recipe (`xling-align train --help`), e.g.
`--data_input DIR` or `--max_steps 10`. Bad options, a recipe that cannot be used, a model that cannot be
loaded here and missing benchmark data end with one `error:` line and exit status 2, before anything runs.
"""

from __future__ import annotations

import argparse
import sys


def make_parser():
    from transformers import HfArgumentParser

    from xling_align.pipeline.reproduction import ReproduceOptions

    return HfArgumentParser(
        ReproduceOptions,
        prog="xling-align reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )


def main(argv: list[str] | None = None) -> int:
    from xling_align.errors import XlingAlignError
    from xling_align.pipeline.reproduction import reproduce

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options, recipe_overrides = make_parser().parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        report = reproduce(options, recipe_overrides)
    except XlingAlignError as error:
        print(f"xling-align reproduce: error: {error}", file=sys.stderr)
        return 2
    print(f"xling-align reproduce: report written to {report} (plot: {report.with_suffix('.png')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
