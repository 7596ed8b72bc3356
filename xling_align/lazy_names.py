"""Public names imported on first use (PEP 562), so importing a package stays cheap (no torch, no matplotlib).

Used by `xling_align/__init__.py` and `xling_align/analysis/__init__.py`:

    __getattr__, __dir__ = lazy_names(__name__, {"AFPTrainer": "xling_align.trainers.afp_trainer"}, globals())
"""

from importlib import import_module


def lazy_names(package: str, names: dict[str, str], namespace: dict):
    """The module-level `__getattr__` and `__dir__` of `package` for `names` (public name -> defining module)."""

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value  # cached: later look-ups skip __getattr__
        return value

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
