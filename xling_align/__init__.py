"""xling-align: cross-lingual alignment of multilingual generative language models.

Implements AFP ("Align aFter Pre-training", Li et al., NAACL 2024): a multilingual contrastive term on
translation pairs added to supervised fine-tuning on cross-lingual instructions, as a TRL trainer, plus
lm-evaluation-harness tasks that measure cross-lingual in-context learning.

The public names below are imported lazily (PEP 562) so that `import xling_align` stays cheap: the
lm-eval registration hook and the command line import this package without paying for torch.
"""

import os as _os

__version__ = "0.1.0"


def _source_checkout_root() -> str | None:
    """The repository root when this package is imported from a source checkout, else None.

    In the repository, `trainers/` and `lm_eval_tasks/` sit next to this folder; installs (wheel and editable)
    map them to `xling_align.trainers` / `xling_align.lm_eval_tasks` through `package-dir` in pyproject.toml.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(here)
    installed = _os.path.isdir(_os.path.join(here, "trainers"))  # a wheel puts the sub-packages in here
    checkout = all(_os.path.isfile(_os.path.join(root, *parts)) for parts in
                   (("pyproject.toml",), ("trainers", "__init__.py"), ("lm_eval_tasks", "__init__.py")))
    return root if checkout and not installed else None


# The one visible edge of a source checkout (pytest or `python -m xling_align` from the repository root):
# the repository root joins this package's search path, so `xling_align.trainers` is `trainers/` and
# `xling_align.lm_eval_tasks` is `lm_eval_tasks/`, the same names an install gives (docs/ARCHITECTURE.md).
if _source_checkout_root() is not None:
    __path__.append(_source_checkout_root())

# public name -> module that defines it
_LAZY = {
    "multilingual_contrastive_loss": "xling_align.contrastive_loss",
    "contrastive_loss_and_accuracy": "xling_align.contrastive_loss",
    "pool_hidden_states": "xling_align.pooling",
    "embed_sentences": "xling_align.pooling",
    "AFPConfig": "xling_align.trainers.afp_config",
    "AFPTrainer": "xling_align.trainers.afp_trainer",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xling_align' has no attribute {name!r}")
    # imported here, not at the top: the interpreter-start hook imports this package (see lm_eval_plugin)
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
