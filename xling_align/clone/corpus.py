"""The pretraining corpus of the cloned-language testbed: a stream of L1 and L2 units.

A unit is one sentence (a fact statement or filler) or an in-context episode ("the X N" lines
whose entity -> label mapping is drawn for the episode and repeated inside it, so that in-context learning
is something the model can learn).
Units are mostly L1; a share is L2. L1 text states every entity's facts, in its three paraphrases; L2 text
states only the bilingual entities' facts (held-out entities appear in L2 filler and episodes, never in an
L2 fact statement). The positive control adds code-switching: whole words of some L1 units replaced by their L2
words, never in a unit that states a held-out entity's fact.

Example:
    >>> import random
    >>> from xling_align.clone.world import build_world
    >>> from xling_align.clone.corpus import CorpusConfig, sample_unit
    >>> lang, text = sample_unit(build_world(), CorpusConfig(), random.Random(0))
    >>> lang in ("l1", "l2", "mixed")
    True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from xling_align.clone.world import (
    FACT_KINDS,
    INTRANSITIVE_VERBS,
    LABELS,
    OBJECTS,
    PARAPHRASES,
    PLACES,
    TRANSITIVE_VERBS,
    World,
)

SEPARATOR = " . "


@dataclass(frozen=True)
class CorpusConfig:
    """Mixture of the pretraining stream (defaults = the shipped base model).

    Args:
        l2_share: fraction of units in L2.
        fact_share: fraction of units (in either language) that state a fact.
        episode_share: fraction of units that are in-context episodes.
        episode_lines: (fewest, most) lines of an episode.
        label_episode_share: fraction of units that are label-word episodes (v3): episodes whose labels are
            arbitrary words drawn per episode from about a hundred (`label_words`), not the five digits, so the
            only way to predict a repeated line's label is to look it up in the context (0 = none, as in v2).
        code_switch_share: fraction of L1 units that are code-switched (0 = none; the control uses it).
        code_switch_rate: fraction of the words of a code-switched unit replaced by their L2 word.
    """

    l2_share: float = field(default=0.3, metadata={"help": "fraction of units in L2"})
    fact_share: float = field(default=0.45, metadata={"help": "fraction of units that state a fact"})
    episode_share: float = field(default=0.25, metadata={"help": "fraction of units that are in-context episodes"})
    episode_lines: tuple[int, int] = field(default=(5, 10), metadata={"help": "(fewest, most) lines per episode"})
    label_episode_share: float = field(
        default=0.0, metadata={"help": "fraction of units that are label-word episodes (arbitrary labels; v3)"}
    )
    code_switch_share: float = field(default=0.0, metadata={"help": "fraction of L1 units code-switched"})
    code_switch_rate: float = field(default=0.3, metadata={"help": "fraction of words switched in such a unit"})

    def __post_init__(self):
        for name in (
            "l2_share",
            "fact_share",
            "episode_share",
            "label_episode_share",
            "code_switch_share",
            "code_switch_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"CorpusConfig.{name}={value} is not a fraction; use a value in [0, 1].")
        total = self.fact_share + self.episode_share + self.label_episode_share
        if total > 1.0:
            raise ValueError(
                f"CorpusConfig.fact_share + episode_share + label_episode_share = {total} exceeds 1; lower one of them."
            )
        low, high = self.episode_lines
        if not 2 <= low <= high:
            raise ValueError(
                f"CorpusConfig.episode_lines={self.episode_lines} must be (fewest, most) with 2 <= fewest <= most."
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["episode_lines"] = list(self.episode_lines)
        return data


def fact_unit(world: World, lang: str, rng: random.Random) -> str:
    """A fact statement in a random paraphrase; in L2 only about bilingual entities."""
    entities = world.entities if lang == "l1" else world.bilingual_entities
    entity = rng.choice(entities)
    fact = rng.choice(FACT_KINDS)
    return world.fact_sentence(entity, fact, lang, paraphrase=rng.randrange(len(PARAPHRASES[fact])))


def episode_unit(world: World, lang: str, rng: random.Random, lines: tuple[int, int]) -> list[str]:
    """Lines 'the X N': a few entities with labels drawn for this episode only, repeated, so a line
    whose entity came before is predictable only by looking back (in-context learning)."""
    count = rng.randint(*lines)
    entities = rng.sample(world.entities, rng.randint(2, min(len(LABELS), count - 1)))
    labels = dict(zip(entities, rng.sample(LABELS, len(entities))))
    # every entity once, then repeats: the repeats are the in-context predictions
    order = entities + [rng.choice(entities) for _ in range(count - len(entities))]
    return [world.episode_sentence(e, labels[e], lang) for e in order]


def label_words(world: World, lang: str) -> tuple[str, ...]:
    """The label pool of label-word episodes in `lang`: the digits, places, objects, verbs and entity names
    (106 words). Colour and category words are left out, so no episode line pairs an entity with a fact word."""
    l1_words = (*LABELS, *PLACES, *OBJECTS, *TRANSITIVE_VERBS, *INTRANSITIVE_VERBS, *world.entities)
    return tuple(world.word(w, lang) if w not in LABELS else w for w in l1_words)


def label_episode_unit(world: World, lang: str, rng: random.Random, lines: tuple[int, int]) -> list[str]:
    """An episode like `episode_unit` whose labels are arbitrary words drawn for this episode (Chan et al. 2022:
    in-context learning emerges when the labels are many and each is rare, in-weights learning when they are few)."""
    count = rng.randint(*lines)
    entities = rng.sample(world.entities, rng.randint(2, min(len(LABELS), count - 1)))
    labels = dict(zip(entities, rng.sample(label_words(world, lang), len(entities))))
    order = entities + [rng.choice(entities) for _ in range(count - len(entities))]
    return [f"{world.episode_prompt(e, lang)} {labels[e]}" for e in order]


def code_switch(world: World, sentence: str, rate: float, rng: random.Random) -> str:
    """Replace each word by its L2 word with probability `rate`."""
    return " ".join(world.word(w, "l2") if rng.random() < rate else w for w in sentence.split())


def _may_code_switch(world: World, sentences: list[str]) -> bool:
    """Never mix languages in a unit that states a held-out entity's fact."""
    for sentence in sentences:
        if any(world.split_of[e] != "bilingual" for e in world.stated_fact_entities(sentence)):
            return False
    return True


