"""Testbed v4 (forgetting arms): replay documents from the base's own corpus, the arms' settings, the shipped arms'
records unchanged, and a short LoRA + replay alignment run."""

import json

import pytest

from xling_align.clone.alignment import (
    ARMS,
    REPLAY_DOCUMENT_WORDS,
    AlignmentSettings,
    align,
    arm_settings,
    replay_documents,
)
from xling_align.clone.checkpoints import ARMS_DIR, PRETRAINED_DIRS
from xling_align.clone.experiment import ExperimentError, ExperimentPlan
from xling_align.clone.pretrain import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_replay_documents_are_the_bases_corpus_text_and_state_no_held_out_fact_in_l2():
    _, tokenizer, world = load_checkpoint(PRETRAINED_DIRS["base"])
    documents = replay_documents(PRETRAINED_DIRS["base"], 40, seed=0)
    assert len(documents) == 40 and len(set(documents)) == 40
    assert all(len(document.split()) == REPLAY_DOCUMENT_WORDS for document in documents)
    vocabulary = tokenizer.get_vocab()
    assert all(word in vocabulary for document in documents for word in document.split())  # no unknown word
    l2_only = set(world.l2_words.values()) - set(world.l2_words)  # words that mark a sentence as L2
    l2_sentences = 0
    for document in documents:
        for sentence in document.split(" . "):
            if set(sentence.split()) & l2_only:
                l2_sentences += 1
                assert world.stated_fact_entities(sentence) <= set(world.bilingual_entities), sentence
    assert l2_sentences > 0  # the audit saw L2 text
    assert replay_documents(PRETRAINED_DIRS["base"], 5, seed=1) != documents[:5]  # the seed picks the stream


def test_shipped_arms_records_still_match_their_settings():
    # the v4 fields are left out of a record when unset, so the demo keeps loading the shipped arms
    for arm in ("cif", "mcl", "cpt_align"):
        record = json.loads((ARMS_DIR / arm / "alignment.json").read_text())
        assert record["settings"] == ARMS[arm].to_dict()
    assert ARMS["afp_replay25"].to_dict()["replay_share"] == 0.25
    assert ARMS["afp_lora"].to_dict()["lora"] is True


def test_replay_share_of_the_combined_arms_and_its_plan_check():
    assert arm_settings("afp_words_replay", replay_share=0.25).replay_share == 0.25
    assert arm_settings("afp_replay50", replay_share=0.25).replay_share == 0.5  # not a combined arm
    with pytest.raises(ExperimentError, match="replay_share=0.25 applies to"):
        ExperimentPlan(arms=["base", "afp"], replay_share=0.25)


def test_a_short_lora_replay_alignment_returns_a_merged_model(tmp_path):
    from dataclasses import replace

    from xling_align.clone.alignment_data import alignment_rows

    _, tokenizer, world = load_checkpoint(PRETRAINED_DIRS["base"])
    rows = alignment_rows(world, 16, seed=0)
    settings = replace(ARMS["afp_lora"], replay_share=0.5)
    model = align(
        PRETRAINED_DIRS["base"],
        tokenizer,
        rows,
        settings,
        AlignmentSettings(steps=2, batch_size=8),
        tmp_path,
        progress=False,
    )
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training  # LoRA merged, eval mode
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_module_examples():
    import doctest

    from xling_align.clone import alignment

    assert doctest.testmod(alignment).failed == 0
