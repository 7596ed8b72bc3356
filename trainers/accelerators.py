"""Whether this machine has an accelerator, asked in one place (the trainer, its config and `xling-align train`).

The answer is accelerate's (`get_torch_accelerator_backend`, which covers CUDA / ROCm, XPU, NPU, MLU, MUSA, SDAA,
HPU, Neuron and Apple MPS, and any device torch registers as its accelerator), so it names the device the
Trainer will put the model on. Apple MPS is not counted by `has_accelerator`: accelerate runs no distributed job
there (no FSDP, DeepSpeed or multi-process data parallel) and torch pins no memory for it (its DataLoader turns
`pin_memory` off with a warning), which are the three questions asked here: may FSDP / DeepSpeed run
(`engine_checks.check_requested_engine_runs`), is pinned memory of use (`AFPConfig`), and must several processes
of `xling-align train` default to `use_cpu` (`pipeline/training_script.py`). tests/test_engine_checks.py checks
that all three follow this one answer.
"""

from __future__ import annotations

import torch
from accelerate import utils as accelerate_utils

_NOT_COUNTED = {"mps"}


def accelerator_type() -> str | None:
    """The accelerator device type accelerate uses here (`"cuda"`, `"xpu"`, `"npu"`, `"mps"`, ...), or None."""
    find = getattr(accelerate_utils, "get_torch_accelerator_backend", None)
    if find is not None:
        return find()[0]
    # an accelerate without that helper: torch's own notion of the current accelerator
    device = torch.accelerator.current_accelerator(check_available=True)
    return device.type if device is not None else None


def has_accelerator() -> bool:
    """An accelerator that runs distributed engines (FSDP, DeepSpeed, DDP) and uses pinned host memory: any
    `accelerator_type()` but Apple MPS (see the module docstring). False on a CPU-only machine."""
    return accelerator_type() not in (None, *_NOT_COUNTED)
