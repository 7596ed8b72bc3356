"""Build hook: ship `xling_align_lm_eval.pth` at the top of site-packages.

Everything else about the package is declared in pyproject.toml. What the `.pth` does to lm-eval, why, and
when it can go is documented in one place: the docstring of xling_align/evaluation/lm_eval_plugin.py. Writing it from
`build_py` puts it in the wheel's root, hence in site-packages and in RECORD, so `pip uninstall` removes
it. Editable installs (`pip install -e .`) get it through `EditableWheelWithPth`.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_NAME = "xling_align_lm_eval.pth"
# site.py executes .pth lines that start with "import"; the try/except keeps a broken or half-removed
# install from printing a traceback at every interpreter start
PTH_LINE = (
    'import sys; exec("try:\\n    from xling_align.evaluation.lm_eval_plugin import install_import_hook\\n'
    '    install_import_hook()\\nexcept Exception:\\n    pass")\n'
)


class BuildPyWithPth(build_py):
    """`build_py` that also writes the lm-eval registration `.pth` next to the packages."""

    def run(self):
        super().run()
        self.mkpath(self.build_lib)
        with open(os.path.join(self.build_lib, PTH_NAME), "w", encoding="utf-8") as handle:
            handle.write(PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH_NAME)]


class _StrategyAddingPth:
    """Wraps setuptools' editable strategy so the editable wheel also carries the `.pth`."""

    def __init__(self, strategy):
        self._strategy = strategy

    def __call__(self, wheel, files, mapping):
        self._strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_LINE)

    def __enter__(self):
        self._strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self._strategy.__exit__(*exc_info)


class EditableWheelWithPth(editable_wheel):
    """`pip install -e .`: setuptools does not put build_py's extra outputs in an editable wheel, so
    add the `.pth` here (this relies on a private method; if it changes, editable installs only lose
    the hook and `xling-eval` still works)."""

    def _select_strategy(self, *args, **kwargs):
        return _StrategyAddingPth(super()._select_strategy(*args, **kwargs))


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
