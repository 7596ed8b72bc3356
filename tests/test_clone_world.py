"""The cloned-language world (v2): determinism, splits, the clone lexicon, and held-out facts kept out of L2
text and alignment data."""

import random

import pytest

from xling_align.clone.alignment_data import alignment_rows, entity_pairs, heldout_pairs
from xling_align.clone.corpus import CorpusConfig, code_switch, unit_stream
from xling_align.clone.tokenizer import build_tokenizer
from xling_align.clone.world import FACT_KINDS, PARAPHRASES, SHARED_TOKENS, SPLITS, WorldConfig, build_world


def test_world_is_a_pure_function_of_its_config():
    a, b = build_world(WorldConfig(seed=3)), build_world(WorldConfig(seed=3))
    assert a.l2_words == b.l2_words and a.color_of == b.color_of and a.split_of == b.split_of
    assert a.anchors == b.anchors
    other = build_world(WorldConfig(seed=4))
    assert other.l2_words != a.l2_words and other.split_of != a.split_of


def test_splits_are_disjoint_non_empty_and_cover_every_entity():
    world = build_world()
    groups = [set(world.split(name)) for name in SPLITS]
    assert all(groups) and sum(len(g) for g in groups) == len(world.entities)
    assert set().union(*groups) == set(world.entities)
    assert world.anchors <= set(world.bilingual_entities)
    # every category has entities in every split (so each split can be scored and balanced)
    for split in SPLITS:
        assert {world.category_of[e] for e in world.split(split)} == set(world.category_of.values())
    assert (len(world.bilingual_entities), len(world.dev_entities), len(world.test_entities)) == (40, 10, 30)


def test_held_out_entities_have_distinct_l2_names_and_the_lexicon_is_one_to_one():
    world = build_world()
    for entity in world.heldout_entities + world.distinct_bilingual_entities:
        assert world.l2_words[entity] != entity
    for entity in world.anchors:
        assert world.l2_words[entity] == entity
    l2 = [world.l2_words[w] for w in world.l1_vocabulary]
    assert len(set(l2)) == len(l2)  # no two L1 words share an L2 word
    distinct = {w for w in l2 if w not in world.anchors}
    assert not distinct & set(world.l1_vocabulary) and not distinct & set(SHARED_TOKENS)


def test_tokenizer_gives_one_token_per_word_and_anchors_share_their_token():
    world = build_world()
    tokenizer = build_tokenizer(world)
    sentence = world.to_l2("the color of the fox is red") + " ."
    ids = tokenizer(sentence)["input_ids"]
    assert len(ids) == len(sentence.split()) and tokenizer.unk_token_id not in ids
    anchor = sorted(world.anchors)[0]
    assert tokenizer(anchor)["input_ids"] == tokenizer(world.word(anchor, "l2"))["input_ids"]
    assert len(tokenizer) == 4 + len(SHARED_TOKENS) + 2 * len(world.l1_vocabulary) - len(world.anchors)


def test_every_paraphrase_is_recognised_as_a_fact_in_both_languages():
    world = build_world()
    for fact in FACT_KINDS:
        for paraphrase in range(len(PARAPHRASES[fact])):
            for lang in ("l1", "l2"):
                sentence = world.fact_sentence("fox", fact, lang, paraphrase)
                assert world.stated_fact_entities(sentence) == {"fox"}, sentence
    mixed = code_switch(world, world.fact_sentence("fox", "color", paraphrase=2), 0.5, random.Random(1))
    assert world.stated_fact_entities(mixed) == {"fox"}
    assert world.stated_fact_entities("the fox sees the cat in the river") == set()


@pytest.mark.parametrize("control", [False, True])
def test_held_out_facts_never_appear_in_l2_or_mixed_pretraining_text(control):
    world = build_world()
    config = CorpusConfig(code_switch_share=0.5 if control else 0.0)
    stream = unit_stream(world, config, seed=0)
    seen = {"l1": 0, "l2": 0, "mixed": 0}
    held_out_l1_facts = 0
    for _ in range(6000):
        lang, text = next(stream)
        seen[lang] += 1
        stated = set().union(*(world.stated_fact_entities(s) for s in text.split(" . ")))
        if lang == "l1":
            held_out_l1_facts += bool(stated & set(world.heldout_entities))
            assert all(w in world.l1_vocabulary or w in SHARED_TOKENS for w in text.split())
        else:
            assert stated <= set(world.bilingual_entities), (lang, text)
    # the audit saw every kind of text, and it can fail: held-out facts are there in L1
    assert seen["l2"] > 1000 and held_out_l1_facts > 100
    assert (seen["mixed"] > 500) == control


@pytest.mark.parametrize("entity_share", [0.0, 0.5])
def test_alignment_data_never_contains_a_held_out_fact(entity_share):
    world = build_world()
    rows = alignment_rows(world, num_rows=600, seed=0, entity_share=entity_share) + heldout_pairs(world, 200)
    for row in rows:
        for key in ("prompt", "completion", "source_sentence", "target_sentence"):
            assert not world.stated_fact_entities(row[key]), (key, row[key])
    names = {w for r in rows for w in r["source_sentence"].split()} & set(world.heldout_entities)
    assert names  # held-out names (not facts) do occur, so the audit looked at them


def test_alignment_rows_are_cross_lingual_and_the_entity_variant_adds_dictionary_pairs():
    world = build_world()
    rows = alignment_rows(world, num_rows=400, seed=1)
    assert all(r["target_sentence"] == world.to_l2(r["source_sentence"]) for r in rows)
    asked_in_l2 = [r["prompt"].split()[0] not in world.l1_vocabulary for r in rows]
    crossed = [r for r, l2 in zip(rows, asked_in_l2) if ("answer in clonish" in r["prompt"]) != l2]
    assert 0.3 < sum(asked_in_l2) / len(rows) < 0.7
    assert 0.3 < len(crossed) / len(rows) < 0.7  # cross_probability 0.5
    entity_rows = alignment_rows(world, num_rows=400, seed=1, entity_share=0.5)
    short = [r for r in entity_rows if len(r["source_sentence"].split()) == 2]
    assert 0.4 < len(short) / len(entity_rows) < 0.6
    assert all(r["source_sentence"].split()[1] not in world.anchors for r in short)
    entities, sources, targets = entity_pairs(world)
    assert len(entities) == len(world.entities) - len(world.anchors) and targets[0] == world.to_l2(sources[0])


def test_empty_splits_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="test_per_category=0.*empty"):
        WorldConfig(test_per_category=0)
    with pytest.raises(ValueError, match="fewer than 2 bilingual"):
        WorldConfig(dev_per_category=7, test_per_category=8)
    with pytest.raises(ValueError, match="anchor_share"):
        WorldConfig(anchor_share=1.0)
    with pytest.raises(ValueError, match="l2_share"):
        CorpusConfig(l2_share=1.5)
    with pytest.raises(ValueError, match="entity_share"):
        alignment_rows(build_world(), 1, entity_share=2)
    with pytest.raises(ValueError, match="lang"):
        build_world().word("fox", "l3")
