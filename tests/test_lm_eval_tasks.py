"""The generated `xling_*` task family: names, globbing, data loading and its errors (no model needed)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from xling_align.evaluation import lm_eval_plugin
from xling_align.evaluation.benchmark_table import BENCHMARKS
from xling_align.lm_eval_tasks import data_loader, generate_tasks

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "lm_eval" / "data"


@pytest.fixture(scope="module")
def task_manager():
    lm_eval_plugin.register()
    from lm_eval.tasks import TaskManager

    # built-in tasks are not needed here, and indexing them takes most of a minute on a busy machine
    return TaskManager(include_defaults=False, metadata={"data_dir": str(FIXTURE_DATA)})


def _leaf_tasks(index, name):
    """Tasks that requesting `name` runs, expanded independently of the plugin's own helper."""
    entry = index[name]
    if entry.kind.name == "TAG":
        return list(entry.tags)
    if entry.kind.name == "GROUP":
        leaves = []
        for child in entry.cfg["task"]:
            leaves += _leaf_tasks(index, child if isinstance(child, str) else child["task"])
        return leaves
    return [name]


def test_task_names_cover_every_language_with_an_english_demo_variant(task_manager):
    names = set(task_manager.all_tasks)
    for benchmark, table in BENCHMARKS.items():
        english = table.english
        for lang in table.languages:
            assert f"xling_{benchmark}_{lang}" in names
            expect_endemo = lang != english and benchmark != "belebele"
            assert (f"xling_{benchmark}_{lang}_endemo" in names) == expect_endemo, (benchmark, lang)
        assert f"xling_{benchmark}" in task_manager.all_groups
    # the languages lm-eval 0.4.13's built-ins cover, e.g. all 15 of XNLI and 122 of Belebele
    assert len(BENCHMARKS["xnli"].languages) == 15
    assert len(BENCHMARKS["belebele"].languages) == 122
    assert "xling" in task_manager.all_groups


def test_glob_runs_every_xling_task_exactly_once(task_manager):
    index = task_manager.task_index
    every_task = {name for name, entry in index.items() if entry.kind.name == "TASK" and name.startswith("xling_")}
    matched = task_manager.match_tasks(["xling_*"])
    # lm-eval's rule (TaskManager._check_duplicates): a task may be reached several times as a
    # standalone task or through tags (it is keyed by name), but through a group only once and then
    # by nothing else
    via_groups = Counter(t for name in matched if index[name].kind.name == "GROUP" for t in _leaf_tasks(index, name))
    standalone = {t for name in matched if index[name].kind.name != "GROUP" for t in _leaf_tasks(index, name)}
    assert max(via_groups.values()) == 1
    assert not standalone & set(via_groups)
    assert standalone | set(via_groups) == every_task  # includes other folders' tasks, e.g. clone/
    # without the plugin's de-duplication the same glob matches groups and their members together
    from lm_eval import utils

    unfiltered = utils.pattern_match(["xling_*"], task_manager.all_tasks)
    assert max(Counter(t for name in unfiltered for t in _leaf_tasks(index, name)).values()) > 1


def test_glob_of_one_benchmark_keeps_its_groups(task_manager):
    assert task_manager.match_tasks(["xling_pawsx*"]) == ["xling_pawsx", "xling_pawsx_endemo"]
    assert task_manager.match_tasks(["xling_pawsx_de"]) == ["xling_pawsx_de"]


def test_demonstrations_never_come_from_the_scored_split(task_manager):
    for name, entry in task_manager.task_index.items():
        if not name.startswith("xling_") or entry.kind.name != "TASK" or "clone" in str(entry.yaml_path):
            continue
        fewshot = entry.cfg["fewshot_config"]
        if name.startswith("xling_afp_"):  # the paper's protocol: the seeded dev split of the prompt language
            kwargs = entry.cfg["dataset_kwargs"]
            assert fewshot["split"] == "dev" and entry.cfg["test_split"] in ("test", "eval"), name
            assert kwargs["xling_prompt_lang"] == (kwargs["xling_lang"] if name.endswith("_native") else "en"), name
            continue
        assert entry.cfg["test_split"] != "demos"
        if "split" in fewshot:
            assert fewshot["split"] == "demos", name
            # the sampler that reads the demonstrations only when one is drawn (data_loader returns them deferred)
            assert fewshot["sampler"].endswith("demonstrations.DemonstrationSampler"), name
            kwargs = entry.cfg["dataset_kwargs"]
            expected_demo_lang = "en" if name.endswith("_endemo") else kwargs["xling_lang"]
            assert kwargs["xling_demo_lang"] == expected_demo_lang, name
        else:
            assert fewshot["sampler"].endswith("NoDemonstrations"), name


