"""Two CPU processes (gloo) run the tiny recipe end to end through `accelerate launch -m xling_align train`."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TRAIN_ROWS, PER_DEVICE_BATCH, PROCESSES, STEPS = 64, 8, 2, 2


def _free_port() -> int:
    # other test runs on the machine may use accelerate's default port 29500
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(
    shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None,
    reason="the accelerate launcher is not installed next to this Python",
)
def test_two_process_launch_of_the_tiny_recipe(tmp_path):
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        launcher,
        "launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu-2proc.yaml"),
        "--main_process_port",
        str(_free_port()),
        "-m",
        "xling_align",
        "train",
        "--config",
        str(REPO / "recipes/tiny.yaml"),
        "--output_dir",
        "out",
        "--max_steps",
        str(STEPS),
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--per_device_train_batch_size",
        str(PER_DEVICE_BATCH),
        "--max_train_samples",
        str(TRAIN_ROWS),
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{PROCESSES} process(es)" in result.stdout + result.stderr

    output_dir = tmp_path / "out"
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "README.md").is_file()
    state = json.loads((output_dir / "trainer_state.json").read_text())
    # the global batch spans both processes: an epoch has 64 / (8 * 2) = 4 steps, not 64 / 8 = 8
    steps_per_epoch = math.ceil(TRAIN_ROWS / (PER_DEVICE_BATCH * PROCESSES))
    assert state["log_history"][-1]["epoch"] == pytest.approx(STEPS / steps_per_epoch)
    train_logs = [entry for entry in state["log_history"] if "contrastive_loss" in entry]
    assert [entry["step"] for entry in train_logs] == [1, 2]
    eval_logs = [entry for entry in state["log_history"] if "eval_contrastive_loss" in entry]
    assert eval_logs and "eval_alignment_retrieval_accuracy" in eval_logs[0]  # the callback under DDP too