def sample_unit(world: World, config: CorpusConfig, rng: random.Random) -> tuple[str, str]:
    """One unit of the stream as (language, text): language "l1", "l2" or "mixed" (code-switched L1)."""
    lang = "l2" if rng.random() < config.l2_share else "l1"
    kind = rng.random()
    if kind < config.fact_share:
        sentences = [fact_unit(world, lang, rng)]
    elif kind < config.fact_share + config.episode_share:
        sentences = episode_unit(world, lang, rng, config.episode_lines)
    elif kind < config.fact_share + config.episode_share + config.label_episode_share:
        sentences = label_episode_unit(world, lang, rng, config.episode_lines)
    else:
        sentences = [world.translate(world.filler_sentence(rng), lang)]
    if (
        lang == "l1"
        and config.code_switch_share
        and rng.random() < config.code_switch_share
        and _may_code_switch(world, sentences)
    ):
        switched = [code_switch(world, s, config.code_switch_rate, rng) for s in sentences]
        if switched != sentences:
            return "mixed", SEPARATOR.join(switched)
    return lang, SEPARATOR.join(sentences)


def unit_stream(world: World, config: CorpusConfig, seed: int) -> Iterator[tuple[str, str]]:
    """An endless deterministic stream of (language, unit text) pairs."""
    rng = random.Random(seed)
    while True:
        yield sample_unit(world, config, rng)


def token_blocks(
    world: World, config: CorpusConfig, vocab: dict[str, int], seed: int, num_blocks: int, block_size: int
) -> list[list[int]]:
    """`num_blocks` blocks of `block_size` token ids cut from the unit stream (each unit ends in ".")."""
    stream = unit_stream(world, config, seed)
    blocks: list[list[int]] = []
    buffer: list[int] = []
    period = vocab["."]
    while len(blocks) < num_blocks:
        _, text = next(stream)
        buffer.extend(vocab[w] for w in text.split())
        buffer.append(period)
        while len(buffer) >= block_size and len(blocks) < num_blocks:
            blocks.append(buffer[:block_size])
            buffer = buffer[block_size:]
    return blocks
