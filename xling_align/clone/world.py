"""The synthetic bilingual world of the cloned-language testbed (v2).

L1 is a tiny English-like language about 80 entities in 5 categories, each entity with two facts: its
category and its colour. L2 is a real clone: every L1 word has a made-up L2 word (punctuation and the
digits are shared, as in real scripts), the grammar and the constructions are the same, and L2 text
states facts too. The entities are split three ways per category:

- **bilingual** entities: their facts are stated in L1 and in L2 text. A share of them (`anchor_share`)
  have the same name in both languages, as named entities often do: partial lexical anchors;
- **held-out dev** entities: their facts are stated only in L1 (the names appear in L2 filler text);
  used to choose the settings of alignment variants;
- **held-out test** entities: as dev, used only for the reported transfer figures.

A held-out entity's fact asked in L2 can only be answered by transferring what the model knows in L1.
Alignment data may use every entity's *name* (a dictionary entry is not a fact) but never a held-out fact.

Each fact has three paraphrases (answer last, in the middle, first), so a fact is not tied to one surface
form. Everything is a pure function of `WorldConfig`; nothing is downloaded.

Example:
    >>> from xling_align.clone.world import build_world
    >>> world = build_world()
    >>> world.fact_sentence("fox", "category")
    'the fox is a animal'
    >>> world.to_l2("the fox is a animal") != "the fox is a animal"
    True
    >>> len(world.bilingual_entities), len(world.dev_entities), len(world.test_entities)
    (40, 10, 30)
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from functools import cached_property

L1_NAME = "anglish"
L2_NAME = "clonish"
LANGUAGES = ("l1", "l2")
SPLITS = ("bilingual", "dev", "test")

# category -> entities (16 each)
CATEGORIES: dict[str, tuple[str, ...]] = {
    "animal": (
        "fox",
        "cat",
        "dog",
        "horse",
        "cow",
        "sheep",
        "goat",
        "wolf",
        "bear",
        "lion",
        "tiger",
        "mouse",
        "rabbit",
        "deer",
        "duck",
        "owl",
    ),
    "food": (
        "apple",
        "bread",
        "cheese",
        "rice",
        "soup",
        "cake",
        "egg",
        "pear",
        "plum",
        "grape",
        "lemon",
        "melon",
        "bean",
        "corn",
        "pie",
        "honey",
    ),
    "tool": (
        "hammer",
        "saw",
        "drill",
        "knife",
        "axe",
        "rake",
        "shovel",
        "wrench",
        "needle",
        "rope",
        "ladder",
        "brush",
        "chisel",
        "spade",
        "pliers",
        "clamp",
    ),
    "plant": (
        "oak",
        "pine",
        "rose",
        "tulip",
        "fern",
        "moss",
        "ivy",
        "lily",
        "daisy",
        "maple",
        "cactus",
        "bamboo",
        "willow",
        "clover",
        "orchid",
        "birch",
    ),
    "vehicle": (
        "car",
        "bus",
        "truck",
        "train",
        "boat",
        "ship",
        "bike",
        "plane",
        "tram",
        "van",
        "taxi",
        "canoe",
        "wagon",
        "sled",
        "jeep",
        "ferry",
    ),
}
COLORS = ("red", "blue", "green", "yellow", "black")
PLACES = ("river", "forest", "city", "farm", "house", "market", "hill", "lake")
OBJECTS = ("ball", "box", "hat", "cup", "flag")
TRANSITIVE_VERBS = ("sees", "likes", "finds", "meets")
# no verb prefers a category: the category must come from the facts, not from distribution
INTRANSITIVE_VERBS = ("walks", "waits", "stays", "rests")
FUNCTION_WORDS = ("the", "a", "is", "of", "color", "has", "belongs", "to", "group", "one", "near", "in", "every")
INSTRUCTION_WORDS = (
    "translate",
    "this",
    "sentence",
    "answer",
    "where",
    "what",
    "does",
    "see",
    "word",
    L1_NAME,
    L2_NAME,
)
# shared by both languages, like punctuation and digits in real scripts; the digits are the labels of the
# in-context task (a mapping that only the demonstrations give)
PUNCTUATION = (".", "?", ":")
LABELS = ("1", "2", "3", "4", "5")
SHARED_TOKENS = PUNCTUATION + LABELS

FACT_KINDS = ("category", "color")
# paraphrases of each fact ({e}: entity, {a}: answer); the first one, answer last, is the query form
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "category": ("the {e} is a {a}", "the {e} belongs to the {a} group", "one {a} is the {e}"),
    "color": ("the color of the {e} is {a}", "the {e} has a {a} color", "{a} is the color of the {e}"),
}

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and seed of the synthetic world (defaults = the shipped testbed).

    Args:
        seed: seed of every random choice (L2 words, colours, splits, anchors).
        dev_per_category: held-out entities per category used to choose alignment settings.
        test_per_category: held-out entities per category used only for the reported figures.
        anchor_share: fraction of the bilingual entities whose name is the same in L1 and L2.
    """

    seed: int = field(default=0, metadata={"help": "seed of the L2 lexicon, colours, splits and anchors"})
    dev_per_category: int = field(default=2, metadata={"help": "held-out dev entities per category"})
    test_per_category: int = field(default=6, metadata={"help": "held-out test entities per category"})
    anchor_share: float = field(
        default=0.5, metadata={"help": "fraction of bilingual entities with the same name in both languages"}
    )

    def __post_init__(self):
        per_category = min(len(m) for m in CATEGORIES.values())
        if self.dev_per_category < 1 or self.test_per_category < 1:
            raise ValueError(
                f"WorldConfig(dev_per_category={self.dev_per_category}, test_per_category={self.test_per_category}) "
                "leaves a held-out split empty; use at least 1 entity per category for each."
            )
        if self.dev_per_category + self.test_per_category > per_category - 2:
            raise ValueError(
                f"WorldConfig(dev_per_category={self.dev_per_category}, test_per_category={self.test_per_category}) "
                f"leaves fewer than 2 bilingual entities per category (out of {per_category}); the bilingual split "
                "needs scored entities and demonstration entities. Lower the held-out sizes."
            )
        if not 0.0 <= self.anchor_share < 1.0:
            raise ValueError(
                f"WorldConfig.anchor_share={self.anchor_share} must be in [0, 1): some bilingual "
                "entities need distinct L2 names."
            )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class World:
    """The lexicon, facts, splits and grammar of L1 and its L2 clone (build it with `build_world`)."""

    config: WorldConfig
    l2_words: dict[str, str]  # L1 word -> L2 word (anchors map to themselves)
    color_of: dict[str, str]
    split_of: dict[str, str]  # entity -> "bilingual" | "dev" | "test"
    anchors: frozenset[str]  # bilingual entities with a shared name

    # ---- lexicon -------------------------------------------------------------------------------
    @cached_property
    def entities(self) -> tuple[str, ...]:
        return tuple(e for members in CATEGORIES.values() for e in members)

    @cached_property
    def category_of(self) -> dict[str, str]:
        return {e: cat for cat, members in CATEGORIES.items() for e in members}

    def split(self, name: str) -> tuple[str, ...]:
        """Entities of a split ("bilingual", "dev", "test"), in table order."""
        if name not in SPLITS:
            raise ValueError(f"split={name!r} is not one of {SPLITS}.")
        return tuple(e for e in self.entities if self.split_of[e] == name)

    @cached_property
    def bilingual_entities(self) -> tuple[str, ...]:
        return self.split("bilingual")

    @cached_property
    def dev_entities(self) -> tuple[str, ...]:
        return self.split("dev")

    @cached_property
    def test_entities(self) -> tuple[str, ...]:
        return self.split("test")

    @cached_property
    def heldout_entities(self) -> tuple[str, ...]:
        return self.dev_entities + self.test_entities

    @cached_property
    def distinct_bilingual_entities(self) -> tuple[str, ...]:
        """Bilingual entities whose L2 name differs from the L1 name (the ones that need alignment)."""
        return tuple(e for e in self.bilingual_entities if e not in self.anchors)

    @cached_property
    def l1_vocabulary(self) -> tuple[str, ...]:
        return _l1_words()

    @cached_property
    def l2_vocabulary(self) -> tuple[str, ...]:
        return tuple(self.l2_words[w] for w in self.l1_vocabulary)

    @cached_property
    def l1_words_of_l2(self) -> dict[str, str]:
        return {v: k for k, v in self.l2_words.items()}

    def word(self, l1_word: str, lang: str) -> str:
        """The word for `l1_word` in `lang` ("l1" or "l2"); shared tokens are the same in both."""
        _check_lang(lang)
        if lang == "l1" or l1_word in SHARED_TOKENS:
            return l1_word
        return self.l2_words[l1_word]

    def to_l2(self, l1_sentence: str) -> str:
        """Word-by-word translation of an L1 sentence into L2 (the clone has the same word order)."""
        return " ".join(self.word(w, "l2") for w in l1_sentence.split())

    def translate(self, sentence: str, lang: str) -> str:
        """An L1 sentence rendered in `lang`."""
        return sentence if lang == "l1" else self.to_l2(sentence)

    def to_l1(self, sentence: str) -> str:
        """Read any sentence (L1, L2 or mixed) word by word in L1 (anchors and shared tokens stay)."""
        return " ".join(self.l1_words_of_l2.get(w, w) for w in sentence.split())

    def choices(self, fact: str, lang: str) -> list[str]:
        """The answer words of a fact question, in `lang`."""
        words = tuple(CATEGORIES) if fact == "category" else COLORS
        return [self.word(w, lang) for w in words]

    # ---- facts ---------------------------------------------------------------------------------
    def fact_answer(self, entity: str, fact: str) -> str:
        if fact == "category":
            return self.category_of[entity]
        if fact == "color":
            return self.color_of[entity]
        raise ValueError(f"fact={fact!r} is not one of {FACT_KINDS}; pass 'category' or 'color'.")

    def fact_prompt(self, entity: str, fact: str, lang: str = "l1") -> str:
        """The query form of a fact without its answer, e.g. 'the fox is a' (the evaluation query)."""
        template = PARAPHRASES[fact][0]
        return self.translate(template.replace(" {a}", "").format(e=entity), lang)

    def fact_sentence(self, entity: str, fact: str, lang: str = "l1", paraphrase: int = 0) -> str:
        """A full fact statement, e.g. 'the fox is a animal' (paraphrase 0) or 'one animal is the fox' (2)."""
        template = PARAPHRASES[fact][paraphrase]
        return self.translate(template.format(e=entity, a=self.fact_answer(entity, fact)), lang)

    def may_state_in_l2(self, entity: str) -> bool:
        """Whether the world lets L2 text state this entity's facts (only bilingual entities)."""
        return self.split_of[entity] == "bilingual"

    def stated_fact_entities(self, sentence: str) -> set[str]:
        """Entities whose facts (any paraphrase, true or false) a sentence states, read in L1.

        Used to audit L2 text and alignment data. Works on L1, L2 and code-switched text.
        """
        words = self.to_l1(sentence).split()
        found: set[str] = set()
        for fact, templates in PARAPHRASES.items():
            answers = set(CATEGORIES) if fact == "category" else set(COLORS)
            for template in templates:
                pattern = template.split()
                for start in range(len(words) - len(pattern) + 1):
                    window = words[start : start + len(pattern)]
                    entity = None
                    for slot, word in zip(pattern, window):
                        if slot == "{e}":
                            entity = word if word in self.category_of else None
                            if entity is None:
                                break
                        elif slot == "{a}":
                            if word not in answers:
                                entity = None
                                break
                        elif slot != word:
                            entity = None
                            break
                    if entity is not None:
                        found.add(entity)
        return found

    # ---- filler (non-fact) sentences -------------------------------------------------------------
    def filler_sentence(self, rng: random.Random) -> str:
        """One random L1 sentence that uses the entities but states no fact."""
        kind = rng.random()
        e1 = rng.choice(self.entities)
        place = rng.choice(PLACES)
        if kind < 0.35:
            return f"the {e1} {rng.choice(INTRANSITIVE_VERBS)} near the {place}"
        if kind < 0.75:
            e2 = rng.choice(self.entities)
            return f"the {e1} {rng.choice(TRANSITIVE_VERBS)} the {e2} in the {place}"
        if kind < 0.88:
            # colour words in context, never attached to an entity
            return f"a {rng.choice(COLORS)} {rng.choice(OBJECTS)} is near the {e1}"
        # category words in context, never attached to an entity
        return f"every {rng.choice(tuple(CATEGORIES))} {rng.choice(TRANSITIVE_VERBS)} the {place}"

    # ---- in-context episodes ---------------------------------------------------------------------
    def episode_sentence(self, entity: str, label: str, lang: str = "l1") -> str:
        """One line of an in-context episode, a labelled list: 'the fox 3' (the label holds in one episode only)."""
        return f"{self.episode_prompt(entity, lang)} {label}"

    def episode_prompt(self, entity: str, lang: str = "l1") -> str:
        return self.translate(f"the {entity}", lang)


