"""Quiet lm-eval's per-task notice about custom loaders for the `xling*` tasks (one of the changes the
plugin's docstring, `xling_align.evaluation.lm_eval_plugin`, lists)."""

import logging

from xling_align.evaluation.lm_eval_plugin import NAME_PREFIX

NOTICE = "Custom kwargs can be passed to `--metadata`"


class CustomDatasetNotice(logging.Filter):
    """Drops lm-eval's 'Custom kwargs can be passed to `--metadata`' warning for `xling*` tasks. lm-eval prints it
    for every task that loads through `custom_dataset`, which is how every `xling*` task reads its data, so a
    20-task run would print 20 identical notices that ask nothing of the user (the tasks' README says which
    `--metadata` keys they read)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(NAME_PREFIX) and NOTICE in message)


def quiet_custom_dataset_notice() -> None:
    """Install the filter on lm-eval's task logger once."""
    task_logger = logging.getLogger("lm_eval.api.task")
    if not any(isinstance(f, CustomDatasetNotice) for f in task_logger.filters):
        task_logger.addFilter(CustomDatasetNotice())
