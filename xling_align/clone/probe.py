"""A direct accuracy probe, independent of lm-eval: the answer word with the highest next-token log-probability.

Used for pilot runs and, in the tests, as the reference that lm-eval's scores on the clone tasks must match
(every answer is one token, so lm-eval's summed log-likelihood of a choice is this next-token score).

Example:
    >>> from xling_align.clone.probe import fact_accuracy  # doctest: +SKIP
    >>> fact_accuracy(model, tokenizer, world, world.test_entities, "l2")  # doctest: +SKIP
    0.43
"""

from __future__ import annotations

import torch

from xling_align.clone.world import FACT_KINDS, World

SEPARATOR = " . "


@torch.no_grad()
def choice_accuracy(
    model, tokenizer, prompts: list[str], choices: list[list[str]], labels: list[int], batch_size: int = 64
) -> float:
    """Fraction of prompts whose labelled choice (a single word) gets the highest next-token logit."""
    vocab = tokenizer.get_vocab()
    correct = 0
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        ids = [[vocab[w] for w in p.split()] for p in chunk]
        width = max(len(x) for x in ids)
        batch = torch.full((len(ids), width), tokenizer.pad_token_id)
        mask = torch.zeros_like(batch)
        for i, x in enumerate(ids):
            batch[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        logits = model(input_ids=batch, attention_mask=mask).logits
        last = logits[torch.arange(len(ids)), torch.tensor([len(x) - 1 for x in ids])]
        for row, options, label in zip(last, choices[start : start + batch_size], labels[start : start + batch_size]):
            scores = row[[vocab[w] for w in options]]
            correct += int(scores.argmax().item() == label)
    return correct / len(prompts)


def fact_accuracy(
    model, tokenizer, world: World, entities, lang: str, demonstrations: list[str] | None = None, facts=FACT_KINDS
) -> float:
    """Accuracy on every (entity, fact) question in `lang`, optionally after " . "-joined demonstrations."""
    prefix = SEPARATOR.join(demonstrations) + SEPARATOR if demonstrations else ""
    prompts, choices, labels = [], [], []
    for entity in entities:
        for fact in facts:
            prompts.append(prefix + world.fact_prompt(entity, fact, lang))
            choices.append(world.choices(fact, lang))
            labels.append(world.choices(fact, "l1").index(world.fact_answer(entity, fact)))
    return choice_accuracy(model, tokenizer, prompts, choices, labels)


def episode_accuracy(model, tokenizer, documents: list[dict]) -> float:
    """Accuracy on in-context documents (`query`, `choices`, `label`, as `xling_align.clone.tasks` builds them)."""
    return choice_accuracy(
        model,
        tokenizer,
        [d["query"] for d in documents],
        [d["choices"] for d in documents],
        [d["label"] for d in documents],
    )
