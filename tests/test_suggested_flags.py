"""Every `--flag` the package's messages, help texts and docstrings suggest exists in the command it is meant for.

A message that tells the user to pass a flag the command does not have points nowhere. Each string literal of
the package is cut at every command it names (`xling-align analyze`, `lm_eval`, `accelerate launch`,
`python -m xling_align.clone.pretrain`); a flag after such a name must be known to that command's parser, and a
flag before any name to the parser(s) of the commands that show the module's messages (`SHOWN_BY`).
"""

from __future__ import annotations

import argparse
import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("xling_align", "trainers", "lm_eval_tasks", "recipes")

ANY_COMMAND = "any xling-align command"
# module (path prefix) -> the commands whose output shows its strings; the first match wins
SHOWN_BY = [
    ("xling_align/commands/options.py", [ANY_COMMAND]),  # the conventions of every command
    ("xling_align/commands/analyze.py", ["analyze"]),
    ("xling_align/commands/data.py", ["data build"]),
    ("xling_align/commands/demo.py", ["demo"]),
    ("xling_align/commands/export_data.py", ["export-data"]),
    ("xling_align/evaluation/release_import.py", ["export-data"]),  # read only by `export-data --from-release`
    ("xling_align/commands/report.py", ["report"]),
    ("xling_align/commands/reproduce.py", ["reproduce"]),
    ("xling_align/pipeline/reproduction.py", ["reproduce"]),
    ("xling_align/pipeline/stage_manifest.py", ["reproduce"]),
    ("xling_align/commands/train.py", ["train"]),
    ("xling_align/commands/xling_eval.py", ["lm_eval"]),
    ("xling_align/cli.py", ["xling-align"]),
    ("xling_align/analysis/", ["analyze"]),
    ("xling_align/data/config.py", ["data build"]),  # DataBuildConfig's fields are data build's flags
    # the data module's readers are shared: their hints must hold for both commands that pass them on
    # unchanged (`train` rewrites them, see test_train_rewrites_the_data_module_hints)
    ("xling_align/data/", ["data build", "analyze"]),
    ("xling_align/clone/pretrain.py", ["clone.pretrain"]),
    ("xling_align/clone/", ["demo"]),
    ("xling_align/evaluation/lm_eval_", ["lm_eval"]),
    ("xling_align/evaluation/prefix_", ["lm_eval"]),
    ("xling_align/evaluation/adapters.py", ["lm_eval"]),
    ("lm_eval_tasks/generate", ["generator"]),
    ("lm_eval_tasks/clone/generate", ["generator"]),
    ("lm_eval_tasks/", ["lm_eval"]),
    ("xling_align/", ["train"]),  # training script, data, recipe parser, run directory, package paths
    ("trainers/", ["train"]),
    ("recipes/", ["train"]),
]
# command names as they appear in text -> parser key
MENTIONS = [
    (r"xling-align data build", "data build"),
    (r"xling-align (analyze|demo|export-data|report|reproduce|train)", None),  # key: the sub-command
    (r"-m xling_align (analyze|demo|export-data|report|reproduce|train)", None),
    (r"(?<![\w-])(lm_eval|xling-eval)(?![\w.])", "lm_eval"),
    (r"accelerate launch", "accelerate launch"),
    (r"python -m xling_align\.clone\.pretrain", "clone.pretrain"),
    (r"python -m xling_align\.lm_eval_tasks\.\w+", "generator"),
    (r"python -m xling_align\.package_paths", "package_paths"),
    (r"benchmarks/clone_ablation\.py", "clone_ablation"),
]
# doctest examples that define their own throw-away parser, and placeholders
NOT_FLAGS = {
    ("xling_align/commands/options.py", "--langs"),
    ("xling_align/pipeline/recipe_parser.py", "--steps"),
    ("xling_align/clone/evaluation.py", "--metadata"),
}  # (the last quotes lm-eval's own notice)
PLACEHOLDERS = {"--setting", "--key"}
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@cache
def option_strings(command: str) -> frozenset[str]:
    """The flags `command` accepts."""
    if command == ANY_COMMAND:
        return frozenset().union(
            *(
                option_strings(name)
                for name in ("train", "data build", "analyze", "demo", "export-data", "report", "reproduce")
            )
        )
    if command == "xling-align":
        return frozenset({"--help", "--version", "-h", "-V"})
    if command == "train":
        from xling_align.pipeline.training_script import make_parser

        return frozenset(make_parser()._option_string_actions) | {"--config"}  # TrlParser reads --config itself
    if command == "data build":
        from xling_align.commands import data

        return frozenset(_subparser(data.make_parser(), "build")._option_string_actions)
    if command == "reproduce":  # its own options, and the recipe's settings (passed on to the train stage)
        from xling_align.commands.reproduce import make_parser

        return frozenset(make_parser()._option_string_actions) | option_strings("train")
    if command in ("analyze", "demo", "export-data", "report"):
        from importlib import import_module

        module = import_module(f"xling_align.commands.{command.replace('-', '_')}")
        return frozenset(module.make_parser()._option_string_actions)
    if command == "lm_eval":
        from lm_eval._cli import HarnessCLI

        return frozenset(_subparser(HarnessCLI()._parser, "run")._option_string_actions)
    if command == "accelerate launch":
        from accelerate.commands.launch import launch_command_parser

        return frozenset(launch_command_parser()._option_string_actions)
    if command == "clone.pretrain":
        from xling_align.clone.pretrain import make_parser

        return frozenset(make_parser()._option_string_actions)
    if command == "generator":  # its own --check, and the lm_eval command lines of the READMEs it writes
        return frozenset({"--check"}) | option_strings("lm_eval")
    if command == "clone_ablation":
        import importlib.util

        spec = importlib.util.spec_from_file_location("clone_ablation", REPO / "benchmarks" / "clone_ablation.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return frozenset(module.make_parser()._option_string_actions)
    if command == "package_paths":
        return frozenset()
    raise KeyError(command)


def _strings(path: Path):
    """`(line, text)` of every string literal; an f-string is one text, `{}` where a value goes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings:
            yield node.lineno, node.value


def _mentions(text: str) -> list[tuple[int, str]]:
    found = []
    for pattern, key in MENTIONS:
        for match in re.finditer(pattern, text):
            found.append((match.end(), key or match.group(1)))
    return sorted(found)


def suggested_flags():
    """`(module, line, flag, commands)` for every flag in the package's string literals."""
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            module = path.relative_to(REPO).as_posix()
            default = next(commands for prefix, commands in SHOWN_BY if module.startswith(prefix))
            for line, text in _strings(path):
                mentions = _mentions(text)
                for match in FLAG.finditer(text):
                    flag = match.group()
                    if flag in PLACEHOLDERS or (module, flag) in NOT_FLAGS:
                        continue
                    before = [key for end, key in mentions if end <= match.start()]
                    yield module, line, flag, [before[-1]] if before else default


def test_the_scan_finds_the_flags_it_should():
    found = {(module, flag) for module, _, flag, _ in suggested_flags()}
    assert ("xling_align/data/readers.py", "--skip-invalid") in found  # a hint of the shared readers
    assert ("lm_eval_tasks/data_loader.py", "--num_fewshot") in found
    assert len(found) > 60


@pytest.mark.parametrize(
    "module,line,flag,commands", list(suggested_flags()), ids=lambda value: value if isinstance(value, str) else None
)
def test_every_suggested_flag_exists(module, line, flag, commands):
    missing = [command for command in commands if flag not in option_strings(command)]
    assert not missing, f"{module}:{line} suggests {flag}, which `{' / '.join(missing)}` does not have"


def documented_commands():
    """`(file, line, flag, command)` for every flag after a command name on a line of the docs and recipes."""
    files = [
        REPO / "README.md",
        REPO / "docs" / "ARCHITECTURE.md",
        *sorted((REPO / "lm_eval_tasks").rglob("README.md")),
        *sorted((REPO / "recipes").rglob("*.yaml")),
    ]
    for path in files:
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            mentions = _mentions(text)
            for match in FLAG.finditer(text):
                before = [key for end, key in mentions if end <= match.start()]
                if before and match.group() not in PLACEHOLDERS:
                    yield path.relative_to(REPO).as_posix(), number, match.group(), before[-1]


@pytest.mark.parametrize(
    "document,line,flag,command",
    list(documented_commands()),
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_documented_command_line_uses_flags_that_exist(document, line, flag, command):
    assert flag in option_strings(command), f"{document}:{line}: `{command}` has no {flag}"
