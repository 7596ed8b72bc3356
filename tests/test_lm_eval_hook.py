"""The registration hook that `xling_align_lm_eval.pth` installs at interpreter start.

Each check runs in a fresh interpreter (cwd: a temp folder, so the installed package is imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HOOK = "import xling_align.evaluation.lm_eval_plugin as plugin; plugin.install_import_hook()"
HEAVY = ("torch", "lm_eval", "transformers", "datasets", "numpy", "yaml", "inspect")


def _python(code, tmp_path, **env):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def test_hook_imports_nothing_heavy_when_lm_eval_is_not_used(tmp_path):
    # the difference is taken before `import json`, which itself imports `re` and friends
    code = (
        "import sys; before = set(sys.modules); " + HOOK + "; new = sorted(set(sys.modules) - before); "
        "import json; print(json.dumps(new))"
    )
    new_modules = json.loads(_python(code, tmp_path).stdout.splitlines()[-1])
    # only the package and the plugin module (none at all if the .pth already imported them)
    assert set(new_modules) <= {"xling_align", "xling_align.evaluation.lm_eval_plugin"}
    assert not [m for m in new_modules if m.split(".")[0] in HEAVY]


def test_hook_registers_model_and_tasks_and_a_failing_step_does_not_break_lm_eval(tmp_path):
    code = "\n".join(
        [
            HOOK,
            "def broken(): raise RuntimeError('simulated failure')",
            "plugin.patch_task_manager = broken",  # the task step fails ...
            "from lm_eval.api.registry import model_registry",
            "from lm_eval.tasks import TaskManager",  # ... yet lm-eval imports fine
            "print('xling' in model_registry, 'hf' in model_registry, hasattr(TaskManager, '_xling_patched'))",
            "import sys; print('torch' in sys.modules)",
        ]
    )
    result = _python(code, tmp_path)
    assert result.stdout.split() == ["True", "True", "False", "False"]
    assert "could not add the xling_* tasks (RuntimeError: simulated failure)" in result.stderr


def test_hook_patches_the_task_manager_when_lm_eval_tasks_is_imported(tmp_path):
    code = "\n".join(
        [
            HOOK,
            "from lm_eval.tasks import TaskManager",
            "import xling_align.evaluation.lm_eval_plugin as p",
            "tm = TaskManager(include_defaults=False)",
            "print(tm.match_tasks(['xling_pawsx*']),"
            " str(tm.task_index['xling_pawsx_de'].yaml_path).startswith(p.tasks_dir()))",
        ]
    )
    assert _python(code, tmp_path).stdout.split() == ["['xling_pawsx',", "'xling_pawsx_endemo']", "True"]


def test_hook_can_be_turned_off(tmp_path):
    code = HOOK + "; import sys; print(any(type(f).__name__ == 'LmEvalImportHook' for f in sys.meta_path))"
    # the .pth may have installed it already at start; with the switch set it is never installed
    assert _python(code, tmp_path, XLING_ALIGN_NO_LM_EVAL_HOOK="1").stdout.split() == ["False"]


def test_xling_eval_registers_before_handing_over_to_lm_eval(capsys):
    import pytest

    from xling_align.commands import xling_eval

    with pytest.raises(SystemExit) as done:
        xling_eval.main(["--help"])
    assert done.value.code == 0
    assert "run" in capsys.readouterr().out  # lm-eval's own help
    from lm_eval.api.registry import model_registry
    from lm_eval.tasks import TaskManager

    assert "xling" in model_registry and "hf" in model_registry
    assert getattr(TaskManager, "_xling_patched", False)


def test_include_path_inside_the_task_folder_is_indexed_once(tmp_path):
    """The demo's TaskManager(include_path=<lm_eval_tasks/clone>): no task is indexed twice (no override lines)."""
    code = "\n".join(
        [
            "import logging; logging.basicConfig(level=logging.WARNING)",
            HOOK,
            "from lm_eval.tasks import TaskManager",
            "from xling_align.clone.evaluation import CLONE_TASK_DIR",
            "tm = TaskManager(include_path=str(CLONE_TASK_DIR), include_defaults=False)",
            "print('xling_clone_l2_heldout' in tm.all_tasks, 'xling_pawsx_de' in tm.all_tasks)",
        ]
    )
    result = _python(code, tmp_path)
    assert result.stdout.split() == ["True", "True"]
    assert "overrides existing task" not in result.stderr


def test_our_task_folder_joins_the_include_path_once(tmp_path):
    import os

    from xling_align.evaluation import lm_eval_plugin

    ours = lm_eval_plugin.tasks_dir()
    other = str(tmp_path)
    assert lm_eval_plugin.with_our_tasks(None) == [ours]
    assert lm_eval_plugin.with_our_tasks(other) == [ours, other]
    assert lm_eval_plugin.with_our_tasks([other, ours]) == [other, ours]  # already there: unchanged
    assert lm_eval_plugin.with_our_tasks([os.path.join(ours, "clone"), other]) == [ours, other]  # covered by ours
    assert lm_eval_plugin.with_our_tasks([os.path.dirname(ours)]) == [os.path.dirname(ours)]  # contains ours


def test_the_cli_wrapper_shortens_only_the_tasks_data_errors(monkeypatch, capsys):
    """`HarnessCLI.execute` (wrapped): a BenchmarkDataError, also one lm-eval re-raised as another error, ends with
    one line and exit status 2; any other exception reaches the caller untouched."""
    import argparse

    import pytest
    from lm_eval._cli.harness import HarnessCLI

    from xling_align.evaluation import lm_eval_plugin
    from xling_align.lm_eval_tasks.data_checks import BenchmarkDataError

    lm_eval_plugin.patch_cli()
    monkeypatch.setattr("sys.argv", ["/venv/bin/lm_eval"])

    def fails_with(error):
        def run(args):
            raise error

        return argparse.Namespace(func=run)

    def wrapped(args):
        try:
            raise BenchmarkDataError("data/x.jsonl: bad")
        except BenchmarkDataError as error:
            raise RuntimeError("task failed") from error

    for failing in (fails_with(BenchmarkDataError("data/x.jsonl: bad")), argparse.Namespace(func=wrapped)):
        with pytest.raises(SystemExit) as stopped:
            HarnessCLI().execute(failing)
        assert stopped.value.code == 2
        assert capsys.readouterr().err == "lm_eval: error: data/x.jsonl: bad\n"
    with pytest.raises(KeyError, match="other"):
        HarnessCLI().execute(fails_with(KeyError("other")))
