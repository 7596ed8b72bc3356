"""The package's layout keeps its promises: library code never imports a command, every folder says what lives in
it, every error a user can cause shares one base, and the old module names forward to the new ones."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from xling_align import moved_modules
from xling_align.errors import XlingAlignError

REPO = Path(__file__).resolve().parents[1]
LIBRARY_FOLDERS = ("xling_align", "trainers", "lm_eval_tasks")
# the command line: these may import commands, nothing else may
COMMAND_SIDE = ("xling_align/commands/", "xling_align/cli.py", "xling_align/__main__.py")


def _library_files():
    for folder in LIBRARY_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if not relative.startswith(COMMAND_SIDE) and "/resources/" not in relative:
                yield relative, path


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_library_module_imports_a_command():
    offenders = {
        relative: sorted(name for name in _imported_modules(path) if name.startswith("xling_align.commands"))
        for relative, path in _library_files()
    }
    assert {relative: names for relative, names in offenders.items() if names} == {}


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from xling_align.commands.report import main\n")
    assert "xling_align.commands.report" in _imported_modules(module)


@pytest.mark.parametrize(
    "folder",
    [
        "xling_align",
        "xling_align/alignment",
        "xling_align/evaluation",
        "xling_align/pipeline",
        "xling_align/data",
        "xling_align/analysis",
        "xling_align/clone",
        "xling_align/commands",
        "trainers",
        "lm_eval_tasks",
    ],
)
def test_every_folder_says_what_lives_in_it(folder):
    docstring = ast.get_docstring(ast.parse((REPO / folder / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, f"{folder}/__init__.py has no docstring"


def _error_classes():
    """Every exception class the package defines, as (module file, class name)."""
    for relative, path in _library_files():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception", "Language")):
                yield relative, node.name


# exceptions the package raises and catches itself: never reach a user
INTERNAL = {("xling_align/evaluation/prefix_scoring.py", "CachedScoringUnsupported")}


def test_every_user_error_derives_from_xling_align_error():
    checked = 0
    for relative, name in _error_classes():
        module_name = relative[:-3].replace("/", ".")
        if not module_name.startswith("xling_align"):
            module_name = f"xling_align.{module_name}"  # trainers/, lm_eval_tasks/ are sub-packages when installed
        cls = getattr(importlib.import_module(module_name), name)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)) or (relative, name) in INTERNAL:
            continue
        assert issubclass(cls, XlingAlignError), f"{relative}: {name} does not derive from XlingAlignError"
        checked += 1
    assert checked >= 15


def test_every_old_module_name_warns_once_with_the_new_name():
    """In a fresh interpreter (where nothing imported the old names yet): each import warns, naming the new home."""
    code = (
        "import json, warnings\nfrom xling_align import moved_modules\nseen = {}\n"
        "for old in sorted(moved_modules.MOVED):\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        warnings.simplefilter('always')\n"
        "        __import__(old)\n"
        "    seen[old] = [str(w.message) for w in caught if w.category is FutureWarning]\n"
        "print(json.dumps(seen))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert {
        old: messages
        for old, messages in seen.items()
        if len(messages) != 1 or f"moved to {moved_modules.MOVED[old]}" not in messages[0]
    } == {}


@pytest.mark.parametrize("old", sorted(moved_modules.MOVED))
def test_an_old_module_name_forwards_to_the_new_module(old):
    new = moved_modules.MOVED[old]
    target = importlib.import_module(new)
    assert not (REPO / (old.replace(".", "/") + ".py")).exists(), f"{old} exists twice"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        stand_in = importlib.import_module(old)
    public = [name for name in dir(target) if not name.startswith("_")]
    assert public and all(getattr(stand_in, name) is getattr(target, name) for name in public)


def test_an_unknown_old_name_still_fails():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("xling_align.no_such_module")


def test_the_architecture_names_every_module():
    """docs/ARCHITECTURE.md is the map a newcomer reads first: a module it does not name is a module they won't find."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    unnamed = [relative for relative, path in _library_files() if path.name != "__init__.py" and path.name not in text]
    unnamed += [relative for relative in COMMAND_SIDE if relative.endswith(".py") and Path(relative).name not in text]
    commands = sorted((REPO / "xling_align" / "commands").glob("*.py"))
    unnamed += [path.name for path in commands if path.name != "__init__.py" and path.name not in text]
    assert unnamed == []