def _l1_words() -> tuple[str, ...]:
    words: list[str] = []
    for group in (
        FUNCTION_WORDS,
        INSTRUCTION_WORDS,
        tuple(CATEGORIES),
        COLORS,
        PLACES,
        OBJECTS,
        TRANSITIVE_VERBS,
        INTRANSITIVE_VERBS,
        *CATEGORIES.values(),
    ):
        for w in group:
            if w not in words:
                words.append(w)
    return tuple(words)


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"lang={lang!r} is not one of {LANGUAGES}; pass 'l1' or 'l2'.")


def _made_up_words(n: int, rng: random.Random, avoid: set[str]) -> list[str]:
    """n distinct pronounceable words (CV syllables) that collide with nothing in `avoid`."""
    out: list[str] = []
    seen = set(avoid)
    while len(out) < n:
        syllables = rng.choice((2, 2, 3))
        word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def build_world(config: WorldConfig | None = None) -> World:
    """Build the world deterministically from `config` (default: the shipped testbed, seed 0)."""
    config = config or WorldConfig()
    rng = random.Random(config.seed)
    l1 = _l1_words()
    l2 = _made_up_words(len(l1), rng, avoid=set(l1))
    entities = [e for members in CATEGORIES.values() for e in members]
    # balanced colours, independent of category
    colors = [COLORS[i % len(COLORS)] for i in range(len(entities))]
    rng.shuffle(colors)
    split_of: dict[str, str] = {}
    anchors: set[str] = set()
    for members in CATEGORIES.values():
        order = list(members)
        rng.shuffle(order)
        dev = order[: config.dev_per_category]
        test = order[config.dev_per_category : config.dev_per_category + config.test_per_category]
        bilingual = order[config.dev_per_category + config.test_per_category :]
        split_of.update({e: "dev" for e in dev})
        split_of.update({e: "test" for e in test})
        split_of.update({e: "bilingual" for e in bilingual})
        anchors.update(bilingual[: round(config.anchor_share * len(bilingual))])
    l2_words = dict(zip(l1, l2))
    for entity in anchors:
        l2_words[entity] = entity
    return World(
        config=config,
        l2_words=l2_words,
        color_of=dict(zip(entities, colors)),
        split_of=split_of,
        anchors=frozenset(anchors),
    )
