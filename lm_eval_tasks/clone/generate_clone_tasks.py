"""Write the `xling_clone_*` task YAMLs from one table (run after changing a prompt or a setting).

    python -m xling_align.lm_eval_tasks.clone.generate_clone_tasks          # rewrite the YAMLs
    python -m xling_align.lm_eval_tasks.clone.generate_clone_tasks --check  # exit 1 if out of date

Each task asks one fact (category or colour) of the cloned-language world, in one query language, with
demonstrations from the demonstration entities (never the scored ones) in one language. The documents
come from `xling_align.clone.tasks.fact_questions`; the shared settings live in `_xling_clone_template`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from xling_align.lm_eval_tasks.generated_files import generator_main

HERE = Path(__file__).resolve().parent
GENERATOR = "xling_align.lm_eval_tasks.clone.generate_clone_tasks"

FACTS = ("category", "color")
# (name suffix, query language, demonstration language, shots)
SETTINGS = (
    ("l1", "l1", "l1", 0),
    ("l2", "l2", "l2", 0),
    ("l1_5shot", "l1", "l1", 5),
    ("l2_5shot", "l2", "l2", 5),
    ("l2_5shot_l1demo", "l2", "l1", 5),  # the paper's setting: L1 demonstrations, L2 query
)


def task_name(fact: str, suffix: str) -> str:
    return f"xling_clone_{fact}_{suffix}"


def task_yaml(fact: str, suffix: str, query_lang: str, demo_lang: str, shots: int) -> str:
    return (
        "include: _xling_clone_template\n"
        f"task: {task_name(fact, suffix)}\n"
        "dataset_kwargs:\n"
        f"  fact: {fact}\n"
        f"  query_lang: {query_lang}\n"
        f"  demo_lang: {demo_lang}\n"
        f"num_fewshot: {shots}\n"
    )


def all_task_names() -> list[str]:
    return [task_name(fact, suffix) for fact in FACTS for suffix, *_ in SETTINGS]


def generated_files() -> dict[str, str]:
    """Every task YAML (file name: text without the header)."""
    return {f"{task_name(fact, suffix)}.yaml": task_yaml(fact, suffix, query_lang, demo_lang, shots)
            for fact in FACTS for suffix, query_lang, demo_lang, shots in SETTINGS}


def main(argv: list[str] | None = None) -> int:
    return generator_main(__doc__, generated_files, HERE, GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
