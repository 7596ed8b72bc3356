"""AFP training rows for the cloned-language world, built from filler sentences and the dictionary, never
from a held-out entity's fact.

Each row carries both parts of AFP, as in the paper where every sample has an instruction and an MCL pair:
- a translation pair (`source_sentence` in L1, `target_sentence` its L2 clone) for the contrastive term;
- a cross-lingual instruction (`prompt` / `completion`) about the same sentence: "translate this
  sentence", "where is the X ?" or "what does the X see ?", asked in a random source language and answered
  in the other language with probability `cross_probability` (else in the same one), with the paper's
  template `"{instruction} {input} answer in {language} : {output}"`.

`entity_share` > 0 is the "entity-bearing pairs" variant: that share of rows is a dictionary entry of an
entity with a distinct L2 name instead (pair `"the fox"` / its L2 clone, whose last token is the entity;
instruction `"translate this word : fox answer in clonish :"`). Names are not facts: the held-out
entities' names may appear, their facts never do.

`kind` is `"instruction+pair"` for training rows and `"pair"` for the held-out retrieval pairs.

Example:
    >>> from xling_align.clone.world import build_world
    >>> rows = alignment_rows(build_world(), num_rows=2, seed=0)
    >>> sorted(rows[0])[:3]
    ['completion', 'kind', 'prompt']
"""

from __future__ import annotations

import random

from xling_align.clone.world import L1_NAME, L2_NAME, World

LANGUAGE_NAMES = {"l1": L1_NAME, "l2": L2_NAME}
# the alignment data's sentence stream must differ from the pretraining stream (seed offsets)
_SEED_OFFSET = 1_000_003
_HELDOUT_OFFSET = 2_000_029


def _instruction(sentence: str, rng: random.Random) -> tuple[str, str, str]:
    """(instruction, input, answer) in L1 for one filler sentence."""
    words = sentence.split()
    # "the E <verb> near the P" -> where is the E ?  /  "the E1 sees the E2 in the P" -> what does the E1 see ?
    if len(words) == 6 and words[0] == "the" and words[3] == "near" and rng.random() < 0.5:
        return f"where is the {words[1]} ?", sentence, f"near the {words[5]}"
    if len(words) == 8 and words[0] == "the" and words[5] == "in" and rng.random() < 0.5:
        return f"what does the {words[1]} see ?", sentence, f"the {words[4]}"
    return "translate this sentence :", sentence, sentence


def _entity_entry(world: World, rng: random.Random) -> tuple[str, str, str, str]:
    """(instruction, input, answer, pair source) for one dictionary entry of an entity with a distinct L2 name."""
    entity = rng.choice([e for e in world.entities if e not in world.anchors])
    return "translate this word :", entity, entity, f"the {entity}"


def alignment_rows(
    world: World, num_rows: int, seed: int = 0, cross_probability: float = 0.5, entity_share: float = 0.0
) -> list[dict]:
    """`num_rows` AFP rows (instruction + translation pair).

    Args:
        world: the cloned-language world.
        num_rows: rows to build.
        seed: seed of the sentences and of the language choices.
        cross_probability: probability that an instruction is answered in the other language.
        entity_share: fraction of rows that are entity dictionary entries (the entity-bearing variant).
    """
    for name, value in (("cross_probability", cross_probability), ("entity_share", entity_share)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}={value} is not a probability; use a value in [0, 1].")
    rng = random.Random(seed + _SEED_OFFSET)
    rows = []
    for _ in range(num_rows):
        if rng.random() < entity_share:
            instruction, text_input, answer, pair_source = _entity_entry(world, rng)
        else:
            sentence = world.filler_sentence(rng)
            instruction, text_input, answer = _instruction(sentence, rng)
            pair_source = sentence
        source = rng.choice(("l1", "l2"))
        target = ("l2" if source == "l1" else "l1") if rng.random() < cross_probability else source
        prompt = (
            f"{world.translate(instruction, source)} {world.translate(text_input, source)} "
            f"answer in {LANGUAGE_NAMES[target]} :"
        )
        rows.append(
            {
                "prompt": prompt,
                "completion": f" {world.translate(answer, target)} .",
                "source_sentence": pair_source,
                "target_sentence": world.to_l2(pair_source),
                "source_lang": "l1",
                "target_lang": "l2",
                "kind": "instruction+pair",
            }
        )
    return rows


def heldout_pairs(world: World, num_pairs: int, seed: int = 0) -> list[dict]:
    """Held-out L1-L2 translation pairs of filler sentences (another stream), for layer-wise retrieval.

    Sentences are distinct from each other, so retrieval has a single right answer.
    """
    rng = random.Random(seed + _HELDOUT_OFFSET)
    seen: set[str] = set()
    rows = []
    while len(rows) < num_pairs:
        sentence = world.filler_sentence(rng)
        if sentence in seen:
            continue
        seen.add(sentence)
        rows.append(
            {
                "prompt": "",
                "completion": "",
                "source_sentence": sentence,
                "target_sentence": world.to_l2(sentence),
                "source_lang": "l1",
                "target_lang": "l2",
                "kind": "pair",
            }
        )
    return rows


def entity_pairs(world: World) -> tuple[list[str], list[str], list[str]]:
    """(entities, L1 phrases, L2 phrases) for word-level retrieval: `"the fox"` and its clone, for every entity
    with a distinct L2 name (the representation read is the entity token's, the phrase's last)."""
    entities = [e for e in world.entities if e not in world.anchors]
    return entities, [f"the {e}" for e in entities], [world.to_l2(f"the {e}") for e in entities]
