"""A run interrupted mid-training and resumed with --resume_from_checkpoint ends where the uninterrupted run ends."""

from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from xling_align.pipeline.training_script import main, parse_recipe

TINY = Path(__file__).resolve().parent.parent / "recipes" / "tiny.yaml"
# 32 rows / batch 8 = 4 steps per epoch: the checkpoint at step 5 sits inside the second epoch, so resuming
# must restore the reshuffled order and skip the batches already seen; XGLM's dropout needs the saved RNG state
SHORT_RUN = [
    "--max_train_samples",
    "32",
    "--max_steps",
    "10",
    "--save_steps",
    "5",
    "--logging_steps",
    "1",
    "--eval_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
    "--save_total_limit",
    "5",
    "--disable_tqdm",
    "true",
]


class Killed(RuntimeError):
    """Stands for the process dying (OOM killer, pre-empted node) in the middle of training."""


class KillAfterStep(TrainerCallback):
    """Raise at the end of optimizer step `step`: its update is done, but it is not saved in any checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Killed(f"killed after step {self.step}")


def _train(output_dir, *extra, callbacks=None):
    args = parse_recipe(["--config", str(TINY), "--output_dir", str(output_dir), *SHORT_RUN, *extra])
    return main(*args, callbacks=callbacks)


def _parameters(trainer):
    return {name: value.detach().clone() for name, value in trainer.model.named_parameters()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted") / "out"
    trainer = _train(output_dir)
    return _parameters(trainer), trainer.state.log_history, output_dir


def test_killed_and_resumed_run_ends_with_the_same_parameters(tmp_path, uninterrupted):
    reference, reference_logs, _ = uninterrupted
    output_dir = tmp_path / "out"
    with pytest.raises(Killed):
        _train(output_dir, callbacks=[KillAfterStep(7)])
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-5"]

    resumed = _train(output_dir, "--resume_from_checkpoint", "true")
    assert resumed.state.global_step == 10
    parameters = _parameters(resumed)
    assert parameters.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(parameters[name], value), f"{name} differs after resuming"
    # the same losses step by step after the resume point: same batches in the same order
    losses = {entry["step"]: entry["loss"] for entry in resumed.state.log_history if "loss" in entry}
    reference_losses = {entry["step"]: entry["loss"] for entry in reference_logs if "loss" in entry}
    assert {step: losses[step] for step in range(6, 11)} == {step: reference_losses[step] for step in range(6, 11)}


def test_steps_after_the_checkpoint_change_the_parameters(uninterrupted):
    """Guards the test above against passing trivially: steps 6-10 (redone after resuming) move the weights."""
    from safetensors.torch import load_file

    reference, _, output_dir = uninterrupted
    at_checkpoint = load_file(output_dir / "checkpoint-5" / "model.safetensors")
    changed = [
        name
        for name, value in reference.items()
        if name in at_checkpoint and not torch.equal(at_checkpoint[name], value)
    ]
    assert len(changed) > len(reference) // 2


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    from xling_align.pipeline.run_directory import OutputDirError

    with pytest.raises(OutputDirError, match="holds no checkpoint"):
        _train(tmp_path / "empty", "--resume_from_checkpoint", "true")
