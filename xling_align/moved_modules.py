"""Old import names of modules that moved in 0.2.0 (the layout by role) keep working for one release.

`import xling_align.pooling` gives a stand-in module that forwards every attribute to
`xling_align.alignment.pooling` and warns once (FutureWarning) with the new name. `xling_align/__init__.py`
installs the finder; it acts only on the names below, after the real import system found nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

REMOVED_IN = "0.3.0"

# old module name -> new module name
MOVED = {
    **{
        f"xling_align.{name}": f"xling_align.alignment.{name}"
        for name in ("contrastive_loss", "distributed", "pooling", "model_parts", "layer_forward")
    },
    **{
        f"xling_align.{name}": f"xling_align.evaluation.{name}"
        for name in (
            "lm_eval_model",
            "lm_eval_plugin",
            "prefix_scoring",
            "prefix_tree",
            "adapters",
            "benchmark_table",
            "paper_protocol",
            "release_import",
        )
    },
    **{
        f"xling_align.{name}": f"xling_align.pipeline.{name}"
        for name in (
            "training_script",
            "script_arguments",
            "recipe_parser",
            "training_data",
            "run_directory",
            "model_card",
            "reproduction",
            "stage_manifest",
        )
    },
    "xling_align.hub_data": "xling_align.data.hub_data",
    "xling_align.pair_head": "xling_align.trainers.pair_head",
    "xling_align.padding_free": "xling_align.trainers.padding_free",
    "xling_align.engines": "xling_align.trainers.engine_checks",
    "xling_align.analysis.report": "xling_align.analysis.summary_files",
    "xling_align.clone.report": "xling_align.clone.outputs",
}


def moved_message(old: str) -> str:
    return (
        f"{old} moved to {MOVED[old]} in xling-align 0.2.0; import it from there (the old name goes in {REMOVED_IN})."
    )


class _Forwarding(types.ModuleType):
    """The stand-in under the old name: every attribute read comes from the module's new home."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(MOVED[self.__name__]), name)

    def __dir__(self):
        return dir(importlib.import_module(MOVED[self.__name__]))


class _ForwardingLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return _Forwarding(spec.name)

    def exec_module(self, module) -> None:
        warnings.warn(moved_message(module.__name__), FutureWarning, stacklevel=3)
        new = importlib.import_module(MOVED[module.__name__])
        module.__doc__ = new.__doc__
        if hasattr(new, "__all__"):
            module.__all__ = list(new.__all__)


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds only the old names in `MOVED`; placed last on `sys.meta_path`, so real modules always win."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _ForwardingLoader())


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
