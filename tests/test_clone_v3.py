"""Testbed v3: label-word episodes, continued pretraining from a checkpoint, the v3 arms' settings."""

import json
import random

import pytest
import torch

from xling_align.clone.corpus import CorpusConfig, label_episode_unit, label_words, unit_stream
from xling_align.clone.pretrain import PRETRAIN_FILE, PretrainConfig, load_checkpoint, pretrain
from xling_align.clone.world import CATEGORIES, COLORS, WorldConfig, build_world

TINY = dict(
    steps=2,
    batch_size=2,
    block_size=16,
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    warmup_steps=1,
)


def test_label_word_episodes_bind_each_entity_to_one_word_label_and_state_no_fact():
    world = build_world()
    rng = random.Random(3)
    fact_words = set(COLORS) | set(CATEGORIES)
    for lang in ("l1", "l2"):
        pool = label_words(world, lang)
        assert len(pool) == len(set(pool)) > 100
        assert not fact_words & {world.to_l1(w) for w in pool}  # no line pairs an entity with a fact word
        for _ in range(200):
            lines = label_episode_unit(world, lang, rng, (5, 10))
            labels = {}
            for line in lines:
                words = line.split()
                entity, label = " ".join(words[:-1]), words[-1]
                assert labels.setdefault(entity, label) == label  # the binding holds inside the episode
                assert label in pool
            assert len(labels) < len(lines)  # repeats: the in-context predictions


def test_held_out_facts_never_appear_in_l2_text_with_label_word_episodes():
    world = build_world()
    stream = unit_stream(
        world, CorpusConfig(fact_share=0.35, episode_share=0.1, label_episode_share=0.4, code_switch_share=0.5), seed=1
    )
    label_lines = 0
    for _ in range(1500):
        lang, text = next(stream)
        sentences = text.split(" . ")
        stated = set().union(*(world.stated_fact_entities(s) for s in sentences))
        if lang != "l1":
            assert stated <= set(world.bilingual_entities), (lang, text)
        label_lines += sum(1 for s in sentences if len(s.split()) == 3 and not s.split()[-1].isdigit())
    assert label_lines > 500  # the audit saw label-word episodes


def test_shares_over_one_are_refused():
    with pytest.raises(ValueError, match="label_episode_share = 1.2.* exceeds 1"):
        CorpusConfig(fact_share=0.5, episode_share=0.3, label_episode_share=0.4)


def test_a_v2_run_records_no_v3_field_and_a_continued_run_starts_from_the_checkpoint(tmp_path):
    start = pretrain(PretrainConfig(seed=0, **TINY), tmp_path / "start", progress=False)
    record = json.loads((start / PRETRAIN_FILE).read_text())
    assert not {"label_episode_share", "init_from", "corpus_seed"} & set(record)  # v2 manifests unchanged
    # a continuation with a zero learning rate keeps the weights: it really starts from the checkpoint
    still = pretrain(
        PretrainConfig(seed=0, **TINY, learning_rate=0.0, init_from=str(start), corpus_seed=5, label_episode_share=0.3),
        tmp_path / "still",
        progress=False,
    )
    moved = pretrain(
        PretrainConfig(seed=0, **TINY, init_from=str(start), corpus_seed=5, label_episode_share=0.3),
        tmp_path / "moved",
        progress=False,
    )
    weights = [load_checkpoint(folder)[0].state_dict() for folder in (start, still, moved)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert json.loads((moved / PRETRAIN_FILE).read_text())["init_from"] == str(start)


def test_a_continuation_refuses_a_checkpoint_of_another_world(tmp_path):
    start = pretrain(PretrainConfig(seed=0, **TINY), tmp_path / "start", progress=False)
    with pytest.raises(ValueError, match="was pretrained on world"):
        pretrain(
            PretrainConfig(seed=0, **TINY, anchor_share=0.25, init_from=str(start)), tmp_path / "x", progress=False
        )
    assert WorldConfig().anchor_share != 0.25


def test_v3_arm_settings_and_plan_checks():
    from xling_align.clone.alignment import arm_settings
    from xling_align.clone.experiment import ExperimentError, ExperimentPlan

    assert arm_settings("afp_layers", layers=[1, 2]).contrastive_layer == [1, 2]
    assert arm_settings("afp_words", layers=[1, 2], word_share=0.5).entity_share == 0.5
    assert arm_settings("afp_mid", layers=[1, 2]).contrastive_layer == 3  # not afp_mid's setting
    assert arm_settings("cpt_align").method == "continued_pretraining"
    with pytest.raises(ExperimentError, match="layers=\\[1, 2\\] applies to the 'afp_layers' or 'afp_words'"):
        ExperimentPlan(arms=["base", "afp"], layers=[1, 2])


def test_v3_checkpoints_record_the_shipped_v2_folders_they_continue_and_all_fit_the_wheel():
    from xling_align.clone.checkpoints import ARMS_DIR, PRETRAINED_DIRS, RESOURCES
    from xling_align.clone.checksum import verify_manifest
    from xling_align.clone.pretrain import PRESETS
    from xling_align.package_paths import resolve_path

    for arm, preset in (("base", "base_v3"), ("control", "control_v3")):
        record = json.loads((PRETRAINED_DIRS[arm] / PRETRAIN_FILE).read_text())
        assert record["init_from"] == PRESETS[preset]["init_from"]
        assert record["label_episode_share"] == PRESETS[preset]["label_episode_share"] > 0
        verify_manifest(resolve_path(record["init_from"]))  # what v3 continues from ships, intact
    folders = [p for p in RESOURCES.iterdir() if p.name.startswith("clone_") and p != ARMS_DIR]
    folders += [p for p in ARMS_DIR.iterdir() if p.is_dir()]
    total = sum(f.stat().st_size for folder in folders for f in folder.iterdir())
    assert total < 20_000_000, f"shipped clone checkpoints take {total / 1e6:.1f} MB"
