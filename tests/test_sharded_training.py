"""AFP on a sharded model, 2 CPU processes (gloo), against 1 process with the whole batch.

accelerate runs FSDP and DeepSpeed only on GPUs (on a CPU it falls back to plain data parallel, which AFPTrainer
refuses: see test_engine_checks.py), so the sharding is applied here directly, as accelerate does on GPUs:
FSDP2 `fully_shard` on every decoder block and then on the root; DeepSpeed ZeRO-2 / ZeRO-3 through
`deepspeed.initialize` (when deepspeed is installed). Each step is AFPTrainer's own `training_step`.
Checked: loss and contrastive loss of every step, the gradients of the first step, the weights after three
steps (the second step gives the second process no pair: its stand-in pass), sentence vectors of the trained
model (the embedding path of the alignment callback), and for FSDP2 a checkpoint saved from the shards,
reloaded and trained one step further.
"""

import importlib.util
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("sharded_afp_script.py")
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def launch(tmp_path, engine):
    result_file = tmp_path / f"{engine}.pt"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DS_ACCELERATOR": "cpu",
        "PYTHONPATH": str(SCRIPT.parent.parent),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(SCRIPT),
        engine,
        str(tmp_path / engine),
        str(result_file),
    ]
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return torch.load(result_file, weights_only=False)


@pytest.fixture(scope="module")
def one_process():
    """The reference: the same steps on one process with the whole batch (cached per variant)."""
    module = runpy.run_path(str(SCRIPT))
    cache = {}

    def run(tmp_path, with_head=False):
        if with_head not in cache:
            result = module["run"]("one-head" if with_head else "one", str(tmp_path / "one"))
            result.pop("trainer"), result.pop("model")
            cache[with_head] = result
        return cache[with_head], module

    return run


def assert_same_training(sharded, single):
    assert sharded["losses"] == pytest.approx(single["losses"], rel=1e-5)
    assert sharded["contrastive"] == pytest.approx(single["contrastive"], rel=1e-5)
    assert sharded["grads"].keys() == single["grads"].keys()
    for name, grad in single["grads"].items():
        torch.testing.assert_close(sharded["grads"][name], grad, **TOLERANCE, msg=f"gradient of {name}")
    for name, value in single["state"].items():
        torch.testing.assert_close(sharded["state"][name], value, **TOLERANCE, msg=f"weight {name}")
    torch.testing.assert_close(sharded["embeddings"], single["embeddings"], **TOLERANCE)


def test_fsdp2_steps_equal_one_process_and_the_checkpoint_reloads(tmp_path, one_process):
    single, module = one_process(tmp_path)
    sharded = launch(tmp_path, "fsdp2")
    assert_same_training(sharded, single)
    # the steps moved the weights: the comparison is not between two untouched models
    initial = module["build_model"]().state_dict()
    assert not torch.allclose(
        single["state"]["model.layers.0.self_attn.q_proj.weight"], initial["model.layers.0.self_attn.q_proj.weight"]
    )
    # the checkpoint written from the shards holds the trained weights; training resumes from it identically
    for name, value in single["state"].items():
        torch.testing.assert_close(sharded["reloaded_state"][name], value, **TOLERANCE, msg=name)
    trainer = module["make_trainer"](str(tmp_path / "resume"), module["build_model"]())
    trainer.model.load_state_dict(single["state"])
    optimizer = torch.optim.SGD(trainer.model.parameters(), lr=module["LEARNING_RATE"])
    trainer.current_gradient_accumulation_steps = 1
    batch = module["batch_of"](trainer, module["STEP_ROWS"][0])
    trainer.training_step(trainer.model, batch, trainer._get_num_items_in_batch([batch], torch.device("cpu")))
    optimizer.step()
    for name, value in trainer.model.named_parameters():
        torch.testing.assert_close(sharded["after_resume"][name], value.detach(), **TOLERANCE, msg=name)


def test_fsdp2_with_a_pair_head_equals_one_process(tmp_path, one_process):
    single, _ = one_process(tmp_path, with_head=True)
    sharded = launch(tmp_path, "fsdp2-head")
    assert_same_training(sharded, single)
    assert "xling_pair_head.0.weight" in single["grads"]  # the head is trained, under FSDP2 too


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed")
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_steps_equal_one_process(tmp_path, one_process, stage):
    single, _ = one_process(tmp_path)
    sharded = launch(tmp_path, f"zero{stage}")
    assert_same_training(sharded, single)