def test_loader_reads_the_local_layout_with_demonstrations():
    splits = data_loader.load_benchmark("pawsx", "de", "en", data_dir=str(FIXTURE_DATA), version=1.0)
    assert set(splits) == {"test", "demos"}
    with open(FIXTURE_DATA / "pawsx" / "en" / "train.jsonl", encoding="utf-8") as handle:
        english_train = [json.loads(line) for line in handle]
    # the demonstrations are read when first drawn (a DeferredSplit), then hold the English train rows
    assert [row["sentence1"] for row in splits["demos"].load()] == [row["sentence1"] for row in english_train]


def test_loader_uses_the_environment_and_metadata_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(data_loader.DATA_DIR_ENV, str(FIXTURE_DATA))
    assert len(data_loader.load_benchmark("xnli", "de")["validation"]) > 0
    with pytest.raises(FileNotFoundError) as error:
        data_loader.load_benchmark("xnli", "de", data_dir=str(tmp_path))
    assert str(tmp_path / "xnli" / "de" / "validation.jsonl") in str(error.value)


def test_missing_file_names_the_exact_path(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        data_loader.load_benchmark("xcopa", "qu", "qu", data_dir=str(tmp_path))
    message = str(error.value)
    assert str(tmp_path / "xcopa" / "qu" / "test.jsonl") in message
    assert "export-data" in message


def test_wrong_columns_say_what_was_found_and_what_is_needed(tmp_path):
    folder = tmp_path / "pawsx" / "de"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text(json.dumps({"text_a": "x", "text_b": "y", "label": 1}) + "\n")
    with pytest.raises(ValueError) as error:
        data_loader.load_benchmark("pawsx", "de", data_dir=str(tmp_path))
    message = str(error.value)
    assert "missing column(s) sentence1, sentence2" in message
    assert "Found: label, text_a, text_b" in message
    assert "need: sentence1, sentence2, label" in message


def test_test_only_benchmarks_refuse_shots_but_run_zero_shot(task_manager):
    task = task_manager.load(["xling_xwinograd_fr"])["tasks"]["xling_xwinograd_fr"]
    doc = task.test_docs()[0]
    assert task.fewshot_context(doc, 0)  # 0-shot works
    with pytest.raises(ValueError, match="--num_fewshot 0"):
        task.fewshot_context(doc, 1)


def test_benchmark_readmes_list_their_tasks():
    for benchmark in BENCHMARKS:
        readme = (generate_tasks.TASKS_DIR / benchmark / "README.md").read_text(encoding="utf-8")
        assert f"`xling_{benchmark}_" in readme and "Citation" in readme


def test_generator_leaves_other_folders_alone(tmp_path, monkeypatch):
    # a copy of the task folder with a foreign sub-folder: regenerating must not touch it
    from xling_align.lm_eval_tasks.generated_files import header_line

    copy = tmp_path / "tasks"
    shutil.copytree(generate_tasks.TASKS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "clone").mkdir(exist_ok=True)
    (copy / "clone" / "xling_clone_x.yaml").write_text("task: xling_clone_x\n")
    hand_written = copy / "pawsx" / "notes.yaml"
    hand_written.write_text("task: mine\n")
    # a task an earlier table generated, which the current one no longer writes
    (copy / "pawsx" / "xling_pawsx_xx.yaml").write_text(
        header_line(generate_tasks.GENERATOR, "x.yaml") + "task: stale\n"
    )
    monkeypatch.setattr(generate_tasks, "TASKS_DIR", copy)
    assert generate_tasks.main([]) == 0
    assert (copy / "clone" / "xling_clone_x.yaml").read_text() == "task: xling_clone_x\n"
    assert hand_written.read_text() == "task: mine\n"
    assert not (copy / "pawsx" / "xling_pawsx_xx.yaml").exists()


def test_umbrella_group_holds_every_benchmark_task_once(task_manager):
    index = task_manager.task_index
    leaves = Counter(_leaf_tasks(index, "xling"))
    generated = {
        f"xling_{benchmark}_{lang}" + suffix
        for benchmark, table in BENCHMARKS.items()
        for lang in table.languages
        for suffix in ("", "_endemo")
        if suffix == "" or (lang != table.english and benchmark != "belebele")
    }
    assert set(leaves) == generated and max(leaves.values()) == 1
    assert len(generated) == 219


def test_lm_eval_does_not_repeat_its_custom_loader_notice_for_xling_tasks(caplog, task_manager):
    """lm-eval warns 'Custom kwargs can be passed to `--metadata`' for every task with a custom loader; for the
    xling tasks that is every task, so the notice is filtered (by name: other tasks keep it)."""
    import logging

    from lm_eval.tasks import get_task_dict

    with caplog.at_level(logging.INFO):
        tasks = get_task_dict(["xling_pawsx_de", "xling_xnli_fr_endemo"], task_manager)
        logging.getLogger("lm_eval.api.task").warning("other_task: Custom kwargs can be passed to `--metadata` ...")
    assert set(tasks) == {"xling_pawsx_de", "xling_xnli_fr_endemo"}
    notices = [r.getMessage() for r in caplog.records if "Custom kwargs" in r.getMessage()]
    assert notices == ["other_task: Custom kwargs can be passed to `--metadata` ..."]


def test_demonstrations_are_read_once_and_only_when_drawn(tmp_path):
    import doctest

    import datasets

    from xling_align.lm_eval_tasks import demonstrations
    from xling_align.lm_eval_tasks.demonstrations import DeferredSplit, DemonstrationSampler

    assert doctest.testmod(demonstrations).failed == 0
    loads = []

    def load():
        loads.append(1)
        return datasets.Dataset.from_list([{"x": value} for value in range(5)])

    split = DeferredSplit(load, "the test demonstrations (train split)").filter(lambda doc: doc["x"] % 2 == 0)
    sampler = DemonstrationSampler(list(split.map(lambda doc: {"x": doc["x"] * 10})), rnd=0)
    assert loads == [] and sampler.sample(0) == []
    assert sorted(doc["x"] for doc in sampler.sample(3)) == [0, 20, 40]  # filter, then map, replayed in order
    sampler.sample(2)
    assert loads == [1]
    with pytest.raises(
        ValueError,
        match="4 demonstration.s. asked for, but the test demonstrations .train split. "
        "holds 3 usable row.s.: lower --num_fewshot",
    ):
        sampler.sample(4)


def test_a_task_without_the_demonstration_sampler_fails_with_the_fix(tmp_path):
    """A task YAML of one's own that uses our `demos` split with lm-eval's default sampler is told what to add."""
    from lm_eval.tasks import TaskManager

    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "mine.yaml").write_text(
        "include: " + str(Path(data_loader.__file__).parent / "xnli" / "_xnli_template_yaml") + "\n"
        "task: my_xnli_de\ndataset_kwargs: {xling_benchmark: xnli, xling_lang: de, xling_demo_lang: de}\n"
        "test_split: validation\ndoc_to_choice: '{{[premise, premise, premise]}}'\nfewshot_config: {split: demos}\n"
    )
    manager = TaskManager(include_defaults=False, include_path=str(folder), metadata={"data_dir": str(FIXTURE_DATA)})
    task = manager.load(["my_xnli_de"])["tasks"]["my_xnli_de"]
    with pytest.raises(RuntimeError, match="needs `sampler: !function xling_align.lm_eval_tasks.demonstrations"):
        task.fewshot_context(task.test_docs()[0], 1)


def test_hub_splits_are_checked_too(monkeypatch):
    import datasets

    rows = [{"sentence1": "a", "sentence2": "b", "label": "1"}]
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: datasets.Dataset.from_list(rows))
    monkeypatch.delenv(data_loader.DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match=r"google-research-datasets/paws-x \(de, test\): column 'label' holds '1'"):
        data_loader.load_benchmark("pawsx", "de")
