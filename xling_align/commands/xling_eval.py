"""`xling-eval`: lm-eval's own command line with the `xling_*` tasks and the `xling` model registered.

The fallback for when the `.pth` registration hook is not active (disabled, or an install that skipped
it): it takes exactly the arguments of `lm_eval`. A mistake in local benchmark data ends as under `lm_eval`
with the hook: one `xling-eval: error:` line and exit status 2 (`lm_eval_plugin.patch_cli`).

Example:
    xling-eval run --model xling --model_args pretrained=DIR --tasks xling_pawsx --limit 10
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from xling_align.evaluation.lm_eval_plugin import patch_cli, register

    register()
    patch_cli()
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = ["xling-eval", *argv]
    cli_evaluate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
