"""Score a model on the `xling_clone_*` lm-eval tasks and write lm-eval's results file.

The tasks are loaded from `lm_eval_tasks/clone/` (installed as `xling_align/lm_eval_tasks/clone/`) through
an lm-eval `TaskManager` include path, so this is exactly what
`lm_eval --include_path <that folder> --tasks xling_clone ...` runs.

Example:
    >>> from xling_align.clone.evaluation import clone_task_names
    >>> "xling_clone_l2_heldout_l1demo" in clone_task_names()
    True
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import xling_align.lm_eval_tasks.clone as _clone_task_package

CLONE_TASK_DIR = Path(_clone_task_package.__file__).resolve().parent
CLONE_TAG = "xling_clone"


def clone_task_names() -> list[str]:
    """Every `xling_clone_*` task, sorted (the generator names each YAML file after its task)."""
    return sorted(path.stem for path in CLONE_TASK_DIR.glob("xling_clone_*.yaml"))


def clone_task_manager(world_config: dict | None = None):
    """An lm-eval TaskManager that indexes only the clone tasks (indexing lm-eval's own ~10k YAMLs takes a
    minute) and hands the world's fields to the task datasets as metadata.

    Args:
        world_config: the checkpoint's `clone_world.json` (default: the shipped world).
    """
    return _task_manager(json.dumps(world_config or {}, sort_keys=True))


@lru_cache(maxsize=4)
def _task_manager(world_json: str):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(CLONE_TASK_DIR), include_defaults=False, metadata=json.loads(world_json))


@contextmanager
def quiet_lm_eval():
    """Hide lm-eval's per-task chatter while it scores an in-memory model: INFO/WARNING lines (one "Custom
    kwargs can be passed to --metadata" per task with a custom dataset, two "already-initialized model"
    notes per model) and the one-bar-per-task progress of request building. Errors still show; the
    caller's own progress bar stays."""
    import lm_eval.api.task as lm_eval_task

    loggers = [logging.getLogger(name) for name in ("lm_eval", "lm-eval")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    # lm-eval 0.4.13 builds requests under a bare tqdm with no switch; swap the module's name for one call
    task_tqdm = lm_eval_task.tqdm
    lm_eval_task.tqdm = partial(task_tqdm, disable=True)
    try:
        yield
    finally:
        lm_eval_task.tqdm = task_tqdm
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _quiet_hflm(**kwargs):
    """lm-eval's HFLM without its "Tokenizing inputs" / "Running loglikelihood requests" bars."""
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):
        def loglikelihood(self, requests, disable_tqdm: bool = True):
            return super().loglikelihood(requests, disable_tqdm=True)

    return QuietHFLM(**kwargs)


def _json_default(value):
    # what lm-eval's own writer does with numpy scalars, callables and the like
    from lm_eval.utils import handle_non_serializable

    return handle_non_serializable(value)


def evaluate_clone_tasks(
    model,
    tokenizer,
    output_file: str | Path,
    tasks: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    world_config: dict | None = None,
) -> dict:
    """Run lm-eval on the clone tasks for an in-memory model and write its results JSON to `output_file`.

    Args:
        model: a transformers causal LM.
        tokenizer: its tokenizer.
        output_file: where to write the results (a `results_*.json` name keeps lm-eval tools working).
        tasks: task names (default: all clone tasks).
        limit: score only the first `limit` documents of each task (for smoke tests).
        batch_size: lm-eval batch size.
        seed: seed of lm-eval's few-shot sampling and of its random generators.
        world_config: the model's world (`clone_world.json` of its checkpoint; default: the shipped world).

    Returns:
        lm-eval's results dictionary (also written to `output_file`).
    """
    import lm_eval

    task_manager = clone_task_manager(world_config)
    tasks = list(tasks or clone_task_names())
    unknown = [t for t in tasks if t not in task_manager.all_tasks]
    if unknown:
        raise ValueError(
            f"tasks {unknown} are not clone tasks found in {CLONE_TASK_DIR}; use names from {clone_task_names()}."
        )
    with quiet_lm_eval():
        lm = _quiet_hflm(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device="cpu", max_length=256)
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            task_manager=task_manager,
            limit=limit,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            log_samples=False,
            verbosity="ERROR",
        )
    results.pop("samples", None)
    output_file = Path(output_file)
    output_file.write_text(json.dumps(results, indent=2, default=_json_default, ensure_ascii=False) + "\n")
    return results


def read_accuracies(results_file: str | Path) -> dict[str, float]:
    """`{task: acc}` read back from an lm-eval results JSON."""
    data = json.loads(Path(results_file).read_text())
    return {task: float(metrics["acc,none"]) for task, metrics in data["results"].items() if "acc,none" in metrics}
