"""Make lm-evaluation-harness 0.4.13 see the `xling_*` tasks and the `xling` model: the whole patch surface.

This module is the one place that documents (and does) everything xling-align changes in lm-eval.

Why: lm-eval 0.4.13 has no plugin mechanism. Its CLI indexes only its own task folder plus
`--include_path`, and knows only models registered in code imported before the model is built. The
package promises that a plain `lm_eval --model xling --tasks 'xling_*'` works after `pip install`.

How it is switched on: the wheel (and `pip install -e .`) installs a one-line `xling_align_lm_eval.pth` into
site-packages (written by `setup.py`); at interpreter start it calls `install_import_hook()`, which puts a
`sys.meta_path` finder in place that acts only when lm-eval itself imports one of three modules, right after
that module has run. Nothing else is imported at start (this module uses the standard library only).

What it changes, all of it:

| lm-eval object | change | why |
|---|---|---|
| `lm_eval.api.registry.model_registry` | `register("xling", target="xling_align.evaluation.lm_eval_model:XlingLM")` (a lazy placeholder: torch is imported when the model is built), after importing `lm_eval.models` | the `xling` model; lm-eval fills its registry only when it is empty, so the built-ins are imported first or `hf` would disappear |
| `lm_eval.tasks.TaskManager.__init__` | wrapped: this package's task folder goes first on `include_path` (unless a given path already contains it; a given path inside it is dropped, as the folder covers it) | the `xling_*` tasks; every folder is indexed once, so no task is reported as overriding itself |
| logger `lm_eval.api.task` | a filter drops the "Custom kwargs can be passed to `--metadata`" warning of `xling*` tasks (`xling_align.lm_eval_tasks.log_filters`, installed when the tasks' package is imported) | every `xling*` task loads through `custom_dataset`, for which lm-eval repeats that notice once per task |
| `lm_eval.tasks.TaskManager.match_tasks` | wrapped: of the names a `--tasks` pattern matched, an `xling` task or group that a matched `xling` group already contains is dropped | `--tasks 'xling_*'` matches a group and its members; lm-eval would raise `Duplicate task` |
| `lm_eval._cli.harness.HarnessCLI.execute` | wrapped: a user's mistake (`XlingAlignError`, e.g. the `xling_*` tasks' `BenchmarkDataError`: a local benchmark file that would be scored wrongly, or is missing) ends the command with one `<command>: error: <message>` line on stderr and exit status 2 (`xling_align.error_exit`: once under `accelerate launch`); every other exception passes through untouched | lm-eval lets every exception reach the interpreter, so a data mistake ended in a traceback with exit status 1, unlike `xling-eval` and the package's commands |

Nothing else is changed; names outside the `xling` family are never touched. Every step is wrapped so that
a failure prints one warning to stderr and leaves lm-eval as it was; `XLING_ALIGN_NO_LM_EVAL_HOOK=1` turns the
hook off; `pip uninstall` removes the `.pth` (it is in the wheel's RECORD). `register()` does the same work
explicitly (the `xling-eval` command, and Python users who prefer it); `xling-eval` also calls `patch_cli()`.

When it can be dropped: once lm-eval reads entry points for models and tasks (upstream pull requests 4013
and 4015; `pyproject.toml` already declares `lm_eval.models: xling` and `lm_eval.tasks: xling`), the two
registrations become declarations; the `match_tasks` de-duplication then remains only if lm-eval still
raises on a glob that matches a group and its members, and the `execute` wrapper only until lm-eval reports a
task loader's user-facing errors itself. Remove `setup.py`'s `.pth` with the hook.

Example:
    >>> from xling_align.evaluation import lm_eval_plugin
    >>> lm_eval_plugin.register()
    >>> from lm_eval.api.registry import get_model
    >>> get_model("xling").__name__
    'XlingLM'
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

import os
import sys

DISABLE_ENV = "XLING_ALIGN_NO_LM_EVAL_HOOK"
MODEL_NAME = "xling"
MODEL_TARGET = "xling_align.evaluation.lm_eval_model:XlingLM"
# the prefix of every task, group and tag name this package and its sub-folders (e.g. clone/) define
NAME_PREFIX = "xling"


def tasks_dir() -> str:
    """The folder holding the `xling_*` task YAMLs: the package `xling_align.lm_eval_tasks` (not imported)."""
    from importlib.util import find_spec

    return os.path.abspath(find_spec("xling_align.lm_eval_tasks").submodule_search_locations[0])


def _warn(what: str, err: BaseException) -> None:
    # logging is not configured yet when this runs inside an import; stderr always reaches the user
    print(f"xling-align: could not {what} ({type(err).__name__}: {err}); lm-eval works without it.", file=sys.stderr)


# ------------------------------------------------------------------------------ registration steps
def register_model() -> None:
    """Register the `xling` model with lm-eval (lazily: the class is imported when first used)."""
    import lm_eval.models  # noqa: F401  (fills the registry with the built-in models first)
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def _as_list(include_path) -> list:
    if include_path is None:
        return []
    if isinstance(include_path, (list, tuple)):
        return list(include_path)
    return [include_path]


def _inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or somewhere below it."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def with_our_tasks(include_path) -> list:
    """`include_path` with this package's task folder first, every folder indexed once.

    A given path that contains the task folder already indexes it; a given path inside it (e.g. its `clone/`
    sub-folder) is dropped, because the task folder covers it (lm-eval indexes folders recursively).
    """
    ours = tasks_dir()
    paths = _as_list(include_path)
    if any(_inside(ours, str(path)) for path in paths):
        return paths
    return [ours] + [path for path in paths if not _inside(str(path), ours)]


def _group_members(index: dict, name: str, seen: set[str]) -> set[str]:
    """Every group and task below group `name` in a TaskManager index (recursively)."""
    entry = index.get(name)
    members: set[str] = set()
    config = getattr(entry, "cfg", None) or {}
    children = config.get("task", []) if "group" in config else []
    for child in children if isinstance(children, list) else [children]:
        child_name = child.get("task") or child.get("group") if isinstance(child, dict) else child
        if isinstance(child_name, str) and child_name not in seen:
            seen.add(child_name)
            members.add(child_name)
            members |= _group_members(index, child_name, seen)
    return members


def drop_members_of_matched_groups(names: list[str], index: dict) -> list[str]:
    """Remove from `names` every xling task or group that a matched xling group already contains.

    Args:
        names: names matched by a `--tasks` pattern (tasks, groups, tags).
        index: `TaskManager.task_index` (name -> Entry with the parsed YAML in `cfg`).

    Returns:
        `names` without the redundant ones, so lm-eval runs each task once instead of raising
        `Duplicate task`. Names outside the xling family are returned untouched.
    """
    ours = [name for name in names if name.startswith(NAME_PREFIX)]
    covered: set[str] = set()
    for name in ours:
        covered |= _group_members(index, name, set())
    # a tag whose tasks all run through matched groups would run them a second time
    for name in ours:
        tag_tasks = getattr(index.get(name), "tags", None)
        if getattr(getattr(index.get(name), "kind", None), "name", "") == "TAG" and tag_tasks <= covered:
            covered.add(name)
    return [name for name in names if not (name.startswith(NAME_PREFIX) and name in covered)]


def patch_task_manager() -> None:
    """Wrap `TaskManager.__init__` (our task folder on the include path) and `match_tasks` (de-duplication)."""
    import inspect

    from lm_eval.tasks import TaskManager

    if getattr(TaskManager, "_xling_patched", False):
        return
    original_init = TaskManager.__init__
    original_match = TaskManager.match_tasks
    signature = inspect.signature(original_init)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        # first, so a user's own --include_path can still override one of our tasks
        bound.arguments["include_path"] = with_our_tasks(bound.arguments.get("include_path"))
        original_init(*bound.args, **bound.kwargs)

    def match_tasks(self, task_list):
        return drop_members_of_matched_groups(original_match(self, task_list), self.task_index)

    __init__.__doc__ = original_init.__doc__
    match_tasks.__doc__ = original_match.__doc__
    TaskManager.__init__ = __init__
    TaskManager.match_tasks = match_tasks
    TaskManager._xling_patched = True


def _users_error(error: BaseException) -> BaseException | None:
    """`error` (or what it was raised from) when it is a user's mistake (`XlingAlignError`), else None."""
    from xling_align.errors import XlingAlignError

    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, XlingAlignError):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _command_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "lm_eval" if name in ("", "__main__.py", "-c") else name


