"""Tiny random test models that need no download: `xling-align/tiny-random-<arch>`.

These ids are NOT on the Hugging Face hub and the models are NOT pretrained: they are randomly
initialised, a few layers wide and deep, built from a transformers config with a fixed seed, and paired
with the byte-level `transformers.ByT5Tokenizer()` (any language, no files). They exist so that a recipe
(`recipes/tiny.yaml`), a test or a CI job can run the whole training pipeline offline on a laptop CPU in
seconds. The numbers they produce say nothing about a real model.

Example:
    >>> from xling_align.tiny_models import build_tiny_model, is_tiny_model_id
    >>> is_tiny_model_id("xling-align/tiny-random-xglm")
    True
    >>> model, tokenizer = build_tiny_model("xling-align/tiny-random-xglm")
    >>> model.config.model_type, model.config.num_layers, len(tokenizer)
    ('xglm', 2, 384)
"""

from __future__ import annotations

import difflib

TINY_MODEL_PREFIX = "xling-align/tiny-random-"
TINY_ARCHITECTURES = ("xglm", "bloom", "llama", "qwen2", "gpt2")
_BYTE_VOCAB_SIZE = 384  # len(ByT5Tokenizer()): 256 bytes + 3 special tokens + 125 extra ids
_HIDDEN, _HEADS = 32, 4
DEFAULT_LAYERS = 2


def is_tiny_model_id(name: str | None) -> bool:
    """Whether `name` asks for one of the built-in random test models."""
    return bool(name) and name.startswith(TINY_MODEL_PREFIX)


def _config_for(arch: str, num_layers: int):
    import transformers as tf

    # ByT5Tokenizer: pad id 0, eos id 1, no bos: the model config must agree or generation/padding break
    ids = dict(vocab_size=_BYTE_VOCAB_SIZE, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    if arch == "xglm":
        return tf.XGLMConfig(
            d_model=_HIDDEN,
            num_layers=num_layers,
            attention_heads=_HEADS,
            ffn_dim=2 * _HIDDEN,
            max_position_embeddings=1024,
            decoder_start_token_id=1,
            **ids,
        )
    if arch == "bloom":
        return tf.BloomConfig(hidden_size=_HIDDEN, n_layer=num_layers, n_head=_HEADS, **ids)
    if arch == "llama":
        return tf.LlamaConfig(
            hidden_size=_HIDDEN,
            intermediate_size=2 * _HIDDEN,
            num_hidden_layers=num_layers,
            num_attention_heads=_HEADS,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            **ids,
        )
    if arch == "qwen2":
        return tf.Qwen2Config(
            hidden_size=_HIDDEN,
            intermediate_size=2 * _HIDDEN,
            num_hidden_layers=num_layers,
            num_attention_heads=_HEADS,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            **ids,
        )
    return tf.GPT2Config(n_embd=_HIDDEN, n_layer=num_layers, n_head=_HEADS, n_positions=1024, **ids)


def build_tiny_model(name: str, seed: int = 0, num_layers: int = DEFAULT_LAYERS):
    """Build the random test model `name` (`xling-align/tiny-random-<arch>`) and its byte tokenizer.

    Args:
        name: `xling-align/tiny-random-` followed by one of `xglm`, `bloom`, `llama`, `qwen2`, `gpt2`.
        seed: initialisation seed; the same seed gives the same weights, and the global torch random
            state is left untouched (so a trainer's own seeding is not disturbed).
        num_layers: decoder layers (the recipe's test models have 2; tests of layer-wise code use more).

    Returns:
        `(model, tokenizer)`: a float32 `AutoModelForCausalLM` (hidden size 32) and
        `transformers.ByT5Tokenizer()`.
    """
    import torch
    from transformers import AutoModelForCausalLM, ByT5Tokenizer

    arch = name[len(TINY_MODEL_PREFIX) :] if is_tiny_model_id(name) else ""
    if arch not in TINY_ARCHITECTURES:
        close = difflib.get_close_matches(arch, TINY_ARCHITECTURES, n=1)
        hint = f" Did you mean {TINY_MODEL_PREFIX}{close[0]}?" if close else ""
        raise ValueError(
            f"unknown test model {name!r}: the built-in random test models are "
            f"{', '.join(TINY_MODEL_PREFIX + a for a in TINY_ARCHITECTURES)}.{hint}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(_config_for(arch, num_layers))
    return model, ByT5Tokenizer()
