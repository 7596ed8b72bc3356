"""xling-align: cross-lingual alignment of multilingual generative language models.

Implements AFP ("Align aFter Pre-training", Li et al., NAACL 2024): a multilingual contrastive term on
translation pairs added to supervised fine-tuning on cross-lingual instructions, as a TRL trainer, plus
lm-evaluation-harness tasks that measure cross-lingual in-context learning.

The public names below are imported lazily (PEP 562) so that `import xling_align` stays cheap: the
lm-eval registration hook and the command line import this package without paying for torch.
"""

import os as _os

from xling_align import moved_modules as _moved_modules
from xling_align.lazy_names import lazy_names as _lazy_names

__version__ = "0.2.0"


def _source_checkout_root() -> str | None:
    """The repository root when this package is imported from a source checkout, else None.

    In the repository, `trainers/` and `lm_eval_tasks/` sit next to this folder; installs (wheel and editable)
    map them to `xling_align.trainers` / `xling_align.lm_eval_tasks` through `package-dir` in pyproject.toml.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(here)
    installed = _os.path.isdir(_os.path.join(here, "trainers"))  # a wheel puts the sub-packages in here
    checkout = all(
        _os.path.isfile(_os.path.join(root, *parts))
        for parts in (("pyproject.toml",), ("trainers", "__init__.py"), ("lm_eval_tasks", "__init__.py"))
    )
    return root if checkout and not installed else None


# The one visible edge of a source checkout (pytest or `python -m xling_align` from the repository root):
# the repository root joins this package's search path, so `xling_align.trainers` is `trainers/` and
# `xling_align.lm_eval_tasks` is `lm_eval_tasks/`, the same names an install gives (docs/ARCHITECTURE.md).
if _source_checkout_root() is not None:
    __path__.append(_source_checkout_root())

# old module names (before the layout by role) keep working for one release, with a warning naming the new one
_moved_modules.install()

# public name -> module that defines it
_LAZY = {
    "multilingual_contrastive_loss": "xling_align.alignment.contrastive_loss",
    "contrastive_loss_and_accuracy": "xling_align.alignment.contrastive_loss",
    "ContrastiveOutput": "xling_align.alignment.contrastive_loss",
    "pool_hidden_states": "xling_align.alignment.pooling",
    "embed_sentences": "xling_align.alignment.pooling",
    "compute_inside_forward": "xling_align.alignment.layer_forward",
    "AFPConfig": "xling_align.trainers.afp_config",
    "AFPTrainer": "xling_align.trainers.afp_trainer",
    "AFPDataCollator": "xling_align.trainers.afp_collator",
    "load_pair_head": "xling_align.trainers.pair_head",
    "XlingAlignError": "xling_align.errors",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = _lazy_names(__name__, _LAZY, globals())
