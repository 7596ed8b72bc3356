"""Load the model to analyse: a local checkpoint folder, a LoRA adapter folder, or a cached hub id.

An adapter folder (with `adapter_config.json`) is loaded on top of the base model named in its
`base_model_name_or_path` (resolved by `xling_align.evaluation.adapters.find_base_model`); the tokenizer comes
from the adapter folder if it has one, else from the base.
Loading failures are turned into one message that names the model and the usual causes, including
`HF_HUB_OFFLINE=1`, under which only local folders and already-downloaded hub ids can load.

Example:
    >>> source = ModelSource("path/to/checkpoint")  # nothing is loaded yet
    >>> source.name
    'checkpoint'
"""

from __future__ import annotations

import json
import os
import uuid
from functools import cached_property
from pathlib import Path

from xling_align.analysis.embeddings_cache import model_fingerprint
from xling_align.errors import XlingAlignError
from xling_align.evaluation.adapters import ADAPTER_CONFIG, find_base_model, is_adapter_folder, is_true


class ModelLoadError(XlingAlignError, RuntimeError):
    """The model or its tokenizer could not be loaded."""


def _load_failure(model: str, error: Exception) -> ModelLoadError:
    offline = is_true(os.environ.get("HF_HUB_OFFLINE", ""))
    hint = (
        "HF_HUB_OFFLINE is set, so nothing is downloaded: give a local folder written by save_pretrained "
        "(config.json + weights + tokenizer files) or a hub id already in the Hugging Face cache"
        if offline
        else "give a local folder written by save_pretrained (config.json + weights + tokenizer files) or a hub "
        "id; without network access set HF_HUB_OFFLINE=1 and use a model already in the Hugging Face cache"
    )
    if not Path(model).exists():
        hint = f"there is no local folder {model!r}, so it was taken for a hub id; " + hint
    return ModelLoadError(f"cannot load model {model!r} ({type(error).__name__}: {error}). {hint}.")


class ModelSource:
    """A model named on the command line, loaded on first use.

    Args:
        path: local checkpoint folder, LoRA adapter folder or hub id.
        device: where to put the model ("cpu", "cuda", ...); None picks CUDA when available.
        dtype: torch dtype name for the weights ("float32", "bfloat16", "auto").
    """

    def __init__(self, path: str, device: str | None = None, dtype: str = "float32"):
        self.path = str(path)
        self.device = device
        self.dtype = dtype
        self._loaded = None

    @classmethod
    def from_loaded(cls, model, tokenizer, name: str = "in-memory model") -> ModelSource:
        """Wrap a model already in memory; its vectors are cached under a key that is never reused."""
        from xling_align.alignment.pooling import num_decoder_layers

        source = cls(name)
        source._loaded = (model, tokenizer)
        source.__dict__["fingerprint"] = f"in-memory:{uuid.uuid4().hex}"  # fills the cached_property
        source.__dict__["depth"] = num_decoder_layers(model)
        return source

    @property
    def name(self) -> str:
        """Short display name (the folder name)."""
        return Path(self.path.rstrip("/")).name or self.path

    @property
    def adapter_config(self) -> dict | None:
        """The LoRA adapter's config if `path` is an adapter folder, else None."""
        if not is_adapter_folder(self.path):
            return None
        return json.loads((Path(self.path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))

    @property
    def base_path(self) -> str:
        """The folder or hub id holding the full model weights (the adapter's base, or `path` itself)."""
        if not is_adapter_folder(self.path):
            return self.path
        try:
            return find_base_model(self.path)
        except (ValueError, FileNotFoundError) as error:
            raise ModelLoadError(str(error)) from error

    @cached_property
    def fingerprint(self) -> str:
        """Identity of the weights for the embeddings cache (adapter and base both count)."""
        if self.adapter_config is None:
            return model_fingerprint(self.path)
        return f"{model_fingerprint(self.path)}+{model_fingerprint(self.base_path)}"

    @cached_property
    def depth(self) -> int:
        """Number of decoder layers, read from the config without loading weights."""
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(self.base_path)
        except Exception as error:  # noqa: BLE001 - any failure here means "cannot load"; say why
            raise _load_failure(self.path, error) from error
        return int(config.get_text_config().num_hidden_layers)

    def load(self):
        """`(model, tokenizer)`, loaded once, in eval mode on `device`."""
        if self._loaded is not None:
            return self._loaded
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(self.base_path, dtype=dtype)
            if self.adapter_config is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, self.path)
            tokenizer_path = self.path if (Path(self.path) / "tokenizer_config.json").is_file() else self.base_path
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        except Exception as error:  # noqa: BLE001 - wrap every loader failure into one clear message
            raise _load_failure(self.path, error) from error
        model.to(device).eval()
        self._loaded = (model, tokenizer)
        return self._loaded
