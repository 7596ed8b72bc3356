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
