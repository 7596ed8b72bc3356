"""`xling-align train --config RECIPE.yaml [--setting value ...]`: align a model with AFP.

The options are the fields of `ScriptArguments` (data), `AFPConfig` (method + TrainingArguments) and TRL's
`ModelConfig` (model, LoRA); see `xling_align/pipeline/training_script.py` and `xling-align train --help`.
Mistakes in the recipe or on the command line end with one `error:` line (exit status 2), not a traceback;
under `accelerate launch` / `torchrun` the line is printed once (`xling_align.error_exit`).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from xling_align.error_exit import report_error
    from xling_align.errors import XlingAlignError
    from xling_align.pipeline.training_script import main as train
    from xling_align.pipeline.training_script import parse_recipe

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        script_args, training_args, model_args = parse_recipe(argv)
        train(script_args, training_args, model_args)
    except XlingAlignError as error:
        return report_error(f"xling-align train: error: {error}")
    return 0
