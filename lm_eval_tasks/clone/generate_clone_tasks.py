"""Write the `xling_clone_*` task YAMLs and their template from one table.

    python -m xling_align.lm_eval_tasks.clone.generate_clone_tasks          # rewrite the files
    python -m xling_align.lm_eval_tasks.clone.generate_clone_tasks --check  # exit 1 if they are out of date

Fact tasks ask an entity's category or colour (both facts in one task) on one entity split, in one query
language, with demonstrations (if any) from bilingual entities that the task does not score. In-context
tasks carry their demonstrations inside each document (every document has its own label mapping). The
documents come from `xling_align.clone.tasks`; the shared settings live in `_xling_clone_template`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from xling_align.lm_eval_tasks.generated_files import generator_main

HERE = Path(__file__).resolve().parent
GENERATOR = "xling_align.lm_eval_tasks.clone.generate_clone_tasks"
TAG = "xling_clone"
TEMPLATE = "_xling_clone_template"
# bump when a prompt, a split or a document changes
VERSION = 2.0

# name suffix -> (documents, keyword arguments, shots)
FACT_TASKS: dict[str, tuple[dict, int]] = {
    # ceilings: the facts exist (L1, held-out), the L2 question format works (L2, bilingual)
    "l1_heldout": ({"split": "test", "query_lang": "l1"}, 0),
    "l2_bilingual": ({"split": "bilingual", "query_lang": "l2"}, 0),
    # transfer: held-out facts asked in L2, zero-shot and with L1 demonstrations (the paper's setting)
    "l2_heldout": ({"split": "test", "query_lang": "l2"}, 0),
    "l2_heldout_l1demo": ({"split": "test", "query_lang": "l2", "demo_lang": "l1"}, 5),
    # the same on the dev split of held-out entities: variant settings are chosen there, never on test
    "l1_heldout_dev": ({"split": "dev", "query_lang": "l1"}, 0),
    "l2_heldout_dev": ({"split": "dev", "query_lang": "l2"}, 0),
    "l2_heldout_dev_l1demo": ({"split": "dev", "query_lang": "l2", "demo_lang": "l1"}, 5),
}
# in-context tasks: five demonstrations (one per category) inside each document
EPISODE_TASKS: dict[str, dict] = {
    "icl_l1": {"query_lang": "l1", "demo_lang": "l1"},
    "icl_l2": {"query_lang": "l2", "demo_lang": "l2"},
    "icl_l2_l1demo": {"query_lang": "l2", "demo_lang": "l1"},
}

TEMPLATE_TEXT = f"""# Shared settings of the xling_clone_* tasks (no .yaml extension: not a task by itself).
tag:
  - {TAG}
output_type: multiple_choice
test_split: test
doc_to_text: "{{{{query}}}}"
doc_to_choice: choices
doc_to_target: label
target_delimiter: " "
# sentences of the pretraining stream end with " . "; demonstrations are joined the same way
fewshot_delimiter: " . "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: {VERSION}
"""


def task_name(suffix: str) -> str:
    return f"{TAG}_{suffix}"


def all_task_names() -> list[str]:
    """Every clone task, in table order."""
    return [task_name(s) for s in (*FACT_TASKS, *EPISODE_TASKS)]


def _kwargs_yaml(kwargs: dict) -> str:
    return "dataset_kwargs:\n" + "".join(f"  {key}: {value}\n" for key, value in kwargs.items())


def clone_task_files() -> dict[str, str]:
    """`{path relative to this folder: file text without the header}` of every generated file."""
    files = {TEMPLATE: TEMPLATE_TEXT}
    for suffix, (kwargs, shots) in FACT_TASKS.items():
        files[f"{task_name(suffix)}.yaml"] = (
            f"include: {TEMPLATE}\ntask: {task_name(suffix)}\n"
            "custom_dataset: !function xling_align.clone.tasks.fact_questions\n"
            + _kwargs_yaml(kwargs)
            + ("fewshot_split: train\nfewshot_config:\n  sampler: default\n" if shots else "")
            + f"num_fewshot: {shots}\n"
        )
    for suffix, kwargs in EPISODE_TASKS.items():
        files[f"{task_name(suffix)}.yaml"] = (
            f"include: {TEMPLATE}\ntask: {task_name(suffix)}\n"
            "custom_dataset: !function xling_align.clone.tasks.in_context_episodes\n"
            + _kwargs_yaml(kwargs)
            + "num_fewshot: 0\n"
        )
    return files


def main(argv: list[str] | None = None) -> int:
    return generator_main(__doc__, clone_task_files, HERE, GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