def patch_cli() -> None:
    """Wrap `HarnessCLI.execute`: bad benchmark data ends with one `error:` line and exit status 2."""
    from lm_eval._cli.harness import HarnessCLI

    if getattr(HarnessCLI, "_xling_patched", False):
        return
    original_execute = HarnessCLI.execute

    def execute(self, args):
        try:
            return original_execute(self, args)
        except Exception as error:
            ours = _users_error(error)
            if ours is None:
                raise
            from xling_align.error_exit import report_error

            raise SystemExit(report_error(f"{_command_name()}: error: {ours}")) from None

    execute.__doc__ = original_execute.__doc__
    HarnessCLI.execute = execute
    HarnessCLI._xling_patched = True


def register() -> None:
    """Register the model and the tasks now (imports lm-eval's light modules, not torch)."""
    register_model()
    patch_task_manager()


# ------------------------------------------------------------------------------ the import hook
def _after(step_name: str, what: str):
    def run(module) -> None:
        try:
            globals()[step_name]()  # looked up when run, so tests can swap a step for a failing one
        except Exception as err:  # never break lm-eval's own import
            _warn(what, err)

    return run


_AFTER_IMPORT = {
    "lm_eval.api.registry": _after("register_model", "register the `xling` model"),
    "lm_eval.tasks": _after("patch_task_manager", "add the xling_* tasks"),
    "lm_eval._cli.harness": _after("patch_cli", "shorten the xling_* tasks' data errors"),
}


class _LoaderThenRun:
    """Wraps a module's loader: executes the module, then runs one registration step."""

    def __init__(self, loader, then) -> None:
        self._loader = loader
        self._then = then

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self._loader  # the module keeps the real loader (resources, reload)
        self._loader.exec_module(module)
        self._then(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class LmEvalImportHook:
    """`sys.meta_path` finder that only acts on the lm-eval modules named in `_AFTER_IMPORT`."""

    def find_spec(self, fullname, path=None, target=None):
        then = _AFTER_IMPORT.get(fullname)
        if then is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderThenRun(spec.loader, then)
                return spec
        return None


def install_import_hook() -> None:
    """Called by `xling_align_lm_eval.pth` at interpreter start; must stay cheap and never raise."""
    try:
        if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
            return
        if any(isinstance(finder, LmEvalImportHook) for finder in sys.meta_path):
            return
        if "lm_eval.tasks" in sys.modules or "lm_eval.api.registry" in sys.modules:
            register()  # lm-eval is already imported: register directly
            if "lm_eval._cli.harness" in sys.modules:
                patch_cli()
            return
        sys.meta_path.insert(0, LmEvalImportHook())
    except Exception as err:
        _warn("install the lm-eval hook", err)
