"""Held-out perplexity per language: what aligning a model cost its language modelling (forgetting).

`text_perplexity(model, tokenizer, texts)` scores every token of each text after its first (the first has no
context unless the tokenizer adds a BOS token, which then serves as context), batched with right padding,
summing the negative log-likelihood over all tokens of all texts: perplexity = exp(total NLL / tokens), the
corpus-level figure (not a mean of per-text perplexities). `xling-align analyze` reports it per language of
`--pairs` for each model, and its change with `--compare`.

Example:
    >>> from transformers import ByT5Tokenizer
    >>> from xling_align.tiny_models import TINY_MODEL_PREFIX, build_tiny_model
    >>> model, _ = build_tiny_model(TINY_MODEL_PREFIX + "llama")
    >>> scores = text_perplexity(model, ByT5Tokenizer(), ["Good morning", "Guten Morgen"])
    >>> scores["texts"], scores["tokens"] > 0
    (2, True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xling_align.alignment.pooling import pad_right


def text_perplexity(model, tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 512) -> dict:
    """`{"perplexity", "mean_nll", "tokens", "texts"}` of `texts` under `model` (eval mode, no gradient)."""
    if not texts:
        raise ValueError("no text to score: the perplexity of an empty set of texts is undefined.")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            encoded = [
                tokenizer(text, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
                for text in texts[start : start + batch_size]
            ]
            input_ids, mask = pad_right(encoded, pad_id or 0)  # right padding: positions as unpadded
            input_ids, mask = input_ids.to(device), mask.to(device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            targets = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            total += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
            ).item()
            tokens += int(targets.ne(-100).sum())
    if tokens == 0:
        raise ValueError(
            "every text is a single token, so no token has context to be predicted from; give longer "
            "texts to measure perplexity."
        )
    mean_nll = total / tokens
    return {"perplexity": math.exp(mean_nll), "mean_nll": mean_nll, "tokens": tokens, "texts": len(texts)}


def sentences_by_language(pairs: dict[tuple[str, str], list[tuple[str, str]]]) -> dict[str, list[str]]:
    """The distinct sentences of each language of the analysis pairs, in file order."""
    by_language: dict[str, dict[str, None]] = {}
    for (lang_a, lang_b), sentence_pairs in pairs.items():
        for sentence_a, sentence_b in sentence_pairs:
            by_language.setdefault(lang_a, {})[sentence_a] = None
            by_language.setdefault(lang_b, {})[sentence_b] = None
    return {language: list(sentences) for language, sentences in by_language.items()}


def language_perplexities(model, tokenizer, pairs, batch_size: int = 16, max_length: int = 512) -> dict[str, dict]:
    """`{language: text_perplexity(...)}` over the held-out sentences of each language of `pairs`."""
    return {
        language: text_perplexity(model, tokenizer, sentences, batch_size, max_length)
        for language, sentences in sentences_by_language(pairs).items()
    }
