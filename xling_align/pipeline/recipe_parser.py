"""A YAML recipe plus command-line overrides -> dataclasses, with one clear error per mistake: `RecipeParser`.

TRL's `TrlParser` reads `--config recipe.yaml` and `--setting value` overrides into dataclasses (for
`xling-align train`: `ScriptArguments`, `AFPConfig`, `ModelConfig`). On a mistake, argparse prints its usage
text (about 160 lines for the training settings) and exits. `RecipeParser.parse(argv)` raises one
`RecipeError` instead, which says where the setting was written (the recipe or the command line), which
setting it is, and what is wrong with it:

- a value of the wrong type: `recipe 'r.yaml': max_steps: '40x' is not a valid integer`; also a YAML number
  of the wrong kind (`max_steps: 2.5`), which argparse would pass through unchecked;
- an unknown setting, with the closest known name;
- a recipe that is missing or not YAML, or that sets one setting twice (YAML would keep the last silently);
  a value a dataclass refuses in its `__post_init__`.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Settings:
    ...     steps: int = 1
    >>> RecipeParser([Settings]).parse(["--steps", "3"])
    (Settings(steps=3),)
    >>> RecipeParser([Settings]).parse(["--steps", "3x"])
    Traceback (most recent call last):
    ...
    xling_align.pipeline.recipe_parser.RecipeError: command line: steps: '3x' is not a valid integer
"""

from __future__ import annotations

import difflib
import os
import re

import yaml
from trl import TrlParser

from xling_align.errors import XlingAlignError

_TYPE_NAMES = {"int": "integer", "float": "number", "string_to_bool": "boolean (true or false)"}


class RecipeError(XlingAlignError, ValueError):
    """A recipe or command-line setting that cannot work; the message names it and the fix."""


class _BadValue(RecipeError):
    """A value the parser cannot use for setting `key` (`parse` adds where the value was written)."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key


class RecipeParser(TrlParser):
    """`TrlParser` whose mistakes raise one `RecipeError` instead of printing the usage text and exiting.

    Args:
        dataclass_types: the dataclasses whose fields are the settings.
        settings_hint: where the settings are documented, for the unknown-setting message (default: the
            dataclass names and `<prog> --help`).
        **kwargs: passed to `TrlParser` (`prog`, ...); prefix abbreviations are off unless asked for, so a
            misspelt flag is reported rather than silently taken for a longer one.
    """

    def __init__(self, dataclass_types, settings_hint: str | None = None, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(dataclass_types, **kwargs)
        names = ", ".join(dataclass.__name__ for dataclass in self.dataclass_types)
        self.settings_hint = settings_hint or f"the settings are the fields of {names}; `{self.prog} --help` lists them"
        self.recipe_keys: set[str] = set()  # settings whose defaults the recipe set (for error messages)

    def parse(self, argv: list[str]) -> tuple:
        """The dataclasses of `--config RECIPE.yaml` (optional) plus the overrides in `argv`."""
        recipe = _recipe_path(argv)
        if recipe is not None:
            _refuse_repeated_keys(recipe)
        try:
            *parsed, from_recipe, from_command_line = self.parse_args_and_config(
                args=argv, return_remaining_strings=True, separate_remaining_strings=True
            )
        except _BadValue as error:  # say where the value was written
            in_recipe = error.key in self.recipe_keys and not _on_command_line(error.key, argv)
            raise RecipeError(f"{f'recipe {recipe!r}' if in_recipe else 'command line'}: {error}") from None
        except RecipeError:  # a dataclass's own check: already names the setting
            raise
        except yaml.YAMLError as error:
            raise RecipeError(f"recipe {recipe!r} is not valid YAML: {error}") from error
        except ValueError as error:  # a recipe that is no mapping, or a dataclass's __post_init__
            raise RecipeError(str(error)) from error
        if from_recipe:  # TrlParser returns unknown recipe keys as ["--key", "value", ...]
            raise self._unknown_setting(from_recipe[0].lstrip("-"), f"recipe {recipe!r}")
        flags = [item for item in from_command_line if item.startswith("-")]
        if flags:
            raise self._unknown_setting(flags[0].lstrip("-"), "command line")
        if from_command_line:
            raise RecipeError(f"command line: unexpected value(s) {from_command_line}; every value follows a --setting")
        return tuple(parsed)

    def set_defaults_with_config(self, **kwargs) -> list[str]:
        self.recipe_keys |= set(kwargs)
        for action in self._actions:
            if action.dest in kwargs and action.type in (int, float):
                value = kwargs[action.dest]
                # a list-valued setting (nargs="+", e.g. contrastive_layer: [1, 2, 3]): each item is checked
                for item in value if isinstance(value, list) and action.nargs == "+" else [value]:
                    _check_number(action.dest, item, action.type)
        return super().set_defaults_with_config(**kwargs)

    def error(self, message: str):
        about_one = re.match(r"argument --([^/:\s]+)\S*: (.+)$", message)  # "argument --a/--b: what is wrong"
        if about_one is None:
            raise RecipeError(message)
        key, problem = about_one.groups()
        bad_value = re.match(r"invalid (\w+) value: (.+)$", problem)
        if bad_value:
            kind, value = bad_value.groups()
            problem = f"{value} is not a valid {_TYPE_NAMES.get(kind, kind)}"
        raise _BadValue(key, problem)

    def _unknown_setting(self, key: str, where: str) -> RecipeError:
        known = sorted(action.dest for action in self._actions if action.dest != "help")
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return RecipeError(f"{where}: unknown setting {key!r}; {hint}{self.settings_hint}")


def _check_number(key: str, value, kind: type) -> None:
    """Refuse a recipe value that is not a number of `kind` (YAML typed it already; argparse checks only strings)."""
    if value is None or isinstance(value, str):
        return  # None: unset; strings are converted (and checked) by the parser
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not whole):
        raise _BadValue(key, f"{value!r} is not a valid {_TYPE_NAMES[kind.__name__]}")


def _recipe_path(argv: list[str]) -> str | None:
    if "--config" not in argv:
        return None
    position = argv.index("--config")
    if position + 1 >= len(argv):
        raise RecipeError("--config needs the path of a YAML recipe, e.g. --config recipes/tiny.yaml")
    path = argv[position + 1]
    if not os.path.isfile(path):
        raise RecipeError(f"--config {path!r}: no such file (relative paths start at {os.getcwd()})")
    return path


def _refuse_repeated_keys(recipe: str) -> None:
    """A key written twice in one mapping: PyYAML keeps the last value without a word, so an edit may not count."""
    try:
        with open(recipe, encoding="utf-8") as stream:
            root = yaml.compose(stream)
    except (yaml.YAMLError, UnicodeDecodeError):
        return  # reported with the parse itself
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        if not isinstance(node, yaml.MappingNode):
            continue
        first_line: dict[str, int] = {}
        for key, value in node.value:
            pending.append(value)
            if not isinstance(key, yaml.ScalarNode):
                continue
            if key.value in first_line:
                raise RecipeError(
                    f"recipe {recipe!r}: {key.value!r} is set twice (lines {first_line[key.value]} and "
                    f"{key.start_mark.line + 1}); YAML would silently keep the second. Keep one."
                )
            first_line[key.value] = key.start_mark.line + 1


def _on_command_line(key: str, argv: list[str]) -> bool:
    flags = {f"--{key}", f"--{key.replace('_', '-')}"}
    return any(item.split("=")[0] in flags for item in argv)
