"""The `xling-align` command: a thin dispatcher to one module per sub-command.

Each sub-command lives in `xling_align/commands/<name>.py` and exposes `main(argv) -> int`; its one-line
description is in `COMMANDS` below. Modules are imported only when their command runs, so
`xling-align --help` is fast.
"""

from __future__ import annotations

import sys
from importlib import import_module

# command name -> (module under xling_align.commands, one-line description), in the order shown by --help
COMMANDS = {
    "data": ("data", "build AFP training rows from Bactrian-X, parallel corpora or instruction sets"),
    "train": ("train", "align a model from a YAML recipe (AFPTrainer)"),
    "analyze": ("analyze", "measure cross-lingual alignment of a model layer by layer"),
    "report": ("report", "tables and plots from lm-eval result files"),
    "export-data": ("export_data", "export the benchmark data once into the offline XLING_DATA_DIR layout"),
    "demo": ("demo", "the offline cloned-language testbed: align, evaluate, analyse"),
    "reproduce": ("reproduce", "the paper's experiment in one command: data, train, evaluate (paper protocol), report"),
}


def _usage() -> str:
    lines = ["usage: xling-align <command> [options]", "", "commands:"]
    for name, (_, description) in COMMANDS.items():
        lines.append(f"  {name:<12} {description}")
    lines += ["", "Run `xling-align <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from xling_align import __version__

        print(f"xling-align {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"xling-align: unknown command {name!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    module = import_module(f"xling_align.commands.{COMMANDS[name][0]}")
    result = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
