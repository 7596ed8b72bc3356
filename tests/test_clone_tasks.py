"""The xling_clone_* lm-eval tasks: documents, YAMLs generated from the table, scores of the shipped model."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from xling_align.clone.tasks import fact_questions  # noqa: E402
from xling_align.clone.world import build_world  # noqa: E402


def test_documents_split_scored_and_demonstration_entities():
    world = build_world()
    ds = fact_questions(fact="color", query_lang="l2", demo_lang="l1", version=1.0)  # lm-eval passes metadata
    assert {r["entity"] for r in ds["test"]} == set(world.eval_entities)
    assert {r["entity"] for r in ds["train"]} == set(world.demo_entities)
    row = ds["test"][0]
    assert row["query"] == world.fact_prompt(row["entity"], "color", "l2")
    assert row["choices"][row["label"]] == world.word(world.color_of[row["entity"]], "l2")
    assert ds["train"][0]["query"].split()[0] == "the"  # L1 demonstrations


def test_bad_task_arguments_are_refused():
    with pytest.raises(ValueError, match="fact="):
        fact_questions(fact="size")
    with pytest.raises(ValueError, match="demo_lang="):
        fact_questions(demo_lang="de")


def test_lm_eval_scores_the_shipped_model_like_a_direct_probe(tmp_path):
    """Zero-shot lm-eval accuracy equals an independent argmax over the answer words' log-probabilities."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xling_align.clone.evaluation import clone_task_manager, evaluate_clone_tasks, read_accuracies
    from xling_align.clone.probe import fact_accuracy
    from xling_align.commands.demo import shipped_checkpoint

    assert "xling_clone_color_l2_5shot_l1demo" in clone_task_manager().all_tasks
    folder = shipped_checkpoint()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    world = build_world()
    limit = 20
    tasks = ["xling_clone_category_l1", "xling_clone_color_l1", "xling_clone_color_l2", "xling_clone_color_l2_5shot_l1demo"]
    results_file = tmp_path / "results_test.json"
    evaluate_clone_tasks(model, tokenizer, results_file, tasks=tasks, limit=limit)
    acc = read_accuracies(results_file)
    assert set(acc) == set(tasks)
    entities = world.eval_entities[:limit]
    for task, fact, lang in (("xling_clone_category_l1", "category", "l1"), ("xling_clone_color_l1", "color", "l1"),
                             ("xling_clone_color_l2", "color", "l2")):
        assert acc[task] == pytest.approx(fact_accuracy(model, tokenizer, world, fact, lang, entities)), task
    # the base model knows the facts in L1 (they are in its pretraining text)
    assert acc["xling_clone_category_l1"] >= 0.9 and acc["xling_clone_color_l1"] >= 0.9
