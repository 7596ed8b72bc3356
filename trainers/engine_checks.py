"""Which distributed engine runs the model, and which engine setups the AFP pair pass refuses (and why).

The pair pass (`xling_align.alignment.layer_forward`) enters through the engine's wrapper (DDP, FSDP2, DeepSpeed,
PEFT, accelerate's mixed precision), so it is correct under every engine that wraps the module's forward or hooks
its modules. AFPTrainer runs it before the instruction pass (under DDP with `find_unused_parameters` the last
forward of a step decides which parameters count as used) and on every process, on a one-token stand-in when a
process has no pair in its batch (sharded engines gather parameters in every forward: each process must join).
What is checked here:

- An engine that was asked for but will not run. accelerate runs FSDP and DeepSpeed only on accelerators:
  on a machine without GPU, `accelerate launch --config_file recipes/accelerate/fsdp.yaml` (or
  `deepspeed-zero2.yaml`) would silently fall back to plain data parallel (accelerate's `MULTI_CPU`), so a
  test of the recipe on a laptop would say nothing about sharding. AFPTrainer stops at once instead, naming
  the engine. (The same sharding is tested on CPU by wrapping the model directly with torch's `fully_shard`
  and `deepspeed.initialize`: tests/test_sharded_training.py.)
- Setups that split a sequence or a layer across processes: context / sequence parallelism (each process
  would pool the last token of its own slice of the sentence) and tensor parallelism (untested). Refused.
- FSDP1 (`fsdp_version: 1`): not tested; refused with the fix (`fsdp_version: 2`, as the shipped recipe).

Engines that run the pair pass, with what was verified on CPU (2 processes, gloo): DDP (through the
Trainer and `accelerate launch`), FSDP2 with `fully_shard` per decoder block and at the root (direct
wrapping; same loss, gradients and weights as one process), DeepSpeed ZeRO-2 and ZeRO-3 (direct
`deepspeed.initialize`; same). GPU runs are not measured yet.

Example:
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> describe_engine(LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)))
    'no engine'
"""

from __future__ import annotations

import os

from torch import nn

from xling_align.errors import XlingAlignError
from xling_align.trainers.accelerators import accelerator_type, has_accelerator


class UnsupportedSetupError(XlingAlignError, ValueError):
    """A model, engine or trainer setup that AFPTrainer cannot train correctly; the message names it and the fix."""


def requested_engine() -> str | None:
    """The sharding engine the launcher asked for (`"FSDP"`, `"DeepSpeed"`) or None.

    `accelerate launch` with an FSDP / DeepSpeed config, and `TrainingArguments(fsdp=...)` /
    `TrainingArguments(deepspeed=...)`, announce it through these environment variables.
    """
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "FSDP"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "DeepSpeed"
    return None


def check_requested_engine_runs(args) -> None:
    """Stop when an FSDP / DeepSpeed request would be dropped silently (no GPU, or `use_cpu=True`)."""
    engine = requested_engine()
    if engine is None:
        return
    if not has_accelerator():
        reason = (
            "this machine's only accelerator is Apple MPS" if accelerator_type() == "mps" else "this machine has no GPU"
        )
    elif getattr(args, "use_cpu", False):
        reason = "use_cpu=True"
    else:
        return
    config = "recipes/accelerate/fsdp.yaml" if engine == "FSDP" else "recipes/accelerate/deepspeed-zero2.yaml"
    raise UnsupportedSetupError(
        f"{engine} was requested (accelerate config distributed_type {engine.upper()}, e.g. {config}), but {reason}: "
        f"accelerate runs {engine} only on GPUs and would silently fall back to plain data parallel, without any "
        f"sharding. Run {engine} on a GPU machine; on a CPU, use recipes/accelerate/cpu-2proc.yaml (data parallel, "
        "gloo) to check the distributed path. (xling-align's own tests run the same sharding on CPU by wrapping "
        "the model directly with torch's fully_shard / deepspeed.initialize.)"
    )


def check_pair_pass_support(accelerator) -> None:
    """Refuse engine setups under which the pair pass would be wrong or is untested (see the module docstring)."""
    from accelerate.utils import DistributedType

    parallelism = getattr(accelerator, "parallelism_config", None)
    if parallelism is not None:
        for name, what in (
            ("cp_size", "context parallelism"),
            ("sp_size", "sequence parallelism"),
            ("tp_size", "tensor parallelism"),
        ):
            size = getattr(parallelism, name, 1) or 1
            if size > 1:
                splits = (
                    "splits each sequence across processes, so each would pool a token of its own slice"
                    if name != "tp_size"
                    else "splits every layer across processes and is not tested with it"
                )
                raise UnsupportedSetupError(
                    f"{what} ({name}={size} in the accelerate parallelism config) is not supported by AFP's pair pass: "
                    f"it {splits}. Use data parallelism or FSDP2 (dp_shard_size), or set contrastive_weight=0."
                )
    if accelerator.distributed_type == DistributedType.FSDP:
        version = getattr(accelerator.state.fsdp_plugin, "fsdp_version", 1)
        if version != 2:
            raise UnsupportedSetupError(
                f"FSDP version {version} (fsdp_version in the accelerate config) is not supported by AFP's pair pass, "
                "which is tested with FSDP2 only. Set fsdp_version: 2 (as recipes/accelerate/fsdp.yaml does)."
            )


def describe_engine(model: nn.Module) -> str:
    """A short name of what wraps `model`: `"DDP"`, `"FSDP2"`, `"DeepSpeed ZeRO-3"`, `"no engine"`, ..."""
    names = []
    module = model
    while True:
        kind = type(module).__name__
        if kind == "DistributedDataParallel":
            names.append("DDP")
        elif kind == "DeepSpeedEngine":
            stage = getattr(module, "zero_optimization_stage", lambda: None)()
            names.append(f"DeepSpeed ZeRO-{stage}" if stage is not None else "DeepSpeed")
        elif kind == "FullyShardedDataParallel":
            names.append("FSDP1")
        elif kind == "OptimizedModule":
            names.append("torch.compile")
        elif hasattr(module, "get_base_model"):
            names.append("PEFT")
        if kind.startswith("FSDP") and hasattr(module, "reshard"):
            names.append("FSDP2")
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module) and hasattr(module, "get_base_model"):
            inner = module.get_base_model()
        if not isinstance(inner, nn.Module) or inner is module:
            break
        module = inner
    return " + ".join(names) if names else "no engine"
