"""The README's Python quick start runs with a clean console: no warning caused by the package's own settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
# warnings the quick start printed before (TRL's prefix warning and ByT5's EOS note from SFTTrainer's preparation,
# SFTConfig's deprecated gradient_checkpointing default, pinned memory without GPU, the model config's special
# tokens differing from the tokenizer's)
KNOWN_NOISE = ("is not a prefix", "already has </s>", "gradient_checkpointing", "pin_memory", "PAD/BOS/EOS")


def quick_start_code() -> str:
    section = README.read_text(encoding="utf-8").split("## Python quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_python_quick_start_prints_no_warning(tmp_path):
    script = tmp_path / "quick_start.py"
    script.write_text(quick_start_code() + "\nprint('QUICK START DONE', tuple(vectors.shape))\n", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "QUICK START DONE (2, 64)" in output
    for noise in KNOWN_NOISE:
        assert noise not in output, noise
    # no Python warning of any kind, and no logged warning; DeepSpeed, when installed, announces its CPU
    # accelerator on import (not ours: the package does not need DeepSpeed)
    lines = [line for line in output.splitlines() if "real_accelerator" not in line]
    assert not [line for line in lines if re.search(r"\w+Warning\b|\bWARNING\b|\[transformers\]", line)], output[-3000:]
