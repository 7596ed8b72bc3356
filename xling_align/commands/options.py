"""Command-line conventions shared by the sub-commands, so that one concept has one spelling everywhere.

- Where results go: `--output` (`train` also accepts it for TRL's `--output_dir`).
- A list: values separated by spaces, `--languages en de zh` (as `train`'s and `data build`'s flags,
  which come from dataclass fields, take them).
- A spelling that changed keeps working, with one notice on stderr: `add_deprecated_alias`, and the
  comma-separated lists of earlier releases (`--languages en,de`) through `ListOption`.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="demo")
    >>> _ = parser.add_argument("--languages", action=ListOption, nargs="+")
    >>> add_deprecated_alias(parser, "--langs", "--languages", dest="languages", action=ListOption, nargs="+")
    >>> parser.parse_args(["--languages", "en", "de"]).languages
    ['en', 'de']
"""

from __future__ import annotations

import argparse
import sys


def _warn(parser: argparse.ArgumentParser, message: str) -> None:
    print(f"{parser.prog}: warning: {message}", file=sys.stderr)


class ListOption(argparse.Action):
    """A list of values separated by spaces; an item with commas (the old spelling) is split, with a notice."""

    def __call__(self, parser, namespace, values, option_string=None):
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if any("," in value for value in values):
            split = [item.strip() for value in values for item in value.split(",") if item.strip()]
            _warn(
                parser,
                f"comma-separated lists are deprecated; separate the values with spaces: "
                f"{option_string} {' '.join(split)}",
            )
            values = split
        setattr(namespace, self.dest, values)


def add_deprecated_alias(
    parser: argparse.ArgumentParser,
    old: str,
    new: str,
    *,
    dest: str,
    action: type[argparse.Action] | None = None,
    **kwargs,
) -> None:
    """Accept `old` as a hidden synonym of `new` (same `dest`), printing a deprecation notice when used.

    Args:
        parser: the parser (or argument group) that has `new`.
        old: the old flag, e.g. `--out`.
        new: the flag to use instead, e.g. `--output` (named in the notice).
        dest: the destination both flags write to.
        action: the action `new` uses, if any (e.g. `ListOption`); `const=` stores a constant instead.
        **kwargs: as for `add_argument` (`nargs`, `type`, `const`).
    """
    store = action or (argparse._StoreConstAction if "const" in kwargs else argparse._StoreAction)

    class Deprecated(store):
        def __call__(self, parser, namespace, values, option_string=None):
            _warn(parser, f"{option_string} is deprecated; use {new}")
            super().__call__(parser, namespace, values, option_string)

    parser.add_argument(old, dest=dest, action=Deprecated, help=argparse.SUPPRESS, **kwargs)
