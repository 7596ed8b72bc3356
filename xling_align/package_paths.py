"""Resolve `pkg://` paths: files shipped inside an installed package, found from any working directory.

A recipe must find the sample data that ships inside the wheel (`xling_align/resources/tiny/`) whether it is
run from the repository root, from a temporary directory or from a CI job, and the recipes themselves ship
inside the package (`xling_align.recipes`, the repository's `recipes/` folder). `pkg://<package>/<path inside
it>` names such a file; it is resolved with `importlib.resources`, through the deepest sub-package on the path
(`pkg://xling_align/recipes/tiny.yaml` is `tiny.yaml` of `xling_align.recipes`), so it works for source
checkouts, editable installs and wheels alike. `resolve_recipe` also accepts a shipped recipe's bare name.

    python -m xling_align.package_paths pkg://xling_align/recipes/accelerate/ddp.yaml   # prints the file's path

Example:
    >>> from xling_align.package_paths import resolve_path, resolve_recipe, shipped_recipes
    >>> resolve_path("pkg://xling_align/resources/tiny/train.jsonl").endswith("train.jsonl")
    True
    >>> resolve_path("data/train.jsonl")  # ordinary paths are returned unchanged
    'data/train.jsonl'
    >>> "tiny" in shipped_recipes(), resolve_recipe("tiny").endswith("tiny.yaml")
    (True, True)
"""

from __future__ import annotations

import os
from importlib import resources

PACKAGE_SCHEME = "pkg://"


def _package_root(package: str, parts: list[str]):
    """`(files of the deepest importable package among package/parts[:i], the remaining parts)`."""
    from importlib.util import find_spec

    for depth in range(len(parts), -1, -1):
        if not all(part.isidentifier() for part in parts[:depth]):
            continue
        name = ".".join([package, *parts[:depth]])
        try:
            spec = find_spec(name)
        except ModuleNotFoundError:
            spec = None
        # a regular package (with __init__.py): a namespace package's files would be a MultiplexedPath
        if spec is not None and spec.origin is not None and spec.submodule_search_locations is not None:
            root = resources.files(name)
            target = _join(root, parts[depth:])
            if target.is_file() or target.is_dir():
                return root, parts[depth:]
    return resources.files(package), parts


def _join(root, parts: list[str]):
    return root.joinpath(*parts) if parts else root


def resolve_path(path: str | None) -> str | None:
    """Turn `pkg://package/inner/path` into a file-system path; return other paths (and None) unchanged.

    Args:
        path: a `pkg://` path, an ordinary path, or None.

    Raises:
        FileNotFoundError: the package cannot be imported or holds no such file; the message names both.
    """
    if path is None or not str(path).startswith(PACKAGE_SCHEME):
        return path
    package, _, inner = str(path)[len(PACKAGE_SCHEME) :].partition("/")
    parts = [part for part in inner.split("/") if part]
    try:
        root, rest = _package_root(package, parts)
    except ModuleNotFoundError as error:
        raise FileNotFoundError(
            f"{path}: package {package!r} is not installed; a pkg:// path is pkg://<importable package>/<file in it>"
        ) from error
    target = _join(root, rest)
    if not target.is_file() and not target.is_dir():
        raise FileNotFoundError(
            f"{path}: package {package!r} (at {resources.files(package)}) holds no {inner!r}; check the spelling, or "
            "reinstall the package if its data files are missing"
        )
    return str(target)


RECIPES = f"{PACKAGE_SCHEME}xling_align/recipes"


def shipped_recipes() -> list[str]:
    """Names of the training recipes shipped in the package (`tiny`, `xglm-564m`, ...)."""
    from pathlib import Path

    return sorted(path.stem for path in Path(resolve_path(RECIPES)).glob("*.yaml"))


def resolve_recipe(path: str) -> str:
    """The file of a recipe given as a path, a `pkg://` path, or the bare name of a shipped recipe.

    An existing file wins over a shipped recipe of the same name (a folder does not: `tiny/` may well be a model
    or a run); anything else is returned unchanged (the caller reports it as missing, see `missing_recipe_message`).
    """
    if path.startswith(PACKAGE_SCHEME) or os.path.isfile(path):
        return resolve_path(path)
    name = path.removesuffix(".yaml").removesuffix(".yml")
    if os.sep not in name and "/" not in name and name in shipped_recipes():
        return resolve_path(f"{RECIPES}/{name}.yaml")
    return path


def missing_recipe_message(path: str, option: str = "--config") -> str:
    """Why `option path` found nothing, and what exists instead."""
    what = "is a folder, not a YAML file" if os.path.isdir(path) else "no such file"
    return (
        f"{option} {path!r}: {what} (relative paths start at {os.getcwd()}); a recipe shipped with the "
        f"package can be named alone: {', '.join(shipped_recipes())} (e.g. {option} tiny, or "
        f"{option} {RECIPES}/tiny.yaml)"
    )


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m xling_align.package_paths pkg://<package>/<file>   (prints the file's path)")
    try:
        print(resolve_path(sys.argv[1]))
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
