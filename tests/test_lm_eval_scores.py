"""Scores and prompts of the `xling_*` tasks on a tiny random model and the local fixture data.

- 0-shot `xling_pawsx_<lang>` / `xling_xnli_<lang>` (and one language of each other family) equal lm-eval's
  built-in `paws_<lang>` / `xnli_<lang>` / ... request by request (the built-ins read the same files through a
  stand-in for `datasets.load_dataset`);
- `_endemo` prompts are English demonstrations (English template, English train data) then the query in
  the task's language; in-language demonstrations come from the demonstration split, never the scored one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xling_align.evaluation import lm_eval_plugin

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "lm_eval" / "data"
SPLITS = {
    "google-research-datasets/paws-x": ("pawsx", ("train", "test")),
    "facebook/xnli": ("xnli", ("train", "validation")),
    "cambridgeltl/xcopa": ("xcopa", ("validation", "test")),
    "juletxara/xstory_cloze": ("xstorycloze", ("train", "eval")),
    "Muennighoff/xwinograd": ("xwinograd", ("test",)),
    "facebook/belebele": ("belebele", ("test",)),
}


def _rows(benchmark, lang, split):
    with open(FIXTURE_DATA / benchmark / lang / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from lm_eval.models.huggingface import HFLM

    from xling_align.tiny_models import build_tiny_model

    model, tokenizer = build_tiny_model("xling-align/tiny-random-gpt2")
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return HFLM(pretrained=str(folder), device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def task_manager():
    lm_eval_plugin.register()
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False, metadata={"data_dir": str(FIXTURE_DATA)})


def _builtin_yaml(folder, name):
    import lm_eval.tasks

    return str(Path(lm_eval.tasks.__file__).parent / folder / f"{name}.yaml")


def _hub_from_fixtures(path=None, name=None, **kwargs):
    """Stand-in for `datasets.load_dataset` serving the fixture files under the hub's split names."""
    import datasets

    benchmark, splits = SPLITS[path]
    return datasets.DatasetDict({s: datasets.Dataset.from_list(_rows(benchmark, name, s)) for s in splits})


def _requests_by_doc(samples):
    return {s["doc_id"]: ([tuple(a) for a in s["arguments"]], s["filtered_resps"]) for s in samples}


def test_zero_shot_scores_equal_the_builtin_tasks(lm, task_manager, monkeypatch):
    import datasets
    import lm_eval

    monkeypatch.setattr(datasets, "load_dataset", _hub_from_fixtures)
    # our task -> (built-in folder, built-in YAML file, built-in task name)
    builtins = {
        "xling_pawsx_de": ("paws-x", "paws_de", "paws_de"),
        "xling_pawsx_ja": ("paws-x", "paws_ja", "paws_ja"),
        "xling_xnli_de": ("xnli", "xnli_de", "xnli_de"),
        "xling_xnli_zh": ("xnli", "xnli_zh", "xnli_zh"),
        # the other families reproduce their built-ins too
        "xling_xcopa_et": ("xcopa", "default_et", "xcopa_et"),
        "xling_xstorycloze_ar": ("xstorycloze", "default_ar", "xstorycloze_ar"),
        "xling_xwinograd_fr": ("xwinograd", "xwinograd_fr", "xwinograd_fr"),
        "xling_belebele_eng_Latn": ("belebele", "belebele_eng_Latn", "belebele_eng_Latn"),
    }
    pairs = {ours: _builtin_yaml(folder, file) for ours, (folder, file, _) in builtins.items()}
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[*pairs, *pairs.values()], task_manager=task_manager, num_fewshot=0, log_samples=True
    )
    for ours in pairs:
        builtin = builtins[ours][2]
        assert out["results"][ours]["acc,none"] == out["results"][builtin]["acc,none"]
        mine, theirs = _requests_by_doc(out["samples"][ours]), _requests_by_doc(out["samples"][builtin])
        assert len(mine) == 8  # every fixture document was scored
        assert mine == theirs  # same prompts and the same log-likelihoods, document by document


@pytest.fixture(scope="module")
def two_shot_samples(lm, task_manager):
    import lm_eval

    return lm_eval.simple_evaluate(
        model=lm,
        tasks=["xling_pawsx_zh_endemo", "xling_xnli_de_endemo", "xling_xnli_fr"],
        task_manager=task_manager,
        num_fewshot=2,
        log_samples=True,
        limit=3,
    )["samples"]


def test_english_demonstrations_precede_a_target_language_query(two_shot_samples):
    # the English demonstrations, rendered independently: the correct choice of every English train item
    english_pawsx = set()
    for row in _rows("pawsx", "en", "train"):
        first = row["sentence1"].strip().rstrip(".")
        second = row["sentence2"][:1].lower() + row["sentence2"][1:]
        english_pawsx.add(f"{first}, right? {['No', 'Yes'][row['label']]}, {second}")
    english_xnli = {
        f"{r['premise']}, right? {['Yes', 'Also', 'No'][r['label']]}, {r['hypothesis']}"
        for r in _rows("xnli", "en", "train")
    }
    for task, demos, query_words in (
        ("xling_pawsx_zh_endemo", english_pawsx, ", 对吧? "),
        ("xling_xnli_de_endemo", english_xnli, ", richtig? "),
    ):
        samples = two_shot_samples[task]
        assert len(samples) == 3
        for sample in samples:
            context, continuation = sample["arguments"][0][0], sample["arguments"][0][1]
            # lm-eval joins "" + target_delimiter + answer: xnli demos start with a space, as in its built-ins
            shots = [shot.strip() for shot in context.split("\n\n")]
            assert len(shots) == 3 and all(shot in demos for shot in shots[:2]), shots
            assert query_words in shots[2] + continuation and "right?" not in shots[2] + continuation


def test_in_language_demonstrations_come_from_the_demonstration_split(two_shot_samples):
    train = {
        f"{r['premise']}, correct? {['Oui', 'Aussi', 'Non'][r['label']]}, {r['hypothesis']}"
        for r in _rows("xnli", "fr", "train")
    }
    test = {
        f"{r['premise']}, correct? {['Oui', 'Aussi', 'Non'][r['label']]}, {r['hypothesis']}"
        for r in _rows("xnli", "fr", "validation")
    }
    assert not train & test  # the fixture keeps them apart, so the check below can tell them apart
    for sample in two_shot_samples["xling_xnli_fr"]:
        shots = [shot.strip() for shot in sample["arguments"][0][0].split("\n\n")[:2]]
        assert all(shot in train for shot in shots), shots
