"""lm-evaluation-harness task YAMLs (`xling_*`), their data loader and checks; installed as `xling_align.lm_eval_tasks`.

Imported by lm-eval when a task's YAML names one of its functions (the data loader), so this is where the
filter for lm-eval's repeated notice about custom loaders goes in (`log_filters`).
"""

from .log_filters import quiet_custom_dataset_notice

quiet_custom_dataset_notice()
