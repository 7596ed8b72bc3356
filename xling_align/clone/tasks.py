"""Datasets of the `xling_clone_*` lm-eval tasks (`custom_dataset: !function xling_align.clone.tasks.<fn>`).

Two kinds of documents:

- `fact_questions`: one multiple-choice question per (entity, fact) of an entity split: the category
  (`"the fox is a"` -> animal / food / tool / plant / vehicle) or the colour (`"the color of the fox is"`
  -> red / blue / green / yellow / black), in the query language. The `train` split (few-shot
  demonstrations) holds fact statements of bilingual entities that are not scored in the task, in the
  demonstration language.
- `in_context_episodes`: the in-context task. Each document carries its own random entity -> label
  mapping (labels 1-5, shared by both languages), shown only by its five demonstrations
  (`"the X N"`), then the query `"the Y"` about one of the five entities. Nothing in
  pretraining fixes the mapping, so only in-context learning answers it. In the cross-lingual variant
  (L1 demonstrations, L2 query) the model must also recognise the L2 name of an entity it saw in L1: the
  in-context part of transfer, with no fact involved.

The world is rebuilt from lm-eval's metadata (`seed`, `anchor_share`, `dev_per_category`,
`test_per_category`; defaults = the shipped checkpoints' world), so it must match the model's
`clone_world.json`; `xling_align.clone.evaluation` passes it.

Example:
    >>> ds = fact_questions(split="test", query_lang="l2", demo_lang="l1")
    >>> sorted(ds)
    ['test', 'train']
    >>> len(ds["test"]), len(ds["train"])
    (60, 80)
"""

from __future__ import annotations

import random

from datasets import Dataset, DatasetDict

from xling_align.clone.world import FACT_KINDS, LABELS, LANGUAGES, SPLITS, World, WorldConfig, build_world

_EPISODE_SEED_OFFSET = 7_919


def world_from_metadata(
    seed: int = 0,
    anchor_share: float | None = None,
    dev_per_category: int | None = None,
    test_per_category: int | None = None,
    **_ignored,
) -> World:
    """The world named by lm-eval metadata (missing fields take `WorldConfig`'s defaults)."""
    given = {"anchor_share": anchor_share, "dev_per_category": dev_per_category, "test_per_category": test_per_category}
    return build_world(WorldConfig(seed=int(seed), **{k: v for k, v in given.items() if v is not None}))


def scored_entities(world: World, split: str) -> tuple[str, ...]:
    """The entities a task scores: a held-out split, or the bilingual entities whose L2 name differs."""
    if split == "bilingual":
        return world.distinct_bilingual_entities
    return world.split(split)


def fact_rows(world: World, lang: str, entities) -> list[dict]:
    """One multiple-choice row per (entity, fact): `query`, `choices`, `label`, `entity`, `fact`, `answer`."""
    return [
        {
            "entity": entity,
            "fact": fact,
            "query": world.fact_prompt(entity, fact, lang),
            "choices": world.choices(fact, lang),
            "label": world.choices(fact, "l1").index(world.fact_answer(entity, fact)),
            "answer": world.word(world.fact_answer(entity, fact), lang),
        }
        for entity in entities
        for fact in FACT_KINDS
    ]


def _check(split: str, langs: dict[str, str]) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not an entity split; use one of {SPLITS}.")
    for name, lang in langs.items():
        if lang not in LANGUAGES:
            raise ValueError(f"{name}={lang!r} is not a clone language; use one of {LANGUAGES}.")


def fact_questions(
    split: str = "test", query_lang: str = "l2", demo_lang: str | None = None, **metadata
) -> DatasetDict:
    """The DatasetDict of one fact task (lm-eval's other metadata keyword arguments are ignored).

    Args:
        split: entities scored: "test" / "dev" (held-out: facts only in L1) or "bilingual".
        query_lang: language of the scored queries ("l1" or "l2").
        demo_lang: language of the demonstrations (default: `query_lang`).
        metadata: the world's fields (see `world_from_metadata`).
    """
    demo_lang = demo_lang or query_lang
    _check(split, {"query_lang": query_lang, "demo_lang": demo_lang})
    world = world_from_metadata(**metadata)
    scored = scored_entities(world, split)
    demonstrations = [e for e in world.bilingual_entities if e not in scored]
    if not scored or not demonstrations:
        raise ValueError(
            f"the world {world.config} leaves the {split!r} task without scored entities or "
            "demonstration entities; use a world with every split non-empty."
        )
    return DatasetDict(
        {
            "test": Dataset.from_list(fact_rows(world, query_lang, scored)),
            "train": Dataset.from_list(fact_rows(world, demo_lang, demonstrations)),
        }
    )


def episode_rows(world: World, query_lang: str, demo_lang: str, seed: int | None = None) -> list[dict]:
    """In-context documents, one per entity with a distinct L2 name: five demonstrations (that entity and four
    others, labels 1-5 drawn for the document), then the query about that entity. `seed` draws other documents
    than the scored ones (the v3 pilot's)."""
    rng = random.Random(world.config.seed + _EPISODE_SEED_OFFSET if seed is None else seed)
    rows = []
    for entity in (e for e in world.entities if e not in world.anchors):
        shown = [entity, *rng.sample([e for e in world.entities if e != entity], len(LABELS) - 1)]
        labels = dict(zip(shown, rng.sample(LABELS, len(LABELS))))
        rng.shuffle(shown)
        demos = [world.episode_sentence(e, labels[e], demo_lang) for e in shown]
        rows.append(
            {
                "entity": entity,
                "query": " . ".join([*demos, world.episode_prompt(entity, query_lang)]),
                "choices": list(LABELS),
                "label": LABELS.index(labels[entity]),
                "answer": labels[entity],
            }
        )
    return rows


def in_context_episodes(query_lang: str = "l2", demo_lang: str = "l1", **metadata) -> DatasetDict:
    """The DatasetDict of one in-context task (the demonstrations are inside each document)."""
    _check("bilingual", {"query_lang": query_lang, "demo_lang": demo_lang})
    world = world_from_metadata(**metadata)
    return DatasetDict({"test": Dataset.from_list(episode_rows(world, query_lang, demo_lang))})
