"""The xling_clone_* lm-eval tasks: documents, the generated YAMLs (`--check`), and lm-eval's scores of the
shipped base model against an independent probe."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from xling_align.clone.tasks import episode_rows, fact_questions, in_context_episodes  # noqa: E402
from xling_align.clone.world import LABELS, WorldConfig, build_world  # noqa: E402


def test_fact_documents_score_one_split_and_demonstrate_with_other_bilingual_entities():
    world = build_world()
    ds = fact_questions(split="test", query_lang="l2", demo_lang="l1", version=2.0)  # lm-eval passes metadata
    assert {r["entity"] for r in ds["test"]} == set(world.test_entities)
    assert len(ds["test"]) == 2 * len(world.test_entities)  # both facts
    assert {r["entity"] for r in ds["train"]} == set(world.bilingual_entities)
    row = ds["test"][0]
    assert row["query"] == world.fact_prompt(row["entity"], row["fact"], "l2")
    assert row["choices"][row["label"]] == world.word(world.fact_answer(row["entity"], row["fact"]), "l2")
    assert ds["train"][0]["query"].split()[0] == "the"  # L1 demonstrations
    bilingual = fact_questions(split="bilingual", query_lang="l2")
    scored = {r["entity"] for r in bilingual["test"]}
    assert scored == set(world.distinct_bilingual_entities)
    assert not scored & {r["entity"] for r in bilingual["train"]}  # never demonstrate a scored entity


def test_documents_follow_the_world_in_the_metadata():
    small = fact_questions(split="dev", query_lang="l1", seed=0, dev_per_category=1, test_per_category=3)
    assert len(small["test"]) == 2 * 5  # one dev entity per category, two facts
    other = fact_questions(split="dev", query_lang="l1", seed=5)
    assert {r["entity"] for r in other["test"]} == set(build_world(WorldConfig(seed=5)).dev_entities)


def test_in_context_documents_carry_their_own_mapping():
    world = build_world()
    rows = episode_rows(world, "l2", "l1")
    assert len(rows) == len(world.entities) - len(world.anchors)
    for row in rows[:20]:
        *demos, query = row["query"].split(" . ")
        assert len(demos) == len(LABELS) and query == world.episode_prompt(row["entity"], "l2")
        shown = {d.split()[1]: d.split()[2] for d in demos}  # L1 demonstrations: "the X N"
        assert shown[row["entity"]] == row["answer"] == LABELS[row["label"]]
        assert sorted(shown.values()) == list(LABELS)
    # the mapping is per document: the same entity gets different labels across documents of other seeds
    answers = {r["entity"]: r["answer"] for r in episode_rows(build_world(WorldConfig(seed=1)), "l1", "l1")}
    assert len(set(answers.values())) == len(LABELS)
    assert sorted(in_context_episodes(query_lang="l1", demo_lang="l1")) == ["test"]


def test_bad_task_arguments_are_refused():
    with pytest.raises(ValueError, match="split="):
        fact_questions(split="train")
    with pytest.raises(ValueError, match="demo_lang="):
        fact_questions(demo_lang="de")
    with pytest.raises(ValueError, match="test_per_category=0"):
        fact_questions(test_per_category=0)


def test_lm_eval_scores_the_shipped_base_like_a_direct_probe(tmp_path):
    """Zero-shot lm-eval accuracy equals an independent argmax over the answer words' next-token logits."""
    from xling_align.clone.checkpoints import PRETRAINED_DIRS
    from xling_align.clone.evaluation import evaluate_clone_tasks, read_accuracies
    from xling_align.clone.pretrain import load_checkpoint
    from xling_align.clone.probe import episode_accuracy, fact_accuracy

    model, tokenizer, world = load_checkpoint(PRETRAINED_DIRS["base"])
    tasks = [
        "xling_clone_l1_heldout",
        "xling_clone_l2_bilingual",
        "xling_clone_l2_heldout",
        "xling_clone_icl_l2_l1demo",
    ]
    results_file = tmp_path / "results_test.json"
    evaluate_clone_tasks(model, tokenizer, results_file, tasks=tasks, world_config=world.config.to_dict())
    acc = read_accuracies(results_file)
    assert set(acc) == set(tasks)
    assert acc["xling_clone_l1_heldout"] == pytest.approx(
        fact_accuracy(model, tokenizer, world, world.test_entities, "l1")
    )
    assert acc["xling_clone_l2_bilingual"] == pytest.approx(
        fact_accuracy(model, tokenizer, world, world.distinct_bilingual_entities, "l2")
    )
    assert acc["xling_clone_l2_heldout"] == pytest.approx(
        fact_accuracy(model, tokenizer, world, world.test_entities, "l2")
    )
    assert acc["xling_clone_icl_l2_l1demo"] == pytest.approx(
        episode_accuracy(model, tokenizer, episode_rows(world, "l2", "l1"))
    )
    # the base model knows the held-out facts in L1 (they are in its pretraining text)
    assert acc["xling_clone_l1_heldout"] >= 0.8
